"""Scoring runs: split a dataset into chunks, queue them, cancel, resume, fail.

What a worker does with one chunk (embed, score, write, flag) is in
curation.services.chunks; this module never loads the engine's model code, so the web
process can start, cancel and resume runs without torch.

A run can be cancelled and resumed (scoring_run_cancel, scoring_run_resume). A worker
mid-chunk when the run is cancelled re-checks the run's state under its row lock in the
chunk's final transaction and rolls its writes back, so it never resurrects the run; the
chunk stays PENDING and a resume queues it again.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from curation import dispatch
from curation.errors import StateConflict, ValidationFailed
from curation.models import Dataset, Image, PromptVersion, ScoringChunk, ScoringRun
from curation.services.banks import bank_match_dataset, bank_matches_current
from curation.services.job_states import ACTIVE_STATES, job_cancel, job_check_resumable
from worker.engine.scoring import threshold_error

logger = logging.getLogger(__name__)

# States a chunk's work is thrown away in: nobody wants its result any more.
STOPPED_STATES = (ScoringRun.State.FAILED, ScoringRun.State.CANCELLED)


def scoring_run_start(
    *,
    dataset: Dataset,
    prompt_version: PromptVersion,
    threshold: float,
    kind: str = ScoringRun.Kind.SCORE,
    chunk_size: int | None = None,
    created_by: User | None = None,
    queue: bool = True,
) -> ScoringRun:
    """Create a run and its chunks; with queue=True the tasks are sent when the transaction commits."""
    if dataset.state != Dataset.State.READY:
        raise StateConflict("The dataset has not finished importing.")
    if problem := threshold_error(threshold):
        raise ValidationFailed(problem)
    if not chunk_size:
        # Rescore chunks encode nothing, so they can be much larger: fewer transactions.
        rescore = kind == ScoringRun.Kind.RESCORE
        chunk_size = settings.Q16_RESCORE_CHUNK_SIZE if rescore else settings.Q16_CHUNK_SIZE
    if chunk_size < 1:
        raise ValidationFailed("The chunk size must be positive.")
    if not bank_matches_current(dataset=dataset):
        # Not matched since the import, or a bank changed since: match before any review.
        bank_match_dataset(dataset=dataset)

    with transaction.atomic():
        image_ids = list(
            Image.objects.filter(dataset=dataset, status=Image.Status.OK)
            .order_by("id")
            .values_list("id", flat=True)
        )
        if not image_ids:
            raise ValidationFailed("The dataset has no valid images to score.")
        run = ScoringRun(
            dataset=dataset,
            prompt_version=prompt_version,
            model_key=prompt_version.model_key,
            kind=kind,
            threshold=threshold,
            total=len(image_ids),
            chunks_total=(len(image_ids) + chunk_size - 1) // chunk_size,
            created_by=created_by,
            heartbeat_at=timezone.now(),
        )
        run.full_clean()
        run.save()
        ScoringChunk.objects.bulk_create(
            ScoringChunk(
                run=run,
                index=index,
                first_image_id=image_ids[start],
                last_image_id=image_ids[min(start + chunk_size, len(image_ids)) - 1],
            )
            for index, start in enumerate(range(0, len(image_ids), chunk_size))
        )
        audit_record(
            actor=created_by,
            action="run.rescore" if kind == ScoringRun.Kind.RESCORE else "run.start",
            target=run,
            after={
                "dataset": dataset.pk,
                "prompt_version": prompt_version.pk,
                "threshold": threshold,
                "images": run.total,
                "chunks": run.chunks_total,
            },
        )
        if queue:
            _queue_run(run)
    return run


def _queue_run(run: ScoringRun, *, chunk_ids: list[int] | None = None) -> None:
    """Send the run's tasks when the transaction commits: all its chunks, or chunk_ids."""
    if run.kind == ScoringRun.Kind.RESCORE:
        dispatch.send_on_commit(dispatch.RESCORE_RUN, [run.pk])
        return
    if chunk_ids is None:
        chunk_ids = list(run.chunks.values_list("id", flat=True))
    dispatch.send_on_commit(dispatch.SCORE_CHUNK, chunk_ids)


def scoring_run_fail(*, run_id: int, chunk_id: int | None, reason: str) -> None:
    """Mark a run failed for good (a chunk exhausted its retries or cannot run at all).

    A cancelled run stays cancelled: the failure of a chunk that was still running does
    not overwrite the admin's decision.
    """
    with transaction.atomic():
        if chunk_id is not None:
            ScoringChunk.objects.filter(pk=chunk_id).exclude(state=ScoringChunk.State.DONE).update(
                state=ScoringChunk.State.FAILED, error=reason[:5000]
            )
        ScoringRun.objects.filter(pk=run_id).exclude(
            state__in=[ScoringRun.State.SUCCEEDED, ScoringRun.State.CANCELLED]
        ).update(state=ScoringRun.State.FAILED, error=reason[:5000], finished_at=timezone.now())
    logger.error("run %s failed: %s", run_id, reason)


