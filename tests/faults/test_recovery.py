"""Lost work is found and re-queued (curation.services.recovery), with real workers and Redis.

- Redis loses its queue (flushed, as after the embedded Redis crashed) while a worker is
  killed mid-run: the run stays `running`; the next worker's start runs the recovery and
  the run completes, every image scored exactly once.
- An import stuck in `importing` and a prompt job stuck in `pending`, both without a task,
  are finished by the recovery a worker runs when it starts.
- Healthy work is never re-queued: chunks waiting in the broker queue or held by a worker
  are seen as live even when the stall time is zero.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import redis
from django.conf import settings
from django.utils import timezone

from curation.models import Dataset, PromptJob, ScoringRun
from curation.services.datasets import dataset_create_from_folder
from curation.services.recovery import (
    SCORE_CHUNK,
    LiveTasks,
    live_tasks,
    recover_stalled_work,
)
from curation.services.scoring import scoring_run_start
from tests.engine.imagegen import make_two_kind_images
from tests.faults.test_worker_faults import CHUNK, _assert_complete_exactly_once
from tests.helpers import wait_for

pytestmark = [pytest.mark.celery, pytest.mark.django_db(transaction=True)]

# The worker under test runs its start-up recovery with a one-second stall time.
QUICK_RECOVERY = {"Q16_STALL_SECONDS": "1"}


def _age(model, pk: int, seconds: int = 60) -> None:
    model.objects.filter(pk=pk).update(heartbeat_at=timezone.now() - timedelta(seconds=seconds))


def test_run_whose_queue_was_lost_is_recovered_on_worker_start(
    workers, dataset_and_prompts, redis_url
):
    dataset, version = dataset_and_prompts
    first = workers.start("first")
    run = scoring_run_start(
        dataset=dataset, prompt_version=version, threshold=0.5, chunk_size=CHUNK
    )
    wait_for(
        lambda: ScoringRun.objects.get(pk=run.pk).chunks_done >= 2,
        interval=0.02,
        what="two chunks",
        log=first.log_path,
    )
    workers.kill(first)
    redis.Redis.from_url(redis_url).flushdb()  # the queue, and the unacked tasks, are gone
    stuck = ScoringRun.objects.get(pk=run.pk)
    assert stuck.state == ScoringRun.State.RUNNING and stuck.chunks_done < stuck.chunks_total
    _age(ScoringRun, run.pk)

    second = workers.start("second", **QUICK_RECOVERY)
    wait_for(
        lambda: ScoringRun.objects.get(pk=run.pk).state == ScoringRun.State.SUCCEEDED,
        timeout=180,
        what="the recovered run to finish",
        log=second.log_path,
    )
    _assert_complete_exactly_once(run)
    assert "recovered lost work" in second.log_path.read_text()


def test_lost_import_and_prompt_job_are_recovered_on_worker_start(
    workers, tiny_model_settings, tmp_path
):
    folder = tmp_path / "imgs"
    make_two_kind_images(folder, 10, seed=2)
    # Created without a task, as if Redis lost it: one mid-import, one never started.
    dataset = dataset_create_from_folder(name="lost", folder=str(folder), queue=False)
    Dataset.objects.filter(pk=dataset.pk).update(state=Dataset.State.IMPORTING)
    _age(Dataset, dataset.pk)
    job = PromptJob.objects.create(
        kind=PromptJob.Kind.ZERO_SHOT, model_key=settings.Q16_CLIP_MODEL,
        options={"appropriate": ["a calm photo"], "inappropriate": ["a violent photo"]},
    )  # fmt: skip
    from curation.services.clip_config import configured_model_key

    PromptJob.objects.filter(pk=job.pk).update(model_key=configured_model_key())
    _age(PromptJob, job.pk)

    worker = workers.start("recover", **QUICK_RECOVERY)
    wait_for(
        lambda: Dataset.objects.get(pk=dataset.pk).state == Dataset.State.READY,
        timeout=120,
        what="the recovered import",
        log=worker.log_path,
    )
    wait_for(
        lambda: PromptJob.objects.get(pk=job.pk).state == PromptJob.State.SUCCEEDED,
        timeout=120,
        what="the recovered prompt job",
        log=worker.log_path,
    )
    assert Dataset.objects.get(pk=dataset.pk).images.count() == 20


def test_healthy_run_is_never_requeued(workers, dataset_and_prompts):
    dataset, version = dataset_and_prompts
    # Queued before any worker runs: every chunk waits in the broker's queue.
    run = scoring_run_start(
        dataset=dataset, prompt_version=version, threshold=0.5, chunk_size=CHUNK
    )
    chunk_ids = set(run.chunks.values_list("id", flat=True))
    assert live_tasks().ids.get(SCORE_CHUNK, set()) == chunk_ids
    assert recover_stalled_work(stall_seconds=0).runs == {}

    # While a worker takes them: in the queue, unacknowledged or on the worker.
    worker = workers.start("healthy")
    wait_for(
        lambda: ScoringRun.objects.get(pk=run.pk).chunks_done >= 1,
        interval=0.02,
        what="first chunk",
        log=worker.log_path,
    )
    assert recover_stalled_work(stall_seconds=0).runs.get(run.pk, 0) == 0
    wait_for(
        lambda: ScoringRun.objects.get(pk=run.pk).state == ScoringRun.State.SUCCEEDED,
        timeout=180,
        what="the run",
        log=worker.log_path,
    )
    _assert_complete_exactly_once(run)
    assert max(run.chunks.values_list("attempts", flat=True)) == 1


@pytest.mark.django_db(transaction=False)  # the re-queue callbacks are caught, never sent
def test_recovery_rule_without_a_broker(dataset_and_prompts, django_capture_on_commit_callbacks):
    """The rule itself, with the live tasks given: stall time first, then what is live."""
    dataset, version = dataset_and_prompts
    run = scoring_run_start(
        dataset=dataset, prompt_version=version, threshold=0.5, chunk_size=CHUNK, queue=False
    )
    chunk_ids = list(run.chunks.order_by("index").values_list("id", flat=True))
    nothing = LiveTasks()

    # Fresh: not stalled, whatever the broker says.
    assert not recover_stalled_work(stall_seconds=600, live=nothing)

    _age(ScoringRun, run.pk, seconds=700)
    held = LiveTasks()
    for chunk_id in chunk_ids[:-2]:
        held.add(SCORE_CHUNK, [chunk_id])
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        report = recover_stalled_work(stall_seconds=600, live=held)
    assert report.runs == {run.pk: 2} and len(callbacks) == 1
    # Re-queueing beat the heartbeat: the next pass leaves the run alone.
    assert not recover_stalled_work(stall_seconds=600, live=nothing)

    # Cancelled work is never recovered.
    from curation.services.scoring import scoring_run_cancel

    scoring_run_cancel(run=run)
    _age(ScoringRun, run.pk, seconds=700)
    assert not recover_stalled_work(stall_seconds=600, live=nothing)


def test_recovery_runs_periodically_through_beat():
    from config.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["recover-stalled-work"]
    assert entry["task"] == "worker.tasks.recover_stalled_work"
    app.loader.import_default_modules()
    assert "worker.tasks.recover_stalled_work" in app.tasks
