"""Second looks at decided items, at the service level: who may give one, what it changes
(agreement always; the decision only when it disagrees: the item is disputed), undo of one."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from curation.errors import StateConflict
from reviewer.models import Decision, ReviewItem
from reviewer.selectors.stats import review_agreement
from reviewer.selectors.verdicts import images_with_latest_verdict, latest_verdicts
from reviewer.services.decisions import review_decision_record, review_decision_undo
from reviewer.services.queue import QueueFilters, review_item_next
from reviewer.services.settings import review_settings_update
from tests.reviewer.factories import item_of, make_dataset, sha

pytestmark = pytest.mark.django_db


@pytest.fixture
def users(django_user_model):
    return [django_user_model.objects.create_user(username=n, password="x") for n in "abc"]


def second_look_lease(reviewer, dataset) -> ReviewItem | None:
    """What the "Decided (second look)" queue leases to this reviewer."""
    return review_item_next(
        reviewer=reviewer, filters=QueueFilters(dataset=dataset, state="decided")
    )


def decided_by(reviewer, image, verdict: str = "inappropriate", category: str = "") -> ReviewItem:
    review_decision_record(
        item_id=item_of(image).pk, reviewer=reviewer, verdict=verdict, category=category
    )
    item = item_of(image)
    assert item.state == ReviewItem.State.DECIDED
    return item


def test_an_agreeing_second_look_is_recorded_counts_for_agreement_and_changes_nothing(users):
    a, b, _ = users
    dataset, _, images = make_dataset([0.9, 0.8])
    item = decided_by(a, images[0], category="weapons")
    decided_at = item.decided_at
    # A, who decided it, is not offered it; B is.
    assert second_look_lease(a, dataset) is None
    assert second_look_lease(b, dataset).pk == item.pk
    decision = review_decision_record(
        item_id=item.pk, reviewer=b, verdict="inappropriate", category="violence and gore"
    )
    assert decision.is_second_look and not decision.is_adjudication
    item = item_of(images[0])
    assert item.state == ReviewItem.State.DECIDED and item.decided_at == decided_at
    assert item.leased_by_id is None
    # The decision is A's, category included; B's second look is for agreement.
    assert latest_verdicts(dataset_id=dataset.pk) == {images[0].pk: ("inappropriate", "weapons")}
    agreement = review_agreement(dataset_id=dataset.pk)
    assert agreement["pairs"] == [
        {"a": "a", "b": "b", "kappa": None, "low": None, "high": None, "n": 1}
    ]
    # Nobody gets the same second look twice.
    assert second_look_lease(b, dataset) is None


def test_a_disagreeing_second_look_disputes_the_item_until_an_admin_adjudicates(users, admin_user):
    a, b, c = users
    dataset, _, images = make_dataset([0.9, 0.8, 0.7])
    for image, verdict in zip(images, ["inappropriate", "appropriate", "appropriate"], strict=True):
        decided_by(a, image, verdict)
    # B looks at all three again and disagrees on the first only.
    for verdict in ("appropriate", "appropriate", "appropriate"):
        item = second_look_lease(b, dataset)
        review_decision_record(item_id=item.pk, reviewer=b, verdict=verdict)
    first = item_of(images[0])
    assert first.state == ReviewItem.State.DISPUTED and first.decided_at is None
    assert {item_of(image).state for image in images[1:]} == {ReviewItem.State.DECIDED}
    # A disputed item has no verdict for training and exports until an admin settles it.
    verdicts = dict(images_with_latest_verdict(dataset_id=dataset.pk).values_list("id", "verdict"))
    assert verdicts[images[0].pk] is None and verdicts[images[1].pk] == "appropriate"
    # Reviewers may not settle it; it is in the admins' Disagreements queue.
    with pytest.raises(StateConflict, match="admin"):
        review_decision_record(item_id=first.pk, reviewer=c, verdict="appropriate")
    assert (
        review_item_next(reviewer=admin_user, mode="disagreement", filters=QueueFilters()).pk
        == first.pk
    )
    adjudication = review_decision_record(
        item_id=first.pk, reviewer=admin_user, verdict="appropriate"
    )
    assert adjudication.is_adjudication and not adjudication.is_second_look
    assert item_of(images[0]).state == ReviewItem.State.DECIDED
    verdicts = dict(images_with_latest_verdict(dataset_id=dataset.pk).values_list("id", "verdict"))
    assert verdicts[images[0].pk] == "appropriate"
    # Agreement pairs A and B over the three items (the adjudication is left out).
    agreement = review_agreement(dataset_id=dataset.pk)
    assert [(p["a"], p["b"], p["n"]) for p in agreement["pairs"]] == [("a", "b", 3)]
    assert agreement["pairs"][0]["kappa"] == pytest.approx(0.0)


def test_a_reviewer_who_gave_a_verdict_cannot_give_a_second_look(users):
    a, _, _ = users
    dataset, _, images = make_dataset([0.9])
    item = decided_by(a, images[0])
    # Even holding the item (leased by some other way), A's second verdict is refused.
    ReviewItem.objects.filter(pk=item.pk).update(
        leased_by=a, lease_expires_at=timezone.now() + timedelta(minutes=5)
    )
    with pytest.raises(StateConflict, match="a second look must come from a reviewer who has not"):
        review_decision_record(item_id=item.pk, reviewer=a, verdict="appropriate")
    assert Decision.objects.filter(item=item).count() == 1


def test_a_decided_item_the_reviewer_does_not_hold_is_refused_as_a_stale_page(users):
    a, b, c = users
    dataset, _, images = make_dataset([0.9])
    item = decided_by(a, images[0])
    for verdict in ("appropriate", "inappropriate", "skip"):
        with pytest.raises(StateConflict, match="already decided"):
            review_decision_record(item_id=item.pk, reviewer=b, verdict=verdict)
    # Held by another reviewer for their second look: refused too.
    assert second_look_lease(c, dataset).pk == item.pk
    with pytest.raises(StateConflict, match="Another reviewer holds"):
        review_decision_record(item_id=item.pk, reviewer=b, verdict="appropriate")
    assert Decision.objects.filter(item=item).count() == 1


def test_an_expired_second_look_lease_nobody_took_still_counts(users):
    a, b, _ = users
    dataset, _, images = make_dataset([0.9])
    decided_by(a, images[0])
    item = second_look_lease(b, dataset)
    ReviewItem.objects.filter(pk=item.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert review_decision_record(
        item_id=item.pk, reviewer=b, verdict="inappropriate"
    ).is_second_look


def test_skipping_a_second_look_leaves_the_item_for_others(users):
    a, b, c = users
    dataset, _, images = make_dataset([0.9])
    item = decided_by(a, images[0])
    assert second_look_lease(b, dataset).pk == item.pk
    skip = review_decision_record(item_id=item.pk, reviewer=b, verdict="skip")
    assert skip.is_second_look
    item = item_of(images[0])
    assert item.state == ReviewItem.State.DECIDED and item.leased_by_id is None
    assert second_look_lease(b, dataset) is None
    assert second_look_lease(c, dataset).pk == item.pk
    assert review_agreement(dataset_id=dataset.pk)["pairs"] == []


def test_undoing_a_disagreeing_second_look_restores_the_decision_leased_back(users):
    a, b, _ = users
    dataset, _, images = make_dataset([0.9])
    decided_by(a, images[0], "inappropriate")
    item = second_look_lease(b, dataset)
    review_decision_record(item_id=item.pk, reviewer=b, verdict="appropriate")
    assert item_of(images[0]).state == ReviewItem.State.DISPUTED
    undone, retracted = review_decision_undo(reviewer=b)
    assert retracted.is_second_look and undone.pk == item.pk
    assert undone.state == ReviewItem.State.DECIDED and undone.decided_at is not None
    # Back with B, who may give the second look again (from the same queue).
    assert undone.leased_by_id == b.pk
    assert second_look_lease(b, dataset).pk == item.pk
    review_decision_record(item_id=item.pk, reviewer=b, verdict="inappropriate")
    assert item_of(images[0]).state == ReviewItem.State.DECIDED
    assert review_agreement(dataset_id=dataset.pk)["pairs"][0]["n"] == 1


def test_an_adjudicated_item_stays_decided_after_a_disagreeing_second_look(users, admin_user):
    a, b, c = users
    dataset, _, images = make_dataset([0.9])
    review_settings_update(dataset=dataset, required_verdicts=2)
    item = item_of(images[0])
    review_decision_record(item_id=item.pk, reviewer=a, verdict="inappropriate")
    review_decision_record(item_id=item.pk, reviewer=b, verdict="appropriate")
    review_decision_record(item_id=item.pk, reviewer=admin_user, verdict="appropriate")
    assert second_look_lease(c, dataset).pk == item.pk
    review_decision_record(item_id=item.pk, reviewer=c, verdict="inappropriate")
    assert item_of(images[0]).state == ReviewItem.State.DECIDED
    verdicts = dict(images_with_latest_verdict(dataset_id=dataset.pk).values_list("id", "verdict"))
    assert verdicts[images[0].pk] == "appropriate"  # the admin's word stands
    pairs = {(p["a"], p["b"]): p["n"] for p in review_agreement(dataset_id=dataset.pk)["pairs"]}
    assert pairs == {("a", "b"): 1, ("a", "c"): 1, ("b", "c"): 1}


def test_k2_second_look_disagreeing_with_both_disputes(users, django_user_model):
    a, b, c = users
    dataset, _, images = make_dataset([0.9])
    review_settings_update(dataset=dataset, required_verdicts=2)
    item = item_of(images[0])
    review_decision_record(item_id=item.pk, reviewer=a, verdict="appropriate")
    review_decision_record(item_id=item.pk, reviewer=b, verdict="appropriate")
    assert item_of(images[0]).state == ReviewItem.State.DECIDED
    assert second_look_lease(c, dataset).pk == item.pk
    review_decision_record(item_id=item.pk, reviewer=c, verdict="inappropriate")
    assert item_of(images[0]).state == ReviewItem.State.DISPUTED


def test_an_admins_verdict_on_a_decided_item_stays_an_adjudication(users, admin_user):
    a, _, _ = users
    dataset, _, images = make_dataset([0.9])
    item = decided_by(a, images[0], "inappropriate")
    # Even from the second-look queue: an admin's verdict there settles (overrules) the item.
    assert second_look_lease(admin_user, dataset).pk == item.pk
    decision = review_decision_record(item_id=item.pk, reviewer=admin_user, verdict="appropriate")
    assert decision.is_adjudication and not decision.is_second_look
    assert item_of(images[0]).state == ReviewItem.State.DECIDED
    verdicts = dict(images_with_latest_verdict(dataset_id=dataset.pk).values_list("id", "verdict"))
    assert verdicts[images[0].pk] == "appropriate"
    assert review_agreement(dataset_id=dataset.pk)["pairs"] == []


def test_a_second_look_is_not_copied_onto_decided_duplicates(users):
    a, b, _ = users
    dataset, _, images = make_dataset([0.9, 0.8], hashes=[sha("same")] * 2)
    decided_by(a, images[0])
    assert item_of(images[1]).state == ReviewItem.State.DECIDED  # the copy
    item = second_look_lease(b, dataset)
    decision = review_decision_record(item_id=item.pk, reviewer=b, verdict="appropriate")
    assert decision.propagated_image_ids == []
    assert [s["reason"] for s in decision.skipped_propagation] == ["already decided"]
    assert item_of(images[1 if item.image_id == images[0].pk else 0]).state == "decided"
