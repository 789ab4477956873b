"""The operational endpoints, /healthz, /readyz and /metrics, served by the first middleware.

They are answered before the HTTPS redirect, the host check, sessions and login: a container
health check or a Prometheus scraper reaches the web server on its internal address over
plain HTTP, with a Host header that is no public name (web:8000, 127.0.0.1:8000). That is
safe for these three: none builds a URL from the Host header, the health answers say nothing
but "ok"/"unavailable", and /metrics checks its own access (config/metrics.py). Every other
path goes through the whole middleware stack as before.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed

from config.health import healthz, readyz
from config.metrics import metrics

PROBES: dict[str, Callable[[HttpRequest], HttpResponse]] = {
    "/healthz": healthz,
    "/readyz": readyz,
    "/metrics": metrics,
}


class ProbeMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        probe = PROBES.get(request.path_info)
        if probe is None:
            return self.get_response(request)
        if request.method not in ("GET", "HEAD"):
            response: HttpResponse = HttpResponseNotAllowed(["GET", "HEAD"])
        else:
            response = probe(request)
        # Never cached by a proxy; no content sniffing (the middleware that adds it is skipped).
        response["Cache-Control"] = "no-store"
        response["X-Content-Type-Options"] = "nosniff"
        return response
