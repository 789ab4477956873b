"""Prompt versions: zero-shot from text, imported files, training from verdicts, activation."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import IO

import numpy as np
from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from curation.errors import StateConflict, ValidationFailed
from curation.models import Dataset, PromptJob, PromptVersion, ScoringRun
from curation.selectors import labelled_embeddings
from curation.services.clip_config import model_embed_dim
from worker.engine.clip import ClipModel
from worker.engine.prompt_files import PromptFileError, read_published_prompts
from worker.engine.scoring import inappropriate_probability, zero_shot_prompts
from worker.engine.store import prompts_from_bytes, prompts_to_bytes
from worker.engine.tuning import (
    TuningConfig,
    classification_metrics,
    stratified_split,
    train_prompts,
)

logger = logging.getLogger(__name__)

PAPER_APPROPRIATE = ("This image is about something positive",)
PAPER_INAPPROPRIATE = ("This image is about something negative",)
MIN_PER_CLASS = 2


def prompt_vectors(version: PromptVersion) -> np.ndarray:
    return prompts_from_bytes(bytes(version.vectors))


def _model_name(model_key: str) -> str:
    return model_key.split("/", 1)[0]


def prompt_version_import(
    *,
    name: str,
    model_key: str,
    data: bytes | IO[bytes],
    created_by: AbstractBaseUser | None = None,
) -> PromptVersion:
    """Import prompts in the paper's published format (pickled float16 (2, D), row 1 = inappropriate)."""
    try:
        dim = model_embed_dim(_model_name(model_key))
    except ValueError as exc:
        raise ValidationFailed(str(exc)) from exc
    try:
        vectors = read_published_prompts(data, expected_dim=dim, model_key=model_key)
    except PromptFileError as exc:
        raise ValidationFailed(str(exc)) from exc
    version = PromptVersion(
        name=name.strip() or "imported prompts",
        model_key=model_key,
        dim=dim,
        vectors=prompts_to_bytes(vectors),
        source=PromptVersion.Source.IMPORTED,
        created_by=created_by,
    )
    version.full_clean()
    version.save()
    return version


def prompt_job_create_zero_shot(
    *,
    model_key: str,
    appropriate: Sequence[str] = PAPER_APPROPRIATE,
    inappropriate: Sequence[str] = PAPER_INAPPROPRIATE,
    name: str = "",
    created_by: AbstractBaseUser | None = None,
) -> PromptJob:
    """Queue the encoding of two sets of texts into a zero-shot prompt version (a worker job)."""
    appropriate = [text.strip() for text in appropriate if text.strip()]
    inappropriate = [text.strip() for text in inappropriate if text.strip()]
    if not appropriate or not inappropriate:
        raise ValidationFailed("Zero-shot prompts need at least one text for each class.")
    job = PromptJob.objects.create(
        kind=PromptJob.Kind.ZERO_SHOT,
        model_key=model_key,
        options={"appropriate": appropriate, "inappropriate": inappropriate, "name": name},
        created_by=created_by,
    )
    _queue_job(job)
    return job


def prompt_job_create_training(
    *,
    dataset: Dataset,
    parent: PromptVersion,
    config: TuningConfig | None = None,
    heldout_fraction: float = 0.2,
    name: str = "",
    created_by: AbstractBaseUser | None = None,
    policy: dict | None = None,
) -> PromptJob:
    """Queue training of a new prompt version from the dataset's verdicts, starting at parent.

    policy (the auto-retrain policy's jobs): when the job ends, prompt_policy_apply decides
    whether the candidate goes live.
    """
    config = config or TuningConfig()
    if not 0.05 <= heldout_fraction <= 0.5:
        raise ValidationFailed("The held-out fraction must be between 0.05 and 0.5.")
    job = PromptJob.objects.create(
        kind=PromptJob.Kind.TRAIN,
        model_key=parent.model_key,
        dataset=dataset,
        parent=parent,
        options={
            "epochs": config.epochs,
            "lr": config.lr,
            "momentum": config.momentum,
            "batch_size": config.batch_size,
            "seed": config.seed,
            "heldout_fraction": heldout_fraction,
            "name": name,
            **({"policy": policy} if policy is not None else {}),
        },
        created_by=created_by,
    )
    _queue_job(job)
    return job


