"""paired_worse_share: how sure held-out verdicts are that a candidate ranks worse."""

from __future__ import annotations

import numpy as np

from worker.engine.metrics import paired_worse_share


def test_a_clearly_worse_candidate_is_worse_in_nearly_every_resample():
    rng = np.random.default_rng(0)
    labels = (rng.random(200) < 0.2).astype(int)
    good = labels + rng.normal(0, 0.3, 200)
    poor = rng.normal(0, 1, 200)
    assert paired_worse_share(labels, poor, good) > 0.99
    assert paired_worse_share(labels, good, poor) < 0.01


def test_a_near_copy_of_the_incumbent_is_not_confidently_worse_either_way():
    rng = np.random.default_rng(2)
    labels = (rng.random(40) < 0.2).astype(int)
    incumbent = labels + rng.normal(0, 1.0, 40)
    candidate = incumbent + rng.normal(0, 0.3, 40)
    assert 0.3 < paired_worse_share(labels, candidate, incumbent) < 0.7
    assert 0.3 < paired_worse_share(labels, incumbent, candidate) < 0.7


def test_one_class_has_no_comparison():
    assert paired_worse_share(np.zeros(5), np.arange(5.0), np.arange(5.0)) is None
    assert paired_worse_share(np.zeros(0), np.zeros(0), np.zeros(0)) is None


def test_identical_scores_are_never_worse_and_the_result_is_seeded():
    labels = np.array([0, 1, 0, 1, 1, 0, 0, 0])
    scores = np.linspace(0, 1, 8)
    assert paired_worse_share(labels, scores, scores) == 0.0
    rng = np.random.default_rng(2)
    other = rng.random(8)
    assert paired_worse_share(labels, other, scores) == paired_worse_share(labels, other, scores)
