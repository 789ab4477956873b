"""``python -m bench.review_latency``: next-item and verdict latency at scale, on PostgreSQL.

Creates a dedicated database (``q16bench`` by default; dropped at the end unless --keep),
fills it with COPY (1,000,000 images, 100,000 flagged review items by default), starts the
app under gunicorn on loopback and drives it with concurrent clients (threads, keep-alive
http.client connections, token authentication; each its own assigned reviewer). Each client
loops: GET /api/review/next/, then POST a verdict on the item it got. Runs each load of
--clients in turn (1, 2, 4 and 8 reviewers by default) against the same server, prints
p50 / p95 / p99 per endpoint and load, and writes bench/results/review-latency-<time>.json.

    python -m bench.review_latency                      # the full size (make bench-review)
    python -m bench.review_latency --images 200000 --flagged 20000 --clients 2

The admin connection comes from BENCH_ADMIN_URL (default postgres://postgres@127.0.0.1:5432/
postgres); the benchmark database name from --db.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import logging
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
TARGET_P95_MS = 50.0

log = logging.getLogger("bench.review_latency")


def database_url_for(admin_url: str, name: str) -> str:
    parts = urlsplit(admin_url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def recreate_database(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def setup_django(database_url: str, data_dir: Path) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("SECRET_KEY", "bench-" + secrets.token_hex(16))
    os.environ["Q16_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


def _copy_rows(cursor, statement: str, lines) -> None:
    with cursor.copy(statement) as copy:
        buffer: list[str] = []
        for line in lines:
            buffer.append(line)
            if len(buffer) >= 50_000:
                copy.write("".join(buffer))
                buffer.clear()
        if buffer:
            copy.write("".join(buffer))


def fill(*, images: int, flagged: int, clients: int, seed: int = 0) -> dict:
    """Dataset, prompt version, a succeeded run, images, scores and flagged items (COPY)."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from rest_framework.authtoken.models import Token

    from curation.models import Dataset, DatasetAssignment, PromptVersion, ScoringRun
    from worker.engine.store import prompts_to_bytes

    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    dataset = Dataset.objects.create(
        name="bench", source_kind="folder", source="/bench", root_path="/bench",
        state=Dataset.State.READY, total=images, processed=images,
    )  # fmt: skip
    version = PromptVersion.objects.create(
        name="bench", model_key="ViT-B-16/openai", dim=2, source="zero_shot", is_active=True,
        vectors=prompts_to_bytes(np.eye(2, dtype=np.float32)),
    )  # fmt: skip
    threshold = 0.5
    run = ScoringRun.objects.create(
        dataset=dataset, prompt_version=version, model_key=version.model_key, threshold=threshold,
        state=ScoringRun.State.SUCCEEDED, total=images, processed=images, flagged=flagged,
    )  # fmt: skip
    now = datetime.now(UTC).isoformat()
    phashes = rng.integers(0, 2**63, size=images, dtype=np.int64)
    with connection.cursor() as cursor:
        raw = cursor.cursor  # psycopg cursor
        _copy_rows(
            raw,
            "COPY curation_image (dataset_id, relative_path, source_url, sha256, phash, width, "
            "height, format, bytes, status, error, created_at, sample_key, metadata, "
            "container, class_label) FROM STDIN",
            (
                f"{dataset.pk}\tfolder{i % 1000:03d}/img{i:07d}.jpg\t\t"
                f"{secrets.token_hex(32)}\t{int(phashes[i]):016x}\t640\t480\tJPEG\t50000\tok\t\t{now}"
                "\t\t{}\t\t\n"
                for i in range(images)
            ),
        )
        cursor.execute(
            "SELECT id FROM curation_image WHERE dataset_id = %s ORDER BY id", [dataset.pk]
        )
        ids = np.array([row[0] for row in cursor.fetchall()], dtype=np.int64)
        flagged_mask = np.zeros(images, dtype=bool)
        flagged_mask[rng.choice(images, size=flagged, replace=False)] = True
        scores = np.where(
            flagged_mask, rng.uniform(threshold, 1.0, images), rng.uniform(0.0, threshold, images)
        )
        _copy_rows(
            raw,
            "COPY curation_score (run_id, image_id, p_inappropriate) FROM STDIN",
            (f"{run.pk}\t{ids[i]}\t{scores[i]:.6f}\n" for i in range(images)),
        )
        _copy_rows(
            raw,
            "COPY reviewer_reviewitem (dataset_id, image_id, score, margin, run_id, is_audit, "
            "state, created_at) FROM STDIN",
            (
                f"{dataset.pk}\t{ids[i]}\t{scores[i]:.6f}\t{scores[i] - threshold:.6f}\t{run.pk}"
                f"\tf\tpending\t{now}\n"
                for i in np.nonzero(flagged_mask)[0]
            ),
        )
        cursor.execute("ANALYZE")
    users = get_user_model()
    tokens = []
    for n in range(clients):
        user = users.objects.create_user(username=f"bench-reviewer-{n}", password=None)
        tokens.append(Token.objects.create(user=user).key)
        DatasetAssignment.objects.create(dataset=dataset, user=user)
    seconds = time.perf_counter() - started
    log.info("filled %s images, %s flagged in %.1f s", images, flagged, seconds)
    return {"dataset_id": dataset.pk, "tokens": tokens, "fill_seconds": round(seconds, 1)}