def _queue_job(job: PromptJob) -> None:
    from worker.tasks import run_prompt_job

    job_id = job.pk
    PromptJob.objects.filter(pk=job_id).update(heartbeat_at=timezone.now())
    transaction.on_commit(lambda: run_prompt_job.delay(job_id))


JOB_ACTIVE_STATES = (PromptJob.State.PENDING, PromptJob.State.RUNNING)


def prompt_job_run(*, job_id: int, clip_provider=None) -> PromptJob:
    """Run a queued prompt job once; a finished job is left alone (safe to run twice).

    A job cancelled while it runs drops its result: the version it made is deleted.
    """
    with transaction.atomic():
        job = PromptJob.objects.select_for_update().get(pk=job_id)
        if job.state not in JOB_ACTIVE_STATES:
            return job  # finished, failed or cancelled
        job.state = PromptJob.State.RUNNING
        job.heartbeat_at = timezone.now()
        job.save(update_fields=["state", "heartbeat_at"])
    try:
        if job.kind == PromptJob.Kind.ZERO_SHOT:
            if clip_provider is None:
                raise ValidationFailed("Zero-shot prompts need the CLIP text encoder.")
            version = prompt_version_create_zero_shot(
                clip=clip_provider(job.model_key),
                appropriate=job.options["appropriate"],
                inappropriate=job.options["inappropriate"],
                name=job.options.get("name", ""),
                created_by=job.created_by,
            )
        else:
            version = prompt_version_train(
                dataset=job.dataset,
                parent=job.parent,
                config=TuningConfig(
                    epochs=int(job.options["epochs"]),
                    lr=float(job.options["lr"]),
                    momentum=float(job.options["momentum"]),
                    batch_size=int(job.options["batch_size"]),
                    seed=int(job.options["seed"]),
                ),
                heldout_fraction=float(job.options["heldout_fraction"]),
                name=job.options.get("name", ""),
                created_by=job.created_by,
            )
    except ValidationFailed as exc:
        PromptJob.objects.filter(pk=job.pk, state=PromptJob.State.RUNNING).update(
            state=PromptJob.State.FAILED, error=exc.message, finished_at=timezone.now()
        )
        job.refresh_from_db()
        if "policy" in (job.options or {}) and job.state == PromptJob.State.FAILED:
            job = prompt_policy_apply(job_id=job.pk)
        return job
    with transaction.atomic():
        locked = PromptJob.objects.select_for_update().get(pk=job.pk)
        if locked.state != PromptJob.State.RUNNING:
            # Cancelled while it ran: nobody wants the version any more.
            version.delete()
            logger.info("prompt job %s was %s: its result is dropped", job.pk, locked.state)
            return locked
        locked.state = PromptJob.State.SUCCEEDED
        locked.result = version
        locked.finished_at = timezone.now()
        locked.save(update_fields=["state", "result", "finished_at"])
    job.refresh_from_db()
    if "policy" in (job.options or {}):
        job = prompt_policy_apply(job_id=job.pk)
    return job


def prompt_job_cancel(*, job: PromptJob) -> PromptJob:
    """Stop a pending or running job; cancelling a cancelled job again changes nothing.

    A worker running it finishes its computation and then drops the result.
    """
    with transaction.atomic():
        locked = PromptJob.objects.select_for_update().get(pk=job.pk)
        if locked.state == PromptJob.State.CANCELLED:
            return locked
        if locked.state not in JOB_ACTIVE_STATES:
            raise StateConflict(
                f"Prompt job #{locked.pk} has already {locked.state}; only a pending or "
                "running job can be cancelled."
            )
        locked.state = PromptJob.State.CANCELLED
        locked.error = "Cancelled by an admin."
        locked.finished_at = timezone.now()
        locked.save(update_fields=["state", "error", "finished_at"])
    logger.info("prompt job %s cancelled", locked.pk)
    return locked


