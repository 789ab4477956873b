"""Shared fixtures: users, the tiny CLIP checkpoint, a real Redis and a real Celery worker."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from tests.access import reviewers_assigned_everywhere  # noqa: F401 (a shared fixture)

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
def celery_worker_process(redis_url, transactional_db, tiny_model_settings, tmp_path):
    """A real `celery worker` process on a real Redis, against the test database.

    The worker is a separate OS process (prefork pool, one child), configured like
    production except for the tiny model; it sees the test database because the
    test runs with transactional_db (committed rows).
    """
    from django.conf import settings
    from django.db import connection

    redis.Redis.from_url(redis_url).flushdb()
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        database_url = f"sqlite:///{db['NAME']}"
    else:
        user = db.get("USER") or ""
        password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
        auth = f"{user}{password}@" if user else ""
        database_url = f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"

    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": settings.SECRET_KEY,
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
        "Q16_DATA_DIR": str(settings.DATA_DIR),
        "Q16_CLIP_MODEL": settings.Q16_CLIP_MODEL,
        "Q16_CLIP_CHECKPOINT": settings.Q16_CLIP_CHECKPOINT,
        "Q16_DEVICE": "cpu",
        "Q16_BATCH_SIZE": str(settings.Q16_BATCH_SIZE),
        "PYTHONUNBUFFERED": "1",
    }
    log_path = tmp_path / "celery-worker.log"
    celery_bin = shutil.which("celery", path=str(Path(sys.executable).parent)) or "celery"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [
                celery_bin,
                "-A",
                "config",
                "worker",
                "--loglevel",
                "INFO",
                "--pool",
                "prefork",
                "--concurrency",
                "1",
                "--without-gossip",
                "--without-mingle",
                "--hostname",
                f"test-{os.getpid()}@%h",
            ],  # fmt: skip
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while " ready." not in log_path.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"celery worker did not start:\n{log_path.read_text()[-4000:]}")
        time.sleep(0.2)
    process.log_path = log_path  # type: ignore[attr-defined]
    yield process
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    # Close the test process's connections so the test database can be dropped.
    connection.close()
