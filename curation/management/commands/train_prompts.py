from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from curation.errors import DomainError
from curation.management.cli import resolve_dataset, resolve_prompt_version
from curation.models import PromptVersion
from curation.services.clip_config import configured_model_key
from curation.services.prompts import prompt_version_activate, prompt_version_train
from curation.services.scoring import scoring_run_rescore
from worker.engine.tuning import TuningConfig

METRICS = ("accuracy", "precision", "recall", "f1")


class Command(BaseCommand):
    help = "Train a new prompt version from a dataset's verdicts (cached embeddings only)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("dataset", help="Dataset id or name.")
        parser.add_argument(
            "--parent", help="Prompt version to start from (default: the active one)."
        )
        parser.add_argument("--epochs", type=int, default=300)
        parser.add_argument("--lr", type=float, default=0.01)
        parser.add_argument("--momentum", type=float, default=0.9)
        parser.add_argument("--batch-size", type=int, default=64)
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument("--heldout-fraction", type=float, default=0.2)
        parser.add_argument("--name", default="")
        parser.add_argument(
            "--activate",
            action="store_true",
            help="Activate the new version and rescore from cached embeddings, here and now.",
        )

    def handle(self, *args, **options):
        dataset = resolve_dataset(options["dataset"])
        if options["parent"]:
            parent = resolve_prompt_version(options["parent"])
        else:
            parent = PromptVersion.objects.filter(
                model_key=configured_model_key(), is_active=True
            ).first()
            if parent is None:
                raise CommandError("No active prompt version to start from; pass --parent.")
        config = TuningConfig(
            epochs=options["epochs"],
            lr=options["lr"],
            momentum=options["momentum"],
            batch_size=options["batch_size"],
            seed=options["seed"],
        )
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
