from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from audit.services import audited_command
from curation.errors import DomainError
from curation.management.cli import follow_row, resolve_dataset, resolve_prompt_version
from curation.models import PromptVersion, ScoringRun
from curation.selectors import active_prompt_version
from curation.services.chunks import scoring_chunk_process
from curation.services.clip_config import configured_model_key
from curation.services.clip_runtime import get_clip
from curation.services.prompt_versions import prompt_version_activate
from curation.services.prompt_zero_shot import prompt_version_create_zero_shot
from curation.services.scoring import scoring_run_start


class Command(BaseCommand):
    help = (
        "Embed and score a dataset with CLIP + Q16 prompts; flagged images join the review queue."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("dataset", help="Dataset id or name.")
        parser.add_argument(
            "--prompt-version",
            help="Prompt version id (default: the active one; zero-shot if there is none).",
        )
        parser.add_argument("--threshold", type=float, default=settings.Q16_DEFAULT_THRESHOLD)
        parser.add_argument("--chunk-size", type=int, default=settings.Q16_CHUNK_SIZE)
        parser.add_argument("--batch-size", type=int, default=settings.Q16_BATCH_SIZE)
        parser.add_argument(
            "--queue",
            action="store_true",
            help="Hand the chunks to Celery workers and follow them.",
        )

    @audited_command
    def handle(self, *args, **options):
        dataset = resolve_dataset(options["dataset"])
        version = self._prompt_version(options["prompt_version"])
        try:
            run = scoring_run_start(
                dataset=dataset,
                prompt_version=version,
                threshold=options["threshold"],
                chunk_size=options["chunk_size"],
                queue=options["queue"],
            )
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(
            f"Run {run.pk}: {run.total} images in {run.chunks_total} chunks, "
            f"prompt version {version.pk} ({version.name}), threshold {run.threshold}."
        )
        if options["queue"]:

            def read() -> tuple[int, int, str]:
                run.refresh_from_db()
                return run.processed, run.total, run.state

            follow_row(
                read=read,
                finished=lambda s: s not in (ScoringRun.State.PENDING, ScoringRun.State.RUNNING),
                description="scoring",
                queue=settings.Q16_GPU_QUEUE,
            )
        else:
            with tqdm(total=run.total, desc="scoring", unit="img") as bar:
                for chunk in run.chunks.order_by("index"):
                    scoring_chunk_process(
                        chunk_id=chunk.pk, clip_provider=get_clip, batch_size=options["batch_size"]
                    )
                    run.refresh_from_db()
                    bar.n = run.processed
                    bar.refresh()
        run.refresh_from_db()
        if run.state != ScoringRun.State.SUCCEEDED:
            raise CommandError(f"Run {run.pk} {run.state}: {run.error}")
        self.stdout.write(
            self.style.SUCCESS(
                f"Scored {run.processed} images ({run.encoded} encoded, the rest from cache), "
                f"{run.failed} failed, {run.flagged} flagged for review; "
                f"{run.images_per_second or 0:.1f} images/s."
            )
        )

    def _prompt_version(self, value: str | None) -> PromptVersion:
        if value:
            return resolve_prompt_version(value)
        model_key = configured_model_key()
        version = active_prompt_version(model_key=model_key)
        if version is not None:
            return version
        self.stdout.write(
            f"No active prompt version for {model_key}: creating the paper's zero-shot prompts."
        )
        version = prompt_version_create_zero_shot(clip=get_clip(model_key))
        prompt_version_activate(version=version, rescore=False)
        return version
