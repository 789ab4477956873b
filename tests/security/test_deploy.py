"""Production settings: with DEBUG off and HTTPS=true, `manage.py check --deploy` is clean."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

from django.conf import settings

from tests.conftest import REPO_ROOT


def _production_env(tmp_path, **extra) -> dict:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "AXES_", "SECURE_", "CSRF_"))
        and key not in {"DEBUG", "HTTPS", "ALLOWED_HOSTS", "DATABASE_URL", "SECRET_KEY"}
    }
    env.update(
        SECRET_KEY=secrets.token_urlsafe(64),
        DEBUG="false",
        HTTPS="true",
        ALLOWED_HOSTS="example.org",
        DATABASE_URL=f"sqlite:///{tmp_path / 'deploy.sqlite3'}",
        Q16_DATA_DIR=str(tmp_path),
        DJANGO_SETTINGS_MODULE="config.settings",
    )
    env.update(extra)
    return env


def test_check_deploy_reports_no_warnings(tmp_path):
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO_ROOT, env=_production_env(tmp_path), capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues (0 silenced)." in output, output


def test_check_deploy_fails_without_https(tmp_path):
    """The check is real: without HTTPS the secure-cookie and HSTS warnings appear."""
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO_ROOT, env=_production_env(tmp_path, HTTPS="false"), capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode != 0
    assert "security.W004" in result.stdout + result.stderr  # no HSTS


def test_production_settings_values(tmp_path):
    code = (
        "from django.conf import settings as s; import json; print(json.dumps(["
        "s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT,"
        "s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_PRELOAD,"
        "s.X_FRAME_OPTIONS, s.SECURE_CONTENT_TYPE_NOSNIFF, s.SECURE_REFERRER_POLICY,"
        "s.SESSION_COOKIE_HTTPONLY, s.DEBUG]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=REPO_ROOT, env=_production_env(tmp_path), capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == (
        '[true, true, true, 31536000, true, true, "DENY", true, "same-origin", true, false]'
    )


def test_test_settings_keep_clickjacking_and_nosniff():
    assert settings.X_FRAME_OPTIONS == "DENY"
    assert settings.SECURE_CONTENT_TYPE_NOSNIFF is True
