"""Settings from the environment, the OpenAPI schema, and API authentication."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.conftest import REPO_ROOT


def _import_settings(**env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG"}}
    return subprocess.run(
        [sys.executable, "-c", "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings'); django.setup(); from django.conf import settings; print(settings.DEBUG, settings.DATABASES['default']['ENGINE'])"],
        cwd=REPO_ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip


def test_secret_key_is_required_when_debug_is_off():
    result = _import_settings()
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_debug_is_off_by_default_and_database_url_selects_postgres():
    result = _import_settings(SECRET_KEY="k", DATABASE_URL="postgres://u@127.0.0.1:5432/db")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "django.db.backends.postgresql"]


@pytest.mark.django_db
def test_openapi_schema_is_served_and_covers_the_api(admin_user):
    client = APIClient()
    client.force_login(admin_user)
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    for path in (
        "/api/datasets/",
        "/api/runs/",
        "/api/prompt-versions/import/",
        "/api/prompt-versions/{version_id}/activate/",
        "/api/prompt-jobs/",
        "/api/exports/{export_id}/download/",
        "/api/review/next/",
        "/api/review/items/{item_id}/decision/",
    ):
        assert path in schema["paths"], path


def test_schema_generation_has_no_warnings():
    result = subprocess.run(
        [sys.executable, "manage.py", "spectacular", "--validate", "--fail-on-warn", "--file", os.devnull],
        cwd=REPO_ROOT,
        env={**os.environ, "SECRET_KEY": os.environ.get("SECRET_KEY", "k")},
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("who", "method", "url", "expected"),
    [
        ("anonymous", "get", "/api/datasets/", 401),
        ("reviewer", "get", "/api/datasets/", 403),
        ("reviewer", "post", "/api/exports/", 403),
        ("reviewer", "get", "/api/prompt-versions/", 403),
        ("reviewer", "get", "/api/review/next/", 204),
        ("admin", "get", "/api/datasets/", 200),
        ("admin-token", "get", "/api/datasets/", 200),
        ("anonymous", "get", "/api/review/next/", 401),
    ],
)
def test_api_permissions(who, method, url, expected, admin_user, reviewer_user):
    client = APIClient()
    if who == "reviewer":
        client.force_login(reviewer_user)
    elif who == "admin":
        client.force_login(admin_user)
    elif who == "admin-token":
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=admin_user).key}")
    response = getattr(client, method)(url, {}, format="json")
    assert response.status_code == expected


@pytest.mark.django_db
def test_token_endpoint_issues_tokens(admin_user):
    response = APIClient().post(
        "/api/auth/token/", {"username": "admin", "password": "admin-pass-123"}, format="json"
    )
    assert response.status_code == 200 and len(response.json()["token"]) == 40


def test_configured_model_key_names_lossy_backends_apart(settings):
    from django.core.exceptions import ImproperlyConfigured

    from curation.services.clip_config import configured_model_key

    settings.Q16_CLIP_MODEL, settings.Q16_CLIP_PRETRAINED = "ViT-B-16", "openai"
    settings.Q16_CLIP_CHECKPOINT = ""
    settings.Q16_BACKEND = "torch"
    assert configured_model_key() == "ViT-B-16/openai"
    settings.Q16_BACKEND = "openvino"  # exact: shares the fp32 embedding cache
    assert configured_model_key() == "ViT-B-16/openai"
    settings.Q16_BACKEND = "openvino-bf16"
    assert configured_model_key() == "ViT-B-16/openai+bf16"
    settings.Q16_BACKEND = "tensorrt-int4"
    with pytest.raises(ImproperlyConfigured):
        configured_model_key()


# --- The embedded stack's environment (stack/) -----------------------------------------


@pytest.fixture
def running_stack_redis(tmp_path, monkeypatch):
    """The embedded Redis of a `make run` on tmp_path/data (its socket, nothing else)."""
    import shutil

    from stack.launch import start_redis
    from stack.supervisor import Stack

    if shutil.which("redis-server") is None:
        pytest.skip("needs redis-server on PATH")
    monkeypatch.delenv("REDIS_URL", raising=False)
    data = tmp_path / "data"
    data.mkdir()
    stack = Stack()
    url = start_redis(stack, data)
    yield data, url
    stack.stop_all()


def test_stack_manage_uses_the_running_stacks_redis(running_stack_redis, monkeypatch):
    from stack import __main__ as embedded

    data, url = running_stack_redis
    seen = {}

    def fake_exec(argv, what):
        seen.update(argv=argv, redis_url=os.environ.get("REDIS_URL"))
        return 0

    monkeypatch.setattr(embedded, "prepare_environment", lambda: data)
    monkeypatch.setattr(embedded, "cmd_exec", fake_exec)
    assert embedded.main(["manage", "score_dataset", "photos", "--queue"]) == 0
    assert seen["redis_url"] == url
    assert seen["argv"][-3:] == ["score_dataset", "photos", "--queue"]


def test_stack_manage_end_to_end_sees_the_embedded_broker(running_stack_redis):
    data, url = running_stack_redis
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL"}}
    code = "from config.celery import app; print('BROKER', app.conf.broker_url)"
    result = subprocess.run(
        [sys.executable, "-m", "stack", "manage", "shell", "-c", code],
        cwd=REPO_ROOT,
        env={**env, "Q16_DATA_DIR": str(data)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"BROKER {url}" in result.stdout
    assert "using the embedded Redis of the running stack" in result.stderr


def test_stack_makes_the_data_directory_private(tmp_path):
    """0700 on the directory, 0600 on the files in it, umask 077 for what comes next."""
    import stat

    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    for name in ("db.sqlite3", "worker.log"):
        (data / name).write_text("")
        (data / name).chmod(0o644)
    # In a child process: the umask is process-wide.
    code = (
        "from stack.environment import prepare_environment; d = prepare_environment(); "
        "open(d / 'new-file', 'w').close()"
    )
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env={**env, "Q16_DATA_DIR": str(data)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr

    def mode(name: str = "") -> int:
        return stat.S_IMODE((data / name).stat().st_mode)

    assert mode() == 0o700
    for name in ("db.sqlite3", "worker.log", "secret_key", "new-file"):
        assert mode(name) == 0o600, name
    assert mode("imports") == 0o700 and mode("media") == 0o700
