from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.services import audited_command
from curation.services.orphans import orphans_remove


class Command(BaseCommand):
    help = (
        "Remove embedding shards nothing refers to (files without a shard row, shard rows "
        "without references) and scores of runs that no longer exist. Example: "
        "`cleanup_orphans --dry-run`, `cleanup_orphans --grace-minutes 10`."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--grace-minutes",
            type=int,
            default=60,
            help="Leave alone anything younger than this (a chunk may be storing it).",
        )
        parser.add_argument("--dry-run", action="store_true", help="Only report.")

    @audited_command
    def handle(self, *args: object, **options: object) -> None:
        grace = options["grace_minutes"]
        if not isinstance(grace, int) or grace < 0:
            raise CommandError("--grace-minutes must be 0 or more.")
        dry_run = bool(options["dry_run"])
        report = orphans_remove(grace=timedelta(minutes=grace), dry_run=dry_run)
        verb = "would remove" if dry_run else "removed"
        self.stdout.write(
            f"{verb} {len(report.shard_files)} shard file(s) without a row, "
            f"{len(report.shard_rows)} shard row(s) without references, "
            f"{report.scores} score(s) of {len(report.score_runs)} deleted run(s)"
        )
        for name in report.shard_files + report.shard_rows:
            self.stdout.write(f"  {name}")
