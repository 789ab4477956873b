"""Read-side queries of the curation domain."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, F, IntegerField, Max, Min, Q, QuerySet, Sum, Value
from django.db.models.functions import Cast, Coalesce, Floor, Least
from django.utils import timezone

from curation import hooks
from curation.models import (
    Dataset,
    DatasetAssignment,
    Export,
    Image,
    ImportChunk,
    JobState,
    PromptJob,
    PromptPolicy,
    PromptVersion,
    Score,
    ScoringChunk,
    ScoringRun,
)

# Bins of the threshold preview's score distribution: 0.001 wide, so the count flagged at a
# threshold with three decimals is exact.
SCORE_BINS = 1000

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
    """Counts an admin looks at: images, failed files, flagged, pending review, confirmed,
    rejected (and files: images and failed files together).

    Every figure has one definition, in curation.glossary.FIGURES, the same on every page and
    in the API. Curation counts the images; the review counts come from the review app
    through hooks.dataset_review_counts (zero when no review app answers).
    """
    files = Image.objects.filter(dataset=dataset).aggregate(
        total=Count("id"), failed=Count("id", filter=Q(status=Image.Status.FAILED))
    )
    summary = {
        # Readable images only: the failed files are counted apart, never twice.
        "images": files["total"] - files["failed"],
        "failed": files["failed"],
        "flagged": 0,
        "pending_review": 0,
        "confirmed": 0,
        "rejected": 0,
        "files": files["total"],
    }
    for _receiver, counts in hooks.dataset_review_counts.send(sender=Dataset, dataset=dataset):
        if isinstance(counts, dict):
            summary.update(counts)
    return summary


def dataset_list_summaries(*, datasets) -> dict[int, dict[str, int]]:
    """dataset id -> dataset_summary, for the dataset list (one summary per dataset shown)."""
    return {dataset.pk: dataset_summary(dataset=dataset) for dataset in datasets}


def run_score_bins(*, run: ScoringRun, bins: int = SCORE_BINS) -> list[int]:
    """The run's scores counted in `bins` equal bins over [0, 1] (a score of 1 in the last)."""
    counts = [0] * bins
    rows = (
        Score.objects.filter(run=run)
        .annotate(
            bin=Least(
                Cast(Floor(F("p_inappropriate") * bins), IntegerField()),
                Value(bins - 1),
                output_field=IntegerField(),
            )
        )
        .values("bin")
        .annotate(n=Count("image_id"))
        .order_by()
    )
    for row in rows:
        counts[max(0, int(row["bin"]))] += row["n"]
    return counts


def dataset_threshold_preview(*, dataset: Dataset) -> dict[str, Any] | None:
    """The score distribution of the dataset's latest finished run, for picking a threshold:
    the run, its threshold and version, its scored and flagged counts and SCORE_BINS bins.
    None before any run has finished."""
    run = dataset_latest_run(dataset=dataset)
    if run is None:
        return None
    bins = run_score_bins(run=run)
    return {
        "run": run.pk,
        "threshold": run.threshold,
        "prompt_version": run.prompt_version.name,
        "scored": sum(bins),
        "flagged": Score.objects.filter(run=run, p_inappropriate__gte=run.threshold).count(),
        "bins": bins,
    }


def runs_worker_progress(*, runs) -> dict[int, list[dict[str, Any]]]:
    """run id -> per-worker progress of each run (definitions: glossary "run_workers").

    One row per worker that took a chunk: the chunks it took (indexes), how many are done,
    in progress (taken and not finished, while the run is active) and failed, images
    processed, the first start, the last finish and the rate in images per second over
    that span (None until a chunk is done).
    """
    runs = list(runs)
    active = {run.pk for run in runs if run.state in (JobState.PENDING, JobState.RUNNING)}
    progress: dict[int, list[dict[str, Any]]] = {run.pk: [] for run in runs}
    done = Q(state=ScoringChunk.State.DONE)
    rows = (
        ScoringChunk.objects.filter(run_id__in=list(progress))
        .exclude(worker="")
        .values("run_id", "worker")
        .annotate(
            chunks_done=Count("id", filter=done),
            chunks_pending=Count("id", filter=Q(state=ScoringChunk.State.PENDING)),
            chunks_failed=Count("id", filter=Q(state=ScoringChunk.State.FAILED)),
            images=Coalesce(Sum("processed", filter=done), 0),
            first_started_at=Min("started_at"),
            last_finished_at=Max("finished_at", filter=done),
        )
        .order_by("run_id", "worker")
    )
    # Which chunks (their indexes) each worker took, done or not.
    taken: dict[tuple[int, str], list[int]] = {}
    for run_id, worker, index in (
        ScoringChunk.objects.filter(run_id__in=list(progress))
        .exclude(worker="")
        .order_by("run_id", "worker", "index")
        .values_list("run_id", "worker", "index")
    ):
        taken.setdefault((run_id, worker), []).append(index)
    for row in rows:
        run_id = row["run_id"]
        in_progress = row["chunks_pending"] if run_id in active else 0
        start, end = row["first_started_at"], row["last_finished_at"]
        if in_progress and start is not None:
            end = timezone.now()  # still working: the rate so far
        seconds = (end - start).total_seconds() if start is not None and end is not None else 0
        images = row["images"]
        progress[run_id].append(
            {
                "worker": row["worker"],
                "chunks": taken.get((run_id, row["worker"]), []),
                "chunks_done": row["chunks_done"],
                "chunks_in_progress": in_progress,
                "chunks_failed": row["chunks_failed"],
                "images": images,
                "first_started_at": start,
                "last_finished_at": row["last_finished_at"],
                "images_per_second": round(images / seconds, 2) if seconds > 0 and images else None,
            }
        )
    return progress


