"""The review queue: items leased to one reviewer at a time, append-only verdicts."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from curation.errors import StateConflict, ValidationFailed
from curation.models import Dataset, ScoringRun
from reviewer.models import Decision, ReviewItem

# How many queue heads to try when others grab the first candidates at the same moment.
LEASE_CANDIDATES = 20


def review_items_sync(*, run: ScoringRun, scores: dict[int, float]) -> int:
    """Create or update review items from a chunk's scores; returns how many were flagged.

    Flagged images (score >= threshold) get a pending item, or keep their item with the
    new score. Pending items whose image fell below the threshold are withdrawn; decided
    items keep their verdicts whatever the new score.
    """
    flagged = {image_id: p for image_id, p in scores.items() if p >= run.threshold}
    below = [image_id for image_id, p in scores.items() if p < run.threshold]
    existing = {
        item.image_id: item for item in ReviewItem.objects.filter(image_id__in=list(scores.keys()))
    }
    to_create: list[ReviewItem] = []
    to_update: list[ReviewItem] = []
    for image_id, p in scores.items():
        item = existing.get(image_id)
        if item is None:
            if image_id in flagged:
                to_create.append(
                    ReviewItem(dataset_id=run.dataset_id, image_id=image_id, score=p, run=run)
                )
            continue
        item.score = p
        item.run = run
        if item.state == ReviewItem.State.WITHDRAWN and image_id in flagged:
            item.state = ReviewItem.State.PENDING
        elif item.state == ReviewItem.State.PENDING and image_id in below:
            item.state = ReviewItem.State.WITHDRAWN
            item.leased_by = None
            item.lease_expires_at = None
        to_update.append(item)
    ReviewItem.objects.bulk_create(to_create, ignore_conflicts=True, batch_size=1000)
    ReviewItem.objects.bulk_update(
        to_update, ["score", "run", "state", "leased_by", "lease_expires_at"], batch_size=1000
    )
    return len(flagged)


def _lease_is_free(now) -> Q:
    return Q(leased_by__isnull=True) | Q(lease_expires_at__lt=now)


def review_item_next(
    *, reviewer: AbstractBaseUser, dataset: Dataset | None = None
) -> ReviewItem | None:
    """Lease the next item to this reviewer (highest score first), or None if the queue is empty.

    A reviewer who already holds a live lease gets that item again. Otherwise the
    queue head is claimed with a compare-and-set UPDATE, so two reviewers can never
    hold the same item; PostgreSQL additionally skips rows others have locked.
    """
    now = timezone.now()
    expires = now + timedelta(seconds=settings.Q16_LEASE_SECONDS)
    pending = ReviewItem.objects.filter(state=ReviewItem.State.PENDING)
    if dataset is not None:
        pending = pending.filter(dataset=dataset)

    held = pending.filter(leased_by=reviewer, lease_expires_at__gte=now).order_by("-score").first()
    if held is not None:
        return held

    skipped = Decision.objects.filter(reviewer=reviewer, verdict=Decision.Verdict.SKIP).values(
        "item_id"
    )
    candidates = (
        pending.filter(_lease_is_free(now)).exclude(pk__in=skipped).order_by("-score", "id")
    )
    with transaction.atomic():
        if connection.features.has_select_for_update_skip_locked:
            candidates = candidates.select_for_update(skip_locked=True, of=("self",))
        for item_id in candidates.values_list("id", flat=True)[:LEASE_CANDIDATES]:
            claimed = (
                ReviewItem.objects.filter(pk=item_id, state=ReviewItem.State.PENDING)
                .filter(_lease_is_free(now))
                .update(leased_by=reviewer, lease_expires_at=expires)
            )
            if claimed:
                return ReviewItem.objects.select_related("image", "dataset").get(pk=item_id)
    return None


def review_decision_record(*, item_id: int, reviewer: AbstractBaseUser, verdict: str) -> Decision:
    """Append a verdict for an item the reviewer holds (or that nobody holds) and close it.

    Skipping releases the lease and keeps the item in the queue for others.
    """
    if verdict not in Decision.Verdict.values:
        raise ValidationFailed(f"Unknown verdict {verdict!r}.")
    now = timezone.now()
    with transaction.atomic():
        item = ReviewItem.objects.select_for_update().get(pk=item_id)
        if item.state == ReviewItem.State.WITHDRAWN:
            raise StateConflict("This item is no longer in the queue.")
        held_by_other = (
            item.leased_by_id is not None
            and item.leased_by_id != reviewer.pk
            and item.lease_expires_at is not None
            and item.lease_expires_at >= now
        )
        if held_by_other:
            raise StateConflict("Another reviewer holds this item.")
        if item.state == ReviewItem.State.DECIDED and verdict == Decision.Verdict.SKIP:
            raise StateConflict("This item is already decided.")
        decision = Decision.objects.create(
            item=item, image_id=item.image_id, reviewer=reviewer, verdict=verdict
        )
        item.leased_by = None
        item.lease_expires_at = None
        if verdict != Decision.Verdict.SKIP:
            item.state = ReviewItem.State.DECIDED
            item.decided_at = now
        item.save(update_fields=["leased_by", "lease_expires_at", "state", "decided_at"])
    return decision


def review_lease_release(*, item_id: int, reviewer: AbstractBaseUser) -> None:
    ReviewItem.objects.filter(pk=item_id, leased_by=reviewer).update(
        leased_by=None, lease_expires_at=None
    )
