"""The Celery broker's Redis, read directly: is it up, and how long is each queue.

The health and metrics probes ask Redis with short timeouts and no retries, so that a broker
that is down makes them answer "unavailable" at once instead of hanging in kombu's
reconnect loop. The queue keys follow kombu's Redis transport (tests/ops check them against
messages Celery really sent).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import redis
from django.conf import settings
from kombu import Connection
from kombu.transport.redis import Channel as RedisChannel

PROBE_TIMEOUT = 2.0  # seconds, for the connection and each command


def broker_client(url: str | None = None) -> redis.Redis | None:
    """A redis-py client for the broker URL (kombu's forms included); None for a non-Redis one."""
    url = url or settings.CELERY_BROKER_URL
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in {"redis+socket", "socket", "unix"}:
        # kombu writes a unix socket as redis+socket:///path; redis-py as unix:///path.
        url = f"unix://{parts.path}" + (f"?{parts.query}" if parts.query else "")
    elif scheme not in {"redis", "rediss"}:
        return None
    return redis.Redis.from_url(
        url, socket_connect_timeout=PROBE_TIMEOUT, socket_timeout=PROBE_TIMEOUT, retry=None
    )


def broker_reachable() -> bool:
    """Whether the broker answers (PING for Redis; a connection for any other transport)."""
    client = broker_client()
    if client is None:
        with Connection(settings.CELERY_BROKER_URL, connect_timeout=PROBE_TIMEOUT) as connection:
            connection.ensure_connection(max_retries=1, timeout=int(PROBE_TIMEOUT))
        return True
    try:
        return bool(client.ping())
    finally:
        client.close()


def queue_names() -> list[str]:
    return [queue.name for queue in settings.CELERY_TASK_QUEUES]


def queue_keys(queue: str) -> list[str]:
    """The Redis lists kombu keeps one queue in: one per priority step.

    kombu's Channel._q_for_pri: the queue's name for priority 0, `<name>\\x06\\x16<step>` for
    the others, all behind the transport's global_keyprefix.
    """
    options: dict[str, Any] = dict(settings.CELERY_BROKER_TRANSPORT_OPTIONS)
    prefix = str(options.get("global_keyprefix", ""))
    steps: list[int] = list(options.get("priority_steps", RedisChannel.priority_steps))
    return [prefix + (f"{queue}{RedisChannel.sep}{step}" if step else queue) for step in steps]


def unacked_key() -> str:
    """The hash of tasks delivered to a worker and not yet acknowledged."""
    options: dict[str, Any] = dict(settings.CELERY_BROKER_TRANSPORT_OPTIONS)
    return str(options.get("global_keyprefix", "")) + str(
        options.get("unacked_key", RedisChannel.unacked_key)
    )


def queue_lengths(client: redis.Redis) -> dict[str, int]:
    """Tasks waiting in each configured queue, all priorities together."""
    pipe = client.pipeline(transaction=False)
    names = queue_names()
    keys = {name: queue_keys(name) for name in names}
    for name in names:
        for key in keys[name]:
            pipe.llen(key)
    lengths = iter(pipe.execute())
    return {name: sum(next(lengths) for _ in keys[name]) for name in names}