def prompt_job_resume(*, job: PromptJob) -> PromptJob:
    """Run a cancelled or failed job again from the start (it has no partial result)."""
    with transaction.atomic():
        locked = PromptJob.objects.select_for_update().get(pk=job.pk)
        if locked.state not in (PromptJob.State.CANCELLED, PromptJob.State.FAILED):
            raise StateConflict(
                f"Prompt job #{locked.pk} is {locked.state}; only a cancelled or failed job "
                "can be resumed."
            )
        options = dict(locked.options or {})
        if "policy" in options:
            # An auto-retrain job is judged again when the re-run ends.
            policy = options["policy"] or {}
            options["policy"] = {k: v for k, v in policy.items() if k == "trigger_verdicts"}
        locked.options = options
        locked.state = PromptJob.State.PENDING
        locked.error = ""
        locked.finished_at = None
        locked.save(update_fields=["options", "state", "error", "finished_at"])
        _queue_job(locked)
    locked.refresh_from_db()
    return locked


def prompt_job_requeue(*, job: PromptJob) -> None:
    """Send a pending or running job's task again (recovery of a lost task)."""
    with transaction.atomic():
        _queue_job(job)


def prompt_version_create_zero_shot(
    *,
    clip: ClipModel,
    appropriate: Sequence[str] = PAPER_APPROPRIATE,
    inappropriate: Sequence[str] = PAPER_INAPPROPRIATE,
    name: str = "",
    created_by: AbstractBaseUser | None = None,
) -> PromptVersion:
    """Encode the texts with CLIP's text tower; each row is the mean of its texts' features."""
    vectors = zero_shot_prompts(clip, appropriate=appropriate, inappropriate=inappropriate)
    version = PromptVersion(
        name=name.strip() or f"zero-shot: {inappropriate[0]}",
        model_key=clip.key,
        dim=clip.dim,
        vectors=prompts_to_bytes(vectors),
        source=PromptVersion.Source.ZERO_SHOT,
        texts={"appropriate": list(appropriate), "inappropriate": list(inappropriate)},
        created_by=created_by,
    )
    version.full_clean()
    version.save()
    return version


def _evaluate(vectors: np.ndarray, embeddings: np.ndarray, labels: np.ndarray) -> dict:
    return classification_metrics(labels, inappropriate_probability(embeddings, vectors))


def prompt_version_train(
    *,
    dataset: Dataset,
    parent: PromptVersion,
    config: TuningConfig | None = None,
    heldout_fraction: float = 0.2,
    name: str = "",
    created_by: AbstractBaseUser | None = None,
) -> PromptVersion:
    """Tune new prompts on the dataset's verdicts (cached embeddings only), starting from parent.

    The verdicts are split (stratified, seeded) into train and held-out parts; the new
    version's metrics record its held-out scores next to the parent's and the active
    version's on the same held-out verdicts.
    """
    config = config or TuningConfig()
    data = labelled_embeddings(dataset_id=dataset.pk, model_key=parent.model_key, dim=parent.dim)
    labels = data.labels
    counts = {int(c): int((labels == c).sum()) for c in (0, 1)}
    if min(counts.values()) < MIN_PER_CLASS:
        raise ValidationFailed(
            f"Training needs at least {MIN_PER_CLASS} confirmed and {MIN_PER_CLASS} rejected "
            f"images with cached embeddings; this dataset has {counts[1]} confirmed and "
            f"{counts[0]} rejected."
        )
    train_idx, test_idx = stratified_split(labels, test_fraction=heldout_fraction, seed=config.seed)
    init = prompt_vectors(parent)
    result = train_prompts(
        data.embeddings[train_idx], labels[train_idx], init_prompts=init, config=config
    )
    held_x, held_y = data.embeddings[test_idx], labels[test_idx]
    metrics = {
        "dataset_id": dataset.pk,
        "n_train": int(len(train_idx)),
        "n_heldout": int(len(test_idx)),
        "class_counts": {"appropriate": counts[0], "inappropriate": counts[1]},
        "config": {**config.__dict__, "heldout_fraction": heldout_fraction},
        "seconds": round(result.seconds, 3),
        "train": _evaluate(result.prompts, data.embeddings[train_idx], labels[train_idx]),
        "heldout": _evaluate(result.prompts, held_x, held_y),
        "parent_heldout": _evaluate(init, held_x, held_y),
    }
    active = PromptVersion.objects.filter(model_key=parent.model_key, is_active=True).first()
    if active is not None:
        metrics["active_id"] = active.pk
        metrics["active_heldout"] = _evaluate(prompt_vectors(active), held_x, held_y)
    version = PromptVersion(
        name=name.strip() or f"trained on {dataset.name}",
        model_key=parent.model_key,
        dim=parent.dim,
        vectors=prompts_to_bytes(result.prompts),
        source=PromptVersion.Source.TRAINED,
        parent=parent,
        metrics=metrics,
        created_by=created_by,
    )
    version.full_clean()
    version.save()
    logger.info(
        "trained prompt version %s on %s verdicts: held-out accuracy %.3f (parent %.3f)",
        version.pk,
        len(labels),
        metrics["heldout"]["accuracy"],
        metrics["parent_heldout"]["accuracy"],
    )
    return version


