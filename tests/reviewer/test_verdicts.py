"""k independent verdicts, adjudication, agreement, duplicate propagation, undo, categories."""

from __future__ import annotations

import numpy as np
import pytest

from curation.errors import StateConflict, ValidationFailed
from curation.models import Export
from curation.services.embeddings import embeddings_store
from curation.services.exports import export_create
from labels.exports import export_rows
from labels.selectors import labelled_embeddings
from reviewer.measures import cohen_kappa
from reviewer.models import Decision, DecisionRetraction, ReviewItem
from reviewer.selectors.stats import review_agreement
from reviewer.selectors.verdicts import image_history, images_with_latest_verdict
from reviewer.services.decisions import review_decision_record, review_decision_undo
from reviewer.services.queue import QueueFilters, review_item_next
from reviewer.services.settings import review_settings_update
from tests.reviewer.factories import item_of, make_dataset, sha

pytestmark = pytest.mark.django_db


@pytest.fixture
def users(django_user_model):
    return [django_user_model.objects.create_user(username=f"u{i}", password="x") for i in range(3)]


def test_k2_agreement_decides(users):
    dataset, _, images = make_dataset([0.9])
    review_settings_update(dataset=dataset, required_verdicts=2)
    a, b, _ = users
    item = review_item_next(reviewer=a, filters=QueueFilters(dataset=dataset))
    review_decision_record(item_id=item.pk, reviewer=a, verdict="inappropriate", category="weapons")
    item.refresh_from_db()
    assert item.state == ReviewItem.State.PENDING and item.leased_by is None
    # The first reviewer never sees it again, and may not decide it twice.
    assert review_item_next(reviewer=a, filters=QueueFilters(dataset=dataset)) is None
    with pytest.raises(StateConflict, match="already gave a verdict"):
        review_decision_record(item_id=item.pk, reviewer=a, verdict="appropriate")
    assert review_item_next(reviewer=b, filters=QueueFilters(dataset=dataset)).pk == item.pk
    review_decision_record(item_id=item.pk, reviewer=b, verdict="inappropriate")
    item.refresh_from_db()
    assert item.state == ReviewItem.State.DECIDED and item.decided_at is not None


def test_k2_disagreement_is_disputed_until_an_admin_adjudicates(users, admin_user):
    dataset, _, images = make_dataset([0.9])
    review_settings_update(dataset=dataset, required_verdicts=2)
    a, b, c = users
    item = item_of(images[0])
    review_decision_record(item_id=item.pk, reviewer=a, verdict="inappropriate")
    review_decision_record(item_id=item.pk, reviewer=b, verdict="appropriate")
    item.refresh_from_db()
    assert item.state == ReviewItem.State.DISPUTED
    with pytest.raises(StateConflict, match="admin"):
        review_decision_record(item_id=item.pk, reviewer=c, verdict="appropriate")
    decision = review_decision_record(item_id=item.pk, reviewer=admin_user, verdict="appropriate")
    assert decision.is_adjudication
    item.refresh_from_db()
    assert item.state == ReviewItem.State.DECIDED
    verdicts = dict(images_with_latest_verdict(dataset_id=dataset.pk).values_list("id", "verdict"))
    assert verdicts[images[0].pk] == "appropriate"
    # Undoing the adjudication puts the item back in dispute, leased to the admin.
    undone, _ = review_decision_undo(reviewer=admin_user)
    assert undone.state == ReviewItem.State.DISPUTED and undone.leased_by_id == admin_user.pk


def test_lowering_k_settles_waiting_items(users):
    dataset, _, images = make_dataset([0.9, 0.8])
    review_settings_update(dataset=dataset, required_verdicts=2)
    review_decision_record(item_id=item_of(images[0]).pk, reviewer=users[0], verdict="appropriate")
    assert item_of(images[0]).state == ReviewItem.State.PENDING
    review_settings_update(dataset=dataset, required_verdicts=1)
    assert item_of(images[0]).state == ReviewItem.State.DECIDED
    assert item_of(images[1]).state == ReviewItem.State.PENDING


def test_cohen_kappa_hand_computed():
    # 20 items: both yes 8, a yes / b no 2, a no / b yes 3, both no 7.
    a = ["y"] * 8 + ["y"] * 2 + ["n"] * 3 + ["n"] * 7
    b = ["y"] * 8 + ["n"] * 2 + ["y"] * 3 + ["n"] * 7
    # p_o = 15/20 = 0.75; p_e = 0.5 * 0.55 + 0.5 * 0.45 = 0.5; kappa = 0.25 / 0.5 = 0.5
    assert cohen_kappa(a, b) == pytest.approx(0.5)
    assert cohen_kappa(["y", "n"], ["y", "n"]) == pytest.approx(1.0)
    assert cohen_kappa(["y", "y"], ["y", "y"]) is None
    assert cohen_kappa([], []) is None


