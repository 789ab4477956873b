"""Queue Celery work by task name: the one way services hand work to the workers.

Services never import the tasks module (it imports them: that was an import circle), and
the web process never loads it (nor, through it, the engine's torch). The names below are
the tasks' registered names in worker/tasks.py; tests/test_architecture.py checks that
each names a real task.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable

from celery import current_app
from django.db import transaction

SCORE_CHUNK = "worker.tasks.score_chunk"
RESCORE_RUN = "worker.tasks.rescore_run"
# One range of a rescore run's chunks (so of its shards): several run in parallel.
RESCORE_CHUNKS = "worker.tasks.rescore_chunks"
IMPORT_DATASET = "worker.tasks.import_dataset"
# One chunk of an import's files, URLs or shards (curation.services.indexing).
INDEX_CHUNK = "worker.tasks.index_chunk"
RUN_PROMPT_JOB = "worker.tasks.run_prompt_job"
BUILD_EXPORT = "worker.tasks.build_export"
# Match one hash bank against every dataset (after it was imported or changed).
MATCH_HASH_BANK = "worker.tasks.match_hash_bank"
# Match one dataset against every bank (when its import has finished).
MATCH_DATASET_BANKS = "worker.tasks.match_dataset_banks"
RECOVER_STALLED_WORK = "worker.tasks.recover_stalled_work"

TASK_NAMES = (
    SCORE_CHUNK,
    RESCORE_RUN,
    RESCORE_CHUNKS,
    IMPORT_DATASET,
    INDEX_CHUNK,
    RUN_PROMPT_JOB,
    BUILD_EXPORT,
    MATCH_HASH_BANK,
    MATCH_DATASET_BANKS,
    RECOVER_STALLED_WORK,
)


def send_task(name: str, *args: object) -> None:
    """Queue one task now. In eager mode (tests, a one-process setup) run it here instead."""
    app = current_app
    if app.conf.task_always_eager:
        # send_task bypasses eager mode: look the task up (importing its module registers it).
        importlib.import_module(name.rpartition(".")[0])
        app.tasks[name].apply_async(args=args)
        return
    app.send_task(name, args=args)


def send_on_commit(name: str, ids: Iterable[int]) -> None:
    """Queue one task per id once the current transaction commits (never for rolled-back rows)."""
    pending = list(ids)

    def send_pending() -> None:
        for object_id in pending:
            send_task(name, object_id)

    transaction.on_commit(send_pending)
