"""Small helpers shared by tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def wait_for(
    predicate, *, timeout: float = 120, interval: float = 0.2, what: str = "condition", log=None
):
    """Poll until predicate() is truthy; fail with the worker log on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    detail = f"\n--- worker log ---\n{Path(log).read_text()[-6000:]}" if log else ""
    pytest.fail(f"timed out after {timeout}s waiting for {what}{detail}")


def run_django_script(code: str, *, database_url: str, **extra_env: str) -> str:
    """Run ``code`` (which calls django.setup()) in a fresh interpreter against this
    database, as an operator's ``manage.py`` would; returns its stdout, fails on an error."""
    env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "test-subprocess", **extra_env}
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr[-6000:]}"
    return result.stdout
