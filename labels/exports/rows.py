"""The rows of an export: which images a scope and its filters select, and each image's
hashes, location, score, verdict, category, verdict count and agreement.

Blocked means confirmed by reviewers OR matched to a hash bank (`banks`: image id -> bank
names, passed in by the caller; empty until banks are wired in). The keep-list is every
indexed image that is not blocked, so keep-list + the confirmed blocklist cover the indexed
images exactly once. Images that failed to index (unreadable, too large) have no hashes and no
score: they are in neither list, and the provenance counts them as `not_indexed`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import OuterRef, Subquery

from curation.bank_selectors import bank_matches_by_image
from curation.models import Export, Image, Score
from reviewer.models import Decision, ReviewItem
from reviewer.selectors.verdicts import latest_decision_subquery, live_verdicts

# Every row has these keys, in this order (CSV header, Parquet schema, JSON objects).
ROW_COLUMNS = (
    "image_id",
    "sha256",
    "phash",
    "pdq",
    "pdq_quality",
    "path",
    "sample_key",
    "class_label",
    "score",
    "verdict",
    "category",
    "verdicts",
    "agreement",
    "banks",
    "prompt_version",
    "run",
)
MATCHED = "matched"
UNREVIEWED = "unreviewed"
DISPUTED = "disputed"
# Flagged-but-unsettled review items: waiting for verdicts, or disputed until adjudicated.
UNSETTLED_STATES = (ReviewItem.State.PENDING, ReviewItem.State.DISPUTED)


@dataclass
class ExportSelection:
    """The rows, the images they came from (for cleaned copies) and what was counted."""

    rows: list[dict[str, Any]]
    counts: dict[str, int]
    # Per row, in the same order: the image's own fields (container, relative path) for copies.
    images: list[dict[str, Any]] = field(default_factory=list)


def _verdict_counts(dataset_id: int) -> dict[int, Counter]:
    """image id -> Counter of its live (non-skip, not retracted) verdicts."""
    counts: dict[int, Counter] = defaultdict(Counter)
    for image_id, verdict in (
        live_verdicts().filter(item__dataset_id=dataset_id).values_list("image_id", "verdict")
    ):
        counts[image_id][verdict] += 1
    return counts


def _candidates(export: Export) -> Any:
    """The dataset's indexed images with their settled verdict, category, review state and
    the export run's score; class and score filters applied in the database."""
    filters = export.filters or {}
    images = Image.objects.filter(dataset_id=export.dataset_id, status=Image.Status.OK).annotate(
        verdict=latest_decision_subquery("verdict"),
        category=latest_decision_subquery("category"),
        review_state=Subquery(ReviewItem.objects.filter(image=OuterRef("pk")).values("state")[:1]),
        review_is_audit=Subquery(
            ReviewItem.objects.filter(image=OuterRef("pk")).values("is_audit")[:1]
        ),
    )
    # No run yet: Score.run_id IS NULL matches nothing, so every score is None.
    images = images.annotate(
        score=Subquery(
            Score.objects.filter(run_id=export.run_id, image=OuterRef("pk")).values(
                "p_inappropriate"
            )[:1]
        )
    )
    if filters.get("classes"):
        images = images.filter(class_label__in=filters["classes"])
    if filters.get("min_score") is not None or filters.get("max_score") is not None:
        if export.run_id is None:
            return images.none()
        images = images.filter(score__isnull=False)
        if filters.get("min_score") is not None:
            images = images.filter(score__gte=filters["min_score"])
        if filters.get("max_score") is not None:
            images = images.filter(score__lte=filters["max_score"])
    return images.order_by("id").values(
        "id", "sha256", "phash", "pdq", "pdq_quality", "relative_path", "source_url",
        "sample_key", "class_label", "container", "verdict", "category", "review_state",
        "review_is_audit", "score",
    )  # fmt: skip


def _status(image: dict[str, Any], banks: Sequence[str]) -> tuple[str, bool, bool]:
    """(verdict shown, blocked, flagged and not settled) of one candidate image."""
    confirmed = image["verdict"] == Decision.Verdict.INAPPROPRIATE
    unsettled = (
        image["verdict"] is None
        and image["review_state"] in UNSETTLED_STATES
        and not image["review_is_audit"]  # below-threshold audit samples are not flagged
    )
    if confirmed:
        return image["verdict"], True, False
    if banks:
        return MATCHED, True, False
    if image["verdict"]:
        return image["verdict"], False, False
    if unsettled:
        state = image["review_state"]
        return (DISPUTED if state == ReviewItem.State.DISPUTED else UNREVIEWED), False, True
    return UNREVIEWED, False, False


def _in_scope(scope: str, *, blocked: bool, unsettled: bool) -> bool:
    if scope == Export.Scope.CONFIRMED:
        return blocked
    if scope == Export.Scope.FLAGGED:
        return blocked or unsettled
    return not blocked  # the keep-list


def export_select(
    *, export: Export, banks: Mapping[int, Sequence[str]] | None = None
) -> ExportSelection:
    """The export's rows in image order (a snapshot of verdicts at build time).

    banks: image id -> names of the hash banks it matched; a matched image counts as blocked
    (verdict "matched" unless a reviewer confirmed it), whatever its review says.
    """
    if banks is None:  # the dataset's recorded hash-bank matches
        banks = bank_matches_by_image(dataset=export.dataset)
    filters = export.filters or {}
    categories = set(filters.get("categories") or [])
    version = export.prompt_version
    verdict_counts = _verdict_counts(export.dataset_id)
    counts: Counter = Counter()
    rows: list[dict[str, Any]] = []
    images: list[dict[str, Any]] = []
    for image in _candidates(export).iterator(chunk_size=2000):
        matched = sorted(banks.get(image["id"], ()))
        verdict, blocked, unsettled = _status(image, matched)
        counts["scanned"] += 1
        counts["blocked" if blocked else "kept"] += 1
        if not _in_scope(export.scope, blocked=blocked, unsettled=unsettled):
            continue
        confirmed = verdict == Decision.Verdict.INAPPROPRIATE
        category = (image["category"] or "") if confirmed else ""
        if categories and category not in categories:
            continue
        tally = verdict_counts.get(image["id"], Counter())
        total = sum(tally.values())
        score = image["score"]
        rows.append(
            {
                "image_id": image["id"],
                "sha256": image["sha256"],
                "phash": image["phash"],
                "pdq": image["pdq"],
                "pdq_quality": image["pdq_quality"],
                # URL-list images: the URL they came from; files: the path in the dataset.
                "path": image["source_url"] or image["relative_path"],
                "sample_key": image["sample_key"],
                "class_label": image["class_label"],
                "score": round(score, 6) if score is not None else None,
                "verdict": verdict,
                "category": category,
                "verdicts": total,
                # Share of live verdicts that agree with the settled one.
                "agreement": round(tally[image["verdict"]] / total, 4)
                if total and image["verdict"]
                else None,
                "banks": matched,
                "prompt_version": version.name if version else None,
                "run": export.run_id,
            }
        )
        images.append(image)
        counts["confirmed"] += confirmed
        counts["matched"] += bool(matched)
        counts["flagged_unreviewed"] += unsettled
        counts["unscored"] += score is None
    counts["rows"] = len(rows)
    return ExportSelection(rows=rows, counts=dict(counts), images=images)


def export_rows(
    *, export: Export, banks: Mapping[int, Sequence[str]] | None = None
) -> list[dict[str, Any]]:
    """The rows of an export, in image order."""
    return export_select(export=export, banks=banks).rows