def prompt_version_activate(
    *,
    version: PromptVersion,
    rescore: bool = True,
    created_by: AbstractBaseUser | None = None,
    queue: bool = True,
) -> list[ScoringRun]:
    """Make this the active version of its model and rescore every dataset it has scored.

    Rescoring uses cached embeddings only; the image encoder is not touched.
    """
    from curation.services.scoring import scoring_run_start

    with transaction.atomic():
        # Serialise activations of the same model.
        list(PromptVersion.objects.select_for_update().filter(model_key=version.model_key))
        PromptVersion.objects.filter(model_key=version.model_key, is_active=True).exclude(
            pk=version.pk
        ).update(is_active=False)
        PromptVersion.objects.filter(pk=version.pk).update(
            is_active=True, activated_at=timezone.now()
        )
        version.refresh_from_db()
        runs: list[ScoringRun] = []
        if not rescore:
            return runs
        for dataset in Dataset.objects.filter(
            runs__model_key=version.model_key, runs__state=ScoringRun.State.SUCCEEDED
        ).distinct():
            last = (
                dataset.runs.filter(model_key=version.model_key, state=ScoringRun.State.SUCCEEDED)
                .order_by("-created_at")
                .first()
            )
            if last is None or last.prompt_version_id == version.pk:
                continue
            if _pinned_version_id(dataset) not in (None, version.pk):
                continue  # the dataset keeps its pinned version
            if dataset.runs.filter(
                state__in=[ScoringRun.State.PENDING, ScoringRun.State.RUNNING]
            ).exists():
                raise StateConflict(
                    f"Dataset {dataset.name!r} has a scoring run in progress; activate after it ends."
                )
            runs.append(
                scoring_run_start(
                    dataset=dataset,
                    prompt_version=version,
                    threshold=last.threshold,
                    kind=ScoringRun.Kind.RESCORE,
                    created_by=created_by,
                    queue=queue,
                )
            )
    return runs


# --- Pinning and the auto-retrain policy -----------------------------------------------------


def _pinned_version_id(dataset: Dataset) -> int | None:
    from reviewer.models import ReviewSettings

    return (
        ReviewSettings.objects.filter(dataset=dataset)
        .values_list("pinned_version_id", flat=True)
        .first()
    )


def prompt_version_pin(
    *,
    dataset: Dataset,
    version: PromptVersion | None,
    created_by: AbstractBaseUser | None = None,
    queue: bool = True,
) -> ScoringRun | None:
    """Pin a dataset to a prompt version (None unpins).

    A pinned dataset is rescored with the pinned version (from cached embeddings) when its
    latest run used another one; activating other versions no longer rescores it, and the
    auto-retrain policy never activates a candidate for it. Rolling back is activating an
    earlier version (prompt_version_activate).
    """
    from curation.selectors import dataset_latest_run
    from curation.services.scoring import scoring_run_start
    from reviewer.models import ReviewSettings

    with transaction.atomic():
        rules, _ = ReviewSettings.objects.select_for_update().get_or_create(dataset=dataset)
        last = dataset_latest_run(dataset=dataset)
        if version is not None and last is not None and version.model_key != last.model_key:
            raise ValidationFailed(
                f"This dataset is scored with {last.model_key}; pin a version of that model."
            )
        rules.pinned_version = version
        rules.save(update_fields=["pinned_version", "updated_at"])
        if version is None or last is None or last.prompt_version_id == version.pk:
            return None
        if dataset.runs.filter(
            state__in=[ScoringRun.State.PENDING, ScoringRun.State.RUNNING]
        ).exists():
            raise StateConflict("This dataset has a scoring run in progress; pin after it ends.")
        return scoring_run_start(
            dataset=dataset,
            prompt_version=version,
            threshold=last.threshold,
            kind=ScoringRun.Kind.RESCORE,
            created_by=created_by,
            queue=queue,
        )


