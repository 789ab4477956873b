"""Celery tasks: thin wrappers that take ids and call a service.

Every task is safe to run twice (acks_late redelivers a killed worker's task): the
services guard on a state field or upsert. A task never writes a failure itself: a
transient error (the database or the broker gone for a moment) is retried with back-off,
anything else is logged and handed to the service's ``*_fail``, which records the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from celery import Task, shared_task
from celery.signals import worker_ready
from django.db import DatabaseError, InterfaceError, OperationalError

from curation.services import (
    banks,
    chunks,
    datasets,
    exports,
    indexing,
    prompt_jobs,
    recovery,
    scoring,
)
from curation.services.clip_runtime import get_clip
from labels import exports as export_files
from labels import training
from worker.engine.spec import ModelLoadError

logger = logging.getLogger(__name__)

# Errors worth retrying: the database or the broker went away for a moment.
TRANSIENT_ERRORS = (OperationalError, InterfaceError, ConnectionError, TimeoutError)
MAX_RETRIES = 3


class ServiceTask(Task):
    """Retries transient errors with exponential back-off (5 s doubling, at most 120 s)."""

    autoretry_for = TRANSIENT_ERRORS
    retry_backoff = 5
    retry_backoff_max = 120
    max_retries = MAX_RETRIES


def _run_or_fail(what: str, work: Callable[[], object], fail: Callable[[str], None]) -> None:
    """Run work; a transient error propagates (autoretry), any other is recorded by fail."""
    try:
        work()
    except TRANSIENT_ERRORS:
        raise
    except Exception as exc:
        logger.exception("%s failed", what)
        fail(f"{type(exc).__name__}: {exc}")


def _hostname(task: Task) -> str:
    """The worker running the task, as Celery names it (name@host); empty when unknown."""
    return str(getattr(task.request, "hostname", None) or "")


@shared_task(base=ServiceTask)
def import_dataset(dataset_id: int) -> None:
    _run_or_fail(
        f"import of dataset {dataset_id}",
        lambda: datasets.dataset_import(dataset_id=dataset_id, queue_chunks=True),
        lambda reason: datasets.dataset_fail(dataset_id=dataset_id, reason=reason),
    )


@shared_task(bind=True, max_retries=MAX_RETRIES)
def index_chunk(self: Task, chunk_id: int) -> None:
    """Index one chunk of an import; a permanent failure fails the import with the reason
    (a resume queues the chunk again). Database errors are retried like a scoring chunk's."""
    try:
        indexing.index_chunk_process(chunk_id=chunk_id, worker=_hostname(self))
    except TRANSIENT_ERRORS + (DatabaseError,) as exc:
        if self.request.retries >= MAX_RETRIES:
            indexing.index_chunk_fail(
                chunk_id=chunk_id, reason=f"chunk failed after {MAX_RETRIES} retries: {exc}"
            )
            return
        raise self.retry(exc=exc, countdown=min(120, 5 * 2**self.request.retries)) from exc
    except Exception as exc:
        logger.exception("import chunk %s failed", chunk_id)
        indexing.index_chunk_fail(chunk_id=chunk_id, reason=f"{type(exc).__name__}: {exc}")


@shared_task(bind=True, max_retries=MAX_RETRIES)
def score_chunk(self: Task, chunk_id: int) -> None:
    """Embed and score one chunk; a permanent failure fails the whole run with the reason.

    Database errors of any kind are retried here too (a chunk's writes are large and may
    hit a lock or a serialization failure), with the same back-off, then fail the run.
    """

    def fail(reason: str) -> None:
        scoring.scoring_chunk_fail(chunk_id=chunk_id, reason=reason)

    try:
        # Which worker takes the chunk (the run's per-worker progress), before the work.
        scoring.scoring_chunk_assign(chunk_id=chunk_id, worker=_hostname(self))
        chunks.scoring_chunk_process(chunk_id=chunk_id, clip_provider=get_clip)
    except ModelLoadError as exc:
        fail(f"model could not load: {exc}")
    except TRANSIENT_ERRORS + (DatabaseError,) as exc:
        if self.request.retries >= MAX_RETRIES:
            fail(f"chunk failed after {MAX_RETRIES} retries: {exc}")
            return
        raise self.retry(exc=exc, countdown=min(120, 5 * 2**self.request.retries)) from exc
    except Exception as exc:
        logger.exception("chunk %s failed", chunk_id)
        fail(f"{type(exc).__name__}: {exc}")


@shared_task(base=ServiceTask, bind=True)
def rescore_run(self: Task, run_id: int) -> None:
    """Split the rescore into ranges of chunks, one rescore_chunks task each."""
    _run_or_fail(
        f"rescore of run {run_id}",
        lambda: chunks.scoring_run_rescore_fan_out(run_id=run_id),
        lambda reason: scoring.scoring_run_fail(run_id=run_id, chunk_id=None, reason=reason),
    )


@shared_task(base=ServiceTask, bind=True)
def rescore_chunks(self: Task, run_id: int, first_index: int, last_index: int) -> None:
    _run_or_fail(
        f"rescore of run {run_id} chunks {first_index}-{last_index}",
        lambda: chunks.scoring_run_rescore_range(
            run_id=run_id, first_index=first_index, last_index=last_index, worker=_hostname(self)
        ),
        lambda reason: scoring.scoring_run_fail(run_id=run_id, chunk_id=None, reason=reason),
    )


@shared_task(base=ServiceTask)
def run_prompt_job(job_id: int) -> None:
    _run_or_fail(
        f"prompt job {job_id}",
        lambda: training.prompt_job_run(job_id=job_id, clip_provider=get_clip),
        lambda reason: prompt_jobs.prompt_job_fail(job_id=job_id, reason=reason),
    )


@shared_task(base=ServiceTask)
def build_export(export_id: int) -> None:
    _run_or_fail(
        f"export {export_id}",
        lambda: export_files.export_build(export_id=export_id),
        lambda reason: exports.export_fail(export_id=export_id, reason=reason),
    )


@shared_task(base=ServiceTask)
def match_hash_bank(bank_id: int) -> None:
    _run_or_fail(
        f"matching of hash bank {bank_id}",
        lambda: banks.bank_match_all_datasets(bank_id=bank_id),
        lambda reason: banks.bank_match_fail(bank_id=bank_id, reason=reason),
    )


@shared_task(base=ServiceTask)
def match_dataset_banks(dataset_id: int) -> None:
    banks.bank_match_dataset_task(dataset_id=dataset_id)


@shared_task(ignore_result=True)
def recover_stalled_work(stall_seconds: int | None = None) -> dict:
    """Re-queue runs, imports and prompt jobs whose tasks were lost (beat and worker start)."""
    report = recovery.recover_stalled_work(stall_seconds=stall_seconds)
    return {
        "runs": report.runs,
        "datasets": report.datasets,
        "jobs": report.jobs,
        "skipped": report.skipped,
    }


@worker_ready.connect
def _recover_on_worker_start(sender: object = None, **kwargs: object) -> None:
    # Queued, not run here: the worker's main process must be free to answer the
    # recovery's inspect() about what this worker holds.
    try:
        recover_stalled_work.delay()
    except Exception:  # a broker hiccup must not stop the worker from starting
        logger.exception("could not queue the recovery of stalled work")
