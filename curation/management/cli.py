"""Shared helpers for the management commands: lookups and terminal progress bars."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from celery import current_app
from django.core.management.base import CommandError
from kombu.utils.url import maybe_sanitize_url
from tqdm import tqdm

from curation.api.ids import parse_id
from curation.models import Dataset, PromptVersion


def resolve_dataset(value: str) -> Dataset:
    """A dataset by id or by name."""
    dataset_id = parse_id(value)
    query = Dataset.objects.filter(pk=dataset_id) if dataset_id else Dataset.objects.none()
    dataset = query.first() or Dataset.objects.filter(name=value).first()
    if dataset is None:
        raise CommandError(f"No dataset with id or name {value!r}.")
    return dataset


def resolve_prompt_version(value: str) -> PromptVersion:
    version_id = parse_id(value)
    version = PromptVersion.objects.filter(pk=version_id).first() if version_id else None
    if version is None:
        raise CommandError(f"No prompt version with id {value!r}.")
    return version


def no_worker_timeout() -> float:
    """Seconds a followed run/job/import may stay untouched before the command checks
    for a worker: Q16_NO_WORKER_TIMEOUT (default 30; 0 turns the check off)."""
    raw = os.environ.get("Q16_NO_WORKER_TIMEOUT") or "30"
    try:
        return float(raw)
    except ValueError:
        raise CommandError(f"Q16_NO_WORKER_TIMEOUT must be a number, not {raw!r}.") from None


def workers_alive(timeout: float = 1.0) -> bool:
    """Whether any Celery worker on the configured broker answers a control ping."""
    return bool(current_app.control.ping(timeout=timeout))


def workers_serving(queue: str, timeout: float = 1.0) -> bool:
    """Whether a Celery worker on the configured broker consumes `queue` (a CPU-only worker
    answers a ping too, but never takes a GPU queue's chunks)."""
    active = current_app.control.inspect(timeout=timeout).active_queues() or {}
    return any(q.get("name") == queue for queues in active.values() for q in queues or [])


def broker_shown() -> str:
    return maybe_sanitize_url(current_app.conf.broker_url or "")


def follow_row(
    *,
    read: Callable[[], tuple[int, int, str]],
    finished: Callable[[str], bool],
    description: str,
    interval: float = 0.5,
    no_worker_after: float | None = None,
    queue: str | None = None,
) -> str:
    """Show a progress bar for work a Celery worker does, by polling its database row.

    `read` returns (processed, total, state); returns the final state. When the row has
    not moved for `no_worker_after` seconds (default: no_worker_timeout()) and no worker
    answers a ping (with `queue`: no worker consumes that queue), raises CommandError
    saying so: the work stays queued for the next worker, and the command exits non-zero
    instead of waiting forever.
    """
    limit = no_worker_timeout() if no_worker_after is None else no_worker_after
    checked_at = time.monotonic()
    first: tuple[int, str] | None = None
    moved = False
    with tqdm(desc=description, unit="img") as bar:
        while True:
            processed, total, state = read()
            bar.total = total or None
            bar.n = processed
            bar.set_postfix_str(state)
            bar.refresh()
            if finished(state):
                return state
            if first is None:
                first = (processed, state)
            moved = moved or (processed, state) != first
            if not moved and limit > 0 and time.monotonic() - checked_at >= limit:
                if not workers_alive():
                    raise CommandError(
                        f"no Celery worker has picked up the work in {limit:g} s: is a "
                        f"worker running on {broker_shown()}? start one with `make worker` "
                        "(or `make run`); the work stays queued and runs when one starts."
                    )
                if queue is not None and not workers_serving(queue):
                    raise CommandError(
                        f"no Celery worker has picked up the work in {limit:g} s: the "
                        f"workers on {broker_shown()} do not read the {queue!r} queue; start "
                        f"one with `make worker WORKER_QUEUES={queue}` (or `make run`); the "
                        "work stays queued and runs when one starts."
                    )
                # A worker answers: it is busy with earlier work. Check again later.
                checked_at = time.monotonic()
            time.sleep(interval)
