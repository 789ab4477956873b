"""Verdicts as the rest of the app reads them: the latest live verdict per image, history,
queue counts."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery

from curation.models import Dataset, Image
from reviewer.models import Decision, ReviewItem


def live_verdicts() -> QuerySet[Decision]:
    """Decisions that count: not skipped, not retracted."""
    return Decision.objects.filter(retraction__isnull=True).exclude(verdict=Decision.Verdict.SKIP)


def latest_decision_subquery(
    field: str = "verdict", *, outer: str = "pk", settled_only: bool = True
) -> Subquery:
    """A field of the latest live verdict on the image given by `outer` in the outer query.

    Verdicts are append-only: the latest counts; a retracted one (undo) is ignored, so the
    previous verdict counts again. A second look that agreed leaves the decision as it was
    (its category too): it counts only where no other live verdict is left. With
    settled_only (training, exports, summaries), only decided items have a verdict: an item
    still waiting for its k verdicts, or disputed until an admin adjudicates, has none yet.
    """
    verdicts = live_verdicts()
    if settled_only:
        verdicts = verdicts.filter(item__state=ReviewItem.State.DECIDED)
    return Subquery(
        verdicts.filter(image=OuterRef(outer))
        .order_by("is_second_look", "-created_at", "-id")
        .values(field)[:1]
    )


def latest_verdict_subquery() -> Subquery:
    """The latest live (non-skip, non-retracted) verdict of the image in the outer query,
    for images whose review item is decided."""
    return latest_decision_subquery("verdict")


def images_with_latest_verdict(*, dataset_id: int) -> QuerySet[Image]:
    return Image.objects.filter(dataset_id=dataset_id).annotate(verdict=latest_verdict_subquery())


def latest_verdicts(*, dataset_id: int) -> dict[int, tuple[str, str]]:
    """image id -> (verdict, category) of the latest live verdict, for decided images (second
    looks last, as in latest_decision_subquery)."""
    latest: dict[int, tuple[str, str]] = {}
    for image_id, verdict, category in (
        live_verdicts()
        .filter(item__dataset_id=dataset_id, item__state=ReviewItem.State.DECIDED)
        .order_by("image_id", "-is_second_look", "created_at", "id")
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


def dataset_review_counts(*, dataset: Dataset) -> dict[str, int]:
    """The review half of a dataset's summary: flagged, waiting, confirmed, rejected, as
    curation.glossary.FIGURES defines them.

    Flagged counts the items whose current score is at or above the threshold of the run
    that gave it: not every non-withdrawn item, since audit items (below the threshold by
    design) and decided items a rescore moved below the threshold keep their items. Once the
    latest run has finished, that is the run's own Flagged count.
    """
    verdicts = (
        Image.objects.filter(dataset=dataset)
        .annotate(verdict=latest_verdict_subquery())
        .filter(verdict__isnull=False)
        .values("verdict")
        .annotate(n=Count("id"))
    )
    by_verdict = {row["verdict"]: row["n"] for row in verdicts}
    items = ReviewItem.objects.filter(dataset=dataset).aggregate(
        flagged=Count(
            "id",
            filter=~Q(state=ReviewItem.State.WITHDRAWN) & Q(score__gte=F("run__threshold")),
        ),
        pending=Count("id", filter=Q(state=ReviewItem.State.PENDING)),
    )
    return {
        "flagged": items["flagged"],
        "pending_review": items["pending"],
        "confirmed": by_verdict.get(Decision.Verdict.INAPPROPRIATE, 0),
        "rejected": by_verdict.get(Decision.Verdict.APPROPRIATE, 0),
    }


def image_decision_history(*, image_id: int) -> QuerySet[Decision]:
    return (
        Decision.objects.filter(image_id=image_id)
        .select_related("reviewer", "retraction")
        .order_by("created_at", "id")
    )


def history_entry(decision: Decision) -> dict[str, Any]:
    retraction = getattr(decision, "retraction", None)
    return {
        "reviewer": decision.reviewer.get_username(),
        "verdict": decision.verdict,
        "category": decision.category,
        "created_at": decision.created_at,
        "retracted": retraction is not None,
        "retracted_at": retraction.created_at if retraction is not None else None,
        "propagated_from": decision.propagated_from_id,
        "is_second_look": decision.is_second_look,
        "is_adjudication": decision.is_adjudication,
    }


def image_history(*, image_id: int) -> list[dict[str, Any]]:
    """Who decided what and when about an image, retracted verdicts included and marked."""
    return [history_entry(d) for d in image_decision_history(image_id=image_id)]