def run_worker_progress(*, run: ScoringRun) -> list[dict[str, Any]]:
    return runs_worker_progress(runs=[run])[run.pk]


def dataset_import_progress(*, dataset: Dataset) -> dict[str, Any]:
    """The import's chunks: how many are done, in progress (taken, not finished, while the
    import is active), failed and waiting, and one row per worker that took any: its chunk
    indexes, chunks done, images recorded and rate over its span (None until one is done)."""
    chunks = ImportChunk.objects.filter(dataset=dataset)
    active = dataset.state in (Dataset.State.PENDING, Dataset.State.IMPORTING)
    taken = Q(started_at__isnull=False, state=ImportChunk.State.PENDING)
    totals = chunks.aggregate(
        total=Count("id"),
        done=Count("id", filter=Q(state=ImportChunk.State.DONE)),
        failed=Count("id", filter=Q(state=ImportChunk.State.FAILED)),
        taken=Count("id", filter=taken),
    )
    indexes: dict[str, list[int]] = {}
    for worker, index in chunks.exclude(worker="").values_list("worker", "index"):
        indexes.setdefault(worker, []).append(index)
    done = Q(state=ImportChunk.State.DONE)
    workers = []
    for row in (
        chunks.exclude(worker="")
        .values("worker")
        .annotate(
            chunks_done=Count("id", filter=done),
            chunks_in_progress=Count("id", filter=taken),
            images=Coalesce(Sum("recorded", filter=done), 0),
            first_started_at=Min("started_at"),
            last_finished_at=Max("finished_at", filter=done),
        )
        .order_by("worker")
    ):
        start, end = row["first_started_at"], row["last_finished_at"]
        in_progress = row["chunks_in_progress"] if active else 0
        if in_progress and start is not None:
            end = timezone.now()
        seconds = (end - start).total_seconds() if start and end else 0
        images = row["images"]
        workers.append(
            {
                **row,
                "chunks": sorted(indexes.get(row["worker"], [])),
                "chunks_in_progress": in_progress,
                "images_per_second": round(images / seconds, 2) if seconds > 0 and images else None,
            }
        )
    in_progress = totals["taken"] if active else 0
    return {
        "chunks_total": totals["total"],
        "chunks_done": totals["done"],
        "chunks_failed": totals["failed"],
        "chunks_in_progress": in_progress,
        "chunks_waiting": totals["total"] - totals["done"] - totals["failed"] - in_progress,
        "workers": workers,
    }


def prompt_version_list(*, model_key: str | None = None) -> QuerySet[PromptVersion]:
    versions = PromptVersion.objects.select_related("parent", "created_by").order_by("-created_at")
    if model_key:
        versions = versions.filter(model_key=model_key)
    return versions


# The versions a trained version is compared with on the same held-out verdicts
# (labels.training writes their accuracies into its metrics).
COMPARED_WITH = (
    ("parent_heldout", "parent", "its parent"),
    ("active_heldout", "active", "the version active when it was trained"),
)


def _accuracy(metrics: dict, key: str) -> float | None:
    entry = metrics.get(key) if isinstance(metrics, dict) else None
    value = entry.get("accuracy") if isinstance(entry, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def prompt_version_worse_than(version: PromptVersion) -> list[str]:
    """Which of "parent" and "active" a trained version is worse than (glossary "worse"):
    its held-out accuracy is below theirs on the same held-out verdicts."""
    metrics = version.metrics or {}
    own = _accuracy(metrics, "heldout")
    if own is None:
        return []
    worse = []
    for key, name, _ in COMPARED_WITH:
        other = _accuracy(metrics, key)
        if other is not None and own < other:
            worse.append(name)
    return worse


def prompt_version_warning(version: PromptVersion) -> str | None:
    """Why activating the version deserves a second thought, or None when nothing is worse."""
    worse = set(prompt_version_worse_than(version))
    if not worse:
        return None
    metrics = version.metrics or {}
    than = " and ".join(
        f"{whose} ({_accuracy(metrics, key):.3f})"
        for key, name, whose in COMPARED_WITH
        if name in worse
    )
    verdicts = metrics.get("n_heldout")
    on = f"the same {verdicts} held-out verdicts" if verdicts else "the same held-out verdicts"
    return (
        f"“{version.name}” is worse than {than}: held-out accuracy "
        f"{_accuracy(metrics, 'heldout'):.3f} on {on}."
    )


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


def dataset_active_runs(*, dataset: Dataset) -> QuerySet[ScoringRun]:
    """The dataset's pending and running runs (pages follow them to refresh when they end)."""
    return dataset.runs.filter(state__in=[JobState.PENDING, JobState.RUNNING]).order_by("id")


def dataset_exports(*, dataset: Dataset, limit: int = 50) -> QuerySet[Export]:
    return dataset.exports.order_by("-created_at", "-id")[:limit]


def prompt_job_list(*, limit: int = 50) -> QuerySet[PromptJob]:
    return PromptJob.objects.select_related("dataset", "parent", "result").order_by(
        "-created_at", "-id"
    )[:limit]
