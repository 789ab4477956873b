"""A management command following queued work says so when no Celery worker takes it.

Real Redis (the test broker), no worker on it: the command must not wait forever at
"0/N pending" but name the broker and how to start a worker, then exit non-zero.
"""

from __future__ import annotations

import io
import time

import pytest
import redis
from django.core.management import CommandError, call_command

from config.broker import queue_keys, queue_names
from curation.management import cli
from curation.models import Dataset, ScoringRun
from tests.engine.imagegen import make_two_kind_images

SHORT = "1"  # Q16_NO_WORKER_TIMEOUT in these tests, seconds


@pytest.fixture
def broker_without_worker(redis_url, monkeypatch):
    """The test Redis, emptied; no worker consumes from it (the ping must find none)."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    monkeypatch.setenv("Q16_NO_WORKER_TIMEOUT", SHORT)
    yield client
    client.flushdb()


def _queued_messages(client: redis.Redis, queues: tuple[str, ...] | None = None) -> int:
    """Tasks waiting in these queues (default all; gpu: the chunks; cpu: the rest), every
    priority."""
    return sum(client.llen(key) for queue in (queues or queue_names()) for key in queue_keys(queue))


def _call(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_import_queue_without_worker_says_so_quickly(broker_without_worker, settings, tmp_path):
    folder = tmp_path / "images"
    make_two_kind_images(folder, 2, seed=1)
    settings.Q16_IMPORT_ROOTS = [str(tmp_path)]

    started = time.monotonic()
    with pytest.raises(CommandError) as caught:
        _call("import_dataset", "nobody", "--folder", str(folder), "--queue")
    elapsed = time.monotonic() - started

    message = str(caught.value)
    assert "no Celery worker has picked up the work in 1 s" in message
    assert "is a worker running on redis://" in message and "make worker" in message
    assert elapsed < 15, elapsed
    # The work was really sent to this broker and is still there for a later worker.
    assert _queued_messages(broker_without_worker) >= 1
    assert Dataset.objects.get(name="nobody").state == Dataset.State.PENDING


@pytest.mark.django_db(transaction=True)
def test_score_queue_without_worker_says_so_quickly(
    broker_without_worker, tiny_model_settings, settings, tmp_path
):
    folder = tmp_path / "images"
    make_two_kind_images(folder, 3, seed=2)
    settings.Q16_IMPORT_ROOTS = [str(tmp_path)]
    _call("import_dataset", "unscored", "--folder", str(folder))

    started = time.monotonic()
    with pytest.raises(CommandError, match="no Celery worker has picked up the work in 1 s"):
        _call("score_dataset", "unscored", "--queue", "--chunk-size", "2")
    assert time.monotonic() - started < 20
    run = ScoringRun.objects.get(dataset__name="unscored")
    assert run.state == ScoringRun.State.PENDING
    # The chunks wait on the gpu queue (the import's bank match waits on the cpu queue).
    assert _queued_messages(broker_without_worker, ("gpu",)) == run.chunks_total


def test_follow_row_keeps_waiting_while_a_worker_answers(monkeypatch):
    """A busy worker answers the ping: the command waits for it instead of giving up."""
    monkeypatch.setattr(cli, "workers_alive", lambda timeout=1.0: True)
    states = iter(["pending"] * 6 + ["succeeded"])
    final = cli.follow_row(
        read=lambda: (0, 4, next(states)),
        finished=lambda state: state == "succeeded",
        description="test",
        interval=0.01,
        no_worker_after=0.02,
    )
    assert final == "succeeded"


def test_follow_row_stops_checking_once_the_work_moved(monkeypatch):
    pings = []
    monkeypatch.setattr(cli, "workers_alive", lambda timeout=1.0: pings.append(1) or False)
    # It moves on the second read, then stays still for longer than the limit.
    rows = iter([(0, 4, "pending"), *[(1, 4, "running")] * 15, (4, 4, "succeeded")])
    final = cli.follow_row(
        read=lambda: next(rows),
        finished=lambda state: state == "succeeded",
        description="test",
        interval=0.01,
        no_worker_after=0.05,
    )
    assert final == "succeeded" and pings == []
