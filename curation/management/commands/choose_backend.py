"""Measure the image-encoder backends on this CPU and record Q16_BACKEND=auto's choice."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from curation.services.backend_calibration import calibration_dataset, calibration_sources
from curation.services.clip_config import configured_model_spec
from worker.engine.spec import ModelLoadError


class Command(BaseCommand):
    help = (
        "Calibrate on a sample of a dataset's images (default: the latest ready one), measure "
        "each backend's speed and fidelity to fp32 PyTorch, and record the fastest faithful one "
        "for Q16_BACKEND=auto on this model and CPU class."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dataset", type=int, default=None, help="dataset id")
        parser.add_argument(
            "--threshold", type=float, default=None, help="flag threshold (default the setting's)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        from worker.engine.auto_backend import choose_backend_in_child

        dataset = calibration_dataset(dataset_id=options["dataset"])
        if dataset is None:
            raise CommandError("no dataset to calibrate on: import one first (or give --dataset)")
        sources = calibration_sources(dataset_id=dataset.pk)
        if not sources:
            raise CommandError(f"dataset {dataset.pk} has no readable images to calibrate on")
        threshold = options["threshold"]
        try:
            record = choose_backend_in_child(
                configured_model_spec(),
                calibration_sources=sources,
                threshold=settings.Q16_DEFAULT_THRESHOLD if threshold is None else threshold,
            )
        except ModelLoadError as exc:
            raise CommandError(str(exc)) from exc
        for name, measured in record["measured"].items():
            verdict = "ok" if measured["passes"] else "refused"
            figures = ", ".join(
                f"{key} {measured[key]:.4f}"
                for key in ("images_per_second", "cosine_mean", "flag_agreement")
                if key in measured
            )
            self.stdout.write(f"{name}: {verdict} ({figures or measured.get('error', '')})")
        self.stdout.write(
            f"Q16_BACKEND=auto uses {record['backend']} ({record['model_key']}) on "
            f"{record['cpu']} [{', '.join(record['flags'])}], calibrated on "
            f"{record['calibration_images']} images of dataset {dataset.pk}"
        )
