"""Shared fixtures: users, the tiny CLIP checkpoint, a real Redis and a real Celery worker."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import redis

from tests.access import reviewers_assigned_everywhere  # noqa: F401 (a shared fixture)
from tests.s3 import s3, s3_server  # noqa: F401 (shared fixtures: a real S3 server, a bucket)
from tests.workers import Workers

REPO_ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require(condition: bool, reason: str) -> None:
    """Skip locally, but fail in CI: CI must run every test, not silently drop some."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required for this test in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def fast_password_hasher(settings):
    """PBKDF2's many rounds cost a second per user; these tests are not about hashing."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def import_roots_in_tmp(settings, tmp_path_factory):
    """Server-folder imports are refused outside Q16_IMPORT_ROOTS (by default only
    <Q16_DATA_DIR>/imports): tests import from their tmp_path folders, so allow pytest's
    temporary directory. tests/security/test_import_roots.py checks the default itself."""
    settings.Q16_IMPORT_ROOTS = [str(tmp_path_factory.getbasetemp())]


@pytest.fixture
def admin_user(django_user_model):
    return django_user_model.objects.create_user(
        username="admin", password="admin-pass-123", is_staff=True, is_superuser=True
    )


@pytest.fixture
def reviewer_user(django_user_model):
    return django_user_model.objects.create_user(username="reviewer", password="review-pass-123")


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A tiny CLIP with random weights saved as a checkpoint, loaded like real weights."""
    from worker.engine.clip import build_random_checkpoint

    return build_random_checkpoint(
        "q16-tiny", tmp_path_factory.mktemp("clip") / "q16-tiny.pt", seed=0
    )


@pytest.fixture
def tiny_model_settings(settings, tiny_checkpoint):
    """Configure the tiny model for this test (web process and in-process services)."""
    settings.Q16_CLIP_MODEL = "q16-tiny"
    settings.Q16_CLIP_CHECKPOINT = str(tiny_checkpoint)
    settings.Q16_DEVICE = "cpu"
    settings.Q16_BATCH_SIZE = 32
    return settings


@pytest.fixture(scope="session")
def redis_url() -> str:
    from django.conf import settings

    url = settings.CELERY_BROKER_URL
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        require(False, f"no Redis answers on {url} ({exc}); `make test` starts one")
    return url


@pytest.fixture
def workers(redis_url, transactional_db, tiny_model_settings, tmp_path):
    """Start real `celery worker` processes on a real Redis, against the test database.

    They see the test's rows because the test runs with transactional_db (committed rows).
    """
    from django.db import connection

    redis.Redis.from_url(redis_url).flushdb()
    pool = Workers(tmp_path, tiny_model_settings, redis_url)
    yield pool
    pool.stop_all()
    # Close the test process's connections so the test database can be dropped.
    connection.close()


@pytest.fixture
def celery_worker_process(workers):
    """One worker configured like production except for the tiny model (prefork, one child)."""
    return workers.start("test")
