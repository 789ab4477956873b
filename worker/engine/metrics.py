"""Classification metrics and splits for prompt evaluation. NumPy only, no torch."""

from __future__ import annotations

import numpy as np

from .scoring import INAPPROPRIATE

__all__ = ["classification_metrics", "stratified_split"]


def classification_metrics(
    labels: np.ndarray, probabilities: np.ndarray, *, threshold: float = 0.5
) -> dict[str, float]:
    """Binary metrics with *inappropriate* (label 1) as the positive class.

    An item is predicted positive when its probability is >= ``threshold``.

    Returns:
        ``accuracy``, ``precision``, ``recall``, ``f1`` (0.0 when undefined),
        ``n``, ``positives`` (true positives in ``labels``), ``tp``, ``fp``, ``tn``, ``fn``.
    """
    y = np.asarray(labels).astype(np.int64)
    prob = np.asarray(probabilities)
    if y.ndim != 1 or prob.shape != y.shape:
        raise ValueError(
            f"labels {y.shape} and probabilities {prob.shape} must be equal 1-D shapes"
        )
    pred = prob >= threshold
    truth = y == INAPPROPRIATE
    tp = int(np.count_nonzero(pred & truth))
    fp = int(np.count_nonzero(pred & ~truth))
    tn = int(np.count_nonzero(~pred & ~truth))
    fn = int(np.count_nonzero(~pred & truth))
    n = y.shape[0]
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "accuracy": (tp + tn) / n if n else 0.0,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "n": float(n),
        "positives": float(tp + fn),
        "tp": float(tp),
        "fp": float(fp),
        "tn": float(tn),
        "fn": float(fn),
    }


def stratified_split(
    labels: np.ndarray, *, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into train and test sets, each class split proportionally.

    Every class with at least 2 items gets at least one test item and keeps at
    least one training item; a class with a single item stays in training.
    Deterministic for a given seed.

    Args:
        labels: (N,) class labels (any integer classes).
        test_fraction: share of each class put in the test set, in (0, 1).
        seed: seed of the shuffling.

    Returns:
        ``(train_indices, test_indices)``, each sorted ascending, int64.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    y = np.asarray(labels)
    if y.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {y.shape}")
    rng = np.random.default_rng(seed)
    train: list[np.ndarray] = []
    test: list[np.ndarray] = []
    for cls in np.unique(y):
        members = np.flatnonzero(y == cls)
        rng.shuffle(members)
        count = members.shape[0]
        n_test = 0 if count < 2 else min(max(int(round(test_fraction * count)), 1), count - 1)
        test.append(members[:n_test])
        train.append(members[n_test:])
    empty = np.zeros(0, dtype=np.int64)
    train_idx = np.sort(np.concatenate(train)).astype(np.int64) if train else empty
    test_idx = np.sort(np.concatenate(test)).astype(np.int64) if test else empty
    return train_idx, test_idx


def paired_worse_share(
    labels: np.ndarray,
    candidate: np.ndarray,
    incumbent: np.ndarray,
    *,
    resamples: int = 400,
    seed: int = 0,
) -> float | None:
    """The share of paired bootstrap resamples of these held-out verdicts on which the
    candidate's average precision is below the incumbent's (None without both classes).

    A small held-out set makes "higher AP" a coin toss: a version that was lucky on it
    would lock out every better successor. A share near 1 says the candidate is worse
    with confidence; near 0.5, the set cannot tell them apart.
    """
    from sklearn.metrics import average_precision_score

    y = np.asarray(labels)
    if not y.size or not 0 < int(y.sum()) < y.size:
        return None
    rng = np.random.default_rng(seed)
    worse = counted = 0
    for _ in range(resamples):
        pick = rng.integers(0, y.size, y.size)
        sample = y[pick]
        if not 0 < int(sample.sum()) < sample.size:
            continue  # a resample with one class has no AP
        counted += 1
        worse += average_precision_score(sample, candidate[pick]) < average_precision_score(
            sample, incumbent[pick]
        )
    return worse / counted if counted else None
