"""Read-side queries of the review domain."""

from __future__ import annotations

from django.db.models import OuterRef, QuerySet, Subquery

from curation.models import Image
from reviewer.models import Decision, ReviewItem


def latest_verdict_subquery() -> Subquery:
    """The latest non-skip verdict of the image in the outer query (append-only history)."""
    return Subquery(
        Decision.objects.filter(image=OuterRef("pk"))
        .exclude(verdict=Decision.Verdict.SKIP)
        .order_by("-created_at", "-id")
        .values("verdict")[:1]
    )


def images_with_latest_verdict(*, dataset_id: int) -> QuerySet[Image]:
    return Image.objects.filter(dataset_id=dataset_id).annotate(verdict=latest_verdict_subquery())


def review_queue_counts(*, dataset_id: int | None = None) -> dict[str, int]:
    items = ReviewItem.objects.all()
    if dataset_id is not None:
        items = items.filter(dataset_id=dataset_id)
    return {state: items.filter(state=state).count() for state in ReviewItem.State.values}


def image_decision_history(*, image_id: int) -> QuerySet[Decision]:
    return (
        Decision.objects.filter(image_id=image_id)
        .select_related("reviewer")
        .order_by("created_at", "id")
    )
