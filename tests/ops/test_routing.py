"""Queues: the scoring chunks go to `gpu`, everything else to `cpu`, by task name.

- Every name curation/dispatch.py sends, and beat's task, routes to one declared queue; a task
  routed nowhere goes to cpu, never to a queue no worker reads.
- `make run`'s worker takes both queues; `make worker` takes Q16_WORKER_QUEUES (WORKER_QUEUES).
- Real workers on the real Redis: one started with `-Q cpu` imports but leaves the chunks
  waiting in `gpu`; one started with `-Q gpu` then scores them.
"""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest
import redis
from django.conf import settings

from config.broker import queue_keys
from config.celery import app
from curation import dispatch
from stack.programs import ALL_QUEUES, worker_argv, worker_queues
from stack.reporting import StackError

REPO = Path(__file__).resolve().parents[2]


def _queue_of(task_name: str) -> str:
    return app.amqp.router.route({}, task_name)["queue"].name


def test_the_chunks_go_to_gpu_and_everything_else_to_cpu():
    routed = {name: _queue_of(name) for name in dispatch.TASK_NAMES}
    assert routed.pop(dispatch.SCORE_CHUNK) == "gpu"
    assert set(routed.values()) == {"cpu"}
    # Beat's periodic tasks too.
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert _queue_of(entry["task"]) == "cpu"


def test_every_route_names_a_dispatched_task_and_a_declared_queue():
    declared = {queue.name for queue in settings.CELERY_TASK_QUEUES}
    assert declared == set(ALL_QUEUES) == {"gpu", "cpu"}
    assert set(settings.CELERY_TASK_ROUTES) == set(dispatch.TASK_NAMES)
    assert {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()} == declared


def test_each_queue_has_its_own_binding():
    # A shared exchange and routing key would copy every task into both queues.
    bindings = {(q.exchange.name, q.routing_key) for q in app.amqp.queues.values()}
    assert bindings == {("gpu", "gpu"), ("cpu", "cpu")}


def test_a_task_routed_nowhere_goes_to_cpu():
    assert _queue_of("worker.tasks.a_task_added_later") == "cpu"


def test_celery_events_are_on_for_flower():
    assert app.conf.worker_send_task_events is True
    assert app.conf.task_send_sent_event is True


def test_make_run_worker_takes_every_queue(monkeypatch):
    monkeypatch.setenv("Q16_WORKER_QUEUES", "gpu")  # ignored by make run's single worker
    argv = worker_argv(beat_schedule=Path("/tmp/schedule"))
    assert argv[argv.index("--queues") + 1] == "gpu,cpu"
    assert "--beat" in argv


@pytest.mark.parametrize(
    ("setting", "expected"),
    [("", ["gpu", "cpu"]), ("gpu", ["gpu"]), (" cpu ", ["cpu"]), ("cpu,gpu,cpu", ["cpu", "gpu"])],
)
def test_make_worker_takes_q16_worker_queues(monkeypatch, setting, expected):
    monkeypatch.setenv("Q16_WORKER_QUEUES", setting)
    assert worker_queues() == expected
    argv = worker_argv("w@%h", queues=worker_queues())
    assert argv[argv.index("--queues") + 1] == ",".join(expected)
    assert "--beat" not in argv


def test_an_unknown_queue_is_refused(monkeypatch):
    monkeypatch.setenv("Q16_WORKER_QUEUES", "gpu,gpus")
    with pytest.raises(StackError, match=r"unknown queues \(gpus\); the queues are gpu and cpu"):
        worker_queues()


def test_makefile_hands_worker_queues_to_the_stack():
    dry_run = subprocess.run(
        ["make", "-n", "worker", "WORKER_QUEUES=gpu"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Q16_WORKER_QUEUES='gpu' .venv/bin/python -m stack worker" in dry_run


def _make_dataset(name: str, folder: Path):
    from curation.services.datasets import dataset_create_from_folder
    from tests.engine.imagegen import make_two_kind_images

    make_two_kind_images(folder, 2, seed=len(name))
    return dataset_create_from_folder(name=name, folder=str(folder))  # queued: an import task


def _ready(dataset) -> bool:
    from curation.models import Dataset

    dataset.refresh_from_db()
    assert dataset.state != Dataset.State.FAILED, dataset.error
    return dataset.state == Dataset.State.READY


@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_a_cpu_worker_leaves_the_chunks_to_a_gpu_worker(workers, redis_url, tmp_path, settings):
    from curation.models import ScoringChunk, ScoringRun
    from curation.services.clip_config import configured_model_key
    from curation.services.clip_runtime import get_clip
    from curation.services.prompt_zero_shot import prompt_version_create_zero_shot
    from curation.services.scoring import scoring_run_start
    from tests.helpers import wait_for

    settings.Q16_IMPORT_ROOTS = [str(tmp_path)]
    client = redis.Redis.from_url(redis_url)
    cpu = workers.start("cpu", queues="cpu", Q16_IMPORT_ROOTS=str(tmp_path))

    dataset = _make_dataset("routed", tmp_path / "first")
    wait_for(lambda: _ready(dataset), what="the cpu worker's import", log=cpu.log_path)
    version = prompt_version_create_zero_shot(clip=get_clip(configured_model_key()))
    run = scoring_run_start(dataset=dataset, prompt_version=version, threshold=0.5, chunk_size=2)
    assert run.chunks_total == 2

    # A cpu task queued after the chunks: once the worker has done it, it has passed them by.
    later = _make_dataset("queued after the chunks", tmp_path / "second")
    wait_for(lambda: _ready(later), what="the second import", log=cpu.log_path)
    assert sum(client.llen(key) for key in queue_keys("gpu")) == run.chunks_total
    assert sum(client.llen(key) for key in queue_keys("cpu")) == 0
    chunks = ScoringChunk.objects.filter(run=run)
    assert set(chunks.values_list("state", "attempts", "worker")) == {("pending", 0, "")}

    # A command following the run is told that no worker reads the chunks' queue (the cpu
    # worker answers a ping, so "is a worker running?" would be the wrong question).
    from django.core.management import CommandError

    from curation.management import cli

    assert cli.workers_serving("cpu") and not cli.workers_serving("gpu")
    with pytest.raises(CommandError, match="do not read the 'gpu' queue"):
        cli.follow_row(
            read=lambda: (0, 2, "pending"),
            finished=lambda state: False,
            description="scoring",
            interval=0.05,
            no_worker_after=0.1,
            queue="gpu",
        )

    gpu = workers.start("gpu", queues="gpu")
    wait_for(
        lambda: ScoringRun.objects.get(pk=run.pk).state == ScoringRun.State.SUCCEEDED,
        what="the gpu worker's chunks",
        log=gpu.log_path,
    )
    assert set(chunks.values_list("worker", flat=True)) == {
        f"gpu-{os.getpid()}@{socket.gethostname()}"
    }
    assert sum(client.llen(key) for key in queue_keys("gpu")) == 0
