"""The uncertain queue over the whole dataset (items below the threshold made on demand,
near-copies skipped), the learn mode's interleaving, and what a rescore does to them."""

from __future__ import annotations

import numpy as np
import pytest

from curation.errors import ValidationFailed
from curation.services.embeddings import embeddings_store
from reviewer.models import Decision, ReviewItem
from reviewer.services import queue as queue_services
from reviewer.services import uncertain as uncertain_services
from reviewer.services.decisions import review_decision_record
from reviewer.services.items import review_items_sync
from reviewer.services.queue import QueueFilters, review_item_batch, review_item_next
from reviewer.services.settings import review_settings_update
from tests.reviewer.factories import make_dataset

pytestmark = pytest.mark.django_db


def drain(user, *, mode, dataset) -> list[ReviewItem]:
    served = []
    while (
        item := review_item_next(reviewer=user, mode=mode, filters=QueueFilters(dataset=dataset))
    ) is not None:
        served.append(item)
        review_decision_record(item_id=item.pk, reviewer=user, verdict="appropriate")
    return served


def test_uncertain_mode_reaches_below_the_threshold(reviewer_user):
    scores = [0.9, 0.7, 0.48, 0.2, 0.45]
    dataset, run, images = make_dataset(scores, threshold=0.5)
    served = drain(reviewer_user, mode="uncertain", dataset=dataset)
    # Nearest the boundary first, flagged or not: 0.48, 0.45, 0.7, 0.2, 0.9.
    assert [item.image_id for item in served] == [images[i].pk for i in (2, 4, 1, 3, 0)]
    below = ReviewItem.objects.filter(dataset=dataset, score__lt=0.5)
    assert below.count() == 3 and all(item.is_uncertain and not item.is_audit for item in below)
    assert ReviewItem.objects.filter(dataset=dataset, is_audit=True).count() == 0


def test_uncertain_items_are_made_a_batch_at_a_time(reviewer_user, monkeypatch):
    monkeypatch.setattr(uncertain_services, "UNCERTAIN_BATCH", 3)
    scores = [0.9] + [0.49 - 0.01 * i for i in range(10)]
    dataset, _, images = make_dataset(scores, threshold=0.5)
    item = review_item_next(
        reviewer=reviewer_user, mode="uncertain", filters=QueueFilters(dataset=dataset)
    )
    assert item.image_id == images[1].pk
    assert ReviewItem.objects.filter(dataset=dataset, is_uncertain=True).count() == 3
    batch = review_item_batch(
        reviewer=reviewer_user, limit=6, mode="uncertain", filters=QueueFilters(dataset=dataset)
    )
    assert len(batch) == 6
    assert [i.image_id for i in batch][:1] == [images[1].pk]  # the held one first


def test_narrowed_uncertain_queue_makes_no_items(reviewer_user):
    dataset, _, images = make_dataset([0.9, 0.45], threshold=0.5)
    filters = QueueFilters(dataset=dataset, score_min=0.0)
    item = review_item_next(reviewer=reviewer_user, mode="uncertain", filters=filters)
    assert item.image_id == images[0].pk
    assert not ReviewItem.objects.filter(is_uncertain=True).exists()


def _store(images, vectors, model_key):
    for image, vector in zip(images, vectors, strict=True):
        v = np.asarray(vector, np.float32)
        embeddings_store(
            model_key=model_key, hashes=[image.sha256], matrix=(v / np.linalg.norm(v))[None]
        )


def test_the_diversity_rule_skips_near_copies(reviewer_user):
    scores = [0.9, 0.49, 0.48, 0.47, 0.30]
    dataset, run, images = make_dataset(scores, threshold=0.5)
    # 0.49, 0.48 and 0.47 are near-copies of one another; 0.30 is different.
    _store(images, [[1, 0], [0, 1], [0.01, 1], [0.02, 1], [1, 0.2]], run.model_key)
    served = drain(reviewer_user, mode="uncertain", dataset=dataset)
    uncertain = [item.image_id for item in served if item.score < 0.5]
    assert images[2].pk not in uncertain[:2] and images[3].pk not in uncertain[:2]
    assert uncertain[:2] == [images[1].pk, images[4].pk]

    other, run2, images2 = make_dataset(scores, threshold=0.5)
    _store(images2, [[1, 0], [0, 1], [0.01, 1], [0.02, 1], [1, 0.2]], run2.model_key)
    review_settings_update(dataset=other, uncertain_diverse=False)
    served = drain(reviewer_user, mode="uncertain", dataset=other)
    assert [i.image_id for i in served if i.score < 0.5][:3] == [p.pk for p in images2[1:4]]


