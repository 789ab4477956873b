"""``python -m bench.rescore_pg``: the service rescore of ``make bench`` on PostgreSQL.

``make bench`` measures the rescore on the embedded SQLite database; deployments with
millions of images run PostgreSQL, whose per-row write cost (WAL, deferred foreign-key
checks) is a different limit. This runs the same ``bench_rescore_service`` against a
scratch database (``q16bench_rescore_<pid>``, dropped at the end) and prints the figures.

    python -m bench.rescore_pg                          # 100,000 and 1,000,000, 2 processes
    python -m bench.rescore_pg --sizes 200000 --processes 1

With several sizes it also prints the cost per image of the largest against the smallest
(1.0 = flat) and the CPU model from /proc/cpuinfo.

The admin connection comes from BENCH_ADMIN_URL (default postgres://postgres@127.0.0.1:5432/
postgres).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.review_latency import database_url_for, drop_database, recreate_database, setup_django


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.rescore_pg", description=__doc__)
    parser.add_argument(
        "--sizes",
        default="100000,1000000",
        help="comma-separated numbers of cached embeddings, measured in one run",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=2,
        help="processes the chunk ranges run in at once (as Celery workers would; 1: serial)",
    )
    parser.add_argument(
        "--db",
        default=f"q16bench_rescore_{os.getpid()}",
        help="scratch database name (default: one per process, so runs never collide)",
    )
    parser.add_argument("--json-only", action="store_true", help="print only the JSON")
    parser.add_argument("--threshold", type=float, default=0.5)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    admin_url = os.environ.get("BENCH_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    recreate_database(admin_url, args.db)
    try:
        with tempfile.TemporaryDirectory(prefix="q16-rescore-pg-") as data_dir:
            setup_django(database_url_for(admin_url, args.db), Path(data_dir))
            from bench.rescore import bench_rescore_service

            sizes = [int(size) for size in args.sizes.split(",") if size]
            results = [
                bench_rescore_service(n, 512, threshold=args.threshold, processes=args.processes)
                for n in sizes
            ]
            from django.db import connections

            connections.close_all()
    finally:
        drop_database(admin_url, args.db)
    cpu = _cpu_model()
    report: dict[str, Any] = {"cpu": cpu, "cores": os.cpu_count(), "results": results}
    if len(results) > 1:
        per_image = [r["seconds"] / r["embeddings"] for r in results]
        report["cost_per_image_ratio"] = per_image[-1] / per_image[0]
    print(json.dumps(report, indent=2))
    if args.json_only:
        return 0
    print(f"CPU: {cpu} ({os.cpu_count()} cores)")
    for result in results:
        print(
            f"rescore on PostgreSQL: {result['embeddings']:,} embeddings, "
            f"{result['processes']} process(es), {result['flagged']:,} flagged, in "
            f"{result['seconds']:.1f} s ({result['embeddings_per_second']:,.0f}/s; projected "
            f"to 1M: {result['projected_1m_seconds']:.0f} s)"
        )
    if len(results) > 1:
        print(
            f"cost per image, {results[-1]['embeddings']:,} vs {results[0]['embeddings']:,}: "
            f"{report['cost_per_image_ratio']:.2f}x (1.00 = flat)"
        )
    return 0


def bench_rescore_pg(*, sizes: list[int], processes: int, threshold: float) -> dict[str, Any]:
    """This benchmark in a subprocess (the caller's Django may be set up on SQLite)."""
    completed = subprocess.run(
        [
            sys.executable, "-m", "bench.rescore_pg", "--json-only",
            "--sizes", ",".join(str(size) for size in sizes),
            "--processes", str(processes), "--threshold", str(threshold),
        ],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if completed.returncode != 0:
        raise RuntimeError(f"bench.rescore_pg failed: {completed.stderr[-2000:]}")
    return json.loads(completed.stdout)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


if __name__ == "__main__":
    raise SystemExit(main())
