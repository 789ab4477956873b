"""Seeded stratified splits and subsamples, index for index scikit-learn's, in NumPy."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import numpy as np

__all__ = [
    "approximate_mode",
    "content_hash_split",
    "stratified_shuffle_split",
    "stratified_subsample",
]


def approximate_mode(
    class_counts: np.ndarray, n_draws: int, rng: np.random.RandomState
) -> np.ndarray:
    """How many of ``n_draws`` to take from each class (scikit-learn's ``_approximate_mode``).

    Proportional shares, floored, then the left-over draws go to the classes with
    the largest remainders, ties broken at random with ``rng`` (consumed exactly
    like scikit-learn does, so seeded splits match it).
    """
    counts = np.asarray(class_counts)
    continuous = counts / counts.sum() * n_draws
    floored = np.floor(continuous)
    need_to_add = int(n_draws - floored.sum())
    if need_to_add > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (candidates,) = np.where(remainder == value)
            add_now = min(len(candidates), need_to_add)
            chosen = rng.choice(candidates, size=add_now, replace=False)
            floored[chosen] += 1
            need_to_add -= add_now
            if need_to_add == 0:
                break
    return floored.astype(np.int64)


def stratified_shuffle_split(
    strata: np.ndarray,
    *,
    n_splits: int = 10,
    test_size: float = 0.1,
    seed: int = 42,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified shuffle splits, index for index those of scikit-learn.

    Equivalent to ``StratifiedShuffleSplit(n_splits, test_size=test_size,
    random_state=seed).split(X, strata)`` (scikit-learn >= 0.22), without
    depending on scikit-learn: the test part has ``ceil(test_size * N)`` items,
    the training part the rest, each stratum represented in proportion.

    Args:
        strata: (N,) stratum of each item (for SMID: the rounded moral mean).
        n_splits: number of independent splits.
        test_size: share of items in each test part, in (0, 1).
        seed: seed of ``numpy.random.RandomState``, as scikit-learn's random_state.

    Returns:
        ``n_splits`` pairs ``(train_indices, test_indices)`` of int64 arrays, in
        scikit-learn's (shuffled) order.

    Raises:
        ValueError: bad sizes, a stratum with a single item, or fewer training or
            test items than strata (scikit-learn's conditions).
    """
    y = np.asarray(strata)
    if y.ndim != 1:
        raise ValueError(f"strata must be 1-D, got shape {y.shape}")
    if n_splits < 1:
        raise ValueError(f"n_splits must be >= 1, got {n_splits}")
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be in (0, 1), got {test_size}")
    n_samples = y.shape[0]
    n_test = math.ceil(test_size * n_samples)
    n_train = n_samples - n_test
    if n_train <= 0 or n_test <= 0:
        raise ValueError(f"{n_samples} items cannot be split with test_size={test_size}")
    classes, y_indices = np.unique(y, return_inverse=True)
    n_classes = classes.shape[0]
    class_counts = np.bincount(y_indices)
    if np.min(class_counts) < 2:
        lonely = classes[class_counts < 2].tolist()
        raise ValueError(f"stratum/strata {lonely} have a single item; each needs at least 2")
    if n_train < n_classes or n_test < n_classes:
        raise ValueError(
            f"train ({n_train}) and test ({n_test}) parts must each hold at least one item "
            f"of each of the {n_classes} strata"
        )
    class_indices = np.split(np.argsort(y_indices, kind="mergesort"), np.cumsum(class_counts)[:-1])
    rng = np.random.RandomState(seed)
    splits: list[tuple[np.ndarray, np.ndarray]] = []
    for _ in range(n_splits):
        n_i = approximate_mode(class_counts, n_train, rng)
        t_i = approximate_mode(class_counts - n_i, n_test, rng)
        train: list[int] = []
        test: list[int] = []
        for i in range(n_classes):
            permutation = rng.permutation(class_counts[i])
            members = class_indices[i].take(permutation, mode="clip")
            train.extend(members[: n_i[i]].tolist())
            test.extend(members[n_i[i] : n_i[i] + t_i[i]].tolist())
        splits.append(
            (
                rng.permutation(np.array(train, dtype=np.int64)),
                rng.permutation(np.array(test, dtype=np.int64)),
            )
        )
    return splits


def stratified_subsample(strata: np.ndarray, fraction: float, *, seed: int) -> np.ndarray:
    """A seeded, stratified subsample of ``floor(fraction * N)`` items, for few-shot curves.

    Each stratum contributes in proportion (scikit-learn's allocation); every
    stratum keeps at least one item, so the subsample may exceed the target by a
    few items when strata are tiny.

    Args:
        strata: (N,) stratum of each item.
        fraction: share to keep, in (0, 1]; 1 keeps everything.
        seed: seed of ``numpy.random.RandomState``.

    Returns:
        Sorted int64 positions into ``strata``.
    """
    y = np.asarray(strata)
    n = y.shape[0]
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    if fraction >= 1.0 or n == 0:
        return np.arange(n, dtype=np.int64)
    classes, y_indices = np.unique(y, return_inverse=True)
    counts = np.bincount(y_indices)
    rng = np.random.RandomState(seed)
    per_class = approximate_mode(counts, math.floor(fraction * n), rng)
    per_class = np.maximum(per_class, 1)
    chosen: list[np.ndarray] = []
    for i in range(classes.shape[0]):
        members = np.flatnonzero(y_indices == i)
        chosen.append(members[rng.permutation(members.shape[0])[: per_class[i]]])
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def _hash_key(content_hash: str) -> float:
    """A uniform number in [0, 1) from a content hash, the same on every run."""
    digest = hashlib.blake2b(f"heldout:{content_hash}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def content_hash_split(
    hashes: Sequence[str], labels: np.ndarray, *, test_fraction: float
) -> tuple[np.ndarray, np.ndarray]:
    """Train and held-out positions by content hash: identical files (one hash) always land
    on the same side, and a file's side does not change as verdicts accumulate, so a
    version trained later is compared on held-out files none of its predecessors trained on.

    A hash is held out when a digest of it falls below ``test_fraction``. Each class (a
    hash's class: the majority verdict of its files) with two or more hashes keeps at least
    one held-out and one training hash: the lowest digest is moved in, the highest out.

    Returns:
        Sorted int64 positions (train, held-out).
    """
    y = np.asarray(labels)
    if len(hashes) != y.shape[0]:
        raise ValueError(f"{len(hashes)} hashes for {y.shape[0]} labels")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    members: dict[str, list[int]] = {}
    for position, content_hash in enumerate(hashes):
        members.setdefault(content_hash, []).append(position)
    keys = {h: _hash_key(h) for h in members}
    held = {h for h, key in keys.items() if key < test_fraction}
    group_class = {h: int(round(float(np.mean(y[rows])))) for h, rows in members.items()}
    for c in sorted(set(group_class.values())):
        groups = sorted((h for h, k in group_class.items() if k == c), key=keys.__getitem__)
        if len(groups) < 2:
            held.difference_update(groups)
            continue
        if not held.intersection(groups):
            held.add(groups[0])
        if held.issuperset(groups):
            held.discard(groups[-1])
    test = sorted(p for h in held for p in members[h])
    train = sorted(p for h, rows in members.items() if h not in held for p in rows)
    return np.array(train, dtype=np.int64), np.array(test, dtype=np.int64)
