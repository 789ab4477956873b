"""Review items from scores: a chunk's flagged images become pending items, fallen ones are withdrawn."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from django.db import connection
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from curation.bulk import insert_rows, update_rows
from curation.models import BankMatch, Score, ScoringRun
from reviewer.models import Decision, ReviewItem


def review_items_sync(*, run: ScoringRun, scores: Mapping[int, float]) -> int:
    """Create or update review items from a chunk's scores; returns how many were flagged.

    Flagged images (score >= threshold) get a pending item, or keep their item with the
    new score. Pending items whose image fell below the threshold are withdrawn (audit
    items excepted: they are below the threshold by design); decided items keep their
    verdicts whatever the new score. Uncertain-queue items still below the threshold that
    nobody holds or gave a verdict on are dropped: the queue picks the images nearest the
    new boundary again on demand (their order follows the new scores).

    Row by row (plain rows and executemany), for scores that are not stored: a scoring
    chunk's stored scores go through review_items_sync_stored instead.
    """
    if not scores:
        return 0
    ids = list(scores)
    _sync_row_by_row(run=run, first_image_id=min(ids), last_image_id=max(ids), scores=scores)
    return sum(1 for p in scores.values() if p >= run.threshold)


def review_items_sync_stored(
    *,
    run: ScoringRun,
    first_image_id: int,
    last_image_id: int,
    image_ids: np.ndarray,
    probabilities: np.ndarray,
) -> int:
    """review_items_sync for scores just stored for the run's images in one id range (a
    chunk's), also given as aligned arrays; returns how many were flagged.

    PostgreSQL: two set-based statements over the stored scores (one UPDATE of the range's
    items, one INSERT of the newly flagged), whatever the chunk's size: a rescore of a
    million images passes through here in 20,000-score chunks. Elsewhere: row by row.
    """
    if len(image_ids) == 0:
        return 0
    if connection.vendor == "postgresql":
        _sync_set_based(run=run, first_image_id=first_image_id, last_image_id=last_image_id)
    else:
        _sync_row_by_row(
            run=run,
            first_image_id=first_image_id,
            last_image_id=last_image_id,
            scores=dict(zip(image_ids.tolist(), probabilities.tolist(), strict=True)),
        )
    return int((probabilities >= run.threshold).sum())


def _sync_set_based(*, run: ScoringRun, first_image_id: int, last_image_id: int) -> None:
    """The rules of _sync_row_by_row as two statements over the run's stored scores."""
    table = connection.ops.quote_name(ReviewItem._meta.db_table)
    score_table = connection.ops.quote_name(Score._meta.db_table)
    # Python's p >= threshold: PostgreSQL orders NaN above every number, Python never flags it.
    flagged = "(s.p_inappropriate >= %(threshold)s AND s.p_inappropriate <> 'NaN'::float8)"
    bank_table = connection.ops.quote_name(BankMatch._meta.db_table)
    # Matched to a hash bank: known-bad already, never queued for review again.
    matched = f"EXISTS (SELECT 1 FROM {bank_table} AS bm WHERE bm.image_id = s.image_id)"
    # Waiting and matched, or fallen below the threshold (audit items excepted; stale
    # uncertain-queue items are dropped below instead): withdrawn, lease freed.
    withdraw = (
        f"(ri.state = %(pending)s AND ({matched} OR (NOT {flagged} AND NOT ri.is_audit "
        "AND NOT ri.is_uncertain)))"
    )
    scores_in_range = (
        f"{score_table} AS s WHERE s.run_id = %(run)s "
        "AND s.image_id >= %(first)s AND s.image_id <= %(last)s"
    )
    update = (
        f"UPDATE {table} AS ri SET score = s.p_inappropriate, "
        "margin = abs(s.p_inappropriate - %(threshold)s), run_id = %(run)s, "
        f"state = CASE WHEN ri.state = %(withdrawn)s AND {flagged} AND NOT {matched} "
        "THEN %(pending)s "
        f"WHEN {withdraw} THEN %(withdrawn)s ELSE ri.state END, "
        f"leased_by_id = CASE WHEN {withdraw} THEN NULL ELSE ri.leased_by_id END, "
        f"lease_expires_at = CASE WHEN {withdraw} THEN NULL ELSE ri.lease_expires_at END "
        f"FROM {scores_in_range} AND ri.image_id = s.image_id AND ri.dataset_id = %(dataset)s "
        "AND ri.image_id >= %(first)s AND ri.image_id <= %(last)s"
    )
    # Images are unique per item, so "no item yet" is a NOT EXISTS on the image; new items
    # are made in image order, as review_items_sync makes them.
    insert = (
        f"INSERT INTO {table} (dataset_id, image_id, score, margin, run_id, is_audit, state, "
        "created_at) SELECT %(dataset)s, s.image_id, s.p_inappropriate, "
        "abs(s.p_inappropriate - %(threshold)s), %(run)s, false, %(pending)s, %(created)s "
        f"FROM {scores_in_range} AND {flagged} AND NOT {matched} "
        f"AND NOT EXISTS (SELECT 1 FROM {table} AS ri WHERE ri.image_id = s.image_id) "
        "ORDER BY s.image_id ON CONFLICT DO NOTHING"
    )
    params: dict[str, Any] = {
        "threshold": float(run.threshold),
        "run": run.pk,
        "dataset": run.dataset_id,
        "pending": ReviewItem.State.PENDING.value,
        "withdrawn": ReviewItem.State.WITHDRAWN.value,
        "first": int(first_image_id),
        "last": int(last_image_id),
        "created": timezone.now(),
    }
    with connection.cursor() as cursor:
        cursor.execute(update, params)
        cursor.execute(insert, params)
    _drop_stale_uncertain(run=run, first_image_id=first_image_id, last_image_id=last_image_id)


