"""Small helpers shared by tests."""

from __future__ import annotations

import time
from pathlib import Path

import pytest


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
