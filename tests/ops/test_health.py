"""/healthz and /readyz: no login, plain HTTP on an internal host name, JSON that names the part
that failed and nothing else (no error text, host names or credentials)."""

from __future__ import annotations

import pytest
from django.db import OperationalError, connection

from config.broker import broker_client

SECRET_HOST = "db-internal.example"
SECRET_PASSWORD = "hunter2-not-for-logs"


def test_healthz_answers_without_touching_the_database(client):
    # No django_db mark: any database access here would raise.
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Cache-Control"] == "no-store"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_probes_answer_over_plain_http_on_an_internal_host_name(client, settings):
    """What a container health check sends: http://web:8000/healthz, with HTTPS and a public
    ALLOWED_HOSTS on. Every other page still redirects to HTTPS and checks the host."""
    settings.ALLOWED_HOSTS = ["q16.example.org"]
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/healthz", HTTP_HOST="web:8000").status_code == 200
    assert client.get("/accounts/login/", HTTP_HOST="web:8000").status_code == 400
    redirect = client.get("/accounts/login/", HTTP_HOST="q16.example.org")
    assert redirect.status_code == 301
    assert redirect["Location"].startswith("https://q16.example.org/")


def test_probes_take_get_and_head_only(client):
    assert client.head("/healthz").status_code == 200
    refused = client.post("/healthz")
    assert refused.status_code == 405
    assert refused["Allow"] == "GET, HEAD"
    assert client.put("/readyz").status_code == 405
    assert client.delete("/metrics").status_code == 405


def test_only_the_exact_paths_are_probes(client):
    # /healthz/ is an ordinary URL: no such page, so the login redirect or a 404, never a probe.
    assert client.get("/healthz/").status_code in (302, 404)


@pytest.mark.django_db
def test_readyz_is_ready_when_database_and_redis_answer(client, redis_url):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "redis": "ok"}}


@pytest.mark.django_db
def test_readyz_names_redis_when_the_broker_is_down(client, settings, caplog):
    # Port 1 on loopback: nothing listens, the connection is refused at once.
    settings.CELERY_BROKER_URL = f"redis://:{SECRET_PASSWORD}@127.0.0.1:1/0"
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "checks": {"database": "ok", "redis": "unavailable"},
    }
    body = response.content.decode()
    assert SECRET_PASSWORD not in body and "127.0.0.1" not in body
    assert "readiness: redis unavailable" in caplog.text  # the reason goes to the log


@pytest.mark.django_db
def test_readyz_names_the_database_when_it_is_down(client, monkeypatch, redis_url):
    def refuse():
        raise OperationalError(
            f'connection to server at "{SECRET_HOST}" failed: password {SECRET_PASSWORD}'
        )

    monkeypatch.setattr(connection, "ensure_connection", refuse)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "checks": {"database": "unavailable", "redis": "ok"},
    }
    body = response.content.decode()
    assert SECRET_HOST not in body and SECRET_PASSWORD not in body


@pytest.mark.django_db
def test_readyz_with_both_down(client, monkeypatch, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    monkeypatch.setattr(connection, "ensure_connection", lambda: (_ for _ in ()).throw(OSError()))
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "unavailable", "redis": "unavailable"}


@pytest.mark.django_db
def test_readyz_with_a_broker_that_is_not_redis(client, settings):
    settings.CELERY_BROKER_URL = "memory://"
    assert client.get("/readyz").json()["checks"]["redis"] == "ok"


def test_the_broker_client_understands_kombus_url_forms():
    socket_client = broker_client("redis+socket:///tmp/q16-test/redis.sock")
    assert socket_client is not None
    assert socket_client.connection_pool.connection_kwargs["path"] == "/tmp/q16-test/redis.sock"
    tcp_client = broker_client("redis://:pw@redis.internal:6380/3")
    assert tcp_client is not None
    kwargs = tcp_client.connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("redis.internal", 6380, 3)
    assert broker_client("memory://") is None
