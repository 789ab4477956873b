"""Prometheus metrics at /metrics: django-prometheus's request metrics plus Q16's own.

Q16's own are read at each scrape (a prometheus_client Collector, registered once): the
broker's queue depths, the progress of every active scoring run, each worker's images per
second over its recently finished chunks, and the review throughput. Nothing is counted in
the web process, so every gunicorn worker answers the same figures.

Access (settings Q16_METRICS_TOKEN, Q16_METRICS_ALLOWED_NETWORKS): a request with the bearer
token, or one from an allowed network (loopback by default) that no proxy forwarded. Anything
else gets 401 (a token is configured) or 403, and no metrics.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
from collections.abc import Iterable, Iterator
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count, DurationField, ExpressionWrapper, F, Sum
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from redis import RedisError

from config.broker import broker_client, queue_lengths, queue_names, unacked_key
from curation.models import ScoringChunk, ScoringRun
from reviewer.models import Decision

logger = logging.getLogger(__name__)

# Headers a reverse proxy adds: a request carrying one came from outside, whatever its address.
PROXY_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_X_REAL_IP", "HTTP_FORWARDED")
REVIEW_WINDOWS = {"1h": timedelta(hours=1), "24h": timedelta(days=1)}
RUN_LABELS = ["run", "dataset", "kind", "state"]


def _families() -> dict[str, GaugeMetricFamily]:
    """Every metric family this collector answers, empty."""
    return {
        "broker_up": GaugeMetricFamily(
            "q16_broker_up",
            "Whether the Celery broker (Redis) answered this scrape (1) or not (0).",
        ),
        "queue_length": GaugeMetricFamily(
            "q16_celery_queue_length",
            "Tasks waiting in a Celery queue, all priorities (gpu: scoring chunks; cpu: the rest).",
            labels=["queue"],
        ),
        "unacked": GaugeMetricFamily(
            "q16_celery_unacked_tasks",
            "Tasks delivered to a worker and not yet acknowledged (running or reserved).",
        ),
        "database_up": GaugeMetricFamily(
            "q16_database_up", "Whether the database answered this scrape (1) or not (0)."
        ),
        "chunks_done": GaugeMetricFamily(
            "q16_run_chunks_done", "Chunks done of an active scoring run.", labels=RUN_LABELS
        ),
        "chunks_total": GaugeMetricFamily(
            "q16_run_chunks_total", "Chunks of an active scoring run.", labels=RUN_LABELS
        ),
        "images_processed": GaugeMetricFamily(
            "q16_run_images_processed",
            "Images processed so far by an active scoring run.",
            labels=RUN_LABELS,
        ),
        "images_total": GaugeMetricFamily(
            "q16_run_images_total", "Images an active scoring run covers.", labels=RUN_LABELS
        ),
        "worker_rate": GaugeMetricFamily(
            "q16_worker_images_per_second",
            "Images per second a worker processed in the chunks it finished within the last "
            "Q16_METRICS_RATE_WINDOW seconds (images over the time spent on those chunks).",
            labels=["worker"],
        ),
        "worker_images": GaugeMetricFamily(
            "q16_worker_images_recent",
            "Images in the chunks a worker finished within the last Q16_METRICS_RATE_WINDOW seconds.",
            labels=["worker"],
        ),
        "verdicts": GaugeMetricFamily(
            "q16_review_verdicts",
            "Verdicts reviewers gave in the last hour or day (copies to identical images and "
            "near-duplicates not counted).",
            labels=["window", "verdict"],
        ),
    }


class Q16Collector(Collector):
    """Q16's own metrics, read from Redis and the database at each scrape."""

    def describe(self) -> Iterable[Metric]:
        # Registering calls this instead of collect(): no query at import time.
        return list(_families().values())

    def collect(self) -> Iterable[Metric]:
        families = _families()
        self._broker(families)
        self._database(families)
        return list(families.values())

    def _broker(self, families: dict[str, GaugeMetricFamily]) -> None:
        client = broker_client()
        if client is None:  # not Redis (an in-memory broker in eager tests): nothing to read
            families["broker_up"].add_metric([], 0)
            return
        try:
            lengths = queue_lengths(client)
            unacked = client.hlen(unacked_key())
        except RedisError as exc:
            logger.warning("metrics: the broker is unavailable: %s", exc)
            families["broker_up"].add_metric([], 0)
            return
        finally:
            client.close()
        families["broker_up"].add_metric([], 1)
        for queue in queue_names():
            families["queue_length"].add_metric([queue], lengths[queue])
        families["unacked"].add_metric([], unacked)

    def _database(self, families: dict[str, GaugeMetricFamily]) -> None:
        try:
            runs = list(_active_runs())
            rates = list(_worker_rates())
            verdicts = list(_verdict_counts())
        except DatabaseError as exc:
            logger.warning("metrics: the database is unavailable: %s", exc)
            families["database_up"].add_metric([], 0)
            return
        families["database_up"].add_metric([], 1)
        for run in runs:
            labels = [str(run.pk), run.dataset.name, run.kind, run.state]
            families["chunks_done"].add_metric(labels, run.chunks_done)
            families["chunks_total"].add_metric(labels, run.chunks_total)
            families["images_processed"].add_metric(labels, run.processed)
            families["images_total"].add_metric(labels, run.total)
        for worker, images, seconds in rates:
            families["worker_images"].add_metric([worker], images)
            families["worker_rate"].add_metric([worker], images / seconds if seconds > 0 else 0)
        for window, verdict, count in verdicts:
            families["verdicts"].add_metric([window, verdict], count)


