"""Read-side queries of the curation domain."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from django.db.models import Count, Q, QuerySet

from curation.models import (
    Dataset,
    DatasetAssignment,
    Embedding,
    Export,
    Image,
    PromptJob,
    PromptVersion,
    ScoringRun,
)
from reviewer.models import Decision
from reviewer.selectors import latest_verdict_subquery
from worker.engine.store import embeddings_from_bytes

# --- Who may see what -------------------------------------------------------------------------


def datasets_visible_to(user) -> QuerySet[Dataset]:
    """Admins (staff) see every dataset; reviewers only those assigned to them; nobody else any."""
    if user is None or not user.is_authenticated or not user.is_active:
        return Dataset.objects.none()
    if user.is_staff:
        return Dataset.objects.all()
    return Dataset.objects.filter(assignments__user=user)


def visible_dataset_ids(user) -> QuerySet | None:
    """A subquery of the dataset ids user may see, or None for "all" (admins)."""
    if user is not None and user.is_authenticated and user.is_active and user.is_staff:
        return None
    if user is None or not user.is_authenticated or not user.is_active:
        return Dataset.objects.none().values("id")
    return DatasetAssignment.objects.filter(user=user).values("dataset_id")


def user_can_review(*, user, dataset: Dataset | int) -> bool:
    dataset_id = dataset if isinstance(dataset, int) else dataset.pk
    return datasets_visible_to(user).filter(pk=dataset_id).exists()


def dataset_reviewers(*, dataset: Dataset) -> QuerySet:
    """The users assigned to review a dataset."""
    from django.contrib.auth import get_user_model

    return (
        get_user_model().objects.filter(dataset_assignments__dataset=dataset).order_by("username")
    )


def reviewer_candidates() -> QuerySet:
    """Active non-staff users: the people an admin may assign to a dataset."""
    from django.contrib.auth import get_user_model

    return get_user_model().objects.filter(is_active=True, is_staff=False).order_by("username")


@dataclass(frozen=True)
class LabelledEmbeddings:
    image_ids: list[int]
    embeddings: np.ndarray  # float32 (N, D)
    labels: np.ndarray  # int64 (N,): 1 = inappropriate (confirmed), 0 = appropriate


def labelled_embeddings(*, dataset_id: int, model_key: str, dim: int) -> LabelledEmbeddings:
    """Images with a verdict (the latest one counts) and a cached embedding for model_key."""
    rows = list(
        Image.objects.filter(dataset_id=dataset_id, status=Image.Status.OK)
        .annotate(verdict=latest_verdict_subquery())
        .filter(verdict__isnull=False)
        .order_by("id")
        .values_list("id", "sha256", "verdict")
    )
    hashes = sorted({sha for _, sha, _ in rows})
    vectors: dict[str, np.ndarray] = {}
    for start in range(0, len(hashes), 1000):
        for sha, blob in Embedding.objects.filter(
            model_key=model_key, sha256__in=hashes[start : start + 1000]
        ).values_list("sha256", "vector"):
            vectors[sha] = embeddings_from_bytes(bytes(blob), dim=dim)[0]
    kept = [(image_id, sha, verdict) for image_id, sha, verdict in rows if sha in vectors]
    if not kept:
        return LabelledEmbeddings([], np.zeros((0, 0), dtype=np.float32), np.zeros(0, np.int64))
    return LabelledEmbeddings(
        image_ids=[image_id for image_id, _, _ in kept],
        embeddings=np.stack([vectors[sha] for _, sha, _ in kept]).astype(np.float32),
        labels=np.array(
            [1 if verdict == Decision.Verdict.INAPPROPRIATE else 0 for _, _, verdict in kept],
            dtype=np.int64,
        ),
    )


def dataset_list() -> QuerySet[Dataset]:
    return Dataset.objects.all().order_by("-created_at")


def dataset_latest_run(*, dataset: Dataset, succeeded_only: bool = True) -> ScoringRun | None:
    runs = dataset.runs.select_related("prompt_version")
    if succeeded_only:
        runs = runs.filter(state=ScoringRun.State.SUCCEEDED)
    return runs.order_by("-created_at", "-id").first()


def dataset_summary(*, dataset: Dataset) -> dict[str, int]:
    """Counts an admin looks at: images, failures, flagged, reviewed, confirmed, rejected."""
    images = Image.objects.filter(dataset=dataset).aggregate(
        total=Count("id"), failed=Count("id", filter=Q(status=Image.Status.FAILED))
    )
    verdicts = (
        Image.objects.filter(dataset=dataset)
        .annotate(verdict=latest_verdict_subquery())
        .filter(verdict__isnull=False)
        .values("verdict")
        .annotate(n=Count("id"))
    )
    by_verdict = {row["verdict"]: row["n"] for row in verdicts}
    from reviewer.models import ReviewItem

    items = ReviewItem.objects.filter(dataset=dataset).aggregate(
        flagged=Count("id", filter=~Q(state=ReviewItem.State.WITHDRAWN)),
        pending=Count("id", filter=Q(state=ReviewItem.State.PENDING)),
    )
    return {
        "images": images["total"],
        "failed": images["failed"],
        "flagged": items["flagged"],
        "pending_review": items["pending"],
        "confirmed": by_verdict.get(Decision.Verdict.INAPPROPRIATE, 0),
        "rejected": by_verdict.get(Decision.Verdict.APPROPRIATE, 0),
    }


def prompt_version_list(*, model_key: str | None = None) -> QuerySet[PromptVersion]:
    versions = PromptVersion.objects.select_related("parent", "created_by").order_by("-created_at")
    if model_key:
        versions = versions.filter(model_key=model_key)
    return versions


def active_prompt_version(*, model_key: str) -> PromptVersion | None:
    return PromptVersion.objects.filter(model_key=model_key, is_active=True).first()


def dataset_failed_images(*, dataset: Dataset, limit: int = 200) -> QuerySet[Image]:
    return Image.objects.filter(dataset=dataset, status=Image.Status.FAILED).order_by("id")[:limit]


def dataset_runs(*, dataset: Dataset, limit: int = 50) -> QuerySet[ScoringRun]:
    return dataset.runs.select_related("prompt_version").order_by("-created_at", "-id")[:limit]


def dataset_exports(*, dataset: Dataset, limit: int = 50) -> QuerySet[Export]:
    return dataset.exports.order_by("-created_at", "-id")[:limit]


def prompt_job_list(*, limit: int = 50) -> QuerySet[PromptJob]:
    return PromptJob.objects.select_related("dataset", "parent", "result").order_by(
        "-created_at", "-id"
    )[:limit]
