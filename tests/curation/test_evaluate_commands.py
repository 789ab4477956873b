"""evaluate_smid reproduces the paper's protocol on a folder in SMID's layout;
evaluate_prompts measures any prompt version against reviewers' verdicts."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from curation.models import Dataset, Embedding, Image, PromptVersion
from labels.evaluation import prompt_version_evaluate
from reviewer.models import Decision, ReviewItem
from reviewer.services.decisions import review_decision_record
from tests.engine.imagegen import make_two_kind_images
from worker.engine.prompt_files import write_published_prompts

MIDDLE = 4  # images rated 3.0: dropped by the protocol


def _run(*args, **kwargs) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO(), **kwargs)
    return out.getvalue()


@pytest.fixture
def smid_dir(tmp_path) -> Path:
    """48 generated images in SMID's layout: kind a rated immoral (1.5), kind b moral (4.5),
    four of them rated 3.0, plus a norms row whose image is missing."""
    generated = make_two_kind_images(tmp_path / "raw", 24, seed=11)
    root = tmp_path / "SMID_images_400px"
    (root / "img").mkdir(parents=True)
    rows = []
    for i, (path, kind) in enumerate(generated):
        name = f"smid_{i:03d}_x"  # no hint of the kind in the name; .jpg and .png mixed
        path.rename(root / "img" / f"{name}{path.suffix}")
        moral = "3.0" if i < MIDDLE else ("1.5" if kind == "a" else "4.5")
        rows.append([name, "3.1", moral, "2.0"])
    rows.append(["smid_missing", "2.0", "1.2", "4.0"])
    with (root / "SMID_norms.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["img_name", "valence_mean", "moral_mean", "harm_mean"])
        writer.writerows(rows)
    return root


def _summary(path: Path) -> dict[str, dict[str, str]]:
    return {row["method"]: row for row in csv.DictReader(path.open())}


def test_evaluate_smid_runs_the_papers_protocol(smid_dir, tiny_checkpoint, tmp_path, settings):
    settings.DATA_DIR = tmp_path / "data"
    cache = tmp_path / "embeddings.npz"
    common = ["--smid-dir", str(smid_dir), "--model", "q16-tiny", "--device", "cpu"]
    common += ["--checkpoint", str(tiny_checkpoint), "--embeddings-cache", str(cache)]
    output = _run("evaluate_smid", *common, "--epochs", "50", "--fractions", "10,100")

    assert "49 rows; 44 labelled images found (22 inappropriate" in output
    assert f"dropped {MIDDLE} in between" in output and "1 with the image missing" in output
    assert "Missing images: smid_missing" in output
    assert "44 encoded, 0 from the cache" in output
    assert "10 stratified shuffle splits, 10% test, seed 42" in output
    table = output[output.index("method") :]
    for row in (
        "zero-shot",
        "tuned (all training data)",
        "tuned, 10 % of training data",
        "tuned, 100 % of training data",
    ):
        assert f"\n{row} " in table
    assert "accuracy (%)" in table and "F1 (%)" in table and "±" in table

    # Default output folder: var/evaluations/<timestamp>/ under the data dir.
    (folder,) = (settings.DATA_DIR / "evaluations").iterdir()
    summary = _summary(folder / "summary.csv")
    assert float(summary["tuned (all training data)"]["accuracy_mean"]) >= 0.9
    assert float(summary["tuned (all training data)"]["accuracy_mean"]) > float(
        summary["zero-shot"]["accuracy_mean"]
    )
    splits = list(csv.DictReader((folder / "splits.csv").open()))
    assert len(splits) == 10 * 4
    assert {row["n_test"] for row in splits} == {"5"}  # ceil(0.1 * 44)
    assert {row["n_train"] for row in splits if row["kind"] == "tuned"} == {"39"}
    meta = json.loads((folder / "evaluation.json").read_text())
    assert meta["dropped_middle"] == MIDDLE and meta["missing"] == ["smid_missing"]
    assert meta["images"] == 44 and meta["seed"] == 42

    # Re-run from the embedding cache, with a published prompt file and no few-shot curve.
    prompts = tmp_path / "ViT-tiny" / "prompts.p"
    prompts.parent.mkdir()
    with prompts.open("wb") as fh:
        write_published_prompts(np.random.default_rng(0).normal(size=(2, 64)), fh)
    out_dir = tmp_path / "second"
    output = _run(
        "evaluate_smid",
        *common,
        "--epochs",
        "5",
        "--splits",
        "3",
        "--fractions",
        "none",
        "--prompts",
        str(prompts),
        "--output-dir",
        str(out_dir),
    )
    assert "0 encoded, 44 from the cache" in output
    assert "\npublished ViT-tiny/prompts.p " in output
    assert "% of training data" not in output
    assert list(_summary(out_dir / "summary.csv")) == [
        "zero-shot",
        "tuned (all training data)",
        "published ViT-tiny/prompts.p",
    ]


def test_evaluate_smid_refuses_bad_input(smid_dir, tiny_checkpoint, tmp_path):
    base = ["--model", "q16-tiny", "--checkpoint", str(tiny_checkpoint), "--device", "cpu"]
    with pytest.raises(CommandError, match="SMID_norms.csv"):
        _run("evaluate_smid", "--smid-dir", str(tmp_path), *base)
    wrong = tmp_path / "wrong.p"
    with wrong.open("wb") as fh:
        write_published_prompts(np.ones((2, 512)), fh)
    with pytest.raises(CommandError, match="dimension 512"):
        _run("evaluate_smid", "--smid-dir", str(smid_dir), *base, "--prompts", str(wrong))
    with pytest.raises(CommandError, match="fractions"):
        _run("evaluate_smid", "--smid-dir", str(smid_dir), *base, "--fractions", "0,50")
    norms = smid_dir / "SMID_norms.csv"
    norms.write_text(norms.read_text().replace(",4.5,", ",1.5,"))
    with pytest.raises(CommandError, match="both classes"):
        _run("evaluate_smid", "--smid-dir", str(smid_dir), *base)


@pytest.mark.django_db
def test_evaluate_prompts_reports_metrics_on_verdicts(tiny_model_settings, admin_user, tmp_path):
    generated = make_two_kind_images(tmp_path / "images", 12, seed=5)
    kinds = {path.name: kind for path, kind in generated}
    _run("import_dataset", "evalset", "--folder", str(tmp_path / "images"))
    _run("score_dataset", "evalset", "--threshold", "0.000001")
    dataset = Dataset.objects.get(name="evalset")
    zero_shot = PromptVersion.objects.get(is_active=True)

    for item in ReviewItem.objects.filter(dataset=dataset).select_related("image"):
        verdict = (
            "inappropriate" if kinds[Path(item.image.relative_path).name] == "a" else "appropriate"
        )
        review_decision_record(item_id=item.pk, reviewer=admin_user, verdict=verdict)
    assert Decision.objects.count() == 24
    # A later skip does not hide the verdict; an image without a cached embedding is skipped.
    first = Decision.objects.order_by("id").first()
    Decision.objects.create(item=first.item, image=first.image, reviewer=admin_user, verdict="skip")
    uncached = Image.objects.filter(dataset=dataset).exclude(pk=first.image_id).first()
    Embedding.objects.filter(sha256=uncached.sha256).delete()

    _run("train_prompts", "evalset", "--epochs", "100")
    trained = PromptVersion.objects.get(source=PromptVersion.Source.TRAINED)

    output = _run("evaluate_prompts", "--prompt-version", str(trained.pk), "--dataset", "evalset")
    assert f"Prompt version {trained.pk}" in output and "threshold 0.5" in output
    positives = 12 - (kinds[Path(uncached.relative_path).name] == "a")
    assert f"Used 23 verdicts ({positives} inappropriate); skipped 1 without a cached" in output
    header, line = output.splitlines()[1:3]
    assert header.split()[:4] == ["dataset", "verdicts", "used", "skipped"]
    assert line.split()[:4] == ["evalset", "24", "23", "1"]

    tuned = prompt_version_evaluate(version=trained, datasets=[dataset]).total
    before = prompt_version_evaluate(version=zero_shot, datasets=[dataset]).total
    assert tuned.metrics is not None and before.metrics is not None
    assert tuned.metrics["accuracy"] >= 0.9
    assert tuned.metrics["accuracy"] >= before.metrics["accuracy"]
    assert f"{100 * tuned.metrics['accuracy']:.2f}" in line

    # All datasets (the default) adds a pooled row; bad input is refused.
    Dataset.objects.create(name="empty", source_kind=dataset.source_kind, source="-")
    output = _run("evaluate_prompts", "--prompt-version", str(zero_shot.pk))
    assert "\nall " in output and "\nempty " in output
    with pytest.raises(CommandError, match="threshold"):
        _run("evaluate_prompts", "--prompt-version", str(zero_shot.pk), "--threshold", "1.5")
    with pytest.raises(CommandError, match="No prompt version"):
        _run("evaluate_prompts", "--prompt-version", "999999")
