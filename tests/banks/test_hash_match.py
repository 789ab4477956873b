"""The Hamming matching kernel against a brute-force reference (both of its paths)."""

from __future__ import annotations

import numpy as np
import pytest

from worker.engine import hash_match
from worker.engine.hash_match import hamming_matches, hex_words


def brute_force(queries, targets, max_distance):
    found = set()
    for q in range(len(queries)):
        distance = np.bitwise_count(queries[q] ^ targets).sum(axis=1)
        for t in np.flatnonzero(distance <= max_distance):
            found.add((q, int(t), int(distance[t])))
    return found


def planted(words, max_distance, seed):
    """Random hashes plus targets that are queries with 0..max_distance+2 bits flipped."""
    rng = np.random.default_rng(seed)
    queries = rng.integers(0, 2**63, (200, words), dtype=np.uint64)
    targets = rng.integers(0, 2**63, (2500, words), dtype=np.uint64)
    for k in range(60):
        row = queries[k].copy()
        flips = rng.choice(64 * words, size=int(rng.integers(0, max_distance + 3)), replace=False)
        for bit in flips:
            row[bit // 64] ^= np.uint64(1 << int(bit % 64))
        targets[k * 11] = row
    targets[2000] = targets[0]  # the same hash twice among the targets
    return queries, targets


@pytest.mark.parametrize(("words", "max_distance"), [(1, 6), (1, 10), (4, 31), (4, 50), (1, 0)])
@pytest.mark.parametrize("path", ["scan", "index"])
def test_finds_exactly_the_pairs_within_the_distance(monkeypatch, words, max_distance, path):
    monkeypatch.setattr(hash_match, "SCAN_PAIRS", 10**12 if path == "scan" else 0)
    queries, targets = planted(words, max_distance, seed=words * 100 + max_distance)
    expected = brute_force(queries, targets, max_distance)
    assert len(expected) > 20  # the planted pairs, and a test that can fail
    found = hamming_matches(queries, targets, max_distance)
    got = set(
        zip(found.query.tolist(), found.target.tolist(), found.distance.tolist(), strict=True)
    )
    assert got == expected
    # The other way round gives the same pairs (the smaller side is the one looked up).
    back = hamming_matches(targets, queries, max_distance)
    assert (
        set(zip(back.target.tolist(), back.query.tolist(), back.distance.tolist(), strict=True))
        == expected
    )


def test_small_lookup_batches_give_the_same_pairs(monkeypatch):
    queries, targets = planted(4, 31, seed=7)
    expected = brute_force(queries, targets, 31)
    monkeypatch.setattr(hash_match, "SCAN_PAIRS", 0)
    monkeypatch.setattr(hash_match, "LOOKUP_BATCH", 1000)
    monkeypatch.setattr(hash_match, "PAIR_BATCH", 7)
    found = hamming_matches(queries, targets, 31)
    assert (
        set(zip(found.query.tolist(), found.target.tolist(), found.distance.tolist(), strict=True))
        == expected
    )


def test_empty_sides_and_mismatched_widths():
    one = np.zeros((3, 1), dtype=np.uint64)
    assert len(hamming_matches(one, np.zeros((0, 1), dtype=np.uint64), 5)) == 0
    with pytest.raises(ValueError, match="same width"):
        hamming_matches(one, np.zeros((3, 4), dtype=np.uint64), 5)


def test_hex_words_are_most_significant_word_first():
    words = hex_words(["00000000000000010000000000000002" + "0" * 32], bits=256)
    assert words.tolist() == [[1, 2, 0, 0]]
    assert hex_words(["ffffffffffffffff"], bits=64).tolist() == [[2**64 - 1]]
    with pytest.raises(ValueError):
        hex_words(["abc"], bits=64)
