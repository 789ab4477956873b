"""The held-out split by content hash: identical files on one side, sides stable as data grows."""

from __future__ import annotations

import numpy as np
import pytest

from worker.engine.evaluation.splits import content_hash_split


def test_identical_files_never_straddle_the_split():
    hashes = [f"h{i % 40}" for i in range(200)]  # every file five times
    labels = np.array([1 if i % 40 < 8 else 0 for i in range(200)])
    train, test = content_hash_split(hashes, labels, test_fraction=0.2)
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(200))
    assert not {hashes[i] for i in train} & {hashes[i] for i in test}
    assert labels[test].sum() > 0 and labels[train].sum() > 0


def test_a_files_side_does_not_change_as_verdicts_accumulate():
    rng = np.random.default_rng(0)
    hashes = [f"{i:064x}" for i in range(2000)]
    labels = (rng.random(2000) < 0.05).astype(int)
    _, small_test = content_hash_split(hashes[:500], labels[:500], test_fraction=0.2)
    _, big_test = content_hash_split(hashes, labels, test_fraction=0.2)
    # Only a hash moved in to give a class a held-out file may leave when more data comes.
    assert len(set(small_test.tolist()) - set(big_test.tolist())) <= 1
    assert 0.15 < big_test.size / 2000 < 0.25


def test_each_class_keeps_a_held_out_and_a_training_file():
    train, test = content_hash_split(
        ["a", "b", "c", "d"], np.array([0, 0, 1, 1]), test_fraction=0.05
    )
    assert sorted(set(np.array([0, 0, 1, 1])[test].tolist())) == [0, 1]
    assert sorted(set(np.array([0, 0, 1, 1])[train].tolist())) == [0, 1]
    with pytest.raises(ValueError):
        content_hash_split(["a"], np.array([0, 1]), test_fraction=0.2)
    with pytest.raises(ValueError):
        content_hash_split(["a", "b"], np.array([0, 1]), test_fraction=1.0)
