"""The audit share: the score and uncertain queues of a dataset mix in audit items (random
images below the threshold), each new slot with probability `audit_share`."""

from __future__ import annotations

import pytest

from reviewer.models import ReviewItem
from reviewer.services import queue as queue_services
from reviewer.services.decisions import review_decision_record
from reviewer.services.queue import QueueFilters, review_item_batch, review_item_next
from reviewer.services.settings import review_settings_update
from tests.reviewer.factories import make_dataset

pytestmark = pytest.mark.django_db

FLAGGED = 20
BELOW = 40


class FixedDraws:
    """Stands in for queue.audit_random: random() answers these values in turn."""

    def __init__(self, values):
        self.values = list(values)
        self.real = queue_services.audit_random

    def random(self) -> float:
        return self.values.pop(0)

    def randint(self, low: int, high: int) -> int:
        return self.real.randint(low, high)


@pytest.fixture
def mixed_dataset():
    scores = [0.6 + 0.01 * i for i in range(FLAGGED)] + [0.005 * i for i in range(BELOW)]
    dataset, run, images = make_dataset(scores, threshold=0.5)
    below = {image.pk for image, p in zip(images, scores, strict=True) if p < 0.5}
    return dataset, below


def serve(user, dataset, *, mode="score", count=FLAGGED, **filters) -> list[ReviewItem]:
    served = []
    for _ in range(count):
        item = review_item_next(
            reviewer=user, mode=mode, filters=QueueFilters(dataset=dataset, **filters)
        )
        if item is None:
            break
        served.append(item)
        review_decision_record(item_id=item.pk, reviewer=user, verdict="appropriate")
    return served


def test_no_share_serves_flagged_items_only(reviewer_user, mixed_dataset):
    dataset, _ = mixed_dataset
    served = serve(reviewer_user, dataset, count=FLAGGED + 5)
    assert len(served) == FLAGGED and not any(item.is_audit for item in served)
    assert not ReviewItem.objects.filter(dataset=dataset, is_audit=True).exists()


@pytest.mark.parametrize("mode", ["score", "uncertain"])
def test_a_share_mixes_audit_items_into_the_queue(reviewer_user, mixed_dataset, mode):
    dataset, below = mixed_dataset
    review_settings_update(dataset=dataset, audit_share=0.5)
    queue_services.audit_random.seed(11)
    served = serve(reviewer_user, dataset, mode=mode, count=40)
    audit = [item for item in served if item.is_audit]
    flagged = [item for item in served if not item.is_audit]
    # About half of 40 draws (seeded: the same every run); each audit item is an unflagged image.
    assert 8 <= len(audit) <= 32, len(audit)
    assert {item.image_id for item in audit} <= below
    assert len(flagged) == len({item.pk for item in flagged})


def test_each_slot_is_an_audit_item_with_the_share_as_probability(
    reviewer_user, mixed_dataset, monkeypatch
):
    dataset, below = mixed_dataset
    review_settings_update(dataset=dataset, audit_share=0.25)
    # Draws below 0.25 are audit slots: the 2nd and 4th of a batch of five.
    monkeypatch.setattr(queue_services, "audit_random", FixedDraws([0.9, 0.1, 0.5, 0.24, 0.3]))
    batch = review_item_batch(
        reviewer=reviewer_user, limit=5, filters=QueueFilters(dataset=dataset)
    )
    assert len(batch) == 5
    assert sum(item.is_audit for item in batch) == 2
    assert all(item.image_id in below for item in batch if item.is_audit)
    assert all(item.leased_by_id == reviewer_user.pk for item in batch)


def test_a_held_audit_item_comes_back_first(reviewer_user, mixed_dataset, monkeypatch):
    dataset, _ = mixed_dataset
    review_settings_update(dataset=dataset, audit_share=0.5)
    monkeypatch.setattr(queue_services, "audit_random", FixedDraws([0.0]))
    first = review_item_next(reviewer=reviewer_user, filters=QueueFilters(dataset=dataset))
    assert first.is_audit
    # Asked again before deciding (a reload): the same item, no new draw needed.
    again = review_item_next(reviewer=reviewer_user, filters=QueueFilters(dataset=dataset))
    assert again.pk == first.pk


def test_two_reviewers_never_share_a_mixed_in_audit_item(
    reviewer_user, admin_user, mixed_dataset, monkeypatch
):
    dataset, _ = mixed_dataset
    review_settings_update(dataset=dataset, audit_share=0.5)
    monkeypatch.setattr(queue_services, "audit_random", FixedDraws([0.0] * 6))
    mine = review_item_batch(reviewer=reviewer_user, limit=3, filters=QueueFilters(dataset=dataset))
    theirs = review_item_batch(reviewer=admin_user, limit=3, filters=QueueFilters(dataset=dataset))
    assert all(item.is_audit for item in mine + theirs)
    assert not {item.pk for item in mine} & {item.pk for item in theirs}


@pytest.mark.parametrize(
    "narrowing",
    [{"score_min": 0.0}, {"score_max": 1.0}, {"folder": "img"}, {"state": "decided"}],
)
def test_a_narrowed_queue_gets_exactly_what_it_asked_for(reviewer_user, mixed_dataset, narrowing):
    dataset, _ = mixed_dataset
    review_settings_update(dataset=dataset, audit_share=0.5)
    queue_services.audit_random.seed(3)
    batch = review_item_batch(
        reviewer=reviewer_user, limit=10, filters=QueueFilters(dataset=dataset, **narrowing)
    )
    assert not any(item.is_audit for item in batch)
    assert not ReviewItem.objects.filter(dataset=dataset, is_audit=True).exists()


def test_the_queue_across_datasets_mixes_nothing(reviewer_user, mixed_dataset):
    dataset, _ = mixed_dataset
    review_settings_update(dataset=dataset, audit_share=0.5)
    queue_services.audit_random.seed(5)
    batch = review_item_batch(reviewer=reviewer_user, limit=10, filters=QueueFilters())
    assert len(batch) == 10 and not any(item.is_audit for item in batch)


def test_a_finished_flagged_queue_serves_no_audit_items(reviewer_user, mixed_dataset, monkeypatch):
    dataset, _ = mixed_dataset
    serve(reviewer_user, dataset, count=FLAGGED)
    review_settings_update(dataset=dataset, audit_share=0.5)
    monkeypatch.setattr(queue_services, "audit_random", FixedDraws([0.0] * 5))
    assert review_item_next(reviewer=reviewer_user, filters=QueueFilters(dataset=dataset)) is None
    assert not ReviewItem.objects.filter(dataset=dataset, is_audit=True).exists()


def test_when_every_unflagged_image_is_audited_the_slots_go_to_flagged_items(
    reviewer_user, monkeypatch
):
    dataset, _, images = make_dataset([0.9, 0.8, 0.7, 0.1], threshold=0.5)
    review_settings_update(dataset=dataset, audit_share=0.5)
    monkeypatch.setattr(queue_services, "audit_random", FixedDraws([0.0] * 3))
    batch = review_item_batch(
        reviewer=reviewer_user, limit=3, filters=QueueFilters(dataset=dataset)
    )
    # One unflagged image to audit; the other two slots are flagged items.
    assert sorted(item.is_audit for item in batch) == [False, False, True]
