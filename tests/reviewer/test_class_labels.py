"""Class labels (ImageFolder imports) in the review: the queue's class filter (service, API,
page) and the numbers grouped by class (selector, API)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from curation.models import Image
from reviewer.selectors.classes import dataset_class_counts, dataset_class_stats
from reviewer.services.decisions import review_decision_record
from reviewer.services.queue import QueueFilters, review_item_next
from tests.reviewer.factories import item_of, make_dataset

pytestmark = pytest.mark.django_db

SCORES = [0.9, 0.8, 0.7, 0.6, 0.3, 0.2]
CLASSES = ["cat", "cat", "dog", "dog", "cat", ""]  # the last image has no class


def _classed_dataset():
    paths = [f"{label or 'loose'}/{i}.png" for i, label in enumerate(CLASSES)]
    dataset, run, images = make_dataset(SCORES, threshold=0.5, paths=paths)
    for image, label in zip(images, CLASSES, strict=True):
        Image.objects.filter(pk=image.pk).update(class_label=label)
    return dataset, run, images


def _client(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def test_queue_serves_only_the_chosen_class(reviewer_user):
    dataset, _, images = _classed_dataset()
    served = []
    filters = QueueFilters(dataset=dataset, class_label="dog")
    while (item := review_item_next(reviewer=reviewer_user, filters=filters)) is not None:
        served.append(item.image_id)
        review_decision_record(item_id=item.pk, reviewer=reviewer_user, verdict="appropriate")
    assert served == [images[2].pk, images[3].pk]
    # No such class: nothing, not everything.
    none = QueueFilters(dataset=dataset, class_label="horse")
    assert review_item_next(reviewer=reviewer_user, filters=none) is None


def test_queue_api_takes_the_class_filter_and_refuses_a_bad_one(reviewer_user):
    dataset, _, images = _classed_dataset()
    client = _client(reviewer_user)
    body = client.get("/api/review/next/", {"dataset": dataset.pk, "class_label": "dog"}).json()
    assert body["image_id"] == images[2].pk
    too_long = client.get("/api/review/next/", {"dataset": dataset.pk, "class_label": "x" * 201})
    assert too_long.status_code == 400 and "class_label" in too_long.json()


def test_class_counts_and_stats_per_class(reviewer_user):
    dataset, run, images = _classed_dataset()
    assert dataset_class_counts(dataset_id=dataset.pk) == [
        {"class_label": "cat", "images": 3},
        {"class_label": "dog", "images": 2},
    ]
    # Confirm both flagged cats, reject one dog.
    for index, verdict in ((0, "inappropriate"), (1, "inappropriate"), (2, "appropriate")):
        review_decision_record(
            item_id=item_of(images[index]).pk, reviewer=reviewer_user, verdict=verdict
        )
    stats = dataset_class_stats(dataset=dataset)
    assert stats["run"] == run.pk
    cat, dog = stats["classes"]
    assert (cat["class_label"], cat["images"], cat["scored"], cat["flagged"]) == ("cat", 3, 3, 2)
    assert (cat["reviewed"], cat["confirmed"], cat["share_confirmed"]) == (2, 2, 1.0)
    assert 0.3 < cat["share_low"] < 1.0 == cat["share_high"]
    assert (dog["scored"], dog["flagged"], dog["reviewed"], dog["confirmed"]) == (2, 2, 1, 0)
    assert dog["share_confirmed"] == 0.0
    # A class nobody reviewed has no share (not 0 %).
    Image.objects.filter(pk=images[3].pk).update(class_label="bird")
    bird = next(
        r for r in dataset_class_stats(dataset=dataset)["classes"] if r["class_label"] == "bird"
    )
    assert (bird["reviewed"], bird["share_confirmed"], bird["share_low"]) == (0, None, None)


def test_class_stats_api_for_admins_only_and_empty_without_classes(admin_user, reviewer_user):
    dataset, _, _ = _classed_dataset()
    url = f"/api/datasets/{dataset.pk}/class-stats/"
    body = _client(admin_user).get(url).json()
    assert [row["class_label"] for row in body["classes"]] == ["cat", "dog"]
    assert set(body["classes"][0]) == {
        "class_label", "images", "scored", "flagged", "reviewed", "confirmed",
        "share_confirmed", "share_low", "share_high",
    }  # fmt: skip
    assert _client(reviewer_user).get(url).status_code == 403
    plain, _, _ = make_dataset([0.9, 0.1])
    assert _client(admin_user).get(f"/api/datasets/{plain.pk}/class-stats/").json()["classes"] == []
    assert _client(admin_user).get("/api/datasets/999999/class-stats/").status_code == 404
    assert _client(admin_user).get(url, {"version": "x"}).status_code == 400


def test_review_page_offers_the_class_select_only_for_a_dataset_with_classes(admin_client):
    dataset, _, _ = _classed_dataset()
    html = admin_client.get(f"/review/?dataset={dataset.pk}&class_label=dog").content.decode()
    assert 'name="class_label"' in html
    assert '<option value="cat">cat (3)</option>' in html
    assert '<option value="dog" selected>dog (2)</option>' in html
    plain, _, _ = make_dataset([0.9])
    assert (
        'name="class_label"'
        not in admin_client.get(f"/review/?dataset={plain.pk}").content.decode()
    )
    assert 'name="class_label"' not in admin_client.get("/review/").content.decode()
