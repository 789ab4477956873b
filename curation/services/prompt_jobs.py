"""Prompt jobs: work a worker does to make a prompt version (zero-shot encoding, training).

Creating, cancelling, resuming, re-queueing and failing jobs; the work itself is in
labels.training (training on verdicts) and curation.services.prompt_zero_shot.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from curation import dispatch
from curation.errors import ValidationFailed
from curation.models import Dataset, PromptJob, PromptVersion
from curation.services.job_states import ACTIVE_STATES, job_cancel, job_check_resumable
from worker.engine.tuning_config import (
    DEFAULT_HELDOUT_FRACTION,
    HELDOUT_FRACTION_BOUNDS,
    TuningConfig,
)

logger = logging.getLogger(__name__)

PAPER_APPROPRIATE = ("This image is about something positive",)


PAPER_INAPPROPRIATE = ("This image is about something negative",)


JOB_ACTIVE_STATES = ACTIVE_STATES


def prompt_job_create_zero_shot(
    *,
    model_key: str,
    appropriate: Sequence[str] = PAPER_APPROPRIATE,
    inappropriate: Sequence[str] = PAPER_INAPPROPRIATE,
    name: str = "",
    created_by: User | None = None,
) -> PromptJob:
    """Queue the encoding of two sets of texts into a zero-shot prompt version (a worker job)."""
    appropriate = [text.strip() for text in appropriate if text.strip()]
    inappropriate = [text.strip() for text in inappropriate if text.strip()]
    if not appropriate or not inappropriate:
        raise ValidationFailed("Zero-shot prompts need at least one text for each class.")
    with transaction.atomic():
        job = PromptJob.objects.create(
            kind=PromptJob.Kind.ZERO_SHOT,
            model_key=model_key,
            options={"appropriate": appropriate, "inappropriate": inappropriate, "name": name},
            created_by=created_by,
        )
        _audit_create(job, actor=created_by)
        _queue_job(job)
    return job


def prompt_job_create_training(
    *,
    dataset: Dataset,
    parent: PromptVersion,
    config: TuningConfig | None = None,
    heldout_fraction: float = DEFAULT_HELDOUT_FRACTION,
    name: str = "",
    created_by: User | None = None,
    policy: dict | None = None,
) -> PromptJob:
    """Queue training of a new prompt version from the dataset's verdicts, starting at parent.

    policy (the auto-retrain policy's jobs): when the job ends, prompt_policy_apply decides
    whether the candidate goes live.
    """
    config = config or TuningConfig()
    low, high = HELDOUT_FRACTION_BOUNDS
    if not low <= heldout_fraction <= high:
        raise ValidationFailed(f"The held-out fraction must be between {low} and {high}.")
    with transaction.atomic():
        job = PromptJob.objects.create(
            kind=PromptJob.Kind.TRAIN,
            model_key=parent.model_key,
            dataset=dataset,
            parent=parent,
            options={
                **asdict(config),
                "heldout_fraction": heldout_fraction,
                "name": name,
                **({"policy": policy} if policy is not None else {}),
            },
            created_by=created_by,
        )
        _audit_create(job, actor=created_by)
        _queue_job(job)
    return job


def _audit_create(job: PromptJob, *, actor: User | None) -> None:
    audit_record(
        actor=actor,
        action="prompt_job.create",
        target=job,
        after={
            "kind": job.kind,
            "model_key": job.model_key,
            "dataset": job.dataset_id,
            "parent": job.parent_id,
            "options": job.options,
        },
    )


def _queue_job(job: PromptJob) -> None:
    PromptJob.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now())
    dispatch.send_on_commit(dispatch.RUN_PROMPT_JOB, [job.pk])


def prompt_job_cancel(*, job: PromptJob, actor: User | None = None) -> PromptJob:
    """Stop a pending or running job; cancelling a cancelled job again changes nothing.

    A worker running it finishes its computation and then drops the result.
    """
    with transaction.atomic():
        was = PromptJob.objects.select_for_update().values_list("state", flat=True).get(pk=job.pk)
        locked, changed = job_cancel(PromptJob, pk=job.pk, label="Prompt job")
        if changed:
            audit_record(
                actor=actor,
                action="prompt_job.cancel",
                target=locked,
                before={"state": was},
                after={"state": locked.state},
            )
    if changed:
        logger.info("prompt job %s cancelled", locked.pk)
    return locked


def prompt_job_resume(*, job: PromptJob, actor: User | None = None) -> PromptJob:
    """Run a cancelled or failed job again from the start (it has no partial result)."""
    with transaction.atomic():
        locked = PromptJob.objects.select_for_update().get(pk=job.pk)
        job_check_resumable(locked, label="Prompt job")
        before = {"state": locked.state, "error": locked.error}
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
        audit_record(
            actor=actor,
            action="prompt_job.resume",
            target=locked,
            before=before,
            after={"state": locked.state, "error": locked.error},
        )
        _queue_job(locked)
    locked.refresh_from_db()
    return locked


def prompt_job_requeue(*, job: PromptJob) -> None:
    """Send a pending or running job's task again (recovery of a lost task)."""
    with transaction.atomic():
        _queue_job(job)
        audit_record(
            actor=None,
            action="prompt_job.requeue",
            target=job,
            details={"reason": "lost-work recovery: the job's task was lost"},
        )


def prompt_job_fail(*, job_id: int, reason: str) -> None:
    """Mark a pending or running job failed for good with the reason (a finished one stays)."""
    PromptJob.objects.filter(pk=job_id, state__in=JOB_ACTIVE_STATES).update(
        state=PromptJob.State.FAILED, error=reason[:5000], finished_at=timezone.now()
    )
    logger.error("prompt job %s failed: %s", job_id, reason)
