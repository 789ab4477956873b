"""Issue 11 in a real browser: the numbers' definitions as tooltips, the score distribution next
to the threshold field, pages that show finished work without a reload, per-worker progress,
and the warning before activating a worse prompt version."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
from django.utils import timezone
from playwright.sync_api import expect

from curation.glossary import define
from curation.models import (
    Dataset,
    Export,
    Image,
    PromptJob,
    PromptVersion,
    Score,
    ScoringChunk,
    ScoringRun,
)
from curation.services.clip_config import configured_model_spec
from reviewer.models import ReviewItem
from worker.engine.store import prompts_to_bytes

from .conftest import ADMIN_PASSWORD, login

pytestmark = pytest.mark.browser

SIZES = ((1366, 900), (1280, 720))
# Scores of the first finished run: 12 images, 4 of them at or above 0.5.
FIRST_SCORES = [0.05, 0.1, 0.12, 0.2, 0.31, 0.33, 0.4, 0.45, 0.52, 0.61, 0.83, 0.97]


@pytest.fixture
def shots(page):
    """Screenshots at both sizes, full page, when Q16_SCREENSHOT_DIR is set."""
    folder = os.environ.get("Q16_SCREENSHOT_DIR")

    def take(name: str) -> None:
        if not folder:
            return
        Path(folder).mkdir(parents=True, exist_ok=True)
        for width, height in SIZES:
            page.set_viewport_size({"width": width, "height": height})
            page.screenshot(path=str(Path(folder) / f"{name}-{width}x{height}.png"), full_page=True)
        page.set_viewport_size({"width": 1360, "height": 900})

    return take


@pytest.fixture
def admin(transactional_db, django_user_model):
    return django_user_model.objects.create_user(
        username="ada", password=ADMIN_PASSWORD, is_staff=True
    )


@pytest.fixture
def version(transactional_db):
    key = configured_model_spec().key
    return PromptVersion.objects.create(
        name="Q16 paper prompts", model_key=key, dim=512,
        vectors=prompts_to_bytes(np.zeros((2, 512), np.float32)),
        source=PromptVersion.Source.IMPORTED, is_active=True,
    )  # fmt: skip


@pytest.fixture
def scored(transactional_db, tmp_path, version):
    """A dataset of 12 images and 2 failed files, one finished run at 0.5 with review items."""
    dataset = Dataset.objects.create(
        name="imagenet-val-sample", source_kind=Dataset.SourceKind.ARCHIVE,
        source=str(tmp_path / "archives" / "5f0c2b.zip"), source_name="imagenet-val-sample.zip",
        root_path=str(tmp_path), state=Dataset.State.READY, total=14, processed=14, failed=2,
    )  # fmt: skip
    images = [
        Image.objects.create(
            dataset=dataset,
            relative_path=f"n01440764/{i:04d}.JPEG",
            sha256=f"{i:064x}",
            format="JPEG",
            width=500,
            height=375,
        )  # fmt: skip
        for i in range(len(FIRST_SCORES))
    ]
    for name in ("README.txt", "broken.JPEG"):
        Image.objects.create(
            dataset=dataset, relative_path=name, status=Image.Status.FAILED, error="not an image"
        )
    run = ScoringRun.objects.create(
        dataset=dataset, prompt_version=version, model_key=version.model_key, threshold=0.5,
        state=ScoringRun.State.SUCCEEDED, total=12, processed=12, flagged=4, encoded=12,
        chunks_total=2, chunks_done=2,
        started_at=timezone.now() - timezone.timedelta(seconds=6), finished_at=timezone.now(),
    )  # fmt: skip
    Score.objects.bulk_create(
        Score(run=run, image=image, p_inappropriate=p)
        for image, p in zip(images, FIRST_SCORES, strict=True)
    )
    for image, p in zip(images, FIRST_SCORES, strict=True):
        if p >= 0.5:
            ReviewItem.objects.create(dataset=dataset, image=image, score=p, run=run)
    # An audit item below the threshold: the old summary counted it as flagged.
    ReviewItem.objects.create(dataset=dataset, image=images[0], score=0.05, run=run, is_audit=True)
    return dataset, run, images


def test_dataset_page_numbers_preview_and_live_run(page, admin, scored, shots):
    dataset, first, images = scored
    importing = Dataset.objects.create(
        name="uploads", source_kind=Dataset.SourceKind.FOLDER, source="/srv/uploads",
        root_path="/srv/uploads", state=Dataset.State.IMPORTING, total=3, processed=1,
    )  # fmt: skip
    login(page, "ada", ADMIN_PASSWORD)

    page.goto("/datasets/")
    row = page.locator("tbody", has=page.get_by_role("link", name=dataset.name))
    expect(row.locator("[data-field='summary.images']")).to_have_text("12")
    expect(row.locator("[data-field='summary.failed']")).to_have_text("2")
    expect(row.locator("[data-field='summary.flagged']")).to_have_text("4")
    expect(row).to_contain_text("imagenet-val-sample.zip")
    expect(page.locator("th [title]", has_text="Flagged")).to_have_attribute(
        "title", define("flagged")
    )
    shots("dataset-list")
    # An import finishing on the list: its counts appear without a reload.
    uploads = page.locator("tbody", has=page.get_by_role("link", name="uploads"))
    expect(uploads.locator("[data-field=state]")).to_have_text("importing")
    for index in range(3):
        Image.objects.create(
            dataset=importing, relative_path=f"{index}.png", sha256=f"{index + 100:064x}"
        )
    Dataset.objects.filter(pk=importing.pk).update(state=Dataset.State.READY, processed=3)
    expect(uploads.locator("[data-field=state]")).to_have_text("ready")
    expect(uploads.locator("[data-field='summary.images']")).to_have_text("3")

    page.goto(f"/datasets/{dataset.pk}/")
    page.evaluate("window.__marker = 1")
    expect(page.locator("#dataset-source")).to_have_text("imagenet-val-sample.zip")
    flagged = page.locator(".stat[data-key=flagged]")
    expect(flagged.locator(".stat-value")).to_have_text("4")
    expect(flagged.locator(".stat-label")).to_have_attribute("title", define("flagged"))
    expect(page.locator(".stat[data-key=images] .stat-value")).to_have_text("12")
    expect(page.locator(f"#run-{first.pk} [data-field=flagged]")).to_have_text("4")

    # The score distribution next to the threshold field, the threshold marked.
    preview = page.locator("#score-distribution")
    expect(preview).to_have_attribute("data-state", "ready")
    expect(preview.locator("svg rect.plot-bar")).to_have_count(12)
    expect(preview.locator("rect.plot-series-flagged")).to_have_count(4)
    expect(preview.locator("line.plot-threshold")).to_have_count(1)
    count = preview.locator("[data-preview-count]")
    expect(count).to_have_text("4 of 12 scored images would be flagged at 0.5 (33.3 %).")
    page.fill("#id_threshold", "0.8")
    expect(count).to_have_text("2 of 12 scored images would be flagged at 0.8 (16.7 %).")
    expect(preview.locator("rect.plot-series-flagged")).to_have_count(2)
    page.fill("#id_threshold", "0.3")
    expect(count).to_have_text("8 of 12 scored images would be flagged at 0.3 (66.7 %).")
    page.fill("#id_threshold", "0.3125")
    expect(count).to_contain_text("About 7 of 12")
    page.fill("#id_threshold", "1.5")
    expect(preview).to_have_attribute("data-state", "invalid")
    expect(count).to_contain_text("above 0 and at most 1")
    page.fill("#id_threshold", "0.5")
    shots("dataset-detail-preview")

    # A new run starts; two workers take its chunks; the run table shows who does what.
    running = ScoringRun.objects.create(
        dataset=dataset, prompt_version=first.prompt_version, model_key=first.model_key,
        kind=ScoringRun.Kind.RESCORE, threshold=0.6, state=ScoringRun.State.RUNNING, total=12,
        chunks_total=3, started_at=timezone.now() - timezone.timedelta(seconds=3),
    )  # fmt: skip
    bounds = [(images[i].pk, images[min(i + 3, 11)].pk) for i in (0, 4, 8)]
    chunks = [
        ScoringChunk.objects.create(run=running, index=i, first_image_id=lo, last_image_id=hi)
        for i, (lo, hi) in enumerate(bounds)
    ]
    export = Export.objects.create(dataset=dataset, format="csv", run=first)
    page.reload()
    page.evaluate("window.__marker = 1")
    run_row = page.locator(f"#run-{running.pk}")
    # An export finishing: its download link appears without a reload.
    download = page.locator(f"#export-{export.pk} a[data-href-field=download_url]")
    expect(download).to_be_hidden()
    Export.objects.filter(pk=export.pk).update(
        state=Export.State.SUCCEEDED, rows=4, file_path="/nonexistent", finished_at=timezone.now()
    )
    expect(download).to_be_visible()
    expect(page.locator(f"#export-{export.pk} [data-field=rows]")).to_have_text("4")
    workers = run_row.locator("[data-run-workers]")
    expect(workers).to_be_hidden()
    started = timezone.now() - timezone.timedelta(seconds=2)
    ScoringChunk.objects.filter(pk=chunks[0].pk).update(
        worker="celery@gpu-a", started_at=started, state="done", processed=4,
        finished_at=timezone.now(),
    )  # fmt: skip
    ScoringChunk.objects.filter(pk=chunks[1].pk).update(worker="celery@gpu-b", started_at=started)
    ScoringRun.objects.filter(pk=running.pk).update(processed=4, chunks_done=1)
    expect(workers).to_be_visible()
    expect(workers.locator("li[data-worker='celery@gpu-a']")).to_contain_text("1 chunk done")
    expect(workers.locator("li[data-worker='celery@gpu-a']")).to_contain_text("4 images")
    expect(workers.locator("li[data-worker='celery@gpu-a'] .worker-rate")).not_to_have_text(
        "— images/s"
    )
    expect(workers.locator("li[data-worker='celery@gpu-b']")).to_contain_text(
        "0 chunks done, 1 in progress"
    )
    shots("dataset-detail-workers")

    # The run finishes: the distribution of the new run replaces the old one, no reload.
    second_scores = [min(0.99, p + 0.1) for p in FIRST_SCORES]
    Score.objects.bulk_create(
        Score(run=running, image=image, p_inappropriate=p)
        for image, p in zip(images, second_scores, strict=True)
    )
    ScoringChunk.objects.filter(run=running).update(
        state="done", processed=4, finished_at=timezone.now()
    )
    ScoringChunk.objects.filter(pk=chunks[2].pk).update(worker="celery@gpu-a", started_at=started)
    ScoringRun.objects.filter(pk=running.pk).update(
        state=ScoringRun.State.SUCCEEDED, processed=12, flagged=4, chunks_done=3,
        finished_at=timezone.now(),
    )  # fmt: skip
    expect(run_row.locator("[data-field=state]")).to_have_text("succeeded")
    expect(page.locator("#score-distribution-title")).to_contain_text(f"run #{running.pk}")
    expect(page.locator("#score-distribution [data-preview-count]")).to_contain_text("of 12")
    expect(workers.locator("li[data-worker='celery@gpu-a']")).to_contain_text("2 chunks done")
    expect(workers.locator("li[data-worker='celery@gpu-a']")).to_contain_text("chunks 0, 2")
    assert page.evaluate("window.__marker") == 1
    # The typed threshold still drives the fresh preview.
    page.fill("#id_threshold", "0.9")
    expect(page.locator("#score-distribution [data-preview-count]")).to_have_text(
        "2 of 12 scored images would be flagged at 0.9 (16.7 %)."
    )
    shots("dataset-detail-after-run")


def test_statistics_page_counts_carry_their_definitions_and_follow_a_run(
    page, admin, scored, shots
):
    dataset, first, images = scored
    running = ScoringRun.objects.create(
        dataset=dataset, prompt_version=first.prompt_version, model_key=first.model_key,
        kind=ScoringRun.Kind.RESCORE, threshold=0.6, state=ScoringRun.State.RUNNING, total=12,
    )  # fmt: skip
    login(page, "ada", ADMIN_PASSWORD)
    page.goto(f"/datasets/{dataset.pk}/stats/")
    page.evaluate("window.__marker = 1")
    expect(page.locator("#stats-app")).to_have_attribute("data-state", "ready")
    flagged = page.locator("#stats-counts [data-key=flagged]")
    expect(flagged.locator(".stat-value")).to_have_text("4")
    expect(flagged.locator(".stat-label")).to_have_attribute("title", define("flagged"))
    expect(page.locator("#stats-counts [data-key=withdrawn] .stat-label")).to_have_attribute(
        "title", define("withdrawn")
    )
    shots("dataset-stats")
    # The rescore that was running finishes: the page loads its numbers, no reload.
    Score.objects.bulk_create(
        Score(run=running, image=image, p_inappropriate=0.9) for image in images
    )
    ScoringRun.objects.filter(pk=running.pk).update(
        state=ScoringRun.State.SUCCEEDED, processed=12, flagged=12, finished_at=timezone.now()
    )
    expect(flagged.locator(".stat-value")).to_have_text("12")
    expect(page.locator("#stats-context")).to_contain_text(f"run #{running.pk}")
    assert page.evaluate("window.__marker") == 1


def test_prompts_page_shows_a_finished_job_and_asks_before_a_worse_version(
    page, admin, version, shots
):
    job = PromptJob.objects.create(
        kind=PromptJob.Kind.TRAIN, model_key=version.model_key, state=PromptJob.State.RUNNING,
        parent=version, options={"heldout_fraction": 0.2},
    )  # fmt: skip
    login(page, "ada", ADMIN_PASSWORD)
    page.goto("/prompts/")
    page.evaluate("window.__marker = 1")
    typed = page.locator("#zero-shot textarea[name=inappropriate]")
    typed.fill("typed, not lost")  # a form elsewhere on the page keeps its text
    expect(page.locator(".version-row")).to_have_count(1)

    trained = PromptVersion.objects.create(
        name="tuned on imagenet-val-sample", model_key=version.model_key, dim=512,
        vectors=bytes(version.vectors), source=PromptVersion.Source.TRAINED, parent=version,
        metrics={
            "n_train": 160, "n_heldout": 40,
            "heldout": {"accuracy": 0.7, "precision": 0.66, "recall": 0.7, "f1": 0.68},
            "parent_heldout": {"accuracy": 0.775, "precision": 0.7, "recall": 0.842, "f1": 0.764},
            "active_heldout": {"accuracy": 0.775, "precision": 0.7, "recall": 0.842, "f1": 0.764},
        },
    )  # fmt: skip
    PromptJob.objects.filter(pk=job.pk).update(
        state=PromptJob.State.SUCCEEDED, result=trained, finished_at=timezone.now()
    )
    new_row = page.locator(f"#version-{trained.pk}")
    expect(new_row).to_be_visible()  # no reload: the versions table was swapped in
    expect(page.locator("#jobs-notice")).to_be_visible()
    assert page.evaluate("window.__marker") == 1
    expect(typed).to_have_value("typed, not lost")
    badge = new_row.locator(".badge-worse")
    expect(badge).to_have_text("worse than parent and active")
    expect(badge).to_have_attribute("title", define("worse"))
    expect(new_row.locator(".worse-note")).to_contain_text("held-out accuracy 0.700")
    shots("prompt-versions-worse")

    new_row.get_by_role("link", name="Activate…").click()
    confirm_url = re.compile(rf"/prompts/{trained.pk}/activate/confirm/$")
    expect(page).to_have_url(confirm_url)
    expect(page.locator("#activate-warning")).to_contain_text("worse than its parent (0.775)")
    shots("prompt-activate-confirm")
    # The box must be ticked: the browser refuses the form until it is.
    page.click("#activate-anyway")
    expect(page).to_have_url(confirm_url)
    trained.refresh_from_db()
    assert not trained.is_active
    page.check("#id_activate_anyway")
    page.click("#activate-anyway")
    expect(page.locator(".message-success")).to_contain_text("Activated “tuned on imagenet")
    trained.refresh_from_db()
    assert trained.is_active


def test_keep_the_current_version_leaves_it_active(page, admin, version):
    worse = PromptVersion.objects.create(
        name="overfitted", model_key=version.model_key, dim=512, vectors=bytes(version.vectors),
        source=PromptVersion.Source.TRAINED, parent=version,
        metrics={"heldout": {"accuracy": 0.6}, "parent_heldout": {"accuracy": 0.7}},
    )  # fmt: skip
    login(page, "ada", ADMIN_PASSWORD)
    page.goto(f"/prompts/{worse.pk}/activate/confirm/")
    page.get_by_role("link", name="Keep the current version").click()
    expect(page.locator(f"#version-{version.pk} .badge-active")).to_be_visible()
    worse.refresh_from_db()
    assert not worse.is_active
