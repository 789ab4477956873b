"""Smoke test of the review latency benchmark: a small fill, two loads, every request served.

Runs ``python -m bench.review_latency`` in a child process against a scratch PostgreSQL
database of its own (created and dropped by the benchmark) and a real gunicorn, so the
harness cannot rot unnoticed. Latencies are printed, never asserted (timings belong in
benchmarks, not tests).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from tests.conftest import require

ROOT = Path(__file__).resolve().parents[2]


def test_review_latency_benchmark_runs_end_to_end(tmp_path):
    # The server the tests use (make test's DATABASE_URL), through its maintenance database.
    test_db = urlsplit(os.environ.get("DATABASE_URL", ""))
    default_admin = "postgres://postgres@127.0.0.1:5432/postgres"
    if test_db.scheme.startswith("postgres"):
        default_admin = urlunsplit((test_db.scheme, test_db.netloc, "/postgres", "", ""))
    admin_url = os.environ.get("BENCH_ADMIN_URL", default_admin)
    try:
        import psycopg

        psycopg.connect(admin_url, connect_timeout=3).close()
    except Exception as exc:  # noqa: BLE001 - reported through require()
        require(False, f"PostgreSQL at {admin_url} is needed for the benchmark: {exc}")
    output = tmp_path / "latency.json"
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "Q16_DATA_DIR", "DJANGO_SETTINGS_MODULE"}
    }
    env["BENCH_ADMIN_URL"] = admin_url
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.review_latency",
            "--images",
            "3000",
            "--flagged",
            "300",
            "--clients",
            "1,2",
            "--duration",
            "2",
            "--warmup",
            "0.5",
            "--workers",
            "1",
            "--threads",
            "2",
            "--db",
            f"q16bench_smoke_{uuid.uuid4().hex[:8]}",
            "--output",
            str(output),
        ],  # fmt: skip
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-5000:]
    report = json.loads(output.read_text())
    assert [run["clients"] for run in report["runs"]] == [1, 2]
    for run in report["runs"]:
        assert run["errors"] == []
        assert run["endpoints"]["next"]["n"] > 0
        assert set(run["endpoints"]["next"]["statuses"]) == {"200"}
        assert set(run["endpoints"]["decision"]["statuses"]) == {"201"}
        assert run["endpoints"]["next"]["n"] == run["endpoints"]["decision"]["n"]
    assert "p95" in completed.stdout
