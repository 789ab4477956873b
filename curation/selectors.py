"""Read-side queries of the curation domain."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from curation import hooks
from curation.models import (
    Dataset,
    DatasetAssignment,
    Export,
    Image,
    PromptJob,
    PromptPolicy,
    PromptVersion,
    ScoringRun,
)

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


def dataset_list() -> QuerySet[Dataset]:
    return Dataset.objects.all().order_by("-created_at")


def dataset_latest_run(*, dataset: Dataset, succeeded_only: bool = True) -> ScoringRun | None:
    runs = dataset.runs.select_related("prompt_version")
    if succeeded_only:
        runs = runs.filter(state=ScoringRun.State.SUCCEEDED)
    return runs.order_by("-created_at", "-id").first()


def dataset_summary(*, dataset: Dataset) -> dict[str, int]:
    """Counts an admin looks at: images, failures, flagged, reviewed, confirmed, rejected.

    Curation counts the images; the review counts come from the review app through
    hooks.dataset_review_counts (zero when no review app answers).
    """
    images = Image.objects.filter(dataset=dataset).aggregate(
        total=Count("id"), failed=Count("id", filter=Q(status=Image.Status.FAILED))
    )
    summary = {
        "images": images["total"],
        "failed": images["failed"],
        "flagged": 0,
        "pending_review": 0,
        "confirmed": 0,
        "rejected": 0,
    }
    for _receiver, counts in hooks.dataset_review_counts.send(sender=Dataset, dataset=dataset):
        if isinstance(counts, dict):
            summary.update(counts)
    return summary


def prompt_version_list(*, model_key: str | None = None) -> QuerySet[PromptVersion]:
    versions = PromptVersion.objects.select_related("parent", "created_by").order_by("-created_at")
    if model_key:
        versions = versions.filter(model_key=model_key)
    return versions


def active_prompt_version(*, model_key: str) -> PromptVersion | None:
    return PromptVersion.objects.filter(model_key=model_key, is_active=True).first()


def prompt_policy_get(*, dataset_id: int) -> PromptPolicy:
    """The dataset's prompt policy; an unsaved default (off, nothing pinned) when none."""
    policy = PromptPolicy.objects.select_related("pinned_version", "last_retrain_job").filter(
        dataset_id=dataset_id
    )
    return policy.first() or PromptPolicy(dataset_id=dataset_id)


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
