"""The estimators behind the stats page, on data whose truth is known (no database)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from reviewer.estimates import (
    UNWEIGHTED,
    StratifiedEstimator,
    WeightedSample,
    active_review_rate,
    cohen_kappa_interval,
    fleiss_kappa,
    fleiss_kappa_interval,
    learning_curve_forecast,
    proportion_interval,
)
from reviewer.measures import wilson_interval

BINS = 20


def _population(seed: int = 3, n: int = 20_000):
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.06).astype(np.int64)
    scores = np.clip(rng.normal(0.3 + 0.35 * labels, 0.15), 0.0, 0.999)
    return scores, labels


def _sample(scores, labels, *, threshold, reviewed_flagged, audited, extra_below=0, seed=4):
    """Reviewers took the `reviewed_flagged` highest flagged scores (not random), the audit
    `audited` random unflagged images, and the uncertain queue `extra_below` images just
    below the threshold."""
    rng = np.random.default_rng(seed)
    flagged = np.flatnonzero(scores >= threshold)
    unflagged = np.flatnonzero(scores < threshold)
    top = flagged[np.argsort(-scores[flagged])][:reviewed_flagged]
    audit = rng.choice(unflagged, size=audited, replace=False)
    rest = np.setdiff1d(unflagged, audit)
    near = rest[np.argsort(threshold - scores[rest])][:extra_below]
    picked = np.concatenate([top, audit, near])
    bins = np.minimum(BINS - 1, np.floor(scores * BINS)).astype(np.int64)
    population = np.array(
        [int(((bins == b) & (scores >= threshold)).sum()) for b in range(BINS)] + [unflagged.size]
    )
    strata = np.concatenate([bins[top], np.full(audit.size, BINS), np.full(near.size, UNWEIGHTED)])
    return WeightedSample(
        scores=scores[picked],
        labels=labels[picked],
        strata=strata,
        population=population,
        unflagged_stratum=BINS,
    )


def test_recall_and_precision_match_the_truth_within_their_intervals():
    scores, labels = _population()
    threshold = 0.55
    sample = _sample(
        scores, labels, threshold=threshold, reviewed_flagged=1200, audited=1500, extra_below=200
    )
    thresholds = [0.35, 0.45, threshold, 0.7]
    rows = StratifiedEstimator(sample, thresholds).precision_recall()
    covered = sample.population[
        np.unique(sample.strata[(sample.strata >= 0) & (sample.strata < BINS)])
    ]
    assert covered.sum() > 0
    for row in rows:
        t = row["threshold"]
        above = scores >= t
        true_recall = labels[above].sum() / labels.sum()
        assert row["recall_low"] <= true_recall <= row["recall_high"], row
        assert row["recall_high"] - row["recall_low"] < 0.3
    # Below the threshold, recall is not the flattering 1.0 of reviewed-only counting.
    low_row = rows[0]
    assert low_row["recall"] < 0.99
    reviewed_only = sample.labels[sample.scores >= 0.35].sum() / sample.labels.sum()
    assert reviewed_only == 1.0 or reviewed_only > low_row["recall"]


def test_every_stratum_known_exactly_gives_the_exact_figures():
    scores = np.array([0.9, 0.8, 0.2, 0.1])
    labels = np.array([1, 0, 1, 0])
    sample = WeightedSample(
        scores=scores,
        labels=labels,
        strata=np.array([0, 0, 1, 1]),
        population=np.array([2, 10]),
        unflagged_stratum=1,
    )
    [row] = StratifiedEstimator(sample, [0.5]).precision_recall()
    # TP = 2 * 1/2 = 1, FN = 10 * 1/2 = 5.
    assert row["precision"] == pytest.approx(0.5) and row["recall"] == pytest.approx(1 / 6)
    assert row["n_reviewed_above"] == 2


def test_without_an_audit_sample_recall_is_unknown():
    sample = WeightedSample(
        scores=np.array([0.9, 0.8]),
        labels=np.array([1, 0]),
        strata=np.array([0, 0]),
        population=np.array([2, 100]),
        unflagged_stratum=1,
    )
    [row] = StratifiedEstimator(sample, [0.5]).precision_recall()
    assert row["recall"] is None and row["recall_low"] is None
    assert row["precision"] == pytest.approx(0.5)


def test_proportion_interval_is_wilson():
    assert proportion_interval(3, 4) == pytest.approx(wilson_interval(3, 4))
    assert proportion_interval(0, 0) == (None, None)


def test_cohen_kappa_is_scikit_learns_with_an_interval():
    rng = np.random.default_rng(1)
    a = rng.choice(["appropriate", "inappropriate"], size=200).tolist()
    b = [
        x if rng.random() < 0.85 else ("appropriate" if x != "appropriate" else "inappropriate")
        for x in a
    ]
    kappa, low, high = cohen_kappa_interval(a, b)
    assert kappa == pytest.approx(cohen_kappa_score(a, b))
    assert low < kappa < high and 0.5 < kappa < 0.85
    assert cohen_kappa_interval(["a", "a"], ["a", "a"]) == (None, None, None)
    with pytest.raises(ValueError):
        cohen_kappa_interval(["a"], [])


def test_fleiss_kappa_of_the_textbook_example():
    # Fleiss (1971) as reproduced on Wikipedia: 10 items, 14 raters, 5 categories.
    table = np.array(
        [
            [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0],
            [2, 2, 8, 1, 1], [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2],
            [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
        ]
    )  # fmt: skip
    assert fleiss_kappa(table) == pytest.approx(0.210, abs=5e-4)
    kappa, low, high = fleiss_kappa_interval(table)
    assert low < kappa < high
    assert fleiss_kappa(np.array([[3, 0], [3, 0]])) is None
    assert fleiss_kappa_interval(np.zeros((0, 2))) == (None, None, None)


def test_review_rate_counts_active_time_only():
    # 11 verdicts 30 s apart, then an hour's break, then 11 more: 20 gaps of 30 s + 300 s.
    times = [30.0 * i for i in range(11)] + [3900.0 + 30.0 * i for i in range(11)]
    rates = active_review_rate({"ann": times, "bob": [0.0]})
    assert rates["reviewer:ann"] == pytest.approx(21 / (20 * 30 + 300) * 3600)
    assert rates["team_per_hour"] == pytest.approx(rates["reviewer:ann"])
    assert active_review_rate({})["team_per_hour"] is None


def test_learning_curve_forecast_finds_where_the_curve_flattens():
    n = np.array([50, 100, 200, 400, 800], dtype=float)
    f1 = 0.8 - 2.0 * n**-0.7
    forecast = learning_curve_forecast(n, f1, current=800)
    assert forecast.ceiling == pytest.approx(0.8, abs=0.01)
    expected = (100 * 2.0 * 0.7 / 0.005) ** (1 / 1.7)
    assert forecast.flat_at == pytest.approx(expected, rel=0.05)
    assert forecast.more_verdicts == max(0, forecast.flat_at - 800)
    short = learning_curve_forecast([50, 100], [0.3, 0.4], current=100)
    assert short.flat_at is None and "at least 3" in short.reason


def test_four_verdicts_in_four_bins_never_claim_a_point_interval():
    # One reviewed image per score bin: the stratified bootstrap has no spread at all.
    sample = WeightedSample(
        scores=np.array([0.55, 0.65, 0.75, 0.85]),
        labels=np.array([0, 1, 0, 1]),
        strata=np.array([11, 13, 15, 17]),
        population=np.array([0] * 11 + [3, 0, 3, 0, 3, 0, 3, 0, 0] + [100]),
        unflagged_stratum=BINS,
    )
    row = StratifiedEstimator(sample, [0.5]).precision_recall()[0]
    assert row["precision"] == pytest.approx(0.5)
    low, high = wilson_interval(2, 4)
    # At least as wide as a simple random sample of four would be.
    assert row["precision_low"] <= low + 1e-6 and row["precision_high"] >= high - 1e-6
    assert row["precision_high"] - row["precision_low"] > 0.4


def test_a_burst_of_verdicts_gives_no_rate():
    # Twenty verdicts within four seconds (a bulk action): no review rate, so no forecast.
    rates = active_review_rate({"ann": [i * 0.2 for i in range(20)]})
    assert rates["team_per_hour"] is None
