"""Near-duplicate images: a per-process cache of each dataset's perceptual hashes and the
Hamming search over it (reviewer.measures)."""

from __future__ import annotations

import threading
import time

import numpy as np
from django.db.models import Max, Min

from curation.models import Image
from reviewer.measures import byte_index, hashes_within

MAX_NEAR_DUPLICATES = 50

# Per-process cache of each dataset's perceptual hashes as uint64, refreshed when images are
# added (new max id) or after a while: a Hamming scan of a million hashes takes milliseconds.
_PHASH_TTL_SECONDS = 600
# How long the cache is trusted before checking whether images were added.
_PHASH_RECHECK_SECONDS = 30
_phash_cache: dict[int, tuple[tuple, float, np.ndarray, np.ndarray, list]] = {}
_phash_checked: dict[int, float] = {}
_phash_lock = threading.Lock()


def _dataset_phashes(dataset_id: int) -> tuple[np.ndarray, np.ndarray, list]:
    cached = _phash_cache.get(dataset_id)
    now = time.monotonic()
    if cached and now - _phash_checked.get(dataset_id, 0.0) < _PHASH_RECHECK_SECONDS:
        return cached[2], cached[3], cached[4]
    ok = Image.objects.filter(dataset_id=dataset_id, status=Image.Status.OK)
    bounds = ok.aggregate(first=Min("id"), last=Max("id"))
    key = (bounds["first"], bounds["last"])
    if cached and cached[0] == key and now - cached[1] < _PHASH_TTL_SECONDS:
        _phash_checked[dataset_id] = now
        return cached[2], cached[3], cached[4]
    with _phash_lock:
        cached = _phash_cache.get(dataset_id)
        if cached and cached[0] == key and time.monotonic() - cached[1] < _PHASH_TTL_SECONDS:
            return cached[2], cached[3], cached[4]
        ids: list[int] = []
        hashes: list[int] = []
        for image_id, phash in (
            ok.exclude(phash="").values_list("id", "phash").iterator(chunk_size=20000)
        ):
            try:
                hashes.append(int(phash, 16))
            except ValueError:
                continue
            ids.append(image_id)
        id_array = np.array(ids, dtype=np.int64)
        hash_array = np.array(hashes, dtype=np.uint64)
        index = byte_index(hash_array)
        _phash_cache[dataset_id] = (key, time.monotonic(), id_array, hash_array, index)
        _phash_checked[dataset_id] = time.monotonic()
        return id_array, hash_array, index


def phash_cache_clear() -> None:
    with _phash_lock:
        _phash_cache.clear()
        _phash_checked.clear()


def near_candidates(image: Image, max_distance: int) -> dict[int, int]:
    """image id -> Hamming distance for the dataset's images within max_distance (self excluded)."""
    if not image.phash:
        return {}
    try:
        target = np.uint64(int(image.phash, 16))
    except ValueError:
        return {}
    ids, hashes, index = _dataset_phashes(image.dataset_id)
    if not len(ids):
        return {}
    close, distances = hashes_within(
        hashes, index, target, max_distance, limit=4 * MAX_NEAR_DUPLICATES
    )
    return {
        int(ids[p]): int(d)
        for p, d in zip(close, distances, strict=True)
        if int(ids[p]) != image.pk
    }


def nearest(image: Image, candidates: dict[int, int], images: dict[int, Image]):
    found = [
        (images[pk], distance)
        for pk, distance in candidates.items()
        if pk in images and images[pk].sha256 != image.sha256
    ]
    found.sort(key=lambda pair: (pair[1], pair[0].pk))
    return found[:MAX_NEAR_DUPLICATES]


def image_near_duplicates(*, image: Image, max_distance: int) -> list[tuple[Image, int]]:
    """Images of the same dataset whose perceptual hash is within max_distance bits of this
    image's, identical files (same content hash) excluded; nearest first."""
    candidates = near_candidates(image, max_distance)
    if not candidates:
        return []
    images = Image.objects.filter(pk__in=list(candidates), status=Image.Status.OK).in_bulk()
    return nearest(image, candidates, images)