def test_agreement_per_pair_and_overall_from_verdicts(users):
    dataset, _, images = make_dataset([0.9 - 0.01 * i for i in range(20)])
    review_settings_update(dataset=dataset, required_verdicts=2)
    a, b, _ = users
    va = ["inappropriate"] * 10 + ["appropriate"] * 10
    vb = ["inappropriate"] * 8 + ["appropriate"] * 2 + ["inappropriate"] * 3 + ["appropriate"] * 7
    for image, x, y in zip(images, va, vb, strict=True):
        review_decision_record(item_id=item_of(image).pk, reviewer=a, verdict=x)
        review_decision_record(item_id=item_of(image).pk, reviewer=b, verdict=y)
    agreement = review_agreement(dataset_id=dataset.pk)
    (pair,) = agreement["pairs"]
    assert {k: pair[k] for k in ("a", "b", "n")} == {"a": "u0", "b": "u1", "n": 20}
    assert pair["kappa"] == pytest.approx(0.5)
    assert pair["low"] < 0.5 < pair["high"]  # the bootstrap interval brackets it
    assert agreement["overall"] == pytest.approx(0.5)
    assert ReviewItem.objects.filter(dataset=dataset, state="disputed").count() == 5


def test_verdict_applies_to_identical_images_of_the_same_dataset_only(reviewer_user):
    same = sha("same")
    dataset, _, images = make_dataset([0.9, 0.8, 0.7, 0.1], hashes=[same, same, sha("other"), same])
    other_dataset, _, other_images = make_dataset([0.9], hashes=[same])
    item = review_item_next(reviewer=reviewer_user, filters=QueueFilters(dataset=dataset))
    decision = review_decision_record(
        item_id=item.pk, reviewer=reviewer_user, verdict="inappropriate", category="weapons"
    )
    assert decision.propagated_image_ids == [images[1].pk, images[3].pk]
    copies = Decision.objects.filter(propagated_from=decision).order_by("image_id")
    assert [(c.image_id, c.verdict, c.category, c.reviewer_id) for c in copies] == [
        (images[1].pk, "inappropriate", "weapons", reviewer_user.pk),
        (images[3].pk, "inappropriate", "weapons", reviewer_user.pk),
    ]
    assert item_of(images[1]).state == ReviewItem.State.DECIDED
    # The unflagged identical image got an item, decided, with its own score.
    assert item_of(images[3]).state == ReviewItem.State.DECIDED
    assert item_of(images[3]).score == pytest.approx(0.1)
    assert item_of(images[2]).state == ReviewItem.State.PENDING
    assert item_of(other_images[0]).state == ReviewItem.State.PENDING
    # Undo takes the copies back too.
    review_decision_undo(reviewer=reviewer_user)
    assert DecisionRetraction.objects.count() == 3
    assert item_of(images[1]).state == ReviewItem.State.PENDING
    assert item_of(images[3]).state == ReviewItem.State.WITHDRAWN  # below the threshold


def test_apply_to_near_duplicates_is_validated(reviewer_user):
    phashes = ["0000000000000000", "0000000000000007", "00000000000000ff", "ffff000000000000"]
    dataset, _, images = make_dataset([0.9, 0.2, 0.3, 0.4], phashes=phashes)
    _, _, foreign = make_dataset([0.2], phashes=["0000000000000001"])
    item = item_of(images[0])
    for bad in ([images[2].pk], [foreign[0].pk], [images[3].pk]):
        with pytest.raises(ValidationFailed, match="Not near-duplicates"):
            review_decision_record(
                item_id=item.pk, reviewer=reviewer_user, verdict="appropriate", apply_to=bad
            )
    assert not Decision.objects.exists()
    decision = review_decision_record(
        item_id=item.pk, reviewer=reviewer_user, verdict="appropriate", apply_to=[images[1].pk]
    )
    assert decision.propagated_image_ids == [images[1].pk]
    copy = Decision.objects.get(image=images[1])
    assert copy.propagated_from_id == decision.pk and copy.verdict == "appropriate"
    # A wider distance setting admits the farther one.
    review_settings_update(dataset=dataset, near_duplicate_distance=8)
    review_decision_undo(reviewer=reviewer_user)
    decision = review_decision_record(
        item_id=item.pk, reviewer=reviewer_user, verdict="appropriate",
        apply_to=[images[1].pk, images[2].pk],
    )  # fmt: skip
    assert decision.propagated_image_ids == [images[1].pk, images[2].pk]


def test_skip_cannot_apply_to_others(reviewer_user):
    dataset, _, images = make_dataset([0.9, 0.2], phashes=["0" * 16, "0" * 15 + "1"])
    with pytest.raises(ValidationFailed):
        review_decision_record(
            item_id=item_of(images[0]).pk, reviewer=reviewer_user, verdict="skip",
            apply_to=[images[1].pk],
        )  # fmt: skip


