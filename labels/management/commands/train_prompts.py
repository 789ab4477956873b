from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from audit.services import audited_command
from curation.errors import DomainError
from curation.management.cli import resolve_dataset, resolve_prompt_version
from curation.selectors import active_prompt_version
from curation.services.chunks import scoring_run_rescore
from curation.services.clip_config import configured_model_key
from curation.services.prompt_versions import prompt_version_activate
from labels.training import prompt_version_train
from worker.engine.tuning_config import (
    DEFAULT_HELDOUT_FRACTION,
    TUNING_BOUNDS,
    TUNING_DEFAULTS,
    TuningConfigError,
    tuning_config_from,
)

METRICS = ("accuracy", "precision", "recall", "f1")


class Command(BaseCommand):
    help = "Train a new prompt version from a dataset's verdicts (cached embeddings only)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("dataset", help="Dataset id or name.")
        parser.add_argument(
            "--parent", help="Prompt version to start from (default: the active one)."
        )
        for name in ("epochs", "lr", "momentum", "batch_size", "seed"):
            default = getattr(TUNING_DEFAULTS, name)
            low, high = TUNING_BOUNDS[name]
            parser.add_argument(
                f"--{name.replace('_', '-')}",
                type=type(default),
                default=default,
                help=f"{low:g} to {high:g} (default {default:g}, the paper's)",
            )
        parser.add_argument("--heldout-fraction", type=float, default=DEFAULT_HELDOUT_FRACTION)
        parser.add_argument("--name", default="")
        parser.add_argument(
            "--activate",
            action="store_true",
            help="Activate the new version and rescore from cached embeddings, here and now.",
        )

    @audited_command
    def handle(self, *args, **options):
        dataset = resolve_dataset(options["dataset"])
        if options["parent"]:
            parent = resolve_prompt_version(options["parent"])
        else:
            active = active_prompt_version(model_key=configured_model_key())
            if active is None:
                raise CommandError("No active prompt version to start from; pass --parent.")
            parent = active
        try:
            config = tuning_config_from(options)
        except TuningConfigError as exc:
            raise CommandError(str(exc)) from exc
        try:
            version = prompt_version_train(
                dataset=dataset,
                parent=parent,
                config=config,
                heldout_fraction=options["heldout_fraction"],
                name=options["name"],
            )
        except DomainError as exc:
            raise CommandError(exc.message) from exc

        metrics = version.metrics
        self.stdout.write(
            f"Prompt version {version.pk} trained in {metrics['seconds']} s on "
            f"{metrics['n_train']} verdicts; held out {metrics['n_heldout']}."
        )
        rows = [
            ("new version (held-out)", metrics["heldout"]),
            ("parent (held-out)", metrics["parent_heldout"]),
        ]
        if "active_heldout" in metrics:
            rows.append(("active (held-out)", metrics["active_heldout"]))
        rows.append(("new version (train)", metrics["train"]))
        self.stdout.write(f"{'':24}" + "".join(f"{name:>11}" for name in METRICS))
        for label, values in rows:
            self.stdout.write(f"{label:24}" + "".join(f"{values[name]:>11.3f}" for name in METRICS))

        if options["activate"]:
            runs = prompt_version_activate(version=version, queue=False)
            for run in tqdm(runs, desc="rescoring datasets", unit="dataset"):
                scoring_run_rescore(run_id=run.pk)
            self.stdout.write(
                self.style.SUCCESS(
                    f"Activated; rescored {len(runs)} dataset(s) from cached embeddings."
                )
            )
