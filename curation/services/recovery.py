"""Find work whose Celery task was lost and queue it again.

Tasks live in Redis; a crash of the embedded Redis (or a flushed database) loses them
while the rows stay `pending` / `running` / `importing` for ever. recover_stalled_work
re-queues the work of a row when both hold:

1. The row showed no sign of life for `stall_seconds` (Q16_STALL_SECONDS, default 600):
   its `heartbeat_at` (set when it is queued, when a chunk starts or finishes, after every
   import batch, when a prompt job starts) or, for rows older than the field, its start.
   An import that has been listed into chunks gets its lost index chunks queued again,
   like a scoring run's; one that has not gets its import task again.
2. No task for it is anywhere Celery keeps tasks: not waiting in the broker's queues, not
   delivered-but-unacknowledged (the Redis transport's `unacked` hash, which it restores
   after a crash), and not active, reserved or scheduled on a worker (`inspect()`).

Rule 2 is what keeps healthy work from running twice: a run queued behind hours of other
work waits in the broker queue; a slow chunk is active on its worker. Rule 1 covers the
moments in between (a task taken off the queue and not yet reported by its worker), and a
worker that does not answer `inspect()` in time. Were a chunk run twice all the same, that
would be harmless (see curation.services.chunks); a prompt job would make one version
too many. When the broker cannot be read at all, nothing is re-queued.
"""

from __future__ import annotations

import base64
import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone

from curation.dispatch import (
    IMPORT_DATASET,
    INDEX_CHUNK,
    RESCORE_RUN,
    RUN_PROMPT_JOB,
    SCORE_CHUNK,
)
from curation.models import Dataset, ImportChunk, PromptJob, ScoringChunk, ScoringRun
from curation.services.datasets import dataset_import_requeue
from curation.services.indexing import index_chunks_requeue
from curation.services.prompt_jobs import prompt_job_requeue
from curation.services.scoring import scoring_run_requeue

logger = logging.getLogger(__name__)

INSPECT_TIMEOUT = 2.0


@dataclass
class LiveTasks:
    """The first argument (an id) of every task Celery holds, by task name."""

    ids: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))

    def add(self, name: str | None, args) -> None:
        if isinstance(args, str):  # older workers report args as their repr
            try:
                args = json.loads(args.replace("(", "[").replace(",)", "]").replace(")", "]"))
            except ValueError:
                return
        if name and args and isinstance(args, list | tuple) and isinstance(args[0], int):
            self.ids[name].add(args[0])

    def holds(self, name: str, object_id: int) -> bool:
        return object_id in self.ids.get(name, set())


@dataclass
class RecoveryReport:
    runs: dict[int, int] = field(default_factory=dict)  # run id -> tasks re-queued
    datasets: list[int] = field(default_factory=list)
    index_chunks: dict[int, int] = field(default_factory=dict)  # dataset id -> chunks re-queued
    jobs: list[int] = field(default_factory=list)
    skipped: str = ""  # why nothing was looked at

    def __bool__(self) -> bool:
        return bool(self.runs or self.datasets or self.jobs)


def live_tasks(*, app=None, inspect_timeout: float = INSPECT_TIMEOUT) -> LiveTasks:
    """Every task in the broker (queued or unacknowledged) and on the workers.

    The broker is read before the workers are asked, so a task moving from one to the other
    meanwhile is seen at least once. Raises when the broker cannot be reached.
    """
    if app is None:
        from celery import current_app as app
    live = LiveTasks()
    _broker_tasks(app, live)
    inspector = app.control.inspect(timeout=inspect_timeout)
    for method in ("active", "reserved", "scheduled"):
        for requests in (getattr(inspector, method)() or {}).values():
            for entry in requests or []:
                request = entry.get("request", entry) if method == "scheduled" else entry
                live.add(request.get("name") or request.get("type"), request.get("args"))
    return live


def _broker_tasks(app, live: LiveTasks) -> None:
    with app.connection_for_read() as connection:
        if connection.transport.driver_type != "redis":
            return  # an in-memory broker (tests, eager mode) loses nothing worth finding
        channel = connection.default_channel
        client = channel.client
        queues = {queue.name for queue in app.amqp.queues.values()} or {"celery"}
        for queue in queues:
            for priority in channel.priority_steps:
                key = channel._q_for_pri(queue, priority)
                for raw in client.lrange(key, 0, -1):
                    _add_message(live, raw)
        for raw in client.hvals(channel.unacked_key):
            try:
                message = json.loads(raw)[0]
            except (ValueError, IndexError, TypeError):
                continue
            _add_message(live, message)