def _drop_stale_uncertain(*, run: ScoringRun, first_image_id: int, last_image_id: int) -> None:
    """Uncertain items still below the threshold that nobody holds or decided are dropped.

    The range's uncertain items are found first, on their own (a range scan of the
    range's items; usually none): given the score and verdict conditions in the same
    statement, the planner may start from the scores and take a tenth of a second per
    20,000-image chunk, the largest cost of a rescore's review-item sync. Through the
    ORM, not raw SQL: reveals keep a nullable reference to the item that Django clears
    on delete.
    """
    candidates = list(
        ReviewItem.objects.filter(
            dataset_id=run.dataset_id,
            image_id__gte=first_image_id,
            image_id__lte=last_image_id,
            state=ReviewItem.State.PENDING,
            is_uncertain=True,
        ).values_list("pk", flat=True)
    )
    if not candidates:
        return
    below = Score.objects.filter(run_id=run.pk, image_id=OuterRef("image_id")).filter(
        Q(p_inappropriate__lt=run.threshold) | Q(p_inappropriate=float("nan"))
    )
    ReviewItem.objects.filter(pk__in=candidates, state=ReviewItem.State.PENDING).filter(
        Q(leased_by__isnull=True) | Q(lease_expires_at__lt=timezone.now())
    ).filter(Exists(below)).exclude(
        Exists(Decision.objects.filter(item_id=OuterRef("pk")))
    ).delete()


