"""Faults in the queue, with real `celery worker` processes on a real Redis.

- A worker SIGKILLed in the middle of a scoring run: the unacknowledged chunk is
  redelivered (acks_late; the Redis transport restores unacked messages once the
  visibility timeout has passed), a new worker finishes the run, and every image has
  exactly one score; chunk counters are added once, in the chunk's DONE transaction.
- A chunk that fails for good (the model cannot load) fails the run with the reason,
  shown by the API.

The workers here run with Q16_VISIBILITY_TIMEOUT=3 so redelivery takes seconds. In
production it stays long (default 7200 s): it must exceed the longest chunk, or a slow
but healthy chunk would be delivered a second time while it still runs.
"""

from __future__ import annotations

import time

import pytest
from rest_framework.test import APIClient

from curation.models import Image, Score, ScoringChunk, ScoringRun
from curation.services.scoring import scoring_run_start
from tests.helpers import wait_for

pytestmark = [pytest.mark.celery, pytest.mark.django_db(transaction=True)]

CHUNK = 8
SHORT_VISIBILITY = "3"
# Put back tasks a dead worker (or a stopped Redis) had taken within seconds: scan every
# second, and don't wait out a restore lock the crash may have left held (kombu: 100 s / 300 s).
FAST_RESTORE = {
    "Q16_VISIBILITY_TIMEOUT": SHORT_VISIBILITY,
    "Q16_UNACKED_RESTORE_INTERVAL": "1",
    "Q16_UNACKED_RESTORE_THROTTLE": "1",
    "Q16_UNACKED_MUTEX_EXPIRE": "5",
}


def _assert_complete_exactly_once(run: ScoringRun) -> None:
    run.refresh_from_db()
    ok_images = Image.objects.filter(dataset_id=run.dataset_id, status=Image.Status.OK).count()
    assert run.state == ScoringRun.State.SUCCEEDED, run.error
    assert run.chunks_done == run.chunks_total
    assert run.processed == run.total == ok_images
    assert Score.objects.filter(run=run).count() == ok_images
    assert Score.objects.filter(run=run).values("image").distinct().count() == ok_images
    assert not ScoringChunk.objects.filter(run=run).exclude(state=ScoringChunk.State.DONE).exists()


@pytest.mark.parametrize("victim", ["whole-worker", "pool-child"])
def test_killed_worker_mid_run_the_run_completes_exactly_once(workers, dataset_and_prompts, victim):
    dataset, version = dataset_and_prompts
    first = workers.start("first", **FAST_RESTORE)
    run = scoring_run_start(
        dataset=dataset, prompt_version=version, threshold=0.5, chunk_size=CHUNK
    )
    assert run.chunks_total > 30

    wait_for(
        lambda: ScoringRun.objects.get(pk=run.pk).chunks_done >= 1,
        interval=0.02,
        what="first chunk",
        log=first.log_path,
    )
    if victim == "whole-worker":
        workers.kill(first)  # worker and pool child together: a crashed machine
        second = workers.start("second", **FAST_RESTORE)
    else:
        # Only the pool child: the parent sees WorkerLostError and, with
        # task_reject_on_worker_lost, requeues the task at once; it forks a new child.
        import os
        import signal

        for pid in workers.children(first):
            os.kill(pid, signal.SIGKILL)
        second = first
    at_kill = ScoringRun.objects.get(pk=run.pk)
    assert at_kill.chunks_done < at_kill.chunks_total, "run finished before the kill: too fast"

    wait_for(
        lambda: ScoringRun.objects.filter(
            pk=run.pk, state__in=[ScoringRun.State.SUCCEEDED, ScoringRun.State.FAILED]
        ).exists(),
        timeout=180,
        what="run to finish after the kill",
        log=second.log_path,
    )
    _assert_complete_exactly_once(run)


def test_model_that_cannot_load_fails_the_run_with_the_reason(
    workers, dataset_and_prompts, tmp_path, admin_user
):
    dataset, version = dataset_and_prompts
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a checkpoint")
    worker = workers.start("broken", Q16_CLIP_CHECKPOINT=str(garbage))
    run = scoring_run_start(dataset=dataset, prompt_version=version, threshold=0.5, chunk_size=64)
    wait_for(
        lambda: ScoringRun.objects.filter(pk=run.pk, state=ScoringRun.State.FAILED).exists(),
        timeout=90,
        what="run to fail",
        log=worker.log_path,
    )
    run.refresh_from_db()
    assert "model could not load" in run.error
    assert ScoringChunk.objects.filter(run=run, state=ScoringChunk.State.FAILED).exists()
    # Chunks queued after the failure see a failed run and do nothing (no retry storm).
    time.sleep(1)
    assert ScoringChunk.objects.get(run=run, index=0).attempts <= 1

    client = APIClient()
    client.force_login(admin_user)
    body = client.get(f"/api/runs/{run.pk}/").json()
    assert body["state"] == "failed" and "model could not load" in body["error"]
