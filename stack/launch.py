"""`python -m stack run` (the default, behind `make run`): the whole stack in order.

Redis (REDIS_URL when it answers, else an embedded one), the database migrations, the
admin account check, then one Celery worker with beat and the web server, supervised
until Ctrl-C or SIGTERM (exit 0) or until a child crashes too often (exit 1).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from stack.address import (
    bind_address,
    check_port_free,
    hint_allowed_hosts,
    host_port,
    port_open,
    url_for,
)
from stack.children import Child
from stack.environment import imports_line, prepare_environment
from stack.programs import manage_argv, web_argv, worker_argv
from stack.redis import (
    REDIS_START_TIMEOUT,
    ping_unix,
    ping_url,
    redacted,
    redis_server_argv,
    redis_server_binary,
    socket_path,
    socket_url,
)
from stack.reporting import StackError, log
from stack.supervisor import Stack, restart_policy

WEB_START_TIMEOUT = 90.0


def start_redis(stack: Stack, data: Path) -> str:
    """Use REDIS_URL when it answers, else an embedded Redis on a unix socket."""
    configured = os.environ.get("REDIS_URL")
    if configured:
        if ping_url(configured):
            log(f"using the Redis at REDIS_URL={redacted(configured)}")
            return configured
        log(f"REDIS_URL={redacted(configured)} does not answer; starting an embedded Redis")
    binary = redis_server_binary()
    sock = socket_path(data)
    if ping_unix(str(sock)):
        raise StackError(f"a Redis is already listening on {sock}; stop it first")

    def remove_stale_socket() -> None:
        with contextlib.suppress(FileNotFoundError):
            sock.unlink()

    argv = redis_server_argv(binary, sock, data)
    redis_child = Child("embedded Redis", argv, restart=True, before_start=remove_stale_socket)
    stack.redis = stack.start(redis_child)
    try:
        up = stack.wait_until(lambda: ping_unix(str(sock)), REDIS_START_TIMEOUT, [stack.redis])
    except StackError as exc:
        raise StackError(f"{exc}; see {data / 'redis.log'}") from None
    if not up:
        raise StackError(
            f"the embedded Redis did not answer on {sock} within "
            f"{REDIS_START_TIMEOUT:.0f} s; see {data / 'redis.log'}"
        )
    log(f"embedded Redis ({binary}) is up on {sock}")
    return socket_url(sock)


def banner(url: str, admin_line: str, data: Path) -> list[str]:
    """What the stack prints once the web server answers."""
    rule = "-" * 68
    return [
        rule,
        f"Q16 Curator is running at {url}",
        *(admin_line.splitlines() or ["(no admin account line)"]),
        f"Data: {data}",
        imports_line(data),
        "Press Ctrl-C to stop.",
        rule,
    ]


def run() -> int:
    """The whole stack, supervised; the exit status (0 after a signal, 1 after an error)."""
    stack = Stack()
    stack.install_signal_handlers()
    code = 1
    try:
        stack.policy = restart_policy()
        data = prepare_environment()
        stack.lock(data)
        host, port = host_port()
        check_port_free(host, port)
        hint_allowed_hosts(host)
        log(f"data directory: {data}")

        os.environ["REDIS_URL"] = start_redis(stack, data)

        log("applying database migrations")
        stack.run_step("database migration", manage_argv("migrate", "--noinput"))
        admin_line = stack.run_step(
            "admin account check", manage_argv("ensure_admin"), capture=True
        ).strip()

        # The stack's single worker takes every queue (gpu and cpu: all the work, whatever
        # Q16_WORKER_QUEUES says) and also runs beat (periodic tasks such as the recovery
        # of stalled work); workers started with `make worker` never run beat.
        worker_cmd = worker_argv(beat_schedule=data / "celerybeat-schedule")
        worker = stack.start(Child("Celery worker", worker_cmd, restart=True))
        web = stack.start(Child("web server (gunicorn)", web_argv(host, port), restart=True))
        if not stack.wait_until(lambda: port_open(host, port), WEB_START_TIMEOUT, [worker, web]):
            log(f"the web server is not answering on {bind_address(host, port)} yet; still waiting")

        for line in banner(url_for(host, port), admin_line, data):
            log(line)
        code = stack.supervise()
    except StackError as exc:
        # A StackError while stopping is the interrupted startup step: a clean stop.
        if not stack.stopping:
            log(f"error: {exc}")
            code = 1
        else:
            code = 0
    finally:
        if stack.children:
            log("stopping")
        stack.stop_all()
        if stack.children:
            log("stopped" if code == 0 else "stopped after an error")
    return code
