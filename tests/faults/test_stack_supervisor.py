"""The embedded stack (`make run`) survives crashed children and keeps its queue.

A real `python -m stack` in a temporary data directory (SQLite, embedded Redis,
a free port, small back-off values): kill -9 of the Redis, the web server and the Celery
worker; the supervisor restarts each, the web keeps answering, a message queued in the
embedded Redis survives, and repeated worker crashes make it give up loudly (exit 1).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import redis

from stack import launch, supervisor
from stack import redis as embedded_redis
from stack.children import Child
from tests.conftest import REPO_ROOT, require

STARTUP_TIMEOUT = 150  # migrations on SQLite, then the worker and gunicorn: ~10 s idle
EVENT_TIMEOUT = 60
MAX_CRASHES = 3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stack_env(data: Path, port: int) -> dict[str, str]:
    dropped = {"REDIS_URL", "DATABASE_URL", "SECRET_KEY", "MEDIA_ROOT", "Q16_IMPORT_ROOTS"}
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    return {
        **env,
        "Q16_DATA_DIR": str(data),
        "Q16_PORT": str(port),
        "Q16_RESTART_BACKOFF_S": "0.1",
        "Q16_RESTART_BACKOFF_MAX_S": "1",
        "Q16_RESTART_MAX_CRASHES": str(MAX_CRASHES),
        "Q16_RESTART_WINDOW_S": "300",
        "Q16_WORKER_LOGLEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }


class StackProcess:
    """`python -m stack` with its output in a file that the test reads."""

    def __init__(self, data: Path, port: int) -> None:
        self.data, self.port = data, port
        self.log_path = data.parent / "stack.log"
        with open(self.log_path, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "stack"],
                cwd=REPO_ROOT,
                env=_stack_env(data, port),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for(self, pattern: str, count: int = 1, timeout: float = EVENT_TIMEOUT) -> list[str]:
        """The groups of the first `count` matches of `pattern` in the stack's output."""
        deadline = time.monotonic() + timeout
        while True:
            found = re.findall(pattern, self.output())
            if len(found) >= count:
                return found
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"no {count}x {pattern!r} in the stack's output:\n{self.output()[-6000:]}"
                )
            time.sleep(0.1)

    def pid_of(self, name: str, count: int = 1) -> int:
        return int(self.wait_for(rf"started the {re.escape(name)} \(pid (\d+)\)", count)[-1])

    def web_answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/", timeout=5):
                return True
        except urllib.error.HTTPError:
            return True  # any HTTP answer: gunicorn and Django are up
        except OSError:
            return False

    def wait_web(self, timeout: float = EVENT_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not self.web_answers():
            if time.monotonic() > deadline:
                pytest.fail(f"the web server does not answer:\n{self.output()[-4000:]}")
            time.sleep(0.2)

    def cleanup(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is not alive; the supervisor reaps its children.
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    return False


@pytest.fixture
def data_dir(tmp_path) -> Path:
    """A data directory made too open on purpose (0755, a 0644 log): the stack fixes it."""
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o755)
    (data / "redis.log").write_text("")
    (data / "redis.log").chmod(0o644)
    return data


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_stack_restarts_crashed_children_then_gives_up(data_dir):
    require(embedded_redis.shutil.which("redis-server") is not None, "needs redis-server on PATH")
    stack = StackProcess(data_dir, _free_port())
    try:
        started = time.monotonic()
        stack.wait_for(r"Q16 Curator is running at", timeout=STARTUP_TIMEOUT)
        stack.wait_web()
        startup_s = time.monotonic() - started

        # Private data directory; the imports folder exists and is announced.
        assert _mode(data_dir) == 0o700
        for name in ("db.sqlite3", "redis.log", "secret_key"):
            assert _mode(data_dir / name) == 0o600, name
        assert _mode(data_dir / "imports") == 0o700
        assert f"Imports folder: {data_dir / 'imports'} (put dataset folders here" in stack.output()

        # The stack's worker runs beat embedded, with its schedule in the data directory.
        worker = stack.pid_of("Celery worker")
        cmdline = Path(f"/proc/{worker}/cmdline").read_bytes().split(b"\0")
        assert b"--beat" in cmdline and str(data_dir / "celerybeat-schedule").encode() in cmdline

        # Redis: a queued message survives a kill -9 and the restart (append-only file).
        sock = stack.wait_for(r"embedded Redis \(.*\) is up on (\S+)")[0]
        client = redis.Redis(unix_socket_path=sock, socket_timeout=5)
        client.lpush("q16-test-queue", "survives")
        os.kill(stack.pid_of("embedded Redis"), signal.SIGKILL)
        stack.wait_for(r"restarted the embedded Redis \(pid \d+\)")
        deadline = time.monotonic() + EVENT_TIMEOUT
        while True:
            with contextlib.suppress(redis.RedisError):
                assert client.lrange("q16-test-queue", 0, -1) == [b"survives"]
                break
            assert time.monotonic() < deadline, "the restarted Redis does not answer"
            time.sleep(0.1)

        # The web server: restarted, answers again.
        os.kill(stack.pid_of("web server (gunicorn)"), signal.SIGKILL)
        stack.wait_for(r"restarted the web server \(gunicorn\) \(pid \d+\)")
        stack.wait_web()

        # The worker: restarted while the web keeps answering; the crashes are counted.
        crash_times = []
        for crash in range(1, MAX_CRASHES):
            pid = stack.pid_of("Celery worker", count=crash)
            killed = time.monotonic()
            os.kill(pid, signal.SIGKILL)
            new_pid = stack.pid_of("Celery worker", count=crash + 1)
            crash_times.append(time.monotonic() - killed)
            assert new_pid != pid and _alive(new_pid)
            assert f"crash {crash} of {MAX_CRASHES} allowed" in stack.output()
            assert stack.web_answers()
        assert stack.process.poll() is None

        # One crash more within the window: it gives up loudly, stops everything, exit 1.
        last = stack.pid_of("Celery worker", count=MAX_CRASHES)
        os.kill(last, signal.SIGKILL)
        assert stack.process.wait(timeout=EVENT_TIMEOUT) == 1
        output = stack.output()
        assert (
            f"giving up: the Celery worker crashed {MAX_CRASHES} times within 300 s "
            f"(last: pid {last} was killed by SIGKILL); stopping everything"
        ) in output
        assert not stack.web_answers()
        assert not embedded_redis.ping_unix(sock)
        print(f"startup {startup_s:.1f} s; worker restarts {crash_times}")
    finally:
        stack.cleanup()


# --- The embedded Redis alone ---------------------------------------------------------


@pytest.fixture
def redis_only(tmp_path, monkeypatch):
    """start_redis() of the stack (no REDIS_URL), in a temporary data directory."""
    require(embedded_redis.shutil.which("redis-server") is not None, "needs redis-server on PATH")
    monkeypatch.delenv("REDIS_URL", raising=False)
    data = tmp_path / "data"
    data.mkdir()
    stacks: list[supervisor.Stack] = []

    def start() -> redis.Redis:
        stack = supervisor.Stack()
        stacks.append(stack)
        url = launch.start_redis(stack, data)
        return redis.Redis(unix_socket_path=url.removeprefix("redis+socket://"), socket_timeout=5)

    yield start, stacks, data
    for stack in stacks:
        stack.stop_all()


@pytest.mark.parametrize("how", ["stop", "kill -9"])
def test_embedded_redis_keeps_its_queue_across_a_restart(redis_only, how):
    start, stacks, data = redis_only
    client = start()
    client.lpush("celery", "a queued task")
    if how == "stop":
        stacks[-1].stop_all()  # SIGTERM, as Ctrl-C on `make run`
    else:
        stacks[-1].redis.kill_group()  # a crash: only what reached the append-only file
        stacks[-1].redis.proc.wait(timeout=10)
    client = start()
    assert client.lrange("celery", 0, -1) == [b"a queued task"]
    assert (data / "appendonlydir").is_dir() or (data / "appendonly.aof").is_file()


def test_restart_policy_backs_off_exponentially(monkeypatch):
    monkeypatch.setenv("Q16_RESTART_BACKOFF_S", "0.5")
    monkeypatch.setenv("Q16_RESTART_BACKOFF_MAX_S", "3")
    monkeypatch.delenv("Q16_RESTART_MAX_CRASHES", raising=False)
    monkeypatch.delenv("Q16_RESTART_WINDOW_S", raising=False)
    policy = supervisor.restart_policy()
    assert [policy.delay(n) for n in range(1, 6)] == [0.5, 1, 2, 3, 3]
    assert (policy.max_crashes, policy.window) == (5, 300)

    child = Child("worker", ["true"])
    assert [child.recent_crashes(t, window=10) for t in (0, 1, 2)] == [1, 2, 3]
    assert child.recent_crashes(50, window=10) == 1  # the old crashes left the window
