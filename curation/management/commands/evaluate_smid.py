from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from worker.engine.clip import ModelLoadError, ModelSpec, load_clip
from worker.engine.evaluation import (
    MORAL_APPROPRIATE_ABOVE,
    MORAL_INAPPROPRIATE_BELOW,
    ProtocolConfig,
    SmidFormatError,
    embed_files_cached,
    format_table,
    load_smid,
    protocol_steps,
    run_protocol,
    write_protocol_csvs,
)
from worker.engine.prompt_files import PromptFileError, read_published_prompts
from worker.engine.scoring import zero_shot_prompts
from worker.engine.tuning import TuningConfig

PAPER_FRACTIONS = "1,2,4,10,20,40,100"


def _fractions(value: str) -> tuple[float, ...]:
    if value.strip().lower() in ("", "none", "off"):
        return ()
    try:
        fractions = tuple(float(part) for part in value.split(",") if part.strip())
    except ValueError as exc:
        raise CommandError(f"--fractions takes comma-separated percentages, got {value!r}") from exc
    if any(not 0 < f <= 100 for f in fractions):
        raise CommandError(f"--fractions are percentages in (0, 100], got {value!r}")
    return fractions


class Command(BaseCommand):
    help = (
        "Reproduce the Q16 paper's SMID evaluation: zero-shot, tuned and published prompts "
        "over ten stratified shuffle splits (mean ± std), plus the few-shot curve."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--smid-dir",
            required=True,
            help="SMID folder (SMID_images_400px/) holding SMID_norms.csv and img/.",
        )
        parser.add_argument("--model", default="ViT-B-16", help="open_clip architecture.")
        parser.add_argument("--pretrained", default="openai", help="open_clip pretrained tag.")
        parser.add_argument(
            "--checkpoint", help="Local weights for --model (replaces --pretrained)."
        )
        parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N.")
        parser.add_argument(
            "--prompts",
            nargs="+",
            action="extend",
            default=[],
            metavar="FILE",
            help="Published prompt files (prompts.p) to evaluate on the same splits.",
        )
        parser.add_argument(
            "--fractions",
            default=PAPER_FRACTIONS,
            help="Few-shot curve: percentages of the training part to tune on "
            f"(default {PAPER_FRACTIONS}; 'none' for no curve).",
        )
        parser.add_argument("--splits", type=int, default=10)
        parser.add_argument("--test-size", type=float, default=0.1)
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument("--epochs", type=int, default=300)
        parser.add_argument("--lr", type=float, default=0.01)
        parser.add_argument("--momentum", type=float, default=0.9)
        parser.add_argument("--batch-size", type=int, default=64, help="Tuning minibatch size.")
        parser.add_argument(
            "--encode-batch-size",
            type=int,
            default=settings.Q16_BATCH_SIZE,
            help="Images per forward pass when embedding.",
        )
        parser.add_argument(
            "--output-dir", help="Where to write the CSVs (default var/evaluations/<timestamp>/)."
        )
        parser.add_argument(
            "--embeddings-cache",
            help=".npz file caching the embeddings per model, so re-runs skip encoding.",
        )

    def handle(self, *args, **options):
        smid_dir = Path(options["smid_dir"])
        fractions = _fractions(options["fractions"])
        if options["splits"] < 1 or not 0 < options["test_size"] < 1:
            raise CommandError("--splits must be >= 1 and --test-size in (0, 1).")
        prompt_paths = [Path(p) for p in options["prompts"]]
        for path in prompt_paths:
            if not path.is_file():
                raise CommandError(f"{path} is not a file.")
        try:
            dataset = load_smid(smid_dir)
        except SmidFormatError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"SMID {smid_dir}: {dataset.rows} rows; {len(dataset.names)} labelled images found "
            f"({int(dataset.labels.sum())} inappropriate, moral mean < {MORAL_INAPPROPRIATE_BELOW}; "
            f"{int((dataset.labels == 0).sum())} appropriate, > {MORAL_APPROPRIATE_ABOVE}); "
            f"dropped {dataset.dropped_middle} in between, {len(dataset.invalid)} without a "
            f"moral mean, {len(dataset.missing)} with the image missing."
        )
        if dataset.missing:
            shown = ", ".join(dataset.missing[:5]) + (" ..." if len(dataset.missing) > 5 else "")
            self.stdout.write(f"Missing images: {shown}")

        if len(set(dataset.labels.tolist())) < 2:
            raise CommandError("The protocol needs labelled images of both classes.")

        try:
            if options["checkpoint"]:
                spec = ModelSpec(options["model"], checkpoint_path=options["checkpoint"])
            else:
                spec = ModelSpec(options["model"], pretrained=options["pretrained"])
            clip = load_clip(spec, device=options["device"])
        except ModelLoadError as exc:
            raise CommandError(str(exc)) from exc

        published = {}
        for path in prompt_paths:
            try:
                published[f"published {path.parent.name}/{path.name}"] = read_published_prompts(
                    path.read_bytes(), expected_dim=clip.dim, model_key=clip.key
                )
            except PromptFileError as exc:
                raise CommandError(f"{path}: {exc}") from exc

        with tqdm(total=len(dataset.paths), desc="embedding", unit="img") as bar:

            def advance(done: int) -> None:
                bar.n = done
                bar.refresh()

            encoded = embed_files_cached(
                clip,
                dataset.paths,
                cache_path=options["embeddings_cache"],
                batch_size=options["encode_batch_size"],
                decode_workers=settings.Q16_DECODE_WORKERS or None,
                on_batch=advance,
            )
        if encoded.failures:
            self.stdout.write(f"{len(encoded.failures)} image(s) could not be decoded; dropped.")
            dataset = dataset.without(list(encoded.failures))
        self.stdout.write(
            f"Embeddings of {len(dataset.names)} images with {clip.key}: "
            f"{encoded.encoded} encoded, {len(dataset.names) - encoded.encoded} from the cache."
        )

        config = ProtocolConfig(
            n_splits=options["splits"],
            test_size=options["test_size"],
            seed=options["seed"],
            fractions=fractions,
            tuning=TuningConfig(
                epochs=options["epochs"],
                lr=options["lr"],
                momentum=options["momentum"],
                batch_size=options["batch_size"],
                seed=options["seed"],
            ),
        )
        with tqdm(total=protocol_steps(config), desc="splits", unit="training") as bar:
            try:
                result = run_protocol(
                    encoded.embeddings,
                    dataset.labels,
                    dataset.strata,
                    zero_shot=zero_shot_prompts(clip),
                    published=published,
                    config=config,
                    on_step=lambda _: bar.update(1),
                )
            except ValueError as exc:
                raise CommandError(str(exc)) from exc

        self.stdout.write(
            f"\n{clip.key} on SMID: {result.n_items} images ({result.n_positive} inappropriate), "
            f"{config.n_splits} stratified shuffle splits, {config.test_size:.0%} test, "
            f"seed {config.seed}; inappropriate is the positive class; mean ± std over splits.\n"
        )
        self.stdout.write(format_table(result.summary))

        output_dir = Path(
            options["output_dir"]
            or Path(settings.DATA_DIR)
            / "evaluations"
            / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        )
        splits_csv, summary_csv = write_protocol_csvs(result, output_dir)
        (output_dir / "evaluation.json").write_text(
            json.dumps(
                {
                    "smid_dir": str(smid_dir.resolve()),
                    "model_key": clip.key,
                    "rows": dataset.rows,
                    "images": result.n_items,
                    "inappropriate": result.n_positive,
                    "dropped_middle": dataset.dropped_middle,
                    "invalid": len(dataset.invalid),
                    "missing": dataset.missing,
                    "failed": len(encoded.failures),
                    "published_prompts": [str(p) for p in prompt_paths],
                    "splits": config.n_splits,
                    "test_size": config.test_size,
                    "seed": config.seed,
                    "fractions": list(fractions),
                    "tuning": asdict(config.tuning),
                },
                indent=2,
            )
        )
        self.stdout.write(
            self.style.SUCCESS(f"\nWrote {splits_csv}, {summary_csv} and evaluation.json.")
        )
