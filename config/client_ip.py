"""The client address the login lockout counts failures against."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str | None:
    """REMOTE_ADDR; behind trusted reverse proxies (AXES_BEHIND_PROXY=true), the address the
    outermost of them (Q16_PROXY_COUNT, one by default) appended to X-Forwarded-For.

    Each proxy appends the address it received the request from, so the client is the
    Q16_PROXY_COUNT-th entry from the end; entries before it are the client's own (forgeable).
    A request that carries fewer entries came past some proxies: the first entry counts.
    """
    meta = request.META
    if getattr(settings, "AXES_BEHIND_PROXY", False):
        forwarded = [part.strip() for part in meta.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [part for part in forwarded if part]
        if forwarded:
            count = max(1, getattr(settings, "Q16_PROXY_COUNT", 1))
            return forwarded[-min(count, len(forwarded))]
    return meta.get("REMOTE_ADDR")
