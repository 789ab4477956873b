from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.services import audited_command
from curation.api.ids import parse_id
from curation.errors import DomainError
from curation.management.cli import resolve_dataset
from curation.models import PromptJob, ScoringRun
from curation.services.datasets import dataset_import_cancel, dataset_import_resume
from curation.services.prompt_jobs import prompt_job_cancel, prompt_job_resume
from curation.services.recovery import recover_stalled_work
from curation.services.scoring import scoring_run_cancel, scoring_run_resume

KINDS = ("run", "import", "job")


class Command(BaseCommand):
    help = (
        "Cancel or resume a scoring run, a dataset import or a prompt job, or re-queue work "
        "whose Celery tasks were lost. Examples: `manage_work cancel run 12`, "
        "`manage_work resume import photos`, `manage_work recover --stall-seconds 0`."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["cancel", "resume", "recover"])
        parser.add_argument(
            "kind", nargs="?", choices=KINDS, help="run, import (a dataset) or job (prompt job)."
        )
        parser.add_argument(
            "target", nargs="?", help="Run id, dataset id or name, or prompt job id."
        )
        parser.add_argument(
            "--stall-seconds",
            type=int,
            help="recover: how long work must have shown no sign of life (default "
            "Q16_STALL_SECONDS). Work still queued or on a worker is never re-queued.",
        )

    @audited_command
    def handle(self, *args, **options):
        if options["action"] == "recover":
            self._recover(options["stall_seconds"])
            return
        if not options["kind"] or not options["target"]:
            raise CommandError(
                f"{options['action']} needs a kind ({', '.join(KINDS)}) and a target."
            )
        try:
            line = self._act(options["action"], options["kind"], options["target"])
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(self.style.SUCCESS(line))

    def _act(self, action: str, kind: str, target: str) -> str:
        if kind == "import":
            dataset = resolve_dataset(target)
            import_action = dataset_import_cancel if action == "cancel" else dataset_import_resume
            dataset = import_action(dataset=dataset)
            return f"Import of dataset {dataset.pk} ({dataset.name}): {dataset.state}."
        if kind == "run":
            run = self._get(ScoringRun, target, "run")
            run_action = scoring_run_cancel if action == "cancel" else scoring_run_resume
            run = run_action(run=run)
            return f"Run {run.pk}: {run.state}, {run.chunks_done}/{run.chunks_total} chunks done."
        job = self._get(PromptJob, target, "prompt job")
        job_action = prompt_job_cancel if action == "cancel" else prompt_job_resume
        job = job_action(job=job)
        return f"Prompt job {job.pk}: {job.state}."

    @staticmethod
    def _get(model, target: str, label: str):
        object_id = parse_id(target)
        row = model.objects.filter(pk=object_id).first() if object_id else None
        if row is None:
            raise CommandError(f"No {label} with id {target!r}.")
        return row

    def _recover(self, stall_seconds: int | None) -> None:
        report = recover_stalled_work(stall_seconds=stall_seconds)
        if report.skipped:
            raise CommandError(f"Recovery skipped: {report.skipped}")
        if not report:
            self.stdout.write("No stalled work.")
            return
        for run_id, tasks in report.runs.items():
            self.stdout.write(f"Run {run_id}: {tasks} task(s) queued again.")
        for dataset_id in report.datasets:
            self.stdout.write(f"Import of dataset {dataset_id} queued again.")
        for job_id in report.jobs:
            self.stdout.write(f"Prompt job {job_id} queued again.")
        self.stdout.write(self.style.SUCCESS("Recovered."))
