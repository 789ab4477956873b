"""Liveness and readiness of the web process, for container health checks and load balancers.

- GET /healthz: the process answers (200). Touches neither the database nor Redis, so an
  outage of either never gets the web server restarted.
- GET /readyz: the database and the broker (Redis) answer: 200, else 503 naming the part
  that failed. The body says "ok" or "unavailable" per part and nothing else: no error text,
  no host names or URLs (the reason goes to the log).

Neither needs a login: config/probes.py serves them before authentication.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import connections
from django.http import HttpRequest, JsonResponse

from config.broker import broker_reachable

logger = logging.getLogger(__name__)

OK = "ok"
UNAVAILABLE = "unavailable"


def database_reachable() -> bool:
    """Each configured database accepts a connection and runs a query."""
    for connection in connections.all():
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    return True


def _check(part: str, probe: Callable[[], bool]) -> str:
    try:
        if probe():
            return OK
        logger.warning("readiness: %s did not answer", part)
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        logger.warning("readiness: %s unavailable: %s: %s", part, type(exc).__name__, exc)
    return UNAVAILABLE


def readiness() -> dict[str, str]:
    """Each part the web server needs, with "ok" or "unavailable"."""
    return {
        "database": _check("database", database_reachable),
        "redis": _check("redis", broker_reachable),
    }


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": OK})


def readyz(request: HttpRequest) -> JsonResponse:
    checks = readiness()
    ready = all(state == OK for state in checks.values())
    return JsonResponse(
        {"status": "ready" if ready else UNAVAILABLE, "checks": checks},
        status=200 if ready else 503,
    )
