"""The management commands run the whole loop in-process, with terminal progress bars."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from curation.models import Dataset, Image, PromptVersion, ScoringRun
from reviewer.models import Decision, ReviewItem
from reviewer.services.decisions import review_decision_record
from tests.conftest import require
from tests.engine.imagegen import make_two_kind_images

pytestmark = pytest.mark.django_db

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "reference" / "q16_prompts"


def _run(*args, **kwargs) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO(), **kwargs)
    return out.getvalue()


def test_commands_import_score_train_export(tiny_model_settings, admin_user, tmp_path):
    folder = tmp_path / "images"
    generated = make_two_kind_images(folder, 30, seed=3)
    kinds = {path.name: kind for path, kind in generated}

    output = _run("import_dataset", "cmd", "--folder", str(folder))
    assert "Imported 60 images; 0 files failed" in output
    dataset = Dataset.objects.get(name="cmd")

    # No prompt version yet: the command creates and activates the paper's zero-shot pair.
    output = _run("score_dataset", "cmd", "--threshold", "0.000001", "--chunk-size", "25")
    run = ScoringRun.objects.get(dataset=dataset)
    assert run.state == ScoringRun.State.SUCCEEDED and run.chunks_total == 3
    assert run.encoded == 60 and "Scored 60 images" in output
    zero_shot = PromptVersion.objects.get(is_active=True)
    assert zero_shot.source == PromptVersion.Source.ZERO_SHOT

    # Verdicts on every image (review items exist for those flagged; decide the rest too).
    for item in ReviewItem.objects.filter(dataset=dataset).select_related("image"):
        name = Path(item.image.relative_path).name
        verdict = "inappropriate" if kinds[name] == "a" else "appropriate"
        review_decision_record(item_id=item.pk, reviewer=admin_user, verdict=verdict)
    confirmed = Decision.objects.filter(verdict="inappropriate").count()
    assert confirmed > 4

    output = _run("train_prompts", "cmd", "--activate")
    trained = PromptVersion.objects.get(is_active=True)
    assert trained.source == PromptVersion.Source.TRAINED and trained.parent == zero_shot
    assert "held-out" in output and "rescored 1 dataset" in output
    rescore = ScoringRun.objects.get(dataset=dataset, kind=ScoringRun.Kind.RESCORE)
    assert rescore.state == ScoringRun.State.SUCCEEDED and rescore.encoded == 0

    target = tmp_path / "blocklist.csv"
    output = _run("export_blocklist", "cmd", "--format", "csv", "-o", str(target))
    rows = list(csv.DictReader(target.open()))
    assert len(rows) == confirmed and f"Exported {confirmed} rows" in output
    assert {row["prompt_version"] for row in rows} == {trained.name}
    assert {row["run"] for row in rows} == {str(rescore.pk)}


def test_import_prompts_command_reads_published_files_and_checks_dimension():
    require(REFERENCE.is_dir(), f"the paper's published prompts are expected in {REFERENCE}")
    output = _run(
        "import_prompts",
        str(REFERENCE / "ViT-B-16" / "prompts.p"),
        "--model-key",
        "ViT-B-16/openai",
    )
    version = PromptVersion.objects.get()
    assert version.dim == 512 and version.source == PromptVersion.Source.IMPORTED
    assert "D=512" in output
    with pytest.raises(CommandError, match="768"):
        _run(
            "import_prompts",
            str(REFERENCE / "ViT-L-14" / "prompts.p"),
            "--model-key",
            "ViT-B-16/openai",
        )


def test_import_command_reports_a_missing_folder(tmp_path):
    with pytest.raises(CommandError, match="not a folder"):
        _run("import_dataset", "x", "--folder", str(tmp_path / "nope"))
    assert not Image.objects.exists()
