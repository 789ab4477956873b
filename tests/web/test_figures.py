"""The figures agree across pages (issue 11): one definition each (curation.glossary), the same
number on the dataset list, the dataset page, the run table, the statistics page and the API
dataset summary; definitions as tooltips; an archive's uploaded name instead of its path."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils.html import escape
from rest_framework.test import APIClient

from curation.glossary import FIGURES, define
from curation.models import Dataset, Image, Score, ScoringRun
from curation.selectors import SCORE_BINS, dataset_summary, dataset_threshold_preview
from reviewer.models import ReviewItem
from reviewer.services.decisions import review_decision_record
from reviewer.services.items import review_items_sync
from tests.reviewer.factories import item_of, make_dataset

SCORES = [0.92, 0.87, 0.76, 0.66, 0.55, 0.45, 0.42, 0.33]


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def api(admin_user):
    client = APIClient()
    client.force_login(admin_user)
    return client


@pytest.fixture
def rescored(db, reviewer_user):
    """The issue's case: a dataset with verdicts, an audit item and a failed file, rescored at
    a higher threshold that moves two decided items below it.

    Before the rescore (threshold 0.5) five images were flagged; two of them got verdicts
    and an unflagged one was audited. The rescore (threshold 0.7) flags three: the decided
    items at 0.66 and 0.55 keep their items and verdicts, but are no longer flagged.
    """
    dataset, first, images = make_dataset(SCORES, threshold=0.5)
    review_decision_record(
        item_id=item_of(images[3]).pk, reviewer=reviewer_user, verdict="appropriate"
    )
    review_decision_record(
        item_id=item_of(images[4]).pk, reviewer=reviewer_user, verdict="inappropriate"
    )
    audit = ReviewItem.objects.create(
        dataset=dataset, image=images[7], score=SCORES[7], run=first, is_audit=True
    )
    review_decision_record(item_id=audit.pk, reviewer=reviewer_user, verdict="appropriate")
    Image.objects.create(
        dataset=dataset, relative_path="notes.txt", status=Image.Status.FAILED, error="not an image"
    )
    second = ScoringRun.objects.create(
        dataset=dataset, prompt_version=first.prompt_version, model_key=first.model_key,
        kind=ScoringRun.Kind.RESCORE, threshold=0.7, state=ScoringRun.State.SUCCEEDED,
        total=len(SCORES), processed=len(SCORES), flagged=3,
    )  # fmt: skip
    Score.objects.bulk_create(
        Score(run=second, image=image, p_inappropriate=p)
        for image, p in zip(images, SCORES, strict=True)
    )
    review_items_sync(
        run=second, scores={image.pk: p for image, p in zip(images, SCORES, strict=True)}
    )
    return dataset, second


def test_flagged_is_the_same_number_on_every_page_and_in_the_api(admin_client, api, rescored):
    dataset, run = rescored
    # What the old summary counted: every item not withdrawn (audit and decided ones too).
    assert ReviewItem.objects.filter(dataset=dataset).exclude(state="withdrawn").count() == 6

    summary = dataset_summary(dataset=dataset)
    assert summary["flagged"] == 3 == run.flagged
    detail = admin_client.get(reverse("dataset-detail", args=[dataset.pk]))
    assert detail.context["summary"]["flagged"] == 3
    assert api.get(reverse("api-dataset", args=[dataset.pk])).json()["summary"]["flagged"] == 3
    stats = api.get(reverse("api-dataset-review-stats", args=[dataset.pk])).json()
    assert stats["counts"]["flagged"] == 3
    listing = admin_client.get(reverse("dataset-list")).content.decode()
    row = listing[listing.index(f'data-poll-url="{reverse("api-dataset", args=[dataset.pk])}"') :]
    row = row[: row.index("</tbody>")]
    assert 'data-field="summary.flagged" data-format="int">3<' in row
    # The threshold preview counts the same at the run's threshold.
    preview = dataset_threshold_preview(dataset=dataset)
    assert preview is not None and preview["flagged"] == 3 and preview["run"] == run.pk


def test_images_leave_out_the_failed_files(admin_client, api, rescored):
    dataset, _ = rescored
    summary = dataset_summary(dataset=dataset)
    assert (summary["images"], summary["failed"], summary["files"]) == (8, 1, 9)
    body = api.get(reverse("api-dataset", args=[dataset.pk])).json()["summary"]
    # The API keeps its keys (and adds "files").
    assert {"images", "failed", "flagged", "pending_review", "confirmed", "rejected"} <= set(body)
    assert (body["images"], body["failed"], body["files"]) == (8, 1, 9)
    # Verdicts are counted whatever the threshold: the rescore changes none of them.
    assert (body["confirmed"], body["rejected"], body["pending_review"]) == (1, 2, 3)
    stats = api.get(reverse("api-dataset-review-stats", args=[dataset.pk])).json()["counts"]
    assert (stats["confirmed"], stats["rejected"], stats["pending"]) == (1, 2, 3)
    listing = admin_client.get(reverse("dataset-list")).content.decode()
    assert 'data-field="summary.images" data-format="int">8<' in listing


def test_definitions_are_tooltips_on_the_pages(admin_client, rescored):
    dataset, run = rescored
    html = admin_client.get(reverse("dataset-detail", args=[dataset.pk])).content.decode()
    for name in ("images", "failed", "flagged", "pending_review", "confirmed", "rejected"):
        assert f'title="{escape(define(name))}"' in html, name
    for name in ("run_flagged", "run_failed", "run_encoded", "run_threshold", "run_workers"):
        assert f'title="{escape(define(name))}"' in html, name
    listing = admin_client.get(reverse("dataset-list")).content.decode()
    for name in ("images", "failed", "flagged"):
        assert f'title="{escape(define(name))}"' in listing, name
    # The statistics page gets the whole glossary for its counts (rendered by its script).
    stats = admin_client.get(reverse("dataset-stats", args=[dataset.pk])).content.decode()
    assert escape(FIGURES["withdrawn"]) in stats
    assert "data-glossary=" in stats


def test_every_count_of_the_summary_and_the_stats_page_has_a_definition(api, rescored):
    dataset, _ = rescored
    summary = api.get(reverse("api-dataset", args=[dataset.pk])).json()["summary"]
    stats = api.get(reverse("api-dataset-review-stats", args=[dataset.pk])).json()["counts"]
    assert set(summary) <= set(FIGURES)
    assert set(stats) <= set(FIGURES)


def test_threshold_preview_bins_the_latest_finished_run(admin_client, rescored):
    dataset, run = rescored
    preview = dataset_threshold_preview(dataset=dataset)
    assert preview is not None
    bins = preview["bins"]
    assert len(bins) == SCORE_BINS and sum(bins) == preview["scored"] == len(SCORES)
    assert bins[920] == 1 and bins[330] == 1
    # Counting from a bin is counting scores at or above its lower edge.
    assert sum(bins[round(0.5 * SCORE_BINS) :]) == sum(1 for p in SCORES if p >= 0.5)
    html = admin_client.get(reverse("dataset-detail", args=[dataset.pk])).content.decode()
    assert 'id="score-distribution"' in html
    assert f'data-run-threshold="{run.threshold}"' in html
    assert 'data-threshold-input="#id_threshold"' in html
    assert 'data-poll-refresh="#score-distribution"' in html


def test_no_preview_before_a_run_has_finished(admin_client, dataset, run):
    assert dataset_threshold_preview(dataset=dataset) is None
    html = admin_client.get(reverse("dataset-detail", args=[dataset.pk])).content.decode()
    # The placeholder keeps the id, so the first finished run swaps the preview in.
    assert 'id="score-distribution"' in html and "data-score-bins" not in html


def test_zip_dataset_shows_the_uploaded_files_name(admin_client, api, media_root):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("img/a.txt", b"not an image")
    upload = SimpleUploadedFile(
        "holiday-2024.zip", archive.getvalue(), content_type="application/zip"
    )
    admin_client.post(reverse("dataset-list"), {"name": "holiday", "archive": upload})
    dataset = Dataset.objects.get(name="holiday")
    assert dataset.source_name == "holiday-2024.zip"
    assert dataset.source.startswith(str(media_root))  # still the stored copy
    detail = admin_client.get(reverse("dataset-detail", args=[dataset.pk])).content.decode()
    listing = admin_client.get(reverse("dataset-list")).content.decode()
    for html in (detail, listing):
        assert "holiday-2024.zip" in html
        assert dataset.source not in html
    body = api.get(reverse("api-dataset", args=[dataset.pk])).json()
    assert body["source"] == dataset.source  # unchanged key and value
    assert (body["source_name"], body["source_label"]) == ("holiday-2024.zip", "holiday-2024.zip")


def test_archive_without_a_recorded_name_never_shows_its_path(admin_client, media_root):
    dataset = Dataset.objects.create(
        name="old upload", source_kind=Dataset.SourceKind.ARCHIVE,
        source=str(media_root / "archives" / "0123abcd.zip"), state=Dataset.State.READY,
    )  # fmt: skip
    html = admin_client.get(reverse("dataset-detail", args=[dataset.pk])).content.decode()
    assert "0123abcd.zip" not in html
    assert "uploaded archive (name not recorded)" in html
