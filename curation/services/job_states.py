"""The state changes that scoring runs and prompt jobs share (JobState): cancel, and the
check before a resume. Called inside the caller's transaction."""

from __future__ import annotations

from typing import TypeVar

from django.db import models
from django.utils import timezone

from curation.errors import StateConflict
from curation.models import JobState, PromptJob, ScoringRun

ACTIVE_STATES = (JobState.PENDING, JobState.RUNNING)
RESUMABLE_STATES = (JobState.CANCELLED, JobState.FAILED)

Job = TypeVar("Job", ScoringRun, PromptJob)


def job_cancel(model: type[Job], *, pk: int, label: str) -> tuple[Job, bool]:
    """Lock the job and mark a pending or running one cancelled by an admin.

    Returns the locked job and whether it changed: cancelling a cancelled job again
    changes nothing; a finished one is a conflict. `label` names it in messages ("Run").
    """
    locked = model.objects.select_for_update().get(pk=pk)
    if locked.state == JobState.CANCELLED:
        return locked, False
    if locked.state not in ACTIVE_STATES:
        noun = label.split()[-1].lower()
        raise StateConflict(
            f"{label} #{locked.pk} has already {locked.state}; only a pending or running "
            f"{noun} can be cancelled."
        )
    locked.state = JobState.CANCELLED
    locked.error = "Cancelled by an admin."
    locked.finished_at = timezone.now()
    locked.save(update_fields=["state", "error", "finished_at"])
    return locked, True


def job_check_resumable(job: models.Model, *, label: str) -> None:
    """Only a cancelled or failed job can be resumed."""
    state = job.state  # type: ignore[attr-defined]
    if state not in RESUMABLE_STATES:
        noun = label.split()[-1].lower()
        raise StateConflict(
            f"{label} #{job.pk} is {state}; only a cancelled or failed {noun} can be resumed."
        )