def test_undo_reopens_the_item_for_the_reviewer_and_keeps_the_history(reviewer_user):
    dataset, _, images = make_dataset([0.9, 0.8])
    item = review_item_next(reviewer=reviewer_user, filters=QueueFilters(dataset=dataset))
    decision = review_decision_record(
        item_id=item.pk, reviewer=reviewer_user, verdict="inappropriate"
    )
    undone, retracted = review_decision_undo(reviewer=reviewer_user)
    assert retracted.pk == decision.pk and undone.pk == item.pk
    assert undone.state == ReviewItem.State.PENDING and undone.leased_by_id == reviewer_user.pk
    assert (
        review_item_next(reviewer=reviewer_user, filters=QueueFilters(dataset=dataset)).pk
        == item.pk
    )
    history = image_history(image_id=images[0].pk)
    assert [(h["verdict"], h["retracted"]) for h in history] == [("inappropriate", True)]
    review_decision_record(item_id=item.pk, reviewer=reviewer_user, verdict="appropriate")
    history = image_history(image_id=images[0].pk)
    assert [(h["verdict"], h["retracted"]) for h in history] == [
        ("inappropriate", True), ("appropriate", False)
    ]  # fmt: skip
    review_decision_undo(reviewer=reviewer_user)
    with pytest.raises(StateConflict, match="nothing to undo"):
        review_decision_undo(reviewer=reviewer_user)


def test_undo_restores_the_previous_verdict_for_training_and_exports(reviewer_user, admin_user):
    dataset, run, images = make_dataset([0.9, 0.8, 0.7, 0.6])
    for i, image in enumerate(images):
        embeddings_store(
            model_key=run.model_key,
            hashes=[image.sha256],
            matrix=np.array([[1.0, float(i)]], np.float32) / np.hypot(1, i),
        )
    for image, verdict in zip(
        images, ["inappropriate", "inappropriate", "appropriate", "appropriate"], strict=True
    ):
        review_decision_record(item_id=item_of(image).pk, reviewer=reviewer_user, verdict=verdict)
    # An admin overrules the first image; then thinks better of it.
    review_decision_record(
        item_id=item_of(images[0]).pk, reviewer=admin_user, verdict="appropriate"
    )

    def labels():
        data = labelled_embeddings(dataset_id=dataset.pk, model_key=run.model_key, dim=2)
        return dict(zip(data.image_ids, data.labels.tolist(), strict=True))

    def exported():
        export = export_create(dataset=dataset, format=Export.Format.CSV, queue=False)
        return {row["sha256"] for row in export_rows(export=export)}

    assert labels()[images[0].pk] == 0
    assert exported() == {images[1].sha256}
    review_decision_undo(reviewer=admin_user)
    assert labels()[images[0].pk] == 1
    assert exported() == {images[0].sha256, images[1].sha256}
    assert item_of(images[0]).state == ReviewItem.State.DECIDED


def test_categories_are_validated_against_the_taxonomy(reviewer_user):
    dataset, _, images = make_dataset([0.9, 0.8])
    item = item_of(images[0])
    with pytest.raises(ValidationFailed, match="Unknown category"):
        review_decision_record(
            item_id=item.pk, reviewer=reviewer_user, verdict="inappropriate", category="cats"
        )
    with pytest.raises(ValidationFailed, match="confirming"):
        review_decision_record(
            item_id=item.pk, reviewer=reviewer_user, verdict="appropriate", category="weapons"
        )
    review_settings_update(dataset=dataset, categories=["cats", "dogs"])
    decision = review_decision_record(
        item_id=item.pk, reviewer=reviewer_user, verdict="inappropriate", category="cats"
    )
    assert decision.category == "cats"
    with pytest.raises(ValidationFailed):
        review_settings_update(dataset=dataset, categories=["a", "a"])
    with pytest.raises(ValidationFailed):
        review_settings_update(dataset=dataset, categories=[])
    with pytest.raises(ValidationFailed):
        review_settings_update(dataset=dataset, required_verdicts=0)


def test_only_settled_items_have_a_latest_verdict(users, admin_user):
    dataset, _, images = make_dataset([0.9, 0.8])
    review_settings_update(dataset=dataset, required_verdicts=2)
    a, b, _ = users

    def verdicts():
        return dict(images_with_latest_verdict(dataset_id=dataset.pk).values_list("id", "verdict"))

    for image in images:
        review_decision_record(item_id=item_of(image).pk, reviewer=a, verdict="inappropriate")
    assert verdicts() == {images[0].pk: None, images[1].pk: None}  # waiting for a second verdict
    review_decision_record(item_id=item_of(images[0]).pk, reviewer=b, verdict="inappropriate")
    review_decision_record(item_id=item_of(images[1]).pk, reviewer=b, verdict="appropriate")
    assert verdicts() == {images[0].pk: "inappropriate", images[1].pk: None}  # [1] is disputed
    review_decision_record(
        item_id=item_of(images[1]).pk, reviewer=admin_user, verdict="appropriate"
    )
    assert verdicts() == {images[0].pk: "inappropriate", images[1].pk: "appropriate"}
