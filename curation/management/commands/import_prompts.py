from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.services import audited_command
from curation.errors import DomainError
from curation.services.clip_config import configured_model_key
from curation.services.prompt_versions import prompt_version_activate, prompt_version_import


class Command(BaseCommand):
    help = "Import prompts in the paper's published format (pickled float16 array (2, D))."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="Path of a prompts.p file.")
        parser.add_argument("--name", default="", help="Name of the new prompt version.")
        parser.add_argument(
            "--model-key",
            default="",
            help="Model the prompts belong to, e.g. ViT-B-16/openai (default: the configured model).",
        )
        parser.add_argument(
            "--activate",
            action="store_true",
            help="Activate the new version (rescoring is queued for datasets scored before).",
        )

    @audited_command
    def handle(self, *args, file: str, name: str, model_key: str, activate: bool, **options):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"{file} is not a file.")
        try:
            version = prompt_version_import(
                name=name or path.name,
                model_key=model_key or configured_model_key(),
                data=path.read_bytes(),
            )
            if activate:
                prompt_version_activate(version=version)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Imported prompt version {version.pk} ({version.name}) for {version.model_key}, "
                f"D={version.dim}{', active' if activate else ''}."
            )
        )
