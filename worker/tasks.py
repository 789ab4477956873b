"""Celery tasks: thin wrappers that take ids, re-read rows and call a service.

Every task is safe to run twice (acks_late redelivers a killed worker's task): the
services guard on a state field or upsert.
"""

from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import worker_ready
from django.db import DatabaseError, InterfaceError, OperationalError

from worker.engine.clip import ModelLoadError

logger = logging.getLogger(__name__)

# Errors worth retrying: the database or the broker went away for a moment.
TRANSIENT_ERRORS = (OperationalError, InterfaceError, ConnectionError, TimeoutError)
MAX_RETRIES = 3


@shared_task(
    bind=True,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=5,
    retry_backoff_max=120,
    max_retries=MAX_RETRIES,
)
def import_dataset(self, dataset_id: int) -> None:
    from curation.services.datasets import dataset_fail, dataset_import

    try:
        dataset_import(dataset_id=dataset_id)
    except TRANSIENT_ERRORS:
        raise
    except Exception as exc:
        logger.exception("import of dataset %s failed", dataset_id)
        dataset_fail(dataset_id=dataset_id, reason=f"{type(exc).__name__}: {exc}")


@shared_task(bind=True, max_retries=MAX_RETRIES)
def score_chunk(self, chunk_id: int) -> None:
    """Embed and score one chunk; a permanent failure fails the whole run with the reason."""
    from curation.models import ScoringChunk
    from curation.services.scoring import scoring_chunk_process, scoring_run_fail
    from worker.runtime import get_clip

    try:
        scoring_chunk_process(chunk_id=chunk_id, clip_provider=get_clip)
    except ModelLoadError as exc:
        run_id = ScoringChunk.objects.values_list("run_id", flat=True).get(pk=chunk_id)
        scoring_run_fail(run_id=run_id, chunk_id=chunk_id, reason=f"model could not load: {exc}")
    except TRANSIENT_ERRORS + (DatabaseError,) as exc:
        if self.request.retries >= MAX_RETRIES:
            run_id = ScoringChunk.objects.values_list("run_id", flat=True).get(pk=chunk_id)
            scoring_run_fail(
                run_id=run_id,
                chunk_id=chunk_id,
                reason=f"chunk failed after {MAX_RETRIES} retries: {exc}",
            )
            return
        raise self.retry(exc=exc, countdown=min(120, 5 * 2**self.request.retries)) from exc
    except Exception as exc:
        logger.exception("chunk %s failed", chunk_id)
        run_id = ScoringChunk.objects.values_list("run_id", flat=True).get(pk=chunk_id)
        scoring_run_fail(run_id=run_id, chunk_id=chunk_id, reason=f"{type(exc).__name__}: {exc}")


@shared_task(
    bind=True,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=5,
    retry_backoff_max=120,
    max_retries=MAX_RETRIES,
)
def rescore_run(self, run_id: int) -> None:
    from curation.services.scoring import scoring_run_fail, scoring_run_rescore

    try:
        scoring_run_rescore(run_id=run_id)
    except TRANSIENT_ERRORS:
        raise
    except Exception as exc:
        logger.exception("rescore of run %s failed", run_id)
        scoring_run_fail(run_id=run_id, chunk_id=None, reason=f"{type(exc).__name__}: {exc}")


@shared_task(
    bind=True,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=5,
    retry_backoff_max=120,
    max_retries=MAX_RETRIES,
)
def run_prompt_job(self, job_id: int) -> None:
    from curation.models import PromptJob
    from curation.services.prompts import prompt_job_run
    from worker.runtime import get_clip

    try:
        prompt_job_run(job_id=job_id, clip_provider=get_clip)
    except TRANSIENT_ERRORS:
        raise
    except Exception as exc:
        logger.exception("prompt job %s failed", job_id)
        PromptJob.objects.filter(
            pk=job_id, state__in=[PromptJob.State.PENDING, PromptJob.State.RUNNING]
        ).update(state=PromptJob.State.FAILED, error=f"{type(exc).__name__}: {exc}")


@shared_task(
    bind=True,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=5,
    retry_backoff_max=120,
    max_retries=MAX_RETRIES,
)
def build_export(self, export_id: int) -> None:
    from curation.models import Export
    from curation.services.exports import export_build

    try:
        export_build(export_id=export_id)
    except TRANSIENT_ERRORS:
        raise
    except Exception as exc:
        logger.exception("export %s failed", export_id)
        Export.objects.filter(pk=export_id, state=Export.State.PENDING).update(
            state=Export.State.FAILED, error=f"{type(exc).__name__}: {exc}"
        )


@shared_task(ignore_result=True)
def recover_stalled_work(stall_seconds: int | None = None) -> dict:
    """Re-queue runs, imports and prompt jobs whose tasks were lost (beat and worker start)."""
    from curation.services.recovery import recover_stalled_work as recover

    report = recover(stall_seconds=stall_seconds)
    return {
        "runs": report.runs,
        "datasets": report.datasets,
        "jobs": report.jobs,
        "skipped": report.skipped,
    }


@worker_ready.connect
def _recover_on_worker_start(sender=None, **kwargs) -> None:
    # Queued, not run here: the worker's main process must be free to answer the
    # recovery's inspect() about what this worker holds.
    try:
        recover_stalled_work.delay()
    except Exception:  # a broker hiccup must not stop the worker from starting
        logger.exception("could not queue the recovery of stalled work")
