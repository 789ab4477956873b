"""The embedded single-machine stack behind `make run`.

    python -m stack              # Redis + migrate + ensure_admin + worker + web
    python -m stack worker       # one Celery worker alone (queues: Q16_WORKER_QUEUES)
    python -m stack web          # the web server alone
    python -m stack manage ARGS  # manage.py ARGS with the same environment

It prepares the environment the Django settings read (data directory, a generated
SECRET_KEY, REDIS_URL) before anything imports Django, so this package must not import
Django itself. `run` supervises its children: Ctrl-C or SIGTERM stops them all (web
and worker first, Redis last) and exits 0. A child that dies on its own (the worker, the
web server or the embedded Redis) is restarted after an exponential back-off; one that
crashes Q16_RESTART_MAX_CRASHES times within Q16_RESTART_WINDOW_S seconds makes the stack
give up: it logs what crashed how often, stops the rest and exits 1.

The embedded Redis keeps an append-only file in the data directory, so the queue survives
a restart of Redis or of the whole stack. The data directory is private (0700, files
0600: the stack runs with umask 077).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from stack import launch
from stack.address import hint_allowed_hosts, host_port
from stack.environment import REPO, prepare_environment
from stack.programs import manage_argv, web_argv, worker_argv, worker_queues
from stack.redis import embedded_redis_url
from stack.reporting import StackError, log


def cmd_exec(argv: list[str], what: str) -> int:
    """Replace this process with argv (signals then go straight to it)."""
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        raise StackError(f"cannot start the {what}: {exc}") from None
    return 1  # pragma: no cover - exec does not return


def use_running_redis(data: Path) -> None:
    """Standalone worker/web/manage: REDIS_URL, else a running `make run`'s embedded Redis."""
    if os.environ.get("REDIS_URL"):
        return
    url = embedded_redis_url(data)
    if url:
        os.environ["REDIS_URL"] = url
        log(f"using the embedded Redis of the running stack: {url}")
    else:
        log(
            f"REDIS_URL is not set and no `make run` is running on {data}: "
            "using the settings' default redis://127.0.0.1:6379/0"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m stack",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", help="the whole embedded stack (default)")
    sub.add_parser("worker", help="one Celery worker alone")
    sub.add_parser("web", help="the web server alone")
    manage = sub.add_parser("manage", help="manage.py with the stack's environment")
    manage.add_argument("args", nargs=argparse.REMAINDER)
    options = parser.parse_args(argv)

    try:
        if options.command in (None, "run"):
            return launch.run()
        data = prepare_environment()
        os.chdir(REPO)
        # The same broker as `make run` (its embedded Redis) for all three: queued work
        # from `manage ... --queue` reaches the stack's worker.
        use_running_redis(data)
        if options.command == "manage":
            return cmd_exec(manage_argv(*options.args), "manage.py")
        if options.command == "worker":
            queues = worker_queues()  # Q16_WORKER_QUEUES: a GPU-only or CPU-only worker
            log(f"the worker takes the queue(s) {', '.join(queues)}")
            return cmd_exec(worker_argv(f"q16-{os.getpid()}@%h", queues=queues), "Celery worker")
        host, port = host_port()
        hint_allowed_hosts(host)
        return cmd_exec(web_argv(host, port), "web server")
    except StackError as exc:
        log(f"error: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