def _sync_row_by_row(
    *, run: ScoringRun, first_image_id: int, last_image_id: int, scores: Mapping[int, float]
) -> None:
    """The rules of review_items_sync with plain rows and executemany (SQLite)."""
    threshold = run.threshold
    # Images matched to a hash bank are known-bad already: never queued for review again.
    matched = set(
        BankMatch.objects.filter(
            dataset_id=run.dataset_id, image_id__gte=first_image_id, image_id__lte=last_image_id
        ).values_list("image_id", flat=True)
    )
    flagged = {image_id for image_id, p in scores.items() if p >= threshold} - matched
    # An id range, not an IN list of thousands of ids (chunks are contiguous id ranges).
    existing = ReviewItem.objects.filter(
        dataset_id=run.dataset_id, image_id__gte=first_image_id, image_id__lte=last_image_id
    ).values_list("id", "image_id", "state", "is_audit", "is_uncertain")
    rescored: list[tuple[int, float, float, int]] = []
    restored: list[int] = []
    withdrawn: list[int] = []
    stale_uncertain: list[int] = []
    has_item: set[int] = set()
    for item_id, image_id, state, is_audit, is_uncertain in existing:
        p = scores.get(image_id)
        if p is None:
            continue
        has_item.add(image_id)
        rescored.append((item_id, p, abs(p - threshold), run.pk))
        if state == ReviewItem.State.WITHDRAWN and image_id in flagged:
            restored.append(item_id)
        elif state == ReviewItem.State.PENDING and image_id in matched:
            withdrawn.append(item_id)  # matched a bank: known-bad, never shown again
        elif state == ReviewItem.State.PENDING and image_id not in flagged and is_uncertain:
            stale_uncertain.append(item_id)
        elif state == ReviewItem.State.PENDING and image_id not in flagged and not is_audit:
            withdrawn.append(item_id)

    created_at = connection.ops.adapt_datetimefield_value(timezone.now())
    insert_rows(
        table=ReviewItem._meta.db_table,
        columns=[
            "dataset_id",
            "image_id",
            "score",
            "margin",
            "run_id",
            "is_audit",
            "state",
            "created_at",
        ],
        pg_types=[
            "bigint",
            "bigint",
            "float8",
            "float8",
            "bigint",
            "boolean",
            "text",
            "timestamptz",
        ],
        rows=[
            (
                run.dataset_id,
                image_id,
                scores[image_id],
                abs(scores[image_id] - threshold),
                run.pk,
                False,
                ReviewItem.State.PENDING.value,
                created_at,
            )
            for image_id in sorted(flagged - has_item)
        ],
        on_conflict="ON CONFLICT DO NOTHING",
    )
    update_rows(
        table=ReviewItem._meta.db_table,
        key="id",
        columns=["score", "margin", "run_id"],
        pg_types=["bigint", "float8", "float8", "bigint"],
        rows=rescored,
    )
    for start in range(0, len(restored), 1000):
        ReviewItem.objects.filter(
            id__in=restored[start : start + 1000], state=ReviewItem.State.WITHDRAWN
        ).update(state=ReviewItem.State.PENDING)
    now = timezone.now()
    for start in range(0, len(stale_uncertain), 1000):
        ReviewItem.objects.filter(
            id__in=stale_uncertain[start : start + 1000], state=ReviewItem.State.PENDING
        ).filter(Q(leased_by__isnull=True) | Q(lease_expires_at__lt=now)).exclude(
            Exists(Decision.objects.filter(item_id=OuterRef("pk")))
        ).delete()
    for start in range(0, len(withdrawn), 1000):
        ReviewItem.objects.filter(
            id__in=withdrawn[start : start + 1000], state=ReviewItem.State.PENDING
        ).update(state=ReviewItem.State.WITHDRAWN, leased_by=None, lease_expires_at=None)


def review_items_retire_matched(*, dataset_id: int, image_ids: list[int]) -> int:
    """Withdraw the pending items (flagged or audit) of images matched to a hash bank, leases
    included; decided and disputed items keep their verdicts. Returns how many."""
    return ReviewItem.objects.filter(
        dataset_id=dataset_id, image_id__in=image_ids, state=ReviewItem.State.PENDING
    ).update(state=ReviewItem.State.WITHDRAWN, leased_by=None, lease_expires_at=None)


def review_items_restore_unmatched(*, dataset_id: int, image_ids: list[int]) -> int:
    """Images that match no bank any more: their withdrawn items that are still flagged under
    their run (or were audit items, which only a match withdraws) wait for review again."""
    candidates = ReviewItem.objects.filter(
        dataset_id=dataset_id, image_id__in=image_ids, state=ReviewItem.State.WITHDRAWN
    ).values_list("id", "score", "is_audit", "run__threshold")
    restore = [
        item_id
        for item_id, score, is_audit, threshold in candidates
        if is_audit or (threshold is not None and score >= threshold)
    ]
    return ReviewItem.objects.filter(id__in=restore, state=ReviewItem.State.WITHDRAWN).update(
        state=ReviewItem.State.PENDING
    )
