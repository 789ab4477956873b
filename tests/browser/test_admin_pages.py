"""Admin pages in a real browser: progress bars and states follow the API without reloads."""

from __future__ import annotations

import numpy as np
import pytest
from django.utils import timezone
from playwright.sync_api import expect

from curation.models import Dataset, Export, Image, PromptJob, PromptVersion, ScoringRun
from curation.services.clip_config import configured_model_spec
from reviewer.models import ReviewItem
from worker.engine.store import prompts_to_bytes

from .conftest import ADMIN_PASSWORD, login

pytestmark = pytest.mark.browser


@pytest.fixture
def admin(transactional_db, django_user_model):
    return django_user_model.objects.create_user(
        username="ada", password=ADMIN_PASSWORD, is_staff=True
    )


@pytest.fixture
def version(transactional_db):
    key = configured_model_spec().key
    return PromptVersion.objects.create(
        name="Q16 paper prompts",
        model_key=key,
        dim=512,
        vectors=prompts_to_bytes(np.zeros((2, 512), np.float32)),
        source=PromptVersion.Source.IMPORTED,
        is_active=True,
    )


@pytest.fixture
def dataset(transactional_db, tmp_path):
    dataset = Dataset.objects.create(
        name="imagenet-val-sample",
        source_kind=Dataset.SourceKind.FOLDER,
        source=str(tmp_path),
        root_path=str(tmp_path),
        state=Dataset.State.READY,
        total=6,
        processed=6,
        failed=2,
    )
    for index in range(4):
        Image.objects.create(
            dataset=dataset, relative_path=f"n01440764/{index:04d}.JPEG", sha256=f"{index:064x}",
            format="JPEG", width=500, height=375,
        )  # fmt: skip
    Image.objects.create(
        dataset=dataset, relative_path="README.txt", status=Image.Status.FAILED,
        error="not an image: cannot identify image file",
    )  # fmt: skip
    Image.objects.create(
        dataset=dataset, relative_path="n01440764/broken.JPEG", status=Image.Status.FAILED,
        error="truncated image: image file is truncated (12 bytes not processed)",
    )  # fmt: skip
    return dataset


def test_dataset_page_follows_a_running_run(page, admin, dataset, version, screenshot):
    done = ScoringRun.objects.create(
        dataset=dataset, prompt_version=version, model_key=version.model_key, threshold=0.5,
        state=ScoringRun.State.SUCCEEDED, total=4, processed=4, flagged=1, encoded=4,
        started_at=timezone.now() - timezone.timedelta(seconds=8), finished_at=timezone.now(),
    )  # fmt: skip
    running = ScoringRun.objects.create(
        dataset=dataset, prompt_version=version, model_key=version.model_key, threshold=0.9,
        state=ScoringRun.State.PENDING, total=4, chunks_total=2,
    )  # fmt: skip
    Export.objects.create(
        dataset=dataset, format="csv", run=done, state=Export.State.SUCCEEDED, rows=1,
        file_path="/nonexistent", finished_at=timezone.now(),
    )  # fmt: skip
    login(page, "ada", ADMIN_PASSWORD)
    page.goto(f"/datasets/{dataset.pk}/")
    page.evaluate("window.__marker = 1")
    row = page.locator(f"#run-{running.pk}")
    expect(row.locator("[data-field=state]")).to_have_text("pending")
    expect(page.get_by_text("truncated image: image file is truncated")).to_be_visible()

    ScoringRun.objects.filter(pk=running.pk).update(
        state=ScoringRun.State.RUNNING, processed=2, encoded=2, chunks_done=1,
        started_at=timezone.now() - timezone.timedelta(seconds=2),
    )  # fmt: skip
    expect(row.locator("[data-field=state]")).to_have_text("running")
    expect(row.locator("[data-field=processed]")).to_have_text("2")
    assert row.locator("progress").evaluate("bar => [bar.value, bar.max]") == [2, 4]
    expect(row.locator("[data-field=images_per_second]")).not_to_have_text("—")
    screenshot("dataset-detail")

    image = dataset.images.filter(status=Image.Status.OK).first()
    ReviewItem.objects.create(dataset=dataset, image=image, score=0.95, run_id=running.pk)
    ScoringRun.objects.filter(pk=running.pk).update(
        state=ScoringRun.State.SUCCEEDED, processed=4, encoded=4, flagged=1, chunks_done=2,
        finished_at=timezone.now(),
    )  # fmt: skip
    expect(row.locator("[data-field=state]")).to_have_text("succeeded")
    expect(row.locator("[data-field=flagged]")).to_have_text("1")
    # The dataset counts follow the run and catch up once it ends.
    expect(page.locator("[data-field='summary.pending_review']")).to_have_text("1")
    assert page.evaluate("window.__marker") == 1