@pytest.mark.parametrize(("share", "expected"), [(0.0, "score"), (1.0, "uncertain")])
def test_learn_mode_at_the_ends_of_its_ratio(reviewer_user, share, expected):
    scores = [0.9, 0.7, 0.48, 0.2, 0.45, 0.55]
    dataset, _, images = make_dataset(scores, threshold=0.5)
    review_settings_update(dataset=dataset, learn_uncertain_share=share)
    served = [item.image_id for item in drain(reviewer_user, mode="learn", dataset=dataset)]
    if expected == "score":  # highest score first, then below the threshold when done
        assert served[:3] == [images[i].pk for i in (0, 1, 5)]
        assert served[3:] == [images[i].pk for i in (2, 4, 3)]
    else:
        assert served == [images[i].pk for i in (2, 4, 5, 1, 3, 0)]


def test_learn_mode_interleaves_at_its_ratio(reviewer_user):
    queue_services.audit_random.seed(3)
    scores = [0.99 - 0.004 * i for i in range(100)] + [0.49 - 0.004 * i for i in range(100)]
    dataset, _, _ = make_dataset(scores, threshold=0.5)
    review_settings_update(dataset=dataset, learn_uncertain_share=0.25)
    served = []
    for _ in range(80):
        item = review_item_next(
            reviewer=reviewer_user, mode="learn", filters=QueueFilters(dataset=dataset)
        )
        served.append(item)
        review_decision_record(item_id=item.pk, reviewer=reviewer_user, verdict="appropriate")
    from_uncertain = sum(item.score < 0.5 or item.margin < 0.05 for item in served)
    assert 8 <= from_uncertain <= 35
    highest = [item.score for item in served if item.score >= 0.5 and item.margin >= 0.05]
    assert highest == sorted(highest, reverse=True)


def test_learn_ratio_out_of_range_is_refused(reviewer_user):
    dataset, _, _ = make_dataset([0.9])
    for bad in (-0.1, 1.5, "x", float("nan")):
        with pytest.raises(ValidationFailed):
            review_settings_update(dataset=dataset, learn_uncertain_share=bad)
    with pytest.raises(ValidationFailed):
        review_settings_update(dataset=dataset, uncertain_diverse="yes")


def test_a_rescore_drops_untouched_uncertain_items_and_keeps_the_others(reviewer_user, admin_user):
    scores = [0.9, 0.49, 0.48, 0.47, 0.46]
    dataset, run, images = make_dataset(scores, threshold=0.5)
    first = review_item_next(
        reviewer=reviewer_user, mode="uncertain", filters=QueueFilters(dataset=dataset)
    )
    review_decision_record(item_id=first.pk, reviewer=reviewer_user, verdict="inappropriate")
    held = review_item_next(
        reviewer=admin_user, mode="uncertain", filters=QueueFilters(dataset=dataset)
    )
    assert {first.image_id, held.image_id} == {images[1].pk, images[2].pk}
    assert ReviewItem.objects.filter(is_uncertain=True).count() == 4
    # A new version: image 4 jumps above the threshold, the rest move down.
    review_items_sync(
        run=run,
        scores={images[0].pk: 0.95, images[1].pk: 0.2, images[2].pk: 0.1, images[3].pk: 0.3,
                images[4].pk: 0.6},
    )  # fmt: skip
    left = dict(ReviewItem.objects.filter(dataset=dataset).values_list("image_id", "state"))
    assert left[images[1].pk] == ReviewItem.State.DECIDED  # its verdict stays
    assert left[images[2].pk] == ReviewItem.State.PENDING  # leased: not pulled away
    assert images[3].pk not in left  # untouched: dropped, picked again on demand if nearest
    assert left[images[4].pk] == ReviewItem.State.PENDING  # now flagged
    assert Decision.objects.filter(item__image=images[1]).exists()


def test_learn_mode_goes_on_below_the_threshold_once_the_flagged_part_is_done(reviewer_user):
    dataset, _, images = make_dataset([0.9, 0.45, 0.3], threshold=0.5)
    review_settings_update(dataset=dataset, learn_uncertain_share=0.0)
    served = [item.image_id for item in drain(reviewer_user, mode="learn", dataset=dataset)]
    assert served == [images[0].pk, images[1].pk, images[2].pk]
