"""The client address the login lockout counts failures against."""

from __future__ import annotations

from django.conf import settings


def client_ip(request) -> str | None:
    """REMOTE_ADDR; behind a trusted reverse proxy (AXES_BEHIND_PROXY=true), the address that
    proxy appended to X-Forwarded-For: the last entry, since a client can forge earlier ones."""
    meta = request.META
    if getattr(settings, "AXES_BEHIND_PROXY", False):
        forwarded = [part.strip() for part in meta.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [part for part in forwarded if part]
        if forwarded:
            return forwarded[-1]
    return meta.get("REMOTE_ADDR")
