"""Hamming matching of many hashes against many: the bank-matching kernel (no Django).

Hashes are rows of uint64 words (a pHash is one word, a PDQ hash four). Every pair within
`max_distance` bits is found by multi-index hashing: the bits are cut into m segments, and
by the pigeonhole principle two hashes within D bits differ by at most D // m bits in at
least one segment. So for each segment, every query segment value and its neighbours within
that radius are looked up (binary search) among the sorted segment values of the targets;
only those candidate pairs get a full popcount. The segment count is chosen per call from a
cost estimate, and a plain scan is used when the sets are small.

NumPy only: a bank of 100,000 PDQ hashes against a million images takes seconds
(bench/bank_match.py prints the figure).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["HashMatches", "hamming_matches", "hex_words"]

# Candidate pairs verified per step (each costs words x 16 bytes of gathered rows).
PAIR_BATCH = 4_000_000
# Looked-up segment values per step.
LOOKUP_BATCH = 2_000_000
# Below this many pairs a full scan is cheaper than building the segment indexes.
SCAN_PAIRS = 4_000_000
# Segments this narrow are looked up in a direct table (2**bits counts), wider ones by
# bisection; no segment is wider than MAX_SEGMENT_BITS (values stay well inside uint64).
TABLE_BITS = 24
MAX_SEGMENT_BITS = 32
# Rough per-operation costs (ns) behind the choice of segments: a table lookup, a bisection
# among the targets' sorted segment values, a candidate pair's expansion and popcount, and
# one word of a full scan.
_TABLE_NS = 8.0
_SEARCH_NS = 80.0
_VERIFY_NS = 40.0
_SCAN_NS = 1.5


@dataclass(frozen=True)
class HashMatches:
    """Pairs within the distance: query row, target row, distance; sorted by (query, target)."""

    query: np.ndarray
    target: np.ndarray
    distance: np.ndarray

    def __len__(self) -> int:
        return len(self.query)


def hex_words(values: Sequence[str], *, bits: int) -> np.ndarray:
    """(n, bits // 64) uint64 rows of hex hashes, most significant word first.

    Every value must be exactly bits // 4 hex digits (callers validate; a wrong one raises
    ValueError). Decoded in one bytes.fromhex call: a million PDQ hashes take ~0.3 s.
    """
    words = bits // 64
    if not len(values):
        return np.zeros((0, words), dtype=np.uint64)
    digits = bits // 4
    joined = "".join(values)
    if len(joined) != digits * len(values):
        raise ValueError(f"every hash must be {digits} hex digits")
    raw = np.frombuffer(bytes.fromhex(joined), dtype=">u8")
    return raw.astype(np.uint64).reshape(len(values), words)


def _neighbour_masks(width: int, radius: int) -> np.ndarray:
    """Every XOR mask of at most `radius` set bits among `width` bits (0 first)."""
    masks = [0]
    for flips in range(1, radius + 1):
        for bits in itertools.combinations(range(width), flips):
            masks.append(sum(1 << bit for bit in bits))
    return np.array(masks, dtype=np.uint64)


def _segment_widths(total_bits: int, segments: int) -> list[int]:
    """Widths of `segments` near-equal consecutive bit ranges covering total_bits."""
    base, extra = divmod(total_bits, segments)
    return [base + 1 if i < extra else base for i in range(segments)]


def _lookup_ns(width: int) -> float:
    return _TABLE_NS if width <= TABLE_BITS else _SEARCH_NS


def _plan(queries: int, targets: int, words: int, max_distance: int) -> int | None:
    """The segment count that minimises the estimated work; None: scan every pair."""
    bits = 64 * words
    best: tuple[float, int | None] = (queries * targets * _SCAN_NS * words, None)
    for segments in range(max(2, bits // MAX_SEGMENT_BITS), bits // 4 + 1):
        radius = max_distance // segments
        cost = 0.0
        for width in _segment_widths(bits, segments):
            lookups = queries * sum(math.comb(width, i) for i in range(radius + 1))
            candidates = lookups * targets / 2.0**width
            cost += lookups * _lookup_ns(width) + candidates * _VERIFY_NS
        if cost < best[0]:
            best = (cost, segments)
    return best[1]


def _segment_values(rows: np.ndarray, start: int, width: int) -> np.ndarray:
    """Bits [start, start + width) of each row (bit 0: the first word's top bit)."""
    word, offset = divmod(start, 64)
    mask = np.uint64((1 << width) - 1)
    if offset + width <= 64:
        return (rows[:, word] >> np.uint64(64 - offset - width)) & mask
    high = 64 - offset
    low = width - high
    top = (rows[:, word] & np.uint64((1 << high) - 1)) << np.uint64(low)
    return top | (rows[:, word + 1] >> np.uint64(64 - low))


def _distances(
    queries: np.ndarray, targets: np.ndarray, qi: np.ndarray, ti: np.ndarray
) -> np.ndarray:
    return np.bitwise_count(queries[qi] ^ targets[ti]).sum(axis=1, dtype=np.uint16)


def _scan(queries: np.ndarray, targets: np.ndarray, max_distance: int) -> Iterator[tuple]:
    step = max(1, PAIR_BATCH // max(1, len(targets)))
    all_targets = np.arange(len(targets))
    for start in range(0, len(queries), step):
        block = np.arange(start, min(start + step, len(queries)))
        qi = np.repeat(block, len(targets))
        ti = np.tile(all_targets, len(block))
        distance = _distances(queries, targets, qi, ti)
        keep = distance <= max_distance
        yield qi[keep], ti[keep], distance[keep]


class _SegmentIndex:
    """Target rows grouped by one segment's value: a direct table for narrow segments, a
    sorted array searched by bisection for wide ones."""

    def __init__(self, values: np.ndarray, width: int) -> None:
        self.table = width <= TABLE_BITS
        if self.table:
            narrow = values.astype(np.uint32)
            self.order = np.argsort(narrow)
            counts = np.bincount(narrow, minlength=1 << width)
            # A one-byte "anything here" table answers most lookups (most values are
            # absent) from a few megabytes, not the 64-bit counts.
            self.occupied = counts.astype(bool).view(np.uint8)
            self.counts = counts
            self.starts = np.cumsum(counts) - counts
        else:
            self.order = np.argsort(values)
            self.sorted_values = values[self.order]

    def ranges(self, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The wanted values present among the targets (their positions in `wanted`), and for
        each the first position in `order` and the count of targets holding it."""
        if self.table:
            hits = np.flatnonzero(self.occupied[wanted])
            present = wanted[hits]
            return hits, self.starts[present], self.counts[present]
        lo = np.searchsorted(self.sorted_values, wanted, side="left")
        counts = np.searchsorted(self.sorted_values, wanted, side="right") - lo
        hits = np.flatnonzero(counts)
        return hits, lo[hits], counts[hits]


def _segment_candidates(
    query_values: np.ndarray, index: _SegmentIndex, masks: np.ndarray
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(query rows, target rows) whose segment values differ only by one of the masks."""
    per_step = max(1, LOOKUP_BATCH // len(masks))
    for start in range(0, len(query_values), per_step):
        block = query_values[start : start + per_step]
        hits, lo, counts = index.ranges((block[:, None] ^ masks[None, :]).ravel())
        if not len(hits):
            continue
        owners = start + hits // len(masks)
        # Cut the hits into steps of at most PAIR_BATCH expanded pairs.
        ends = np.cumsum(counts)
        first = 0
        while first < len(hits):
            base = ends[first - 1] if first else 0
            last = max(first + 1, int(np.searchsorted(ends, base + PAIR_BATCH, side="right")))
            c = counts[first:last]
            # Position of each pair in `order`: its run's start plus its place in the run.
            steps = np.ones(int(c.sum()), dtype=np.int64)
            run_heads = np.cumsum(c)[:-1]
            steps[0] = lo[first]
            steps[run_heads] = lo[first + 1 : last] - (lo[first : last - 1] + c[:-1] - 1)
            yield np.repeat(owners[first:last], c), index.order[np.cumsum(steps)]
            first = last


def _indexed(
    queries: np.ndarray, targets: np.ndarray, max_distance: int, segments: int
) -> Iterator[tuple]:
    bits = 64 * queries.shape[1]
    radius = max_distance // segments
    start = 0
    for width in _segment_widths(bits, segments):
        index = _SegmentIndex(_segment_values(targets, start, width), width)
        q_values = _segment_values(queries, start, width)
        if width <= TABLE_BITS:  # narrower values: cheaper XORs and table indexes
            q_values = q_values.astype(np.uint32)
        masks = _neighbour_masks(width, radius).astype(q_values.dtype)
        for qi, ti in _segment_candidates(q_values, index, masks):
            distance = _distances(queries, targets, qi, ti)
            keep = distance <= max_distance
            yield qi[keep], ti[keep], distance[keep]
        start += width


def hamming_matches(queries: np.ndarray, targets: np.ndarray, max_distance: int) -> HashMatches:
    """Every (query, target) pair of rows within max_distance bits, each pair once.

    queries and targets are (n, words) uint64 arrays of the same width. The smaller side
    is the one looked up: results are always in terms of the arguments as given.
    """
    if queries.ndim != 2 or targets.ndim != 2 or queries.shape[1] != targets.shape[1]:
        raise ValueError("queries and targets must be (n, words) arrays of the same width")
    empty = np.zeros(0, dtype=np.int64)
    if not len(queries) or not len(targets) or max_distance < 0:
        return HashMatches(empty, empty, np.zeros(0, dtype=np.uint16))
    swapped = len(queries) > len(targets)
    small, large = (targets, queries) if swapped else (queries, targets)
    words = small.shape[1]
    max_distance = min(max_distance, 64 * words)
    segments = None
    if len(small) * len(large) > SCAN_PAIRS:
        segments = _plan(len(small), len(large), words, max_distance)
    found = list(
        _scan(small, large, max_distance)
        if segments is None
        else _indexed(small, large, max_distance, segments)
    )
    if not found:
        return HashMatches(empty, empty, np.zeros(0, dtype=np.uint16))
    si = np.concatenate([f[0] for f in found]).astype(np.int64)
    li = np.concatenate([f[1] for f in found]).astype(np.int64)
    distance = np.concatenate([f[2] for f in found])
    qi, ti = (li, si) if swapped else (si, li)
    # A pair close in several segments was found once per segment: keep one.
    keys, first = np.unique(qi * len(targets) + ti, return_index=True)
    return HashMatches(keys // len(targets), keys % len(targets), distance[first])