def scoring_chunk_assign(*, chunk_id: int, worker: str) -> None:
    """Record which worker (its hostname) takes a chunk: the run's per-worker progress.

    A redelivered chunk is recorded under the worker that took it last, the one that
    finishes it (the one before died or let go of the task). A done chunk keeps its worker.
    """
    if not worker:
        return
    field = ScoringChunk._meta.get_field("worker")
    ScoringChunk.objects.filter(pk=chunk_id).exclude(state=ScoringChunk.State.DONE).update(
        worker=worker[: field.max_length]
    )


def scoring_chunk_fail(*, chunk_id: int, reason: str) -> None:
    """A chunk that cannot be processed fails its whole run with the reason."""
    run_id = ScoringChunk.objects.values_list("run_id", flat=True).get(pk=chunk_id)
    scoring_run_fail(run_id=run_id, chunk_id=chunk_id, reason=reason)


def scoring_run_cancel(*, run: ScoringRun, actor: User | None = None) -> ScoringRun:
    """Stop a pending or running run; cancelling a cancelled run again changes nothing.

    Queued chunk tasks stay in the queue and do nothing when they arrive; a chunk a worker
    is processing now drops its result (see the module docstring). Done chunks, their
    scores and their review items are kept.
    """
    with transaction.atomic():
        was = ScoringRun.objects.select_for_update().values_list("state", flat=True).get(pk=run.pk)
        locked, changed = job_cancel(ScoringRun, pk=run.pk, label="Run")
        if changed:
            audit_record(
                actor=actor,
                action="run.cancel",
                target=locked,
                before={"state": was},
                after={"state": locked.state, "chunks_done": locked.chunks_done},
            )
    if changed:
        logger.info(
            "run %s cancelled at %s/%s chunks", locked.pk, locked.chunks_done, locked.chunks_total
        )
    return locked


def scoring_run_resume(*, run: ScoringRun, actor: User | None = None) -> ScoringRun:
    """Queue a cancelled or failed run's chunks that are not done; the done ones are kept.

    Failed chunks go back to PENDING with their attempts and error cleared.
    """
    with transaction.atomic():
        # Chunks before the run, the order a worker's final transaction locks them in.
        ScoringChunk.objects.filter(run_id=run.pk, state=ScoringChunk.State.FAILED).update(
            state=ScoringChunk.State.PENDING, attempts=0, error=""
        )
        locked = ScoringRun.objects.select_for_update().get(pk=run.pk)
        job_check_resumable(locked, label="Run")
        before = {"state": locked.state, "error": locked.error}
        chunk_ids = list(
            locked.chunks.filter(state=ScoringChunk.State.PENDING).values_list("id", flat=True)
        )
        now = timezone.now()
        locked.error = ""
        locked.heartbeat_at = now
        if not chunk_ids:
            # Every chunk finished before the stop: nothing left to run.
            locked.state = ScoringRun.State.SUCCEEDED
            locked.finished_at = now
        else:
            locked.state = (
                ScoringRun.State.RUNNING if locked.started_at else ScoringRun.State.PENDING
            )
            locked.finished_at = None
            _queue_run(locked, chunk_ids=chunk_ids)
        locked.save(update_fields=["state", "error", "heartbeat_at", "finished_at"])
        audit_record(
            actor=actor,
            action="run.resume",
            target=locked,
            before=before,
            after={"state": locked.state, "error": "", "chunks_queued": len(chunk_ids)},
        )
    logger.info("run %s resumed: %s chunks queued", locked.pk, len(chunk_ids))
    return locked


def scoring_run_requeue(*, run: ScoringRun, chunk_ids: list[int]) -> None:
    """Send the tasks of an active run again (recovery of lost tasks); safe to repeat."""
    with transaction.atomic():
        ScoringRun.objects.filter(pk=run.pk, state__in=ACTIVE_STATES).update(
            heartbeat_at=timezone.now()
        )
        _queue_run(run, chunk_ids=chunk_ids)
        audit_record(
            actor=None,
            action="run.requeue",
            target=run,
            details={
                "reason": "lost-work recovery: the run's tasks were lost",
                "tasks": len(chunk_ids),
            },
        )
