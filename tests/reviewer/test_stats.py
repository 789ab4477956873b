"""The numbers admins read, on a hand-built dataset."""

from __future__ import annotations

import pytest
from django.utils import timezone

from reviewer.measures import wilson_interval
from reviewer.models import ReviewItem
from reviewer.selectors.stats import dataset_review_stats
from reviewer.services.decisions import review_decision_record
from tests.reviewer.factories import item_of, make_dataset

pytestmark = pytest.mark.django_db

SCORES = [0.92, 0.87, 0.76, 0.66, 0.55, 0.45, 0.42, 0.33, 0.21, 0.12, 0.03]


def test_wilson_interval_known_values():
    low, high = wilson_interval(3, 4)
    assert (round(low, 4), round(high, 4)) == (0.3006, 0.9544)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)


def test_dataset_stats(reviewer_user):
    dataset, run, images = make_dataset(SCORES, threshold=0.5)
    verdicts = {0: "inappropriate", 1: "inappropriate", 2: "appropriate", 3: "inappropriate"}
    for index, verdict in verdicts.items():
        review_decision_record(
            item_id=item_of(images[index]).pk, reviewer=reviewer_user, verdict=verdict
        )
    # Two audited unflagged images: one confirmed (missed by the model), one rejected.
    for index, verdict in ((6, "inappropriate"), (8, "appropriate")):
        item = ReviewItem.objects.create(
            dataset=dataset, image=images[index], score=SCORES[index], run=run, is_audit=True
        )
        review_decision_record(item_id=item.pk, reviewer=reviewer_user, verdict=verdict)

    stats = dataset_review_stats(dataset=dataset)
    counts = stats["counts"]
    assert (counts["scored"], counts["flagged"], counts["reviewed"]) == (11, 5, 6)
    assert (counts["confirmed"], counts["rejected"], counts["audited"]) == (4, 2, 2)
    assert (counts["pending"], counts["decided"]) == (1, 6)

    # Flagged: every reviewed score bin holds one flagged image, reviewed (3 of 4 confirmed);
    # the fifth flagged image (0.55) sits in a bin nobody reviewed and counts as the nearest
    # reviewed bin's (0.66, confirmed): 4 of 5.
    precision = stats["precision"]
    assert precision["n"] == 4 and precision["estimate"] == pytest.approx(0.8)
    assert (precision["flagged"], precision["flagged_covered"]) == (5, 4)
    assert 0.0 <= precision["low"] <= 0.8 <= precision["high"] <= 1.0

    missed = stats["missed"]
    assert missed["n_audited"] == 2 and missed["rate"] == pytest.approx(0.5)
    assert missed["unflagged"] == 6 and missed["estimated_missed"] == 3
    low, high = wilson_interval(1, 2)
    assert missed["low"] == pytest.approx(low) and missed["high"] == pytest.approx(high)

    # Recall: 4 estimated confirmed flagged against 4 + 6 * 0.5 in the unflagged part.
    recall = stats["recall"]
    assert recall["estimate"] == pytest.approx(4 / 7) and recall["n_audited"] == 2
    assert recall["low"] <= 4 / 7 <= recall["high"]
    assert stats["estimator"]["n_audited"] == 2 and stats["estimator"]["n_below_reviewed"] == 0

    histogram = stats["histogram"]
    assert len(histogram["bins"]) == 21 and histogram["bins"][0] == 0 and histogram["bins"][-1] == 1
    confirmed = [0] * 20
    for b in (18, 17, 13, 8):
        confirmed[b] = 1
    rejected = [0] * 20
    rejected[15] = rejected[4] = 1
    unreviewed = [0] * 20
    for b in (11, 9, 6, 2, 0):
        unreviewed[b] = 1
    assert histogram["confirmed"] == confirmed
    assert histogram["rejected"] == rejected
    assert histogram["unreviewed"] == unreviewed

    rows = {row["threshold"]: row for row in stats["thresholds"]}
    assert [row["threshold"] for row in stats["thresholds"]] == [
        round(0.05 * i, 2) for i in range(1, 20)
    ]
    assert rows[0.5]["precision"] == pytest.approx(0.8)
    assert rows[0.5]["recall"] == pytest.approx(4 / 7)
    assert rows[0.5]["queue_size"] == 5 and rows[0.5]["n_reviewed_above"] == 4
    # Below the threshold recall rests on the audit sample: no flattering 1.000 where no
    # audited image lies between the threshold and the current one.
    assert rows[0.45]["recall"] == pytest.approx(4 / 7) and rows[0.45]["queue_size"] == 6
    assert rows[0.3]["recall"] == pytest.approx(1.0)
    assert rows[0.3]["precision"] == pytest.approx(7 / 8)
    assert rows[0.05]["precision"] == pytest.approx(7 / 11) and rows[0.05]["recall"] == 1.0
    assert rows[0.05]["queue_size"] == 10
    assert rows[0.9]["precision"] == 1.0 and rows[0.9]["recall"] == pytest.approx(1 / 7)
    assert rows[0.9]["queue_size"] == 1
    assert rows[0.95]["precision"] is None and rows[0.95]["recall"] == 0.0
    assert rows[0.95]["queue_size"] == 0

    assert stats["throughput"] == [
        {"reviewer": "reviewer", "day": timezone.now().date(), "verdicts": 6}
    ]
    assert stats["agreement"]["overall"] is None and stats["agreement"]["pairs"] == []
    assert stats["agreement"]["fleiss"]["n"] == 0 and stats["agreement"]["fleiss"]["kappa"] is None
    assert stats["forecast"]["pending"] == 1
    assert stats["policy"]["auto_retrain_every"] is None


def test_stats_for_a_prompt_version_use_that_versions_run(reviewer_user):
    dataset, run, images = make_dataset([0.9, 0.2])
    from curation.models import ScoringRun
    from tests.reviewer.factories import make_version

    other = make_version(name="other")
    assert dataset_review_stats(dataset=dataset, version=other)["counts"]["scored"] == 0
    ScoringRun.objects.filter(pk=run.pk).update(prompt_version=other)
    assert dataset_review_stats(dataset=dataset, version=other)["counts"]["scored"] == 2


def test_images_reviewed_below_the_threshold_outside_the_audit_count_as_themselves(
    reviewer_user,
):
    dataset, run, images = make_dataset([0.9, 0.45, 0.2, 0.1], threshold=0.5)
    review_decision_record(
        item_id=item_of(images[0]).pk, reviewer=reviewer_user, verdict="inappropriate"
    )
    near = ReviewItem.objects.create(
        dataset=dataset, image=images[1], score=0.45, margin=0.05, run=run, is_uncertain=True
    )
    review_decision_record(item_id=near.pk, reviewer=reviewer_user, verdict="inappropriate")
    audit = ReviewItem.objects.create(
        dataset=dataset, image=images[2], score=0.2, run=run, is_audit=True
    )
    review_decision_record(item_id=audit.pk, reviewer=reviewer_user, verdict="appropriate")

    stats = dataset_review_stats(dataset=dataset)
    # Unflagged: 3 images; the uncertain one is known (confirmed), the audit sample (0 of 1)
    # stands for the other 2.
    assert stats["missed"]["rate"] == pytest.approx(1 / 3)
    assert stats["missed"]["estimated_missed"] == 1
    assert stats["recall"]["estimate"] == pytest.approx(0.5)
    assert stats["estimator"]["n_below_reviewed"] == 1
    # The uncertain verdict never passes for an audit result.
    assert stats["counts"]["audited"] == 1
