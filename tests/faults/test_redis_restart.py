"""Redis restarted in the middle of a scoring run: workers reconnect and the run completes.

Runs its own redis-server on a spare port (append-only file in a temporary folder, so the
queue survives the restart, as a production Redis with persistence would), never the
shared test Redis.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import pytest
import redis

from curation.models import ScoringRun
from curation.services.scoring import scoring_run_start
from tests.conftest import require
from tests.faults.test_worker_faults import (
    CHUNK,
    FAST_RESTORE,
    _assert_complete_exactly_once,
)
from tests.helpers import wait_for

pytestmark = [pytest.mark.celery, pytest.mark.django_db(transaction=True)]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    def __init__(self, directory, port: int) -> None:
        self.directory, self.port = directory, port
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server"),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ],  # fmt: skip
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                redis.Redis.from_url(self.url, socket_connect_timeout=0.5).ping()
                return
            except redis.RedisError:
                if time.monotonic() > deadline:
                    pytest.fail("spare redis-server did not start")
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: Redis flushes the append-only file and exits
            self.process.wait(timeout=20)


@pytest.fixture
def spare_redis(tmp_path):
    require(shutil.which("redis-server") is not None, "redis-server is not installed")
    directory = tmp_path / "redis"
    directory.mkdir()
    server = RedisServer(directory, _free_port())
    server.start()
    yield server
    server.stop()


def test_redis_restart_during_a_run_workers_reconnect_and_finish(
    workers, dataset_and_prompts, spare_redis
):
    from config.celery import app
    from worker.tasks import score_chunk

    dataset, version = dataset_and_prompts
    worker = workers.start("reconnect", REDIS_URL=spare_redis.url, **FAST_RESTORE)
    run = scoring_run_start(
        dataset=dataset, prompt_version=version, threshold=0.5, chunk_size=CHUNK, queue=False
    )
    with app.connection_for_write(spare_redis.url) as connection:
        for chunk_id in run.chunks.values_list("id", flat=True):
            score_chunk.apply_async((chunk_id,), connection=connection)

    wait_for(
        lambda: ScoringRun.objects.get(pk=run.pk).chunks_done >= 1,
        interval=0.02,
        what="first chunk",
        log=worker.log_path,
    )
    spare_redis.stop()
    at_stop = ScoringRun.objects.get(pk=run.pk)
    assert at_stop.chunks_done < at_stop.chunks_total, "run finished before the restart"
    time.sleep(2)
    spare_redis.start()

    wait_for(
        lambda: ScoringRun.objects.filter(
            pk=run.pk, state__in=[ScoringRun.State.SUCCEEDED, ScoringRun.State.FAILED]
        ).exists(),
        timeout=180,
        what="run to finish after the Redis restart",
        log=worker.log_path,
    )
    _assert_complete_exactly_once(run)
    assert worker.poll() is None, "the worker died instead of reconnecting"
