"""The near-duplicate search (byte-pigeonhole index) finds exactly what a full scan finds."""

from __future__ import annotations

import numpy as np
import pytest

from reviewer.measures import byte_index as _byte_index
from reviewer.measures import hamming_ball as _hamming_ball
from reviewer.selectors.duplicates import image_near_duplicates
from tests.reviewer.factories import make_dataset


@pytest.mark.parametrize("distance", [0, 1, 3, 6, 7, 8, 12])
def test_hamming_ball_matches_a_full_scan(distance):
    rng = np.random.default_rng(distance)
    base = rng.integers(0, 2**63, size=2000, dtype=np.int64).astype(np.uint64)
    target = np.uint64(int(base[0]))
    # Plant hashes at every distance 0..12 from the target.
    planted = []
    for d in range(13):
        for _ in range(5):
            bits = rng.choice(64, size=d, replace=False)
            mask = sum(1 << int(b) for b in bits)
            planted.append(int(target) ^ mask)
    hashes = np.concatenate([base, np.array(planted, dtype=np.uint64)])
    index = _byte_index(hashes)
    candidates = _hamming_ball(hashes, index, target, distance)
    within = set(np.nonzero(np.bitwise_count(hashes ^ target) <= distance)[0].tolist())
    assert within <= set(candidates.tolist())


@pytest.mark.django_db
def test_near_duplicates_nearest_first_identical_excluded():
    same = "f" * 64
    dataset, _, images = make_dataset(
        [0.9, 0.8, 0.7, 0.6, 0.5],
        hashes=[same, same, "a" * 64, "b" * 64, "c" * 64],
        phashes=["0" * 16, "0" * 16, "0" * 15 + "3", "0" * 15 + "1", "f" * 16],
    )
    found = image_near_duplicates(image=images[0], max_distance=6)
    assert [(image.pk, d) for image, d in found] == [(images[3].pk, 1), (images[2].pk, 2)]
