"""``python -m bench.rescore_pg``: the service rescore of ``make bench`` on PostgreSQL.

``make bench`` measures the rescore on the embedded SQLite database; deployments with
millions of images run PostgreSQL, whose per-row write cost (WAL, deferred foreign-key
checks) is a different limit. This runs the same ``bench_rescore_service`` against a
scratch database (``q16bench_rescore``, dropped at the end) and prints the figures.

    python -m bench.rescore_pg --n 200000

The admin connection comes from BENCH_ADMIN_URL (default postgres://postgres@127.0.0.1:5432/
postgres).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
from pathlib import Path

from bench.review_latency import database_url_for, drop_database, recreate_database, setup_django


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.rescore_pg", description=__doc__)
    parser.add_argument("--n", type=int, default=200_000, help="cached embeddings to rescore")
    parser.add_argument("--db", default="q16bench_rescore", help="scratch database name")
    parser.add_argument("--threshold", type=float, default=0.5)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    admin_url = os.environ.get("BENCH_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    recreate_database(admin_url, args.db)
    try:
        with tempfile.TemporaryDirectory(prefix="q16-rescore-pg-") as data_dir:
            setup_django(database_url_for(admin_url, args.db), Path(data_dir))
            from bench.rescore import bench_rescore_service

            result = bench_rescore_service(args.n, 512, threshold=args.threshold)
            from django.db import connections

            connections.close_all()
    finally:
        drop_database(admin_url, args.db)
    print(json.dumps(result, indent=2))
    print(
        f"rescore on PostgreSQL: {result['embeddings']:,} embeddings in {result['seconds']:.1f} s "
        f"({result['embeddings_per_second']:,.0f}/s; projected to 1M: "
        f"{result['projected_1m_seconds']:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
