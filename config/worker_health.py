"""Health of this machine's Celery worker or beat, for container health checks.

    python -m config.worker_health --hostname gpu@%h   # the worker named gpu@<this host>
    python -m config.worker_health --beat              # a celery beat runs here, broker up

Exit status 0 when healthy, 1 otherwise, with one line saying why. The worker is asked
through Celery's remote control (ping, sent to that worker alone, answered within
--timeout seconds). A prefork worker answers from its main process while its pool child
runs a chunk, so a long chunk never makes it look dead (a `--pool solo` worker could not).
Beat has no remote control: it is healthy while its process runs and the broker answers.
%h, %n and %d in --hostname expand as in `celery worker --hostname` (this host's name). The
broker is the worker's own (REDIS_URL); the Django settings are read, Django is not set up.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from celery.utils.nodenames import default_nodename, host_format

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

DEFAULT_TIMEOUT = 5.0


def worker_nodename(hostname: str) -> str:
    """The node name `celery worker --hostname HOSTNAME` takes on this host."""
    return host_format(default_nodename(hostname))


def ping_worker(nodename: str, timeout: float) -> bool:
    from config.celery import app

    replies = app.control.ping(destination=[nodename], timeout=timeout)
    return any(nodename in reply for reply in replies or [])


def beat_running(proc: Path = Path("/proc")) -> bool:
    """Whether a `celery ... beat` process runs on this machine (other than this one)."""
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:  # gone meanwhile, or not ours to read
            continue
        words = [os.path.basename(word.decode(errors="replace")) for word in argv if word]
        if "beat" in words and any(word.startswith("celery") for word in words):
            return True
    return False


def _within(seconds: float, check: Callable[..., bool], *args: object) -> bool:
    """Run check(*args) with a deadline: a broker that hangs counts as a failure."""
    outcome: list[bool] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            outcome.append(bool(check(*args)))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if errors:
        raise errors[0]
    if thread.is_alive():
        raise TimeoutError(f"no answer within {seconds:g} s")
    return bool(outcome and outcome[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m config.worker_health", description=__doc__)
    target = parser.add_mutually_exclusive_group()
    target.add_argument(
        "--hostname",
        default=os.environ.get("Q16_WORKER_HOSTNAME", ""),
        help="the worker's --hostname (default: Q16_WORKER_HOSTNAME)",
    )
    target.add_argument("--beat", action="store_true", help="check celery beat instead")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds")
    options = parser.parse_args(argv)
    if not options.beat and not options.hostname:
        parser.error("give --hostname (or Q16_WORKER_HOSTNAME), or --beat")

    from config.broker import broker_reachable

    try:
        if options.beat and not beat_running():
            print("unhealthy: no celery beat process runs here")
            return 1
        # First the broker, with short timeouts: kombu's own connection would retry for long.
        if not _within(options.timeout, broker_reachable):
            print("unhealthy: the broker does not answer")
            return 1
        if options.beat:
            print("healthy: celery beat runs and the broker answers")
            return 0
        nodename = worker_nodename(options.hostname)
        if not _within(options.timeout + 5, ping_worker, nodename, options.timeout):
            print(f"unhealthy: worker {nodename} did not answer a ping in {options.timeout:g} s")
            return 1
    except Exception as exc:  # noqa: BLE001 - the broker is down, or settings are missing
        print(f"unhealthy: {type(exc).__name__}: {exc}")
        return 1
    print(f"healthy: worker {nodename} answered")
    return 0


if __name__ == "__main__":
    sys.exit(main())