def reuse(*, clients: int) -> dict:
    """A database kept by an earlier --keep run: its dataset and reviewers (more if needed)."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from curation.models import Dataset, DatasetAssignment

    dataset = Dataset.objects.get(name="bench")
    users = get_user_model()
    tokens = []
    for n in range(clients):
        user, _ = users.objects.get_or_create(username=f"bench-reviewer-{n}")
        tokens.append(Token.objects.get_or_create(user=user)[0].key)
        DatasetAssignment.objects.get_or_create(dataset=dataset, user=user)
    return {"dataset_id": dataset.pk, "tokens": tokens, "fill_seconds": None}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(*, env: dict, workers: int, threads: int, log_path: Path) -> tuple:
    port = _free_port()
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or "gunicorn"
    handle = open(log_path, "w")  # noqa: SIM115 - closed by stop_server
    process = subprocess.Popen(
        [
            gunicorn,
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--worker-class",
            "gthread",
            "--keep-alive",
            "30",
            "--log-level",
            "warning",
        ],  # fmt: skip
        cwd=REPO_ROOT,
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited:\n{log_path.read_text()[-3000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/accounts/login/")
            conn.getresponse().read()
            conn.close()
            return process, handle, port
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not start")


def stop_server(process, handle) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    handle.close()


class Client(threading.Thread):
    """One reviewer: next item, then a verdict on it, until the deadline."""

    def __init__(self, *, port: int, token: str, dataset_id: int, deadline: float, record: bool):
        super().__init__(daemon=True)
        self.port, self.token, self.dataset_id = port, token, dataset_id
        self.deadline, self.record = deadline, record
        self.latencies: dict[str, list[float]] = {"next": [], "decision": []}
        self.statuses: dict[str, dict[int, int]] = {"next": {}, "decision": {}}
        self.errors: list[str] = []
        self.rng = random.Random(token)

    def _call(self, conn, method: str, path: str, body: bytes | None, kind: str):
        headers = {"Authorization": f"Token {self.token}", "Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        t0 = time.perf_counter()
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        elapsed = (time.perf_counter() - t0) * 1000
        self.latencies[kind].append(elapsed)
        self.statuses[kind][response.status] = self.statuses[kind].get(response.status, 0) + 1
        return response.status, data

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        query = urlencode({"dataset": self.dataset_id})
        try:
            while time.monotonic() < self.deadline:
                status, data = self._call(conn, "GET", f"/api/review/next/?{query}", None, "next")
                if status == 204:
                    break
                if status != 200:
                    self.errors.append(f"next {status}: {data[:200]!r}")
                    continue
                item = json.loads(data)
                verdict = "inappropriate" if self.rng.random() < 0.6 else "appropriate"
                body = json.dumps({"verdict": verdict}).encode()
                status, data = self._call(
                    conn, "POST", f"/api/review/items/{item['id']}/decision/", body, "decision"
                )
                if status != 201:
                    self.errors.append(f"decision {status}: {data[:200]!r}")
        except Exception as exc:  # noqa: BLE001 - reported in the results
            self.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            conn.close()


def drive(
    *, port: int, tokens: list[str], dataset_id: int, seconds: float, record: bool
) -> list[Client]:
    deadline = time.monotonic() + seconds
    clients = [
        Client(port=port, token=token, dataset_id=dataset_id, deadline=deadline, record=record)
        for token in tokens
    ]
    for client in clients:
        client.start()
    for client in clients:
        client.join(timeout=seconds + 60)
    return clients


def summarise(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    array = np.array(values)
    return {
        "n": len(values),
        "p50_ms": round(float(np.percentile(array, 50)), 2),
        "p95_ms": round(float(np.percentile(array, 95)), 2),
        "p99_ms": round(float(np.percentile(array, 99)), 2),
        "mean_ms": round(float(array.mean()), 2),
        "max_ms": round(float(array.max()), 2),
    }


def _endpoint_rows(clients: list[Client], wall: float) -> dict:
    rows = {}
    for kind in ("next", "decision"):
        values = [v for c in clients for v in c.latencies[kind]]
        statuses: dict[str, int] = {}
        for c in clients:
            for code, n in c.statuses[kind].items():
                statuses[str(code)] = statuses.get(str(code), 0) + n
        rows[kind] = {
            **summarise(values),
            "per_second": round(len(values) / wall, 1) if wall else None,
            "statuses": statuses,
        }
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1_000_000)
    parser.add_argument("--flagged", type=int, default=100_000)
    parser.add_argument(
        "--clients", default="1,2,4,8", help="concurrent reviewers; a comma list runs each in turn"
    )
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds per load")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds per load")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--db", default="q16bench", help="benchmark database (dropped first)")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--reuse", action="store_true", help="use the database an earlier --keep run filled"
    )
    parser.add_argument("--output", default="", help="JSON path (default bench/results/...)")
    args = parser.parse_args(argv)
    if args.flagged > args.images:
        parser.error("--flagged cannot exceed --images")
    try:
        loads = [int(part) for part in str(args.clients).split(",") if part.strip()]
    except ValueError:
        parser.error("--clients takes whole numbers, e.g. 1,2,4,8")
    if not loads or min(loads) < 1:
        parser.error("--clients takes positive numbers")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    admin_url = os.environ.get("BENCH_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    database_url = database_url_for(admin_url, args.db)
    work = Path(tempfile.mkdtemp(prefix="q16-review-bench-"))
    if not args.reuse:
        recreate_database(admin_url, args.db)
    server = None
    runs: list[dict] = []
    try:
        setup_django(database_url, work / "data")
        if args.reuse:
            filled = reuse(clients=max(loads))
        else:
            filled = fill(images=args.images, flagged=args.flagged, clients=max(loads))
        from django.db import connections

        connections.close_all()
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "Q16_DATA_DIR": str(work / "data"),
            "LOG_LEVEL": "WARNING",
        }
        server = start_server(
            env=env, workers=args.workers, threads=args.threads, log_path=work / "gunicorn.log"
        )
        port = server[2]
        log.info(
            "gunicorn on 127.0.0.1:%s (%s workers x %s threads)", port, args.workers, args.threads
        )
        # Each load uses its own reviewers (the first n tokens), warmed up unmeasured first.
        for n in loads:
            tokens = filled["tokens"][:n]
            drive(
                port=port, tokens=tokens, dataset_id=filled["dataset_id"], seconds=args.warmup,
                record=False,
            )  # fmt: skip
            started = time.perf_counter()
            clients = drive(
                port=port, tokens=tokens, dataset_id=filled["dataset_id"],
                seconds=args.duration, record=True,
            )  # fmt: skip
            wall = time.perf_counter() - started
            runs.append(
                {
                    "clients": n,
                    "duration_s": round(wall, 1),
                    "load_average": os.getloadavg(),
                    "endpoints": _endpoint_rows(clients, wall),
                    "errors": [e for c in clients for e in c.errors][:20],
                }
            )
            log.info("%s clients measured", n)
    finally:
        if server is not None:
            stop_server(server[0], server[1])
        from django.db import connections

        connections.close_all()
        if not args.keep:
            drop_database(admin_url, args.db)
        shutil.rmtree(work, ignore_errors=True)

    result: dict = {
        "benchmark": "review_latency",
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "images": args.images,
        "flagged": args.flagged,
        "gunicorn": {"workers": args.workers, "threads": args.threads},
        "fill_seconds": filled["fill_seconds"],
        "reused_database": args.reuse,
        "cpus": os.cpu_count(),
        "target_p95_ms": TARGET_P95_MS,
        "runs": runs,
    }
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = Path(args.output) if args.output else RESULTS_DIR / f"review-latency-{stamp}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))

    print(  # noqa: T201
        f"\nreview latency: {args.images:,} images, {args.flagged:,} flagged, "
        f"{os.cpu_count()} CPUs shared by gunicorn ({args.workers}x{args.threads}), PostgreSQL "
        f"and the clients; {args.duration:.0f} s per load"
    )
    print(  # noqa: T201
        f"{'clients':>7} {'endpoint':<9} {'n':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
        f"{'req/s':>7}  p95 <= {TARGET_P95_MS:.0f} ms"
    )
    for run in runs:
        for kind, row in run["endpoints"].items():
            if not row.get("n"):
                print(f"{run['clients']:>7} {kind:<9} no requests")  # noqa: T201
                continue
            met = "met" if row["p95_ms"] <= TARGET_P95_MS else "NOT met"
            print(  # noqa: T201
                f"{run['clients']:>7} {kind:<9} {row['n']:>6} {row['p50_ms']:>8} "
                f"{row['p95_ms']:>8} {row['p99_ms']:>8} {row['per_second']:>7}  {met}"
                f"   statuses {row['statuses']}"
            )
        if run["errors"]:
            print("  errors:", *run["errors"][:5], sep="\n    ")  # noqa: T201
    print(f"results: {out}")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
