"""Duplicate propagation and leases, k > 1 and adjudication, at the service level."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from reviewer.models import Decision, ReviewItem
from reviewer.services.decisions import review_decision_record, review_decision_undo
from reviewer.services.queue import QueueFilters, review_item_batch, review_item_next
from reviewer.services.settings import review_settings_update
from tests.reviewer.factories import item_of, make_dataset, sha

pytestmark = pytest.mark.django_db


@pytest.fixture
def users(django_user_model):
    return [django_user_model.objects.create_user(username=n, password="x") for n in "abc"]


def identical(n: int, *scores: float):
    scores = scores or tuple(0.9 - 0.05 * i for i in range(n))
    return make_dataset(list(scores), hashes=[sha("same")] * n)


def test_a_copy_another_reviewer_holds_keeps_its_lease(users):
    a, b, _ = users
    dataset, _, images = identical(3)
    origin = review_item_next(reviewer=a, filters=QueueFilters(dataset=dataset))
    held = review_item_batch(reviewer=b, limit=1, filters=QueueFilters(dataset=dataset))
    assert [item.image_id for item in held] == [images[1].pk]
    expires = item_of(images[1]).lease_expires_at

    decision = review_decision_record(item_id=origin.pk, reviewer=a, verdict="inappropriate")
    # The unleased copy is decided; the held one is left alone and reported.
    assert decision.propagated_image_ids == [images[2].pk]
    assert decision.skipped_propagation == [
        {
            "image_id": images[1].pk,
            "item_id": held[0].pk,
            "reason": f"held by another reviewer until {expires.isoformat(timespec='seconds')}",
        }
    ]
    copy = item_of(images[1])
    assert copy.state == ReviewItem.State.PENDING
    assert (copy.leased_by_id, copy.lease_expires_at) == (b.pk, expires)
    later = review_decision_record(item_id=copy.pk, reviewer=b, verdict="appropriate")
    assert item_of(images[1]).state == ReviewItem.State.DECIDED
    # B's verdict adds no k+1st verdict to the copies A's verdict decided (nor disputes them).
    assert later.propagated_image_ids == []
    assert [(s["image_id"], s["reason"]) for s in later.skipped_propagation] == [
        (images[0].pk, "already decided"),
        (images[2].pk, "already decided"),
    ]
    assert {item_of(images[0]).state, item_of(images[2]).state} == {ReviewItem.State.DECIDED}
    # Undo takes back only the copy that was made.
    review_decision_undo(reviewer=a)
    assert item_of(images[2]).state == ReviewItem.State.PENDING
    assert item_of(images[1]).state == ReviewItem.State.DECIDED


def test_the_reviewers_own_and_expired_leases_receive_the_copy(users):
    a, b, _ = users
    dataset, _, images = identical(3)
    mine = review_item_batch(reviewer=a, limit=2, filters=QueueFilters(dataset=dataset))
    review_item_next(reviewer=b, filters=QueueFilters(dataset=dataset))
    ReviewItem.objects.filter(image=images[2]).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    decision = review_decision_record(item_id=mine[0].pk, reviewer=a, verdict="appropriate")
    assert decision.propagated_image_ids == [images[1].pk, images[2].pk]
    assert decision.skipped_propagation == []
    for image in images[1:]:
        item = item_of(image)
        assert item.state == ReviewItem.State.DECIDED and item.leased_by_id is None


def test_apply_to_respects_other_leases(users):
    a, b, _ = users
    dataset, _, images = make_dataset(
        [0.9, 0.8, 0.1], phashes=["0000000000000000", "0000000000000003", "0000000000000001"]
    )
    origin = review_item_next(reviewer=a, filters=QueueFilters(dataset=dataset))
    held = review_item_next(reviewer=b, filters=QueueFilters(dataset=dataset))
    assert held.image_id == images[1].pk
    decision = review_decision_record(
        item_id=origin.pk, reviewer=a, verdict="appropriate",
        apply_to=[images[1].pk, images[2].pk],
    )  # fmt: skip
    # The unflagged near-duplicate gets an item and the verdict; the held one does not.
    assert decision.propagated_image_ids == [images[2].pk]
    assert [s["item_id"] for s in decision.skipped_propagation] == [held.pk]
    assert not Decision.objects.filter(image=images[1]).exists()


def test_k2_copies_neither_decide_nor_count(users):
    a, b, _ = users
    dataset, _, images = identical(3)
    review_settings_update(dataset=dataset, required_verdicts=2)
    review_decision_record(item_id=item_of(images[1]).pk, reviewer=b, verdict="appropriate")
    decision = review_decision_record(
        item_id=item_of(images[0]).pk, reviewer=a, verdict="appropriate"
    )
    assert decision.propagated_image_ids == []
    assert [(s["image_id"], s["reason"]) for s in decision.skipped_propagation] == [
        (images[1].pk, "needs 2 independent verdicts"),
        (images[2].pk, "needs 2 independent verdicts"),
    ]
    # Image 1 has B's own verdict only (B's decision did not copy itself onto image 0 either).
    assert item_of(images[0]).state == ReviewItem.State.PENDING
    assert item_of(images[1]).state == ReviewItem.State.PENDING
    assert Decision.objects.filter(item=item_of(images[0])).count() == 1
    assert not Decision.objects.filter(propagated_from__isnull=False).exists()


def test_an_admins_adjudication_still_settles_disputed_copies(users, admin_user):
    a, b, _ = users
    dataset, _, images = identical(2)
    review_settings_update(dataset=dataset, required_verdicts=2)
    for image in images:
        review_decision_record(item_id=item_of(image).pk, reviewer=a, verdict="appropriate")
        review_decision_record(item_id=item_of(image).pk, reviewer=b, verdict="inappropriate")
    assert {item_of(image).state for image in images} == {ReviewItem.State.DISPUTED}
    decision = review_decision_record(
        item_id=item_of(images[0]).pk, reviewer=admin_user, verdict="appropriate"
    )
    assert decision.propagated_image_ids == [images[1].pk]
    assert decision.skipped_propagation == []
    assert item_of(images[1]).state == ReviewItem.State.DECIDED


def test_a_disputed_copy_waits_for_an_admin_and_is_reported(users):
    a, b, c = users
    same = sha("same")
    dataset, _, images = make_dataset([0.9, 0.8], hashes=[same, sha("other")])
    review_settings_update(dataset=dataset, required_verdicts=2)
    review_decision_record(item_id=item_of(images[1]).pk, reviewer=a, verdict="appropriate")
    review_decision_record(item_id=item_of(images[1]).pk, reviewer=b, verdict="inappropriate")
    # Image 1 becomes a byte-identical copy of image 0 only now (a re-import, say).
    images[1].sha256 = same
    images[1].save(update_fields=["sha256"])
    review_settings_update(dataset=dataset, required_verdicts=1)
    assert item_of(images[1]).state == ReviewItem.State.DISPUTED
    decision = review_decision_record(
        item_id=item_of(images[0]).pk, reviewer=c, verdict="appropriate"
    )
    assert decision.propagated_image_ids == []
    assert decision.skipped_propagation == [
        {
            "image_id": images[1].pk,
            "item_id": item_of(images[1]).pk,
            "reason": "disputed; an admin adjudicates it",
        }
    ]
