from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.services import audited_command
from curation.bank_models import HashBank
from curation.errors import DomainError
from curation.services.bank_files import FORMATS
from curation.services.banks import bank_create, bank_entries_replace


class Command(BaseCommand):
    help = (
        "Import a hash bank: a blocklist exported by this app (CSV, JSON, JSONL, Parquet), a "
        "list of hashes (one a line) or an HMA/ThreatExchange signal CSV. Every dataset is "
        "then matched against it (a background task)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="Path of the bank file.")
        parser.add_argument("--name", required=True, help="Name of the bank.")
        parser.add_argument(
            "--kind",
            default="",
            choices=["", "sha256", "phash", "pdq"],
            help="Kind of the hashes (needed for 64-hex lists: SHA-256 and PDQ look alike).",
        )
        parser.add_argument("--format", default="auto", choices=FORMATS, dest="file_format")
        parser.add_argument("--description", default="")
        parser.add_argument(
            "--replace",
            action="store_true",
            help="Replace the entries of the existing bank of that name.",
        )

    @audited_command
    def handle(
        self, *args, file: str, name: str, kind: str, file_format: str, description: str,
        replace: bool, **options,
    ):  # fmt: skip
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"{file} is not a file.")
        if path.stat().st_size > settings.Q16_MAX_BANK_BYTES:
            raise CommandError(
                f"{file} is {path.stat().st_size:,} bytes; the most accepted is "
                f"{settings.Q16_MAX_BANK_BYTES:,} (Q16_MAX_BANK_BYTES)."
            )
        data = path.read_bytes()
        try:
            if replace:
                bank = HashBank.objects.filter(name=name.strip()).first()
                if bank is None:
                    raise CommandError(f"No hash bank is named {name!r}.")
                bank, parsed = bank_entries_replace(
                    bank=bank, data=data, file_name=path.name, kind=kind, file_format=file_format
                )
            else:
                bank, parsed = bank_create(
                    name=name, data=data, file_name=path.name, kind=kind,
                    file_format=file_format, description=description,
                )  # fmt: skip
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        counts = ", ".join(f"{n} {k}" for k, n in parsed.counts().items() if n)
        notes = f"; {parsed.duplicates} duplicates merged" if parsed.duplicates else ""
        if parsed.skipped:
            skipped = ", ".join(f"{n} {t}" for t, n in sorted(parsed.skipped.items()))
            notes += f"; skipped signal types: {skipped}"
        self.stdout.write(
            self.style.SUCCESS(
                f"Hash bank {bank.pk} ({bank.name}): {counts} from {parsed.format}{notes}. "
                "Matching every dataset against it is queued."
            )
        )
