"""`python -m config.worker_health`, the compose health check of the workers and of beat:
exit 0 when the named worker answers a ping (or beat runs and Redis answers), 1 otherwise."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from config.worker_health import beat_running, worker_nodename
from tests.helpers import wait_for

REPO = Path(__file__).resolve().parents[2]


def _health(*args: str, redis_url: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "REDIS_URL": redis_url}
    return subprocess.run(
        [sys.executable, "-m", "config.worker_health", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_hostname_expands_like_celery_worker():
    import socket

    assert worker_nodename("gpu@%h") == f"gpu@{socket.gethostname()}"
    # As celery does: a name without "@" is a host name of the node "celery".
    assert worker_nodename("cpu") == "celery@cpu"


@pytest.mark.celery
def test_the_named_worker_is_healthy_and_another_name_is_not(workers, redis_url):
    workers.start("health")
    healthy = _health(
        "--hostname", f"health-{os.getpid()}@%h", "--timeout", "5", redis_url=redis_url
    )
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert healthy.stdout.startswith("healthy: worker health-")

    absent = _health("--hostname", "nobody@%h", "--timeout", "1", redis_url=redis_url)
    assert absent.returncode == 1
    assert "unhealthy: worker nobody@" in absent.stdout and "did not answer" in absent.stdout


def test_a_broker_that_is_down_is_unhealthy_at_once(redis_url):
    result = _health("--hostname", "gpu@%h", redis_url="redis://127.0.0.1:1/0")
    assert result.returncode == 1
    assert result.stdout.startswith("unhealthy:")


def test_it_needs_a_hostname_or_beat(redis_url, monkeypatch):
    monkeypatch.delenv("Q16_WORKER_HOSTNAME", raising=False)
    result = _health(redis_url=redis_url)
    assert result.returncode == 2
    assert "give --hostname" in result.stderr


def _fake_proc(root: Path, *commands: list[str]) -> Path:
    for pid, argv in enumerate(commands, start=100):
        (root / str(pid)).mkdir(parents=True)
        (root / str(pid) / "cmdline").write_bytes(b"\0".join(w.encode() for w in argv) + b"\0")
    (root / "self").mkdir()  # not a process id: skipped
    return root


def test_beat_is_found_by_its_command_line(tmp_path):
    others = [
        ["/venv/bin/python", "-m", "celery", "-A", "config", "worker", "--beat"],  # worker -B
        ["/usr/bin/python3", "-m", "config.worker_health", "--beat"],
        ["/usr/sbin/beat"],  # not celery
    ]
    assert not beat_running(_fake_proc(tmp_path / "without", *others))
    beat = ["/venv/bin/celery", "-A", "config", "beat", "--schedule=/data/celerybeat-schedule"]
    assert beat_running(_fake_proc(tmp_path / "with", *others, beat))
    python_m = ["/usr/local/bin/python", "-m", "celery", "-A", "config", "beat"]
    assert beat_running(_fake_proc(tmp_path / "python-m", python_m))


def test_beat_is_healthy_while_it_runs(redis_url, tmp_path):
    celery = shutil.which("celery", path=str(Path(sys.executable).parent)) or "celery"
    log_path = tmp_path / "beat.log"
    with open(log_path, "w") as log:
        beat = subprocess.Popen(
            [
                celery,
                "-A",
                "config",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(tmp_path / "sched"),
            ],
            cwd=REPO,
            env={**os.environ, "REDIS_URL": redis_url},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for(lambda: "beat: Starting" in log_path.read_text(), what="beat", log=log_path)
        result = _health("--beat", redis_url=redis_url)
        assert result.returncode == 0, result.stdout
        assert result.stdout.startswith("healthy: celery beat runs")
        # Beat runs, but the broker is down: unhealthy.
        assert _health("--beat", redis_url="redis://127.0.0.1:1/0").returncode == 1
    finally:
        beat.terminate()
        beat.wait(timeout=30)
