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


def _names(value: str) -> list[str]:
    return [name.strip() for name in value.split(",") if name.strip()]


class Command(BaseCommand):
    help = (
        "Export a dataset's blocklist or keep-list (CSV, JSON, JSONL, Parquet, hash lists, a "
        "ThreatExchange/HMA hash-bank CSV), optionally with a cleaned copy of the dataset."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("dataset", help="Dataset id or name.")
        parser.add_argument("--format", choices=Export.Format.values, default=Export.Format.CSV)
        parser.add_argument(
            "--scope",
            choices=Export.Scope.values,
            default=Export.Scope.CONFIRMED,
            help="confirmed: blocked images (confirmed by reviewers, or matched to a hash "
            "bank); flagged: also flagged, not yet settled; keep: every image not blocked.",
        )
        parser.add_argument("--category", action="append", default=[], help="Repeatable.")
        parser.add_argument(
            "--class", dest="classes", action="append", default=[], help="Repeatable."
        )
        parser.add_argument("--min-score", type=float, default=None)
        parser.add_argument("--max-score", type=float, default=None)
        parser.add_argument(
            "--copy",
            dest="copy_kind",
            choices=[kind for kind in Export.CopyKind.values if kind],
            default="",
            help="Also write a cleaned copy (needs --scope keep and --copy-to).",
        )
        parser.add_argument(
            "--copy-to", default="", help="A new folder under Q16_EXPORT_ROOTS or an s3:// URL."
        )
        parser.add_argument(
            "--copy-mode", choices=Export.CopyMode.values, default=Export.CopyMode.COPY
        )
        parser.add_argument(
            "--output", "-o", help="Copy the export here (default: print its path)."
        )
        parser.add_argument("--provenance-output", help="Copy the provenance sidecar (.json) here.")

    @audited_command
    def handle(self, *args, **options):
        dataset = resolve_dataset(options["dataset"])
        filters = {
            "categories": [n for value in options["category"] for n in _names(value)],
            "classes": [n for value in options["classes"] for n in _names(value)],
            "min_score": options["min_score"],
            "max_score": options["max_score"],
        }
        try:
            export = export_create(
                dataset=dataset,
                format=options["format"],
                scope=options["scope"],
                filters=filters,
                copy_kind=options["copy_kind"],
                copy_target=options["copy_to"],
                copy_mode=options["copy_mode"],
                queue=False,
            )
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        export = export_build(export_id=export.pk)
        if export.state != Export.State.SUCCEEDED:
            raise CommandError(f"Export failed: {export.error}")
        target = export.file_path
        for reference, output in (
            (export.file_path, options["output"]),
            (export.provenance_path, options["provenance_output"]),
        ):
            if output:
                with stored_open(reference) as source, open(output, "wb") as sink:
                    shutil.copyfileobj(source, sink)
        if options["output"]:
            target = options["output"]
        copied = f"; cleaned copy in {export.copy_target}" if export.copy_kind else ""
        self.stdout.write(self.style.SUCCESS(f"Exported {export.rows} rows to {target}{copied}"))