def _add_message(live: LiveTasks, raw) -> None:
    """A kombu message (JSON text or decoded) of Celery's task protocol 2."""
    try:
        message = json.loads(raw) if isinstance(raw, str | bytes) else raw
        headers = message.get("headers") or {}
        body = message.get("body")
        if (message.get("properties") or {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0] if body else headers.get("argsrepr")
    except (ValueError, TypeError, AttributeError, IndexError):
        return
    live.add(headers.get("task"), args)


def recover_stalled_work(
    *, stall_seconds: int | None = None, live: LiveTasks | None = None
) -> RecoveryReport:
    """Re-queue the stalled runs, imports and prompt jobs whose tasks were lost (see above)."""
    stall = settings.Q16_STALL_SECONDS if stall_seconds is None else stall_seconds
    cutoff = timezone.now() - timedelta(seconds=stall)
    report = RecoveryReport()
    stalled_runs = list(
        ScoringRun.objects.filter(state__in=[ScoringRun.State.PENDING, ScoringRun.State.RUNNING])
        .annotate(alive_at=Coalesce("heartbeat_at", "started_at", "created_at"))
        .filter(alive_at__lt=cutoff)
    )
    stalled_datasets = list(
        Dataset.objects.filter(state__in=[Dataset.State.PENDING, Dataset.State.IMPORTING])
        .annotate(alive_at=Coalesce("heartbeat_at", "import_started_at", "created_at"))
        .filter(alive_at__lt=cutoff)
    )
    stalled_jobs = list(
        PromptJob.objects.filter(state__in=[PromptJob.State.PENDING, PromptJob.State.RUNNING])
        .annotate(alive_at=Coalesce("heartbeat_at", F("created_at")))
        .filter(alive_at__lt=cutoff)
    )
    if not (stalled_runs or stalled_datasets or stalled_jobs):
        return report
    if live is None:
        try:
            live = live_tasks()
        except Exception as exc:  # the broker is down: re-queueing now would be blind
            logger.warning("recovery skipped: cannot see the queued tasks (%s)", exc)
            report.skipped = f"cannot see the queued tasks: {exc}"
            return report

    for run in stalled_runs:
        if run.kind == ScoringRun.Kind.RESCORE:
            lost = [] if live.holds(RESCORE_RUN, run.pk) else [run.pk]
        else:
            lost = [
                chunk_id
                for chunk_id in run.chunks.filter(state=ScoringChunk.State.PENDING).values_list(
                    "id", flat=True
                )
                if not live.holds(SCORE_CHUNK, chunk_id)
            ]
        if lost:
            scoring_run_requeue(run=run, chunk_ids=lost)
            report.runs[run.pk] = len(lost)
    for dataset in stalled_datasets:
        if live.holds(IMPORT_DATASET, dataset.pk):
            continue
        pending_chunks = dataset.import_chunks.filter(state=ImportChunk.State.PENDING)
        if dataset.state == Dataset.State.IMPORTING and dataset.import_chunks.exists():
            # Listed and chunked: only the chunks whose tasks were lost go again.
            lost = [
                chunk_id
                for chunk_id in pending_chunks.values_list("id", flat=True)
                if not live.holds(INDEX_CHUNK, chunk_id)
            ]
            if lost:
                index_chunks_requeue(dataset=dataset, chunk_ids=lost)
                report.datasets.append(dataset.pk)
                report.index_chunks[dataset.pk] = len(lost)
            continue
        dataset_import_requeue(dataset=dataset)
        report.datasets.append(dataset.pk)
    for job in stalled_jobs:
        if not live.holds(RUN_PROMPT_JOB, job.pk):
            prompt_job_requeue(job=job)
            report.jobs.append(job.pk)
    if report:
        logger.warning(
            "recovered lost work: runs %s (chunks re-queued), datasets %s (index chunks %s), "
            "prompt jobs %s",
            report.runs,
            report.datasets,
            report.index_chunks,
            report.jobs,
        )
    return report