def prompt_policy_count_verdicts(*, dataset_id: int, count: int = 1) -> PromptJob | None:
    """Count new verdicts for the dataset's auto-retrain policy; after every N, queue training.

    Training starts from the pinned version, or the active version of the dataset's model.
    A training job still pending or running is not stacked: the count keeps growing and the
    next verdict after it ends queues the next job. Called inside the verdict's transaction.
    """
    from curation.selectors import dataset_latest_run
    from reviewer.models import ReviewSettings

    rules = (
        ReviewSettings.objects.select_for_update(of=("self",))
        .select_related("dataset", "pinned_version", "last_retrain_job")
        .filter(dataset_id=dataset_id, auto_retrain_every__isnull=False)
        .first()
    )
    if rules is None:
        return None
    rules.verdicts_since_retrain += count
    job = None
    busy = rules.last_retrain_job is not None and rules.last_retrain_job.state in (
        PromptJob.State.PENDING,
        PromptJob.State.RUNNING,
    )
    if rules.verdicts_since_retrain >= rules.auto_retrain_every and not busy:
        parent = rules.pinned_version
        if parent is None:
            last = dataset_latest_run(dataset=rules.dataset)
            if last is not None:
                parent = (
                    PromptVersion.objects.filter(model_key=last.model_key, is_active=True).first()
                    or last.prompt_version
                )
        if parent is not None:
            job = prompt_job_create_training(
                dataset=rules.dataset,
                parent=parent,
                name=f"auto-retrain of {rules.dataset.name}",
                policy={"trigger_verdicts": rules.verdicts_since_retrain},
            )
            rules.verdicts_since_retrain = 0
            rules.last_retrain_job = job
    rules.save(update_fields=["verdicts_since_retrain", "last_retrain_job", "updated_at"])
    return job


def prompt_policy_apply(*, job_id: int) -> PromptJob:
    """Decide, once, whether the policy's finished training job's candidate goes live.

    The candidate is activated (rescoring from cached embeddings) only when its held-out
    accuracy is at least the active version's on the same held-out verdicts, and never for
    a dataset with a pinned version. The comparison and the decision are written to
    job.options["policy"].
    """
    from reviewer.models import ReviewSettings

    with transaction.atomic():
        job = (
            PromptJob.objects.select_for_update(of=("self",))
            .select_related("result")
            .get(pk=job_id)
        )
        policy = dict((job.options or {}).get("policy") or {})
        if policy.get("decided"):
            return job
        version = job.result
        pinned = (
            ReviewSettings.objects.filter(dataset_id=job.dataset_id)
            .values_list("pinned_version_id", flat=True)
            .first()
        )
        decision: dict = {
            "decided": True,
            "activated": False,
            "decided_at": timezone.now().isoformat(),
        }
        if job.state != PromptJob.State.SUCCEEDED or version is None:
            decision["reason"] = f"training did not produce a candidate: {job.error}".strip()
        else:
            metrics = version.metrics or {}
            candidate = metrics.get("heldout", {}).get("accuracy")
            active = (metrics.get("active_heldout") or {}).get("accuracy")
            decision.update(
                candidate_id=version.pk,
                candidate_accuracy=candidate,
                active_id=metrics.get("active_id"),
                active_accuracy=active,
                n_heldout=metrics.get("n_heldout"),
            )
            if pinned is not None:
                decision["reason"] = f"the dataset is pinned to version {pinned}"
            elif active is not None and (candidate is None or candidate < active):
                decision["reason"] = (
                    "the candidate is worse than the active version on held-out verdicts"
                )
            else:
                try:
                    runs = prompt_version_activate(version=version, created_by=job.created_by)
                except StateConflict as exc:
                    decision["reason"] = f"not activated: {exc.message}"
                else:
                    decision["activated"] = True
                    decision["rescore_runs"] = [run.pk for run in runs]
                    decision["reason"] = (
                        "no active version to compare with"
                        if active is None
                        else "at least as good as the active version on held-out verdicts"
                    )
        policy.update(decision)
        job.options = {**(job.options or {}), "policy": policy}
        job.save(update_fields=["options"])
    logger.info("auto-retrain job %s: %s", job.pk, policy.get("reason"))
    return job
