"""Queue modes and filters: score, uncertain, audit, disagreement; score range, folder,
category, state; leases never shared."""

from __future__ import annotations

import pytest

from curation.errors import NotAllowed, ValidationFailed
from reviewer.models import ReviewItem
from reviewer.services import items as item_services
from reviewer.services import queue as queue_services
from reviewer.services.decisions import review_decision_record
from reviewer.services.queue import QueueFilters, review_item_batch, review_item_next
from reviewer.services.settings import review_settings_update
from tests.reviewer.factories import item_of, make_dataset

pytestmark = pytest.mark.django_db


def drain(user, *, mode="score", **filters) -> list[ReviewItem]:
    """Lease and decide one item at a time; returns the items in the order served."""
    served = []
    while (
        item := review_item_next(reviewer=user, mode=mode, filters=QueueFilters(**filters))
    ) is not None:
        served.append(item)
        review_decision_record(item_id=item.pk, reviewer=user, verdict="appropriate")
    return served


def test_score_mode_serves_highest_score_first(reviewer_user):
    dataset, _, images = make_dataset([0.6, 0.9, 0.75, 0.3])
    served = drain(reviewer_user, dataset=dataset)
    assert [item.image_id for item in served] == [images[1].pk, images[2].pk, images[0].pk]


def test_uncertain_mode_serves_closest_to_the_threshold_first(reviewer_user):
    dataset, run, images = make_dataset([0.52, 0.99, 0.7, 0.61], threshold=0.5)
    served = drain(reviewer_user, mode="uncertain", dataset=dataset)
    assert [item.image_id for item in served] == [
        images[0].pk, images[3].pk, images[2].pk, images[1].pk
    ]  # fmt: skip
    assert served[0].margin == pytest.approx(0.02)


def test_uncertain_mode_follows_a_rescore(reviewer_user):
    dataset, run, images = make_dataset([0.55, 0.9], threshold=0.5)
    # A new prompt version moves the second image next to the boundary.
    item_services.review_items_sync(run=run, scores={images[0].pk: 0.95, images[1].pk: 0.51})
    item = review_item_next(
        reviewer=reviewer_user, mode="uncertain", filters=QueueFilters(dataset=dataset)
    )
    assert item.image_id == images[1].pk


def test_audit_mode_samples_unflagged_images_of_the_latest_run(reviewer_user, admin_user):
    queue_services.audit_random.seed(7)
    scores = [0.9, 0.8] + [0.01 * i for i in range(1, 21)]  # 2 flagged, 20 below 0.5
    dataset, run, images = make_dataset(scores, threshold=0.5)
    below = {image.pk for image, p in zip(images, scores, strict=True) if p < 0.5}
    seen = set()
    for user in (reviewer_user, admin_user):
        batch = review_item_batch(
            reviewer=user, limit=5, mode="audit", filters=QueueFilters(dataset=dataset)
        )
        assert len(batch) == 5
        for item in batch:
            assert item.is_audit and item.state == ReviewItem.State.PENDING
            assert item.image_id in below and item.leased_by_id == user.pk
            assert item.score < run.threshold
        seen |= {item.pk for item in batch}
    assert len(seen) == 10  # the two reviewers never share an item
    assert ReviewItem.objects.filter(dataset=dataset, is_audit=True).count() == 10
    # Audit items stay out of the flagged queues, and a rescore does not withdraw them.
    flagged = review_item_batch(
        reviewer=reviewer_user, limit=10, filters=QueueFilters(dataset=dataset)
    )
    assert {item.image_id for item in flagged} == {images[0].pk, images[1].pk}
    item_services.review_items_sync(
        run=run, scores={image.pk: p for image, p in zip(images, scores, strict=True)}
    )
    assert ReviewItem.objects.filter(is_audit=True, state=ReviewItem.State.PENDING).count() == 10


def test_audit_mode_decision_and_exhaustion(reviewer_user):
    dataset, _, images = make_dataset([0.9, 0.1, 0.2])
    served = drain(reviewer_user, mode="audit", dataset=dataset)
    assert sorted(item.image_id for item in served) == [images[1].pk, images[2].pk]
    assert (
        review_item_next(
            reviewer=reviewer_user, mode="audit", filters=QueueFilters(dataset=dataset)
        )
        is None
    )


