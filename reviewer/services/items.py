"""Review items from scores: a chunk's flagged images become pending items, fallen ones are withdrawn."""

from __future__ import annotations

from django.db import connection
from django.utils import timezone

from curation.bulk import insert_rows, update_rows
from curation.models import BankMatch, ScoringRun
from reviewer.models import (
    ReviewItem,
)


def review_items_sync(*, run: ScoringRun, scores: dict[int, float]) -> int:
    """Create or update review items from a chunk's scores; returns how many were flagged.

    Flagged images (score >= threshold) get a pending item, or keep their item with the
    new score. Pending items whose image fell below the threshold are withdrawn (audit
    items excepted: they are below the threshold by design); decided items keep their
    verdicts whatever the new score.

    Plain rows and executemany, not model instances and bulk_update: a rescore of a
    million images passes through here in 20,000-score chunks.
    """
    if not scores:
        return 0
    threshold = run.threshold
    # Images matched to a hash bank are known-bad already: never queued for review again.
    matched = set(
        BankMatch.objects.filter(
            dataset_id=run.dataset_id, image_id__gte=min(scores), image_id__lte=max(scores)
        ).values_list("image_id", flat=True)
    )
    flagged = {image_id for image_id, p in scores.items() if p >= threshold} - matched
    # An id range, not an IN list of thousands of ids (chunks are contiguous id ranges).
    existing = ReviewItem.objects.filter(
        dataset_id=run.dataset_id, image_id__gte=min(scores), image_id__lte=max(scores)
    ).values_list("id", "image_id", "state", "is_audit")
    rescored: list[tuple[int, float, float, int]] = []
    restored: list[int] = []
    withdrawn: list[int] = []
    has_item: set[int] = set()
    for item_id, image_id, state, is_audit in existing:
        p = scores.get(image_id)
        if p is None:
            continue
        has_item.add(image_id)
        rescored.append((item_id, p, abs(p - threshold), run.pk))
        if state == ReviewItem.State.WITHDRAWN and image_id in flagged:
            restored.append(item_id)
        elif state == ReviewItem.State.PENDING and (
            image_id in matched or (image_id not in flagged and not is_audit)
        ):
            # Fell below the threshold (audit items are below it by design), or matched a bank.
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
    for start in range(0, len(withdrawn), 1000):
        ReviewItem.objects.filter(
            id__in=withdrawn[start : start + 1000], state=ReviewItem.State.PENDING
        ).update(state=ReviewItem.State.WITHDRAWN, leased_by=None, lease_expires_at=None)
    return len(flagged)


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
