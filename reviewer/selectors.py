"""Read-side queries of the review domain: latest verdicts, history, duplicates, settings,
agreement between reviewers and the numbers admins look at."""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import numpy as np
from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import (
    Count,
    F,
    IntegerField,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Cast, Floor, Least, TruncDate
from django.utils import timezone

from curation.models import Dataset, Image, PromptVersion, Score, ScoringRun
from reviewer.models import (
    Decision,
    ReviewerPreferences,
    ReviewItem,
    ReviewSettings,
)

HISTOGRAM_BINS = 20
THRESHOLDS = [round(0.05 * step, 2) for step in range(1, 20)]
THROUGHPUT_DAYS = 14
MAX_NEAR_DUPLICATES = 50


def _live_verdicts() -> QuerySet[Decision]:
    """Decisions that count: not skipped, not retracted."""
    return Decision.objects.filter(retraction__isnull=True).exclude(verdict=Decision.Verdict.SKIP)


def latest_decision_subquery(
    field: str = "verdict", *, outer: str = "pk", settled_only: bool = True
) -> Subquery:
    """A field of the latest live verdict on the image given by `outer` in the outer query.

    Verdicts are append-only: the latest counts; a retracted one (undo) is ignored, so the
    previous verdict counts again. With settled_only (training, exports, summaries), only
    decided items have a verdict: an item still waiting for its k verdicts, or disputed
    until an admin adjudicates, has none yet.
    """
    verdicts = _live_verdicts()
    if settled_only:
        verdicts = verdicts.filter(item__state=ReviewItem.State.DECIDED)
    return Subquery(
        verdicts.filter(image=OuterRef(outer)).order_by("-created_at", "-id").values(field)[:1]
    )


def latest_verdict_subquery() -> Subquery:
    """The latest live (non-skip, non-retracted) verdict of the image in the outer query,
    for images whose review item is decided."""
    return latest_decision_subquery("verdict")


def images_with_latest_verdict(*, dataset_id: int) -> QuerySet[Image]:
    return Image.objects.filter(dataset_id=dataset_id).annotate(verdict=latest_verdict_subquery())


def latest_verdicts(*, dataset_id: int) -> dict[int, tuple[str, str]]:
    """image id -> (verdict, category) of the latest live verdict, for decided images."""
    latest: dict[int, tuple[str, str]] = {}
    for image_id, verdict, category in (
        _live_verdicts()
        .filter(item__dataset_id=dataset_id, item__state=ReviewItem.State.DECIDED)
        .order_by("image_id", "created_at", "id")
        .values_list("image_id", "verdict", "category")
    ):
        latest[image_id] = (verdict, category)
    return latest


def review_queue_counts(*, dataset_id: int | None = None, dataset_ids=None) -> dict[str, int]:
    """Items per state, of one dataset or all; dataset_ids (a subquery) limits them to the
    datasets a reviewer may see (None: no limit)."""
    items = ReviewItem.objects.all()
    if dataset_ids is not None:
        items = items.filter(dataset_id__in=dataset_ids)
    if dataset_id is not None:
        items = items.filter(dataset_id=dataset_id)
    counts = dict.fromkeys(ReviewItem.State.values, 0)
    for row in items.values("state").annotate(n=Count("id")).order_by():
        counts[row["state"]] = row["n"]
    return counts


def image_decision_history(*, image_id: int) -> QuerySet[Decision]:
    return (
        Decision.objects.filter(image_id=image_id)
        .select_related("reviewer", "retraction")
        .order_by("created_at", "id")
    )


def _history_entry(decision: Decision) -> dict[str, Any]:
    retraction = getattr(decision, "retraction", None)
    return {
        "reviewer": decision.reviewer.get_username(),
        "verdict": decision.verdict,
        "category": decision.category,
        "created_at": decision.created_at,
        "retracted": retraction is not None,
        "retracted_at": retraction.created_at if retraction is not None else None,
        "propagated_from": decision.propagated_from_id,
    }


def image_history(*, image_id: int) -> list[dict[str, Any]]:
    """Who decided what and when about an image, retracted verdicts included and marked."""
    return [_history_entry(d) for d in image_decision_history(image_id=image_id)]


def review_settings_get(*, dataset_id: int) -> ReviewSettings:
    """The dataset's review rules; unsaved defaults when none were saved yet."""
    rules = ReviewSettings.objects.select_related("pinned_version", "last_retrain_job").filter(
        dataset_id=dataset_id
    )
    return rules.first() or ReviewSettings(dataset_id=dataset_id)


def review_settings_of(dataset: Dataset) -> ReviewSettings:
    """The dataset's review rules, from `select_related("dataset__review_settings")` when the
    caller loaded them; unsaved defaults when none were saved yet."""
    try:
        return dataset.review_settings
    except ReviewSettings.DoesNotExist:
        return ReviewSettings(dataset_id=dataset.pk)


def reviewer_preferences_get(*, user: AbstractBaseUser) -> ReviewerPreferences:
    return ReviewerPreferences.objects.filter(user=user).first() or ReviewerPreferences(user=user)


# --- Near-duplicates ---------------------------------------------------------------------------

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
        index = _byte_index(hash_array)
        _phash_cache[dataset_id] = (key, time.monotonic(), id_array, hash_array, index)
        _phash_checked[dataset_id] = time.monotonic()
        return id_array, hash_array, index


def phash_cache_clear() -> None:
    with _phash_lock:
        _phash_cache.clear()
        _phash_checked.clear()


def phash_distance(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def _near_candidates(image: Image, max_distance: int) -> dict[int, int]:
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
    positions = _hamming_ball(hashes, index, target, max_distance)
    distances_all = np.bitwise_count(hashes[positions] ^ target)
    keep = distances_all <= max_distance
    # The ball lists a position once per matching byte: deduplicate the few survivors
    # (np.unique over the whole ball took ~8 ms at a million images).
    positions, first = np.unique(positions[keep], return_index=True)
    found = distances_all[keep][first]
    order = np.argsort(found, kind="stable")[: 4 * MAX_NEAR_DUPLICATES]
    close, distances = positions[order], found[order]
    return {
        int(ids[p]): int(d)
        for p, d in zip(close, distances, strict=True)
        if int(ids[p]) != image.pk
    }


def _byte_index(hashes: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each of the 8 bytes of the hashes: positions sorted by that byte, and the sorted bytes."""
    index = []
    for b in range(8):
        values = ((hashes >> np.uint64(8 * b)) & np.uint64(0xFF)).astype(np.uint8)
        order = np.argsort(values, kind="stable")
        index.append((order, values[order]))
    return index


def _hamming_ball(
    hashes: np.ndarray, index: list, target: np.uint64, max_distance: int
) -> np.ndarray:
    """Positions of hashes that may be within max_distance of target (a superset, with repeats).

    Pigeonhole: two 64-bit hashes within 7 bits agree exactly on at least one of their 8
    bytes, so the candidates are the union of 8 exact byte matches (about 8/256 of the
    dataset) instead of a scan of every hash. Wider distances scan everything.
    """
    if max_distance >= 8:
        return np.arange(len(hashes))
    parts = []
    for b, (order, sorted_bytes) in enumerate(index):
        byte = np.uint8((int(target) >> (8 * b)) & 0xFF)
        lo = np.searchsorted(sorted_bytes, byte, side="left")
        hi = np.searchsorted(sorted_bytes, byte, side="right")
        parts.append(order[lo:hi])
    return np.concatenate(parts)


def _nearest(image: Image, candidates: dict[int, int], images: dict[int, Image]):
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
    candidates = _near_candidates(image, max_distance)
    if not candidates:
        return []
    images = Image.objects.filter(pk__in=list(candidates), status=Image.Status.OK).in_bulk()
    return _nearest(image, candidates, images)


def review_items_details(
    *, items: Sequence[ReviewItem], viewer: AbstractBaseUser
) -> dict[int, dict[str, Any]]:
    """What the review screen shows with each item, in a few queries for the whole batch:
    rules, identical and near-duplicate images, verdict count and history (admins see every
    reviewer's entries, reviewers only their own)."""
    if not items:
        return {}
    rules = {item.dataset_id: review_settings_of(item.dataset) for item in items}
    near = {
        item.pk: _near_candidates(item.image, rules[item.dataset_id].near_duplicate_distance)
        for item in items
    }
    hashes = {item.image.sha256 for item in items if item.image.sha256}
    near_ids = {pk for candidates in near.values() for pk in candidates}
    related: dict[int, Image] = {}
    if hashes or near_ids:
        related = {
            image.pk: image
            for image in Image.objects.filter(
                Q(dataset_id__in=list(rules), sha256__in=hashes) | Q(pk__in=near_ids),
                status=Image.Status.OK,
            ).order_by("id")
        }
    decisions: dict[int, list[Decision]] = defaultdict(list)
    for decision in (
        Decision.objects.filter(image_id__in=[item.image_id for item in items])
        .select_related("reviewer", "retraction")
        .order_by("created_at", "id")
    ):
        decisions[decision.image_id].append(decision)
    details: dict[int, dict[str, Any]] = {}
    for item in items:
        item_rules = rules[item.dataset_id]
        own = decisions.get(item.image_id, [])
        live_reviewers = {
            d.reviewer_id
            for d in own
            if d.item_id == item.pk
            and d.verdict != Decision.Verdict.SKIP
            and getattr(d, "retraction", None) is None
        }
        visible = own if viewer.is_staff else [d for d in own if d.reviewer_id == viewer.pk]
        details[item.pk] = {
            "required_verdicts": item_rules.required_verdicts,
            "categories": list(item_rules.categories),
            "verdict_count": len(live_reviewers),
            "identical": [
                image
                for image in related.values()
                if image.sha256 == item.image.sha256
                and image.dataset_id == item.dataset_id
                and image.pk != item.image_id
            ]
            if item.image.sha256
            else [],
            "near_duplicates": _nearest(item.image, near[item.pk], related),
            "history": [_history_entry(d) for d in visible],
        }
    return details


# --- Agreement -----------------------------------------------------------------------------------


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> float | None:
    """Cohen's kappa of two raters' labels on the same items; None when undefined
    (no items, or both raters always gave one and the same label)."""
    if len(a) != len(b):
        raise ValueError("both raters must label the same items")
    if not len(a):
        return None
    labels = sorted(set(a) | set(b))
    index = {label: i for i, label in enumerate(labels)}
    table = np.zeros((len(labels), len(labels)), dtype=np.float64)
    for x, y in zip(a, b, strict=True):
        table[index[x], index[y]] += 1
    n = table.sum()
    observed = np.trace(table) / n
    expected = float((table.sum(axis=1) / n) @ (table.sum(axis=0) / n))
    if math.isclose(expected, 1.0):
        return None
    return float((observed - expected) / (1.0 - expected))


def review_agreement(*, dataset_id: int) -> dict[str, Any]:
    """Cohen's kappa per reviewer pair on the items both gave a verdict on (their own
    latest live verdict; copies onto duplicates and adjudications left out), and overall
    the mean of the pairs' kappas."""
    by_item: dict[int, dict[str, str]] = defaultdict(dict)
    for item_id, username, verdict in (
        _live_verdicts()
        .filter(item__dataset_id=dataset_id, propagated_from__isnull=True, is_adjudication=False)
        .order_by("created_at", "id")
        .values_list("item_id", "reviewer__username", "verdict")
    ):
        by_item[item_id][username] = verdict
    reviewers = sorted({name for verdicts in by_item.values() for name in verdicts})
    pairs = []
    for i, a in enumerate(reviewers):
        for b in reviewers[i + 1 :]:
            shared = [v for v in by_item.values() if a in v and b in v]
            if not shared:
                continue
            kappa = cohen_kappa([v[a] for v in shared], [v[b] for v in shared])
            pairs.append({"a": a, "b": b, "kappa": kappa, "n": len(shared)})
    defined = [pair["kappa"] for pair in pairs if pair["kappa"] is not None]
    return {"overall": float(np.mean(defined)) if defined else None, "pairs": pairs}


# --- Numbers for admins --------------------------------------------------------------------------


def wilson_interval(successes: int, n: int, *, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval (95 % by default) of a binomial proportion."""
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def _stats_run(*, dataset: Dataset, version: PromptVersion | None) -> ScoringRun | None:
    runs = dataset.runs.filter(state=ScoringRun.State.SUCCEEDED)
    if version is not None:
        runs = runs.filter(prompt_version=version)
    return runs.select_related("prompt_version").order_by("-created_at", "-id").first()


def review_policy_summary(*, dataset_id: int) -> dict[str, Any]:
    """The auto-retrain policy's settings and its last decision, for the stats page."""
    rules = review_settings_get(dataset_id=dataset_id)
    job = rules.last_retrain_job
    return {
        "auto_retrain_every": rules.auto_retrain_every,
        "verdicts_since_retrain": rules.verdicts_since_retrain,
        "pinned_version": rules.pinned_version_id,
        "pinned_version_name": rules.pinned_version.name if rules.pinned_version else None,
        "last_job": (
            {
                "id": job.pk,
                "state": job.state,
                "error": job.error,
                "created_at": job.created_at,
                "finished_at": job.finished_at,
                "result": job.result_id,
                "decision": (job.options or {}).get("policy"),
            }
            if job is not None
            else None
        ),
    }


def dataset_review_stats(
    *, dataset: Dataset, version: PromptVersion | None = None
) -> dict[str, Any]:
    """The numbers of a dataset under one prompt version (the dataset's latest succeeded run of
    that version; the latest run of any version by default): counts, precision of the flagged
    set and the audit sample's estimate of what was missed (Wilson 95 % intervals), score
    histogram by verdict, precision / recall / queue size against threshold, throughput and
    agreement."""
    run = _stats_run(dataset=dataset, version=version)
    latest = latest_verdicts(dataset_id=dataset.pk)
    queue = review_queue_counts(dataset_id=dataset.pk)
    confirmed_all = sum(1 for v, _ in latest.values() if v == Decision.Verdict.INAPPROPRIATE)
    rejected_all = sum(1 for v, _ in latest.values() if v == Decision.Verdict.APPROPRIATE)

    bins = [round(i / HISTOGRAM_BINS, 4) for i in range(HISTOGRAM_BINS + 1)]
    totals = [0] * HISTOGRAM_BINS
    confirmed_hist = [0] * HISTOGRAM_BINS
    rejected_hist = [0] * HISTOGRAM_BINS
    scored = flagged = 0
    threshold = run.threshold if run else None
    reviewed_scores: list[tuple[float, bool]] = []  # (score, confirmed) of reviewed images
    if run is not None:
        scores = Score.objects.filter(run=run)
        scored = scores.count()
        flagged = scores.filter(p_inappropriate__gte=run.threshold).count()
        for row in (
            scores.annotate(
                bin=Least(
                    Cast(Floor(F("p_inappropriate") * HISTOGRAM_BINS), IntegerField()),
                    Value(HISTOGRAM_BINS - 1),
                    output_field=IntegerField(),
                )
            )
            .values("bin")
            .annotate(n=Count("id"))
            .order_by()
        ):
            totals[max(0, int(row["bin"]))] += row["n"]
        for image_id, p in scores.filter(image_id__in=list(latest)).values_list(
            "image_id", "p_inappropriate"
        ):
            is_confirmed = latest[image_id][0] == Decision.Verdict.INAPPROPRIATE
            reviewed_scores.append((p, is_confirmed))
            b = min(HISTOGRAM_BINS - 1, max(0, math.floor(p * HISTOGRAM_BINS)))
            (confirmed_hist if is_confirmed else rejected_hist)[b] += 1
    unreviewed = [t - c - r for t, c, r in zip(totals, confirmed_hist, rejected_hist, strict=True)]

    # Precision of the flagged set: verdicts on flagged (non-audit) items.
    flagged_items = ReviewItem.objects.filter(dataset=dataset, is_audit=False).exclude(
        state=ReviewItem.State.WITHDRAWN
    )
    flagged_ids = set(flagged_items.values_list("image_id", flat=True))
    flagged_verdicts = [latest[i][0] for i in flagged_ids if i in latest]
    n_precision = len(flagged_verdicts)
    hits = sum(1 for v in flagged_verdicts if v == Decision.Verdict.INAPPROPRIATE)
    low, high = wilson_interval(hits, n_precision)
    precision = {
        "estimate": hits / n_precision if n_precision else None,
        "low": low if n_precision else None,
        "high": high if n_precision else None,
        "n": n_precision,
    }

    # What the model misses: confirmed among audited (below-threshold) images.
    audit_ids = ReviewItem.objects.filter(dataset=dataset, is_audit=True).values_list(
        "image_id", flat=True
    )
    audit_verdicts = [latest[i][0] for i in audit_ids if i in latest]
    n_audited = len(audit_verdicts)
    missed_hits = sum(1 for v in audit_verdicts if v == Decision.Verdict.INAPPROPRIATE)
    unflagged = scored - flagged
    m_low, m_high = wilson_interval(missed_hits, n_audited)
    rate = missed_hits / n_audited if n_audited else None
    missed = {
        "rate": rate,
        "low": m_low if n_audited else None,
        "high": m_high if n_audited else None,
        "n_audited": n_audited,
        "unflagged": unflagged,
        "estimated_missed": round(rate * unflagged) if rate is not None else None,
        "estimated_missed_low": round(m_low * unflagged) if n_audited else None,
        "estimated_missed_high": round(m_high * unflagged) if n_audited else None,
    }

    total_confirmed = sum(1 for _, c in reviewed_scores if c)
    thresholds = []
    for t in THRESHOLDS:
        above = [c for p, c in reviewed_scores if p >= t]
        tp = sum(above)
        thresholds.append(
            {
                "threshold": t,
                "precision": tp / len(above) if above else None,
                "recall": tp / total_confirmed if total_confirmed else None,
                "queue_size": sum(totals[round(t * HISTOGRAM_BINS) :]),
            }
        )

    since = timezone.now() - timedelta(days=THROUGHPUT_DAYS)
    throughput = [
        {"reviewer": row["reviewer__username"], "day": row["day"], "verdicts": row["n"]}
        for row in _live_verdicts()
        .filter(item__dataset=dataset, created_at__gte=since, propagated_from__isnull=True)
        .annotate(day=TruncDate("created_at"))
        .values("reviewer__username", "day")
        .annotate(n=Count("id"))
        .order_by("day", "reviewer__username")
    ]

    return {
        "run": run.pk if run else None,
        "prompt_version": run.prompt_version_id if run else None,
        "threshold": threshold,
        "counts": {
            "scored": scored,
            "flagged": flagged,
            "reviewed": len(latest),
            "confirmed": confirmed_all,
            "rejected": rejected_all,
            "audited": n_audited,
            **queue,
        },
        "precision": precision,
        "missed": missed,
        "histogram": {
            "bins": bins,
            "confirmed": confirmed_hist,
            "rejected": rejected_hist,
            "unreviewed": unreviewed,
        },
        "thresholds": thresholds,
        "throughput": throughput,
        "agreement": review_agreement(dataset_id=dataset.pk),
        "policy": review_policy_summary(dataset_id=dataset.pk),
    }
