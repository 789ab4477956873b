"""The command lines of the product processes the stack starts: manage.py, the Celery
worker and gunicorn. This is the only place that names product code (config.wsgi, the
`config` Celery app, manage.py), and only as arguments of a subprocess: the stack runs
before the Django settings are read and never imports them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from stack.address import bind_address
from stack.environment import REPO
from stack.reporting import StackError

# The Celery queues (CELERY_TASK_QUEUES in config/settings.py): `gpu` takes the scoring chunks
# (the image encoder), `cpu` everything else, the lost-work recovery included.
ALL_QUEUES = ("gpu", "cpu")


def manage_argv(*args: str) -> list[str]:
    """manage.py ARGS with this interpreter (the virtual environment's)."""
    return [sys.executable, str(REPO / "manage.py"), *args]


def worker_queues() -> list[str]:
    """The queues a `make worker` takes: Q16_WORKER_QUEUES (comma-separated), else all."""
    queues = [q.strip() for q in os.environ.get("Q16_WORKER_QUEUES", "").split(",") if q.strip()]
    unknown = [queue for queue in queues if queue not in ALL_QUEUES]
    if unknown:
        raise StackError(
            f"Q16_WORKER_QUEUES names unknown queues ({', '.join(unknown)}); "
            f"the queues are {' and '.join(ALL_QUEUES)}"
        )
    return list(dict.fromkeys(queues)) or list(ALL_QUEUES)


def worker_argv(
    hostname: str = "q16@%h",
    beat_schedule: Path | None = None,
    queues: list[str] | tuple[str, ...] = ALL_QUEUES,
) -> list[str]:
    """The Celery worker on `queues`; with `beat_schedule`, it also runs beat embedded (-B),
    which must happen in exactly one worker: the `make run` stack's, never `make worker`."""
    # prefork with one child: the model loads in the child, after the fork.
    beat = ["--beat", "--schedule", str(beat_schedule)] if beat_schedule else []
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "config",
        "worker",
        "--loglevel",
        os.environ.get("Q16_WORKER_LOGLEVEL", "INFO"),
        "--concurrency",
        "1",
        "--pool",
        "prefork",
        "--hostname",
        hostname,
        "--queues",
        ",".join(queues),
        "--without-mingle",
        "--without-gossip",
        *beat,
    ]


def gunicorn_has_setting(name: str) -> bool:
    try:
        from gunicorn.config import KNOWN_SETTINGS
    except ImportError:
        return False
    return any(getattr(setting, "name", None) == name for setting in KNOWN_SETTINGS)


def web_argv(host: str, port: int) -> list[str]:
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "config.wsgi:application",
        "--bind",
        bind_address(host, port),
        "--workers",
        "2",
        "--threads",
        "4",
        "--timeout",
        "120",
    ]
    # Newer gunicorns open a control socket in ~/.gunicorn shared by every instance.
    if gunicorn_has_setting("control_socket_disable"):
        argv.append("--no-control-socket")
    return argv
