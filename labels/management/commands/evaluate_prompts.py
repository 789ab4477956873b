from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from curation.errors import DomainError
from curation.management.cli import resolve_dataset, resolve_prompt_version
from labels.evaluation import VerdictEvaluation, prompt_version_evaluate
from worker.engine.evaluation import METRICS

HEADERS = {"accuracy": "accuracy", "precision": "precision", "recall": "recall", "f1": "F1"}


class Command(BaseCommand):
    help = (
        "Accuracy, precision, recall and F1 (inappropriate = positive) of a prompt version "
        "on reviewed images, from cached embeddings."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--prompt-version", required=True, help="Prompt version id.")
        parser.add_argument(
            "--dataset",
            nargs="+",
            action="extend",
            default=[],
            metavar="ID_OR_NAME",
            help="Datasets whose verdicts to use (default: all).",
        )
        parser.add_argument("--threshold", type=float, default=settings.Q16_DEFAULT_THRESHOLD)

    def handle(self, *args, **options):
        version = resolve_prompt_version(options["prompt_version"])
        datasets = [resolve_dataset(value) for value in options["dataset"]] or None
        try:
            evaluation = prompt_version_evaluate(
                version=version, datasets=datasets, threshold=options["threshold"]
            )
        except DomainError as exc:
            raise CommandError(exc.message) from exc

        self.stdout.write(
            f"Prompt version {version.pk} ({version.name}, {version.model_key}) at threshold "
            f"{evaluation.threshold}; inappropriate is the positive class."
        )
        rows = list(evaluation.datasets)
        if len(rows) != 1:
            rows.append(evaluation.total)
        width = max([7, *(len(row.label) for row in rows)])
        self.stdout.write(
            f"{'dataset':{width}}  {'verdicts':>8}  {'used':>6}  {'skipped':>7}"
            + "".join(f"  {HEADERS[m] + ' (%)':>13}" for m in METRICS)
        )
        for row in rows:
            self.stdout.write(self._line(row, width))
        total = evaluation.total
        self.stdout.write(
            f"Used {total.used} verdicts ({total.inappropriate} inappropriate); skipped "
            f"{total.skipped} without a cached embedding for {version.model_key}."
        )
        if total.used == 0:
            raise CommandError("No reviewed images with a cached embedding to evaluate on.")

    @staticmethod
    def _line(row: VerdictEvaluation, width: int) -> str:
        counts = f"{row.label:{width}}  {row.verdicts:>8}  {row.used:>6}  {row.skipped:>7}"
        if row.metrics is None:
            return counts + "".join(f"  {'-':>13}" for _ in METRICS)
        return counts + "".join(f"  {100 * row.metrics[m]:>13.2f}" for m in METRICS)
