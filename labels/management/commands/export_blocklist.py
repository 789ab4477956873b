from __future__ import annotations

import shutil

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.services import audited_command
from curation.errors import DomainError
from curation.management.cli import resolve_dataset
from curation.models import Export
from curation.services.exports import export_create
from curation.storage import stored_open
from labels.exports import export_build


class Command(BaseCommand):
    help = "Export a dataset's blocklist (content hash, perceptual hash, path, score, verdict)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("dataset", help="Dataset id or name.")
        parser.add_argument("--format", choices=Export.Format.values, default=Export.Format.CSV)
        parser.add_argument(
            "--scope",
            choices=Export.Scope.values,
            default=Export.Scope.CONFIRMED,
            help="confirmed: reviewer-confirmed images; flagged: also flagged, not yet reviewed.",
        )
        parser.add_argument(
            "--output", "-o", help="Copy the export here (default: print its path)."
        )

    @audited_command
    def handle(self, *args, **options):
        dataset = resolve_dataset(options["dataset"])
        try:
            export = export_create(
                dataset=dataset, format=options["format"], scope=options["scope"], queue=False
            )
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        export = export_build(export_id=export.pk)
        if export.state != Export.State.SUCCEEDED:
            raise CommandError(f"Export failed: {export.error}")
        target = export.file_path
        if options["output"]:
            with stored_open(export.file_path) as source, open(options["output"], "wb") as sink:
                shutil.copyfileobj(source, sink)
            target = options["output"]
        self.stdout.write(self.style.SUCCESS(f"Exported {export.rows} rows to {target}"))
