"""Undo after a bulk verdict (grid view): one undo retracts the whole bulk action, append-only."""

from __future__ import annotations

import pytest

from curation.errors import StateConflict
from reviewer.models import Decision, DecisionRetraction, ReviewItem
from reviewer.selectors.verdicts import image_history
from reviewer.services.decisions import (
    review_action_undo,
    review_decision_bulk,
    review_decision_record,
    review_decision_undo,
)
from reviewer.services.queue import QueueFilters, review_item_batch, review_item_next
from reviewer.services.settings import review_settings_update
from tests.reviewer.factories import item_of, make_dataset, sha

pytestmark = pytest.mark.django_db


@pytest.fixture
def users(django_user_model):
    return [django_user_model.objects.create_user(username=n, password="x") for n in "ab"]


def test_undo_retracts_every_verdict_of_a_bulk_and_gives_all_items_back(reviewer_user):
    dataset, _, images = make_dataset([0.9, 0.8, 0.7, 0.6])
    items = review_item_batch(
        reviewer=reviewer_user, limit=4, filters=QueueFilters(dataset=dataset)
    )
    chosen = [items[2].pk, items[0].pk, items[1].pk]  # the grid's order
    result = review_decision_bulk(item_ids=chosen, reviewer=reviewer_user, verdict="appropriate")
    assert result == {"decided": chosen, "conflicts": []}
    bulk = list(Decision.objects.filter(reviewer=reviewer_user).order_by("created_at", "id"))
    assert len({d.bulk_action for d in bulk}) == 1 and bulk[0].bulk_action is not None

    undone = review_action_undo(reviewer=reviewer_user)
    assert [item.pk for item in undone.items] == chosen
    assert [d.pk for d in undone.decisions] == [d.pk for d in bulk]
    for item in undone.items:
        assert item.state == ReviewItem.State.PENDING and item.leased_by_id == reviewer_user.pk
    # Append-only: three retractions, the verdicts stay in the history.
    assert DecisionRetraction.objects.count() == 3 and Decision.objects.count() == 3
    for pk in chosen:
        history = image_history(image_id=ReviewItem.objects.get(pk=pk).image_id)
        assert [(h["verdict"], h["retracted"]) for h in history] == [("appropriate", True)]
    with pytest.raises(StateConflict, match="nothing to undo"):
        review_action_undo(reviewer=reviewer_user)


def test_a_single_verdict_after_a_bulk_is_undone_alone_then_the_bulk(reviewer_user):
    dataset, _, images = make_dataset([0.9, 0.8, 0.7, 0.6])
    items = [item_of(image) for image in images]
    review_decision_bulk(
        item_ids=[items[0].pk, items[1].pk, items[2].pk], reviewer=reviewer_user,
        verdict="inappropriate",
    )  # fmt: skip
    single = review_decision_record(item_id=items[3].pk, reviewer=reviewer_user, verdict="skip")
    item, decision = review_decision_undo(reviewer=reviewer_user)
    assert (item.pk, decision.pk) == (items[3].pk, single.pk)
    assert DecisionRetraction.objects.count() == 1
    # The wrapper answers the latest decision of the bulk and its item; all three are undone.
    item, decision = review_decision_undo(reviewer=reviewer_user)
    assert item.pk == items[2].pk and decision.item_id == items[2].pk
    assert DecisionRetraction.objects.count() == 4
    assert {item_of(image).state for image in images} == {ReviewItem.State.PENDING}


def test_refused_items_are_not_part_of_the_bulk_action(reviewer_user, users):
    a, _ = users
    dataset, _, images = make_dataset([0.9, 0.8, 0.7])
    held = review_item_next(reviewer=a, filters=QueueFilters(dataset=dataset))
    ids = [item_of(image).pk for image in images]
    result = review_decision_bulk(item_ids=ids, reviewer=reviewer_user, verdict="appropriate")
    assert [c["id"] for c in result["conflicts"]] == [held.pk]
    undone = review_action_undo(reviewer=reviewer_user)
    assert [item.pk for item in undone.items] == [pk for pk in ids if pk != held.pk]
    assert item_of(images[0]).leased_by_id == a.pk  # A's lease is untouched


def test_nothing_is_undone_while_another_reviewer_holds_an_item_of_the_bulk(reviewer_user, users):
    a, _ = users
    dataset, _, images = make_dataset([0.9, 0.8, 0.7])
    review_settings_update(dataset=dataset, required_verdicts=2)
    ids = [item_of(image).pk for image in images]
    review_decision_bulk(item_ids=ids, reviewer=reviewer_user, verdict="appropriate")
    held = review_item_next(reviewer=a, filters=QueueFilters(dataset=dataset))  # A's turn on one
    with pytest.raises(StateConflict, match="Another reviewer holds 1 of these 3 items now"):
        review_action_undo(reviewer=reviewer_user)
    assert not DecisionRetraction.objects.exists()
    review_decision_record(item_id=held.pk, reviewer=a, verdict="appropriate")
    # A's verdict stands; the bulk is undone once nobody else holds its items.
    undone = review_action_undo(reviewer=reviewer_user)
    assert len(undone.items) == 3
    assert item_of(ReviewItem.objects.get(pk=held.pk).image).state == ReviewItem.State.PENDING
    assert Decision.objects.filter(item_id=held.pk, retraction__isnull=True).count() == 1


def test_undoing_a_bulk_takes_back_the_copies_on_identical_images(reviewer_user):
    same = sha("same")
    dataset, _, images = make_dataset([0.9, 0.8, 0.7, 0.2], hashes=[same, sha("b"), sha("c"), same])
    ids = [item_of(image).pk for image in images[:3]]
    review_decision_bulk(item_ids=ids, reviewer=reviewer_user, verdict="inappropriate")
    assert item_of(images[3]).state == ReviewItem.State.DECIDED  # the copy
    undone = review_action_undo(reviewer=reviewer_user)
    assert [item.pk for item in undone.items] == ids
    assert DecisionRetraction.objects.count() == 4
    assert item_of(images[3]).state == ReviewItem.State.WITHDRAWN  # below the threshold


def test_a_bulk_skip_is_undone_at_once(reviewer_user):
    dataset, _, images = make_dataset([0.9, 0.8, 0.7])
    ids = [item_of(image).pk for image in images]
    review_decision_bulk(item_ids=ids, reviewer=reviewer_user, verdict="skip")
    assert review_item_next(reviewer=reviewer_user, filters=QueueFilters(dataset=dataset)) is None
    undone = review_action_undo(reviewer=reviewer_user)
    assert [d.verdict for d in undone.decisions] == ["skip"] * 3
    assert {item.leased_by_id for item in undone.items} == {reviewer_user.pk}


def test_two_bulks_are_two_actions(reviewer_user):
    dataset, _, images = make_dataset([0.9, 0.8, 0.7, 0.6])
    ids = [item_of(image).pk for image in images]
    review_decision_bulk(item_ids=ids[:2], reviewer=reviewer_user, verdict="appropriate")
    review_decision_bulk(item_ids=ids[2:], reviewer=reviewer_user, verdict="inappropriate")
    assert [item.pk for item in review_action_undo(reviewer=reviewer_user).items] == ids[2:]
    assert [item.pk for item in review_action_undo(reviewer=reviewer_user).items] == ids[:2]
