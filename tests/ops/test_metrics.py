"""/metrics: who may read it, and what Q16's collector reports (queue depths from the real
Redis, run progress, per-worker images per second, review throughput)."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
import redis
from django.db import OperationalError, connection
from django.utils import timezone
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from config.celery import app
from curation import dispatch
from curation.models import Dataset, Image, PromptVersion, ScoringChunk, ScoringRun
from reviewer.models import Decision, ReviewItem
from worker.engine.store import prompts_to_bytes

TOKEN = "a-metrics-token-for-tests-0123456789"
OUTSIDE = "203.0.113.9"  # TEST-NET-3: no real client


def _samples(response) -> dict[tuple[str, tuple], float]:
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == CONTENT_TYPE_LATEST  # Prometheus's text format
    text = response.content.decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(samples, name: str, **labels) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


# --- Access -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_loopback_without_a_proxy_may_read_it(client):
    response = client.get("/metrics")  # the test client comes from 127.0.0.1
    assert response.status_code == 200
    assert b"django_http_requests_total_by_method_total" in response.content


@pytest.mark.django_db
def test_ipv6_loopback_may_read_it(client):
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="::ffff:127.0.0.1").status_code == 200


@pytest.mark.parametrize("header", ["HTTP_X_FORWARDED_FOR", "HTTP_X_REAL_IP", "HTTP_FORWARDED"])
def test_a_request_a_proxy_forwarded_is_refused_even_from_loopback(client, header):
    """Behind a reverse proxy on the same host every public request comes from 127.0.0.1."""
    response = client.get("/metrics", **{header: OUTSIDE})
    assert response.status_code == 403
    assert b"q16_" not in response.content


def test_another_address_is_refused(client):
    response = client.get("/metrics", REMOTE_ADDR=OUTSIDE)
    assert response.status_code == 403
    assert b"q16_" not in response.content and b"django_" not in response.content


@pytest.mark.django_db
def test_the_bearer_token_opens_it_from_anywhere(client, settings):
    settings.Q16_METRICS_TOKEN = TOKEN
    auth = f"Bearer {TOKEN}"
    assert client.get("/metrics", REMOTE_ADDR=OUTSIDE, HTTP_AUTHORIZATION=auth).status_code == 200
    forwarded = client.get(
        "/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=OUTSIDE, HTTP_AUTHORIZATION=auth
    )
    assert forwarded.status_code == 200


@pytest.mark.parametrize(
    "authorization", ["", "Bearer wrong-token-0123456789", f"Token {TOKEN}", f"Bearer {TOKEN}x"]
)
def test_without_the_right_token_it_is_401(client, settings, authorization):
    settings.Q16_METRICS_TOKEN = TOKEN
    extra = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    response = client.get("/metrics", REMOTE_ADDR=OUTSIDE, **extra)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert b"q16_" not in response.content


def test_a_wrong_token_is_refused_even_from_loopback(client, settings):
    settings.Q16_METRICS_TOKEN = TOKEN
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong-token-0123456789")
    assert response.status_code == 401


def test_no_networks_means_token_only(client, settings):
    settings.Q16_METRICS_ALLOWED_NETWORKS = []
    assert client.get("/metrics").status_code == 403


@pytest.mark.django_db
def test_an_allowed_network_may_read_it(client, settings):
    settings.Q16_METRICS_ALLOWED_NETWORKS = ["10.20.0.0/16"]
    assert client.get("/metrics", REMOTE_ADDR="10.20.3.4").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.21.3.4").status_code == 403
    assert client.get("/metrics").status_code == 403  # loopback is no longer in the list


def test_metrics_need_no_login_and_set_no_session_cookie(client):
    response = client.get("/metrics", REMOTE_ADDR=OUTSIDE)
    assert response.status_code == 403  # not a redirect to the login page
    assert "sessionid" not in response.cookies


# --- Content ------------------------------------------------------------------------------


@pytest.fixture
def broker(redis_url):
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.flushdb()


@pytest.fixture
def scored_dataset(db):
    dataset = Dataset.objects.create(
        name="harbour photos", source_kind=Dataset.SourceKind.FOLDER, source="/x", root_path="/x",
        state=Dataset.State.READY, total=6, processed=6,
    )  # fmt: skip
    for index in range(6):
        Image.objects.create(dataset=dataset, relative_path=f"{index}.png", sha256=f"{index}" * 64)
    version = PromptVersion.objects.create(
        name="zero-shot", model_key="q16-tiny/test", dim=4,
        vectors=prompts_to_bytes(np.zeros((2, 4), np.float32)),
        source=PromptVersion.Source.ZERO_SHOT,
    )  # fmt: skip
    return dataset, version


def _run(dataset, version, state, **fields) -> ScoringRun:
    return ScoringRun.objects.create(
        dataset=dataset, prompt_version=version, model_key=version.model_key, threshold=0.5,
        state=state, **fields,
    )  # fmt: skip


def _chunk(run, index, *, worker, images, seconds, finished_ago, state="done"):
    finished = timezone.now() - timedelta(seconds=finished_ago)
    return ScoringChunk.objects.create(
        run=run, index=index, first_image_id=index, last_image_id=index, state=state,
        worker=worker, processed=images,
        started_at=finished - timedelta(seconds=seconds), finished_at=finished,
    )  # fmt: skip


def test_queue_depths_count_every_priority_of_each_queue(client, broker, db):
    # No worker reads these: they stay where kombu put them.
    app.send_task(dispatch.SCORE_CHUNK, args=[1])
    app.send_task(dispatch.SCORE_CHUNK, args=[2], priority=9)  # another Redis list
    app.send_task(dispatch.IMPORT_DATASET, args=[3])
    assert broker.llen("gpu") == 1  # the priority-9 task is not in the plain list
    samples = _samples(client.get("/metrics"))
    assert _value(samples, "q16_broker_up") == 1
    assert _value(samples, "q16_celery_queue_length", queue="gpu") == 2
    assert _value(samples, "q16_celery_queue_length", queue="cpu") == 1
    assert _value(samples, "q16_celery_unacked_tasks") == 0


def test_active_runs_report_their_progress(client, broker, scored_dataset):
    dataset, version = scored_dataset
    running = _run(
        dataset, version, ScoringRun.State.RUNNING, total=6, processed=4, chunks_total=3,
        chunks_done=2,
    )  # fmt: skip
    queued = _run(dataset, version, ScoringRun.State.PENDING, total=6, chunks_total=3)
    done = _run(dataset, version, ScoringRun.State.SUCCEEDED, total=6, processed=6)
    samples = _samples(client.get("/metrics"))
    labels = {"run": str(running.pk), "dataset": "harbour photos", "kind": "score"}
    assert _value(samples, "q16_run_chunks_done", **labels, state="running") == 2
    assert _value(samples, "q16_run_chunks_total", **labels, state="running") == 3
    assert _value(samples, "q16_run_images_processed", **labels, state="running") == 4
    assert _value(samples, "q16_run_images_total", **labels, state="running") == 6
    queued_labels = {**labels, "run": str(queued.pk), "state": "pending"}
    assert _value(samples, "q16_run_chunks_done", **queued_labels) == 0
    assert not any(dict(key[1]).get("run") == str(done.pk) for key in samples)


def test_images_per_second_per_worker_over_the_recent_chunks(
    client, broker, scored_dataset, settings
):
    settings.Q16_METRICS_RATE_WINDOW = 600
    dataset, version = scored_dataset
    run = _run(dataset, version, ScoringRun.State.RUNNING, total=6, chunks_total=6)
    _chunk(run, 0, worker="gpu@a", images=200, seconds=10, finished_ago=30)
    _chunk(run, 1, worker="gpu@a", images=100, seconds=20, finished_ago=60)
    _chunk(run, 2, worker="gpu@b", images=50, seconds=5, finished_ago=5)
    # Outside the window, not done, or from before workers were recorded: not counted.
    _chunk(run, 3, worker="gpu@b", images=999, seconds=1, finished_ago=3600)
    _chunk(run, 4, worker="gpu@b", images=999, seconds=1, finished_ago=1, state="failed")
    _chunk(run, 5, worker="", images=999, seconds=1, finished_ago=1)
    samples = _samples(client.get("/metrics"))
    assert _value(samples, "q16_worker_images_per_second", worker="gpu@a") == pytest.approx(10.0)
    assert _value(samples, "q16_worker_images_recent", worker="gpu@a") == 300
    assert _value(samples, "q16_worker_images_per_second", worker="gpu@b") == pytest.approx(10.0)
    assert _value(samples, "q16_worker_images_recent", worker="gpu@b") == 50
    assert not any(dict(key[1]).get("worker") == "" for key in samples)


def test_review_throughput_counts_the_verdicts_reviewers_gave(
    client, broker, scored_dataset, reviewer_user
):
    dataset, _ = scored_dataset
    images = list(dataset.images.order_by("pk"))
    items = [ReviewItem.objects.create(dataset=dataset, image=image, score=0.9) for image in images]

    def verdict(item, value, hours_ago, **fields):
        decision = Decision.objects.create(
            item=item, image=item.image, reviewer=reviewer_user, verdict=value, **fields
        )
        Decision.objects.filter(pk=decision.pk).update(
            created_at=timezone.now() - timedelta(hours=hours_ago)
        )
        return decision

    first = verdict(items[0], "inappropriate", 0.1)
    verdict(items[1], "appropriate", 0.5)
    verdict(items[2], "inappropriate", 5)
    verdict(items[3], "skip", 30)  # older than a day
    verdict(items[4], "inappropriate", 0.1, propagated_from=first)  # a copy: not counted
    samples = _samples(client.get("/metrics"))
    assert _value(samples, "q16_review_verdicts", window="1h", verdict="inappropriate") == 1
    assert _value(samples, "q16_review_verdicts", window="1h", verdict="appropriate") == 1
    assert _value(samples, "q16_review_verdicts", window="1h", verdict="skip") == 0
    assert _value(samples, "q16_review_verdicts", window="24h", verdict="inappropriate") == 2
    assert _value(samples, "q16_review_verdicts", window="24h", verdict="skip") == 0


@pytest.mark.django_db
def test_a_broker_outage_still_answers_with_the_database_metrics(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    samples = _samples(client.get("/metrics"))
    assert _value(samples, "q16_broker_up") == 0
    assert _value(samples, "q16_database_up") == 1
    assert not any(name == "q16_celery_queue_length" for name, _ in samples)


@pytest.mark.django_db
def test_a_database_outage_still_answers_with_the_broker_metrics(client, broker, monkeypatch):
    def refuse(*args, **kwargs):
        raise OperationalError("the database is gone")

    monkeypatch.setattr(connection, "cursor", refuse)
    samples = _samples(client.get("/metrics"))
    assert _value(samples, "q16_database_up") == 0
    assert _value(samples, "q16_broker_up") == 1


@pytest.mark.django_db
def test_multiprocess_mode_serves_the_collector_too(client, broker, monkeypatch, tmp_path):
    """gunicorn with PROMETHEUS_MULTIPROC_DIR (docker-compose.yml's web): one registry over all
    workers' files, plus Q16's collector."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    samples = _samples(client.get("/metrics"))
    assert _value(samples, "q16_broker_up") == 1
    assert _value(samples, "q16_celery_queue_length", queue="gpu") == 0