def _active_runs() -> Iterator[ScoringRun]:
    active = [ScoringRun.State.PENDING, ScoringRun.State.RUNNING]
    return iter(
        ScoringRun.objects.filter(state__in=active).select_related("dataset").order_by("pk")
    )


def _worker_rates() -> Iterator[tuple[str, int, float]]:
    """(worker, images, seconds spent) over the chunks each worker finished in the window."""
    cutoff = timezone.now() - timedelta(seconds=settings.Q16_METRICS_RATE_WINDOW)
    spent = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    rows = (
        ScoringChunk.objects.filter(
            state=ScoringChunk.State.DONE, finished_at__gte=cutoff, started_at__isnull=False
        )
        .exclude(worker="")
        .values("worker")
        .annotate(images=Sum("processed"), spent=Sum(spent))
        .order_by("worker")
    )
    for row in rows:
        seconds = row["spent"].total_seconds() if row["spent"] else 0.0
        yield row["worker"], row["images"] or 0, seconds


def _verdict_counts() -> Iterator[tuple[str, str, int]]:
    now = timezone.now()
    for window, length in REVIEW_WINDOWS.items():
        counts = dict.fromkeys(Decision.Verdict.values, 0)
        rows = (
            Decision.objects.filter(created_at__gte=now - length, propagated_from__isnull=True)
            .values("verdict")
            .annotate(count=Count("id"))
            .order_by()
        )
        for row in rows:
            counts[row["verdict"]] = row["count"]
        for verdict, count in counts.items():
            yield window, verdict, count


COLLECTOR = Q16Collector()
REGISTRY.register(COLLECTOR)  # once: this module is imported once per process


def _client_address(request: HttpRequest) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def metrics_allowed(request: HttpRequest) -> bool:
    """The bearer token, or an allowed address that no proxy forwarded."""
    token = settings.Q16_METRICS_TOKEN
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if token and scheme.lower() == "bearer":
        return hmac.compare_digest(credentials.strip().encode(), token.encode())
    if any(header in request.META for header in PROXY_HEADERS):
        return False
    address = _client_address(request)
    return address is not None and any(
        address in ipaddress.ip_network(network, strict=False)
        for network in settings.Q16_METRICS_ALLOWED_NETWORKS
    )


def _registry() -> CollectorRegistry:
    """The process's registry; under gunicorn with PROMETHEUS_MULTIPROC_DIR, every worker's."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    registry.register(COLLECTOR)
    return registry


def metrics(request: HttpRequest) -> HttpResponse:
    if not metrics_allowed(request):
        if settings.Q16_METRICS_TOKEN:
            refusal = HttpResponse("A valid bearer token is required.\n", status=401)
            refusal["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return refusal
        return HttpResponse("Metrics are not available from this address.\n", status=403)
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)