def test_audit_mode_needs_a_dataset(reviewer_user):
    with pytest.raises(ValidationFailed):
        review_item_next(reviewer=reviewer_user, mode="audit")


def test_disagreement_mode_is_for_admins_and_serves_disputed_items(
    reviewer_user, admin_user, django_user_model
):
    other = django_user_model.objects.create_user(username="other", password="x")
    dataset, _, images = make_dataset([0.9, 0.8])
    review_settings_update(dataset=dataset, required_verdicts=2)
    item = item_of(images[0])
    review_decision_record(item_id=item.pk, reviewer=reviewer_user, verdict="inappropriate")
    review_decision_record(item_id=item.pk, reviewer=other, verdict="appropriate")
    with pytest.raises(NotAllowed):
        review_item_next(reviewer=reviewer_user, mode="disagreement")
    got = review_item_next(
        reviewer=admin_user, mode="disagreement", filters=QueueFilters(dataset=dataset)
    )
    assert got.pk == item.pk and got.state == ReviewItem.State.DISPUTED
    # Disputed items never reach the ordinary queue.
    assert (
        review_item_next(reviewer=other, filters=QueueFilters(dataset=dataset)).image_id
        == images[1].pk
    )


def test_score_range_filter(reviewer_user):
    dataset, _, images = make_dataset([0.55, 0.65, 0.75, 0.85, 0.95])
    served = drain(reviewer_user, dataset=dataset, score_min=0.6, score_max=0.8)
    assert [item.image_id for item in served] == [images[2].pk, images[1].pk]


def test_folder_filter_matches_whole_folder_names(reviewer_user):
    paths = ["cats/a.png", "cats/b.png", "catsup/c.png", "dogs/cats/d.png"]
    dataset, _, images = make_dataset([0.9, 0.8, 0.95, 0.99], paths=paths)
    served = drain(reviewer_user, dataset=dataset, folder="cats/")
    assert [item.image_id for item in served] == [images[0].pk, images[1].pk]


def test_category_and_state_filters_allow_re_review(reviewer_user, admin_user, django_user_model):
    dataset, _, images = make_dataset([0.9, 0.8, 0.7])
    for image, category in zip(images, ["weapons", "self-harm", ""], strict=True):
        item = review_item_next(reviewer=reviewer_user, filters=QueueFilters(dataset=dataset))
        assert item.image_id == image.pk
        review_decision_record(
            item_id=item.pk, reviewer=reviewer_user, verdict="inappropriate", category=category
        )
    second = django_user_model.objects.create_user(username="second", password="x")
    got = review_item_batch(
        reviewer=second, limit=10,
        filters=QueueFilters(dataset=dataset, state="decided", category="weapons"),
    )  # fmt: skip
    assert [item.image_id for item in got] == [images[0].pk]
    # The reviewer who decided them is never served them again.
    assert (
        review_item_batch(
            reviewer=reviewer_user, limit=10, filters=QueueFilters(dataset=dataset, state="decided")
        )
        == []
    )


def test_unknown_mode_and_state_are_refused(reviewer_user):
    with pytest.raises(ValidationFailed):
        review_item_next(reviewer=reviewer_user, mode="random")
    with pytest.raises(ValidationFailed):
        review_item_next(reviewer=reviewer_user, filters=QueueFilters(state="withdrawn"))
    with pytest.raises(NotAllowed):
        review_item_next(reviewer=reviewer_user, filters=QueueFilters(state="disputed"))


def test_batch_leases_distinct_items_and_returns_held_ones_first(reviewer_user, admin_user):
    dataset, _, images = make_dataset([0.9 - 0.01 * i for i in range(10)])
    first = review_item_batch(
        reviewer=reviewer_user, limit=4, filters=QueueFilters(dataset=dataset)
    )
    assert [item.image_id for item in first] == [image.pk for image in images[:4]]
    other = review_item_batch(reviewer=admin_user, limit=4, filters=QueueFilters(dataset=dataset))
    assert not {item.pk for item in first} & {item.pk for item in other}
    again = review_item_batch(
        reviewer=reviewer_user, limit=6, filters=QueueFilters(dataset=dataset)
    )
    assert [item.pk for item in again[:4]] == [item.pk for item in first]
    assert [item.image_id for item in again[4:]] == [images[8].pk, images[9].pk]
    with pytest.raises(ValidationFailed):
        review_item_batch(reviewer=reviewer_user, limit=61)