def test_failed_run_shows_its_error(page, admin, dataset, version):
    run = ScoringRun.objects.create(
        dataset=dataset, prompt_version=version, model_key=version.model_key, threshold=0.5,
        state=ScoringRun.State.RUNNING, total=4, processed=1, started_at=timezone.now(),
    )  # fmt: skip
    login(page, "ada", ADMIN_PASSWORD)
    page.goto(f"/datasets/{dataset.pk}/")
    error_row = page.locator(f"#run-{run.pk} .row-error")
    expect(error_row).to_be_hidden()
    ScoringRun.objects.filter(pk=run.pk).update(
        state=ScoringRun.State.FAILED, error="chunk 0: CUDA out of memory"
    )
    expect(error_row).to_be_visible()
    expect(error_row).to_contain_text("CUDA out of memory")


def test_import_progress_is_live_and_page_reloads_when_ready(page, admin, version, tmp_path):
    dataset = Dataset.objects.create(
        name="uploads", source_kind=Dataset.SourceKind.FOLDER, source=str(tmp_path),
        root_path=str(tmp_path), state=Dataset.State.IMPORTING, total=10, processed=2,
    )  # fmt: skip
    login(page, "ada", ADMIN_PASSWORD)
    page.goto(f"/datasets/{dataset.pk}/")
    page.evaluate("window.__marker = 1")
    expect(page.locator("form[action$='/runs/']")).to_have_count(0)
    Dataset.objects.filter(pk=dataset.pk).update(processed=7, failed=1)
    bar = page.locator("section[aria-labelledby=import-title] progress")
    expect(page.locator(".progress-row [data-field=processed]")).to_have_text("7")
    assert bar.evaluate("bar => [bar.value, bar.max]") == [7, 10]
    Image.objects.create(dataset=dataset, relative_path="a.jpg", sha256="a" * 64, format="JPEG")
    Dataset.objects.filter(pk=dataset.pk).update(state=Dataset.State.READY, processed=10)
    # Finished: the page reloads itself so the scoring form appears.
    expect(page.locator("form[action$='/runs/']")).to_have_count(1)
    assert page.evaluate("window.__marker") is None


def test_prompt_job_result_appears(page, admin, version, screenshot):
    job = PromptJob.objects.create(
        kind=PromptJob.Kind.ZERO_SHOT, model_key=version.model_key, state=PromptJob.State.RUNNING,
        options={"appropriate": ["a"], "inappropriate": ["b"]},
    )  # fmt: skip
    trained = PromptVersion.objects.create(
        name="tuned on imagenet-val-sample", model_key=version.model_key, dim=512,
        vectors=bytes(version.vectors), source=PromptVersion.Source.TRAINED, parent=version,
        metrics={
            "n_train": 160, "n_heldout": 40,
            "heldout": {"accuracy": 0.925, "precision": 0.9, "recall": 0.947, "f1": 0.923},
            "parent_heldout": {"accuracy": 0.775, "precision": 0.7, "recall": 0.842, "f1": 0.764},
            "active_heldout": {"accuracy": 0.775, "precision": 0.7, "recall": 0.842, "f1": 0.764},
        },
    )  # fmt: skip
    login(page, "ada", ADMIN_PASSWORD)
    page.goto("/prompts/")
    row = page.locator(f"#job-{job.pk}")
    expect(row.locator("[data-field=state]")).to_have_text("running")
    expect(page.locator("#jobs-notice")).to_be_hidden()
    PromptJob.objects.filter(pk=job.pk).update(state=PromptJob.State.SUCCEEDED, result=trained)
    expect(row.locator("[data-field=state]")).to_have_text("succeeded")
    link = row.locator("a[data-href-field=result]")
    expect(link).to_be_visible()
    expect(link).to_have_attribute("href", f"#version-{trained.pk}")
    expect(page.locator("#jobs-notice")).to_be_visible()
    screenshot("prompt-versions")
