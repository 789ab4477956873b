"""Bounded load on the API over loopback: a gunicorn started here, client threads, percentiles.

    python -m bench.api_load                  # 60 s, 16 clients, SQLite in var/bench-api
    python -m bench.api_load --duration 10 --clients 8
    python -m bench.api_load --database-url postgres://postgres@127.0.0.1:5432/q16bench

The script builds a dataset (images, a succeeded run with scores, review items), starts
`gunicorn config.wsgi` on 127.0.0.1, and runs client threads with keep-alive connections
for a fixed time: mostly reads (dataset list and detail, image pages, run, review stats)
plus reviewers taking and deciding items (GET /api/review/next/ + POST decision). Every
response must be 2xx (or 204 when a queue is empty); the exit status is 1 on any error.
Latency percentiles per endpoint and overall go to bench/results/api-load-<time>.json.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS = REPO_ROOT / "bench" / "results"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _prepare(n_images: int, n_reviewers: int) -> dict:
    """Create users, tokens and a scored dataset with review items (Django already set up)."""
    import hashlib

    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from curation.models import Dataset, Image, PromptVersion, Score, ScoringRun
    from reviewer.services.items import review_items_sync
    from worker.engine.store import prompts_to_bytes

    user_model = get_user_model()
    admin = user_model.objects.create_user(username="bench-admin", is_staff=True, is_superuser=True)
    reviewers = [user_model.objects.create_user(username=f"bench-r{i}") for i in range(n_reviewers)]
    dataset = Dataset.objects.create(
        name=f"bench-{int(time.time())}", source_kind=Dataset.SourceKind.FOLDER, source="/bench",
        root_path="/bench", state=Dataset.State.READY, total=n_images, processed=n_images,
    )  # fmt: skip
    try:
        from curation.models import DatasetAssignment

        DatasetAssignment.objects.bulk_create(
            DatasetAssignment(dataset=dataset, user=user) for user in reviewers
        )
    except ImportError:
        pass
    version = PromptVersion.objects.create(
        name="bench", model_key="bench/m", dim=2, source=PromptVersion.Source.ZERO_SHOT,
        vectors=prompts_to_bytes(np.eye(2, 2, dtype=np.float32)),
    )  # fmt: skip
    run = ScoringRun.objects.create(
        dataset=dataset, prompt_version=version, model_key=version.model_key, threshold=0.5,
        state=ScoringRun.State.SUCCEEDED, total=n_images, processed=n_images,
    )  # fmt: skip
    rng = random.Random(0)
    images = Image.objects.bulk_create(
        Image(
            dataset=dataset,
            relative_path=f"img/{i}.png",
            sha256=hashlib.sha256(str(i).encode()).hexdigest(),
            phash=f"{rng.getrandbits(64):016x}",
            format="PNG",
            width=8,
            height=8,
        )  # fmt: skip
        for i in range(n_images)
    )
    scores = {image.pk: rng.random() for image in images}
    Score.objects.bulk_create(
        Score(run=run, image_id=pk, p_inappropriate=p) for pk, p in scores.items()
    )
    review_items_sync(run=run, scores=scores)
    return {
        "dataset": dataset.pk,
        "run": run.pk,
        "admin_token": Token.objects.create(user=admin).key,
        "reviewer_tokens": [Token.objects.create(user=user).key for user in reviewers],
    }


class Client:
    def __init__(self, port: int, token: str) -> None:
        self.port, self.token = port, token
        self.conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
        headers = {"Authorization": f"Token {self.token}", "Accept": "application/json"}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                self.conn.request(method, path, body=payload, headers=headers)
                response = self.conn.getresponse()
                return response.status, response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # gunicorn closed an idle keep-alive connection: reconnect once.
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
            except Exception:
                # A timeout or protocol error leaves the connection unusable: start afresh.
                self.conn.close()
                self.conn = None
                raise
        raise AssertionError("unreachable")


def _worker(port: int, setup: dict, index: int, until: float, out: dict, lock: threading.Lock):
    rng = random.Random(index)
    is_reviewer = index % 4 == 0 and setup["reviewer_tokens"]
    token = (
        # One account per reviewer thread: a reviewer's held item is served to them again.
        setup["reviewer_tokens"][(index // 4) % len(setup["reviewer_tokens"])]
        if is_reviewer
        else setup["admin_token"]
    )
    client = Client(port, token)
    dataset, run = setup["dataset"], setup["run"]
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: list[str] = []
    while time.monotonic() < until:
        if is_reviewer:
            plan = [("review next", "GET", f"/api/review/next/?dataset={dataset}", None)]
        else:
            choice = rng.random()
            if choice < 0.25:
                plan = [("datasets", "GET", "/api/datasets/", None)]
            elif choice < 0.5:
                plan = [("dataset", "GET", f"/api/datasets/{dataset}/", None)]
            elif choice < 0.75:
                offset = rng.randrange(0, 1000)
                plan = [
                    (
                        "images",
                        "GET",
                        f"/api/datasets/{dataset}/images/?limit=50&offset={offset}",
                        None,
                    )
                ]
            else:
                plan = [("run", "GET", f"/api/runs/{run}/", None)]
        for name, method, path, body in plan:
            started = time.perf_counter()
            try:
                status, content = client.request(method, path, body)
            except Exception as exc:  # noqa: BLE001 - every failure is an error of the run
                errors.append(f"{name}: {type(exc).__name__}: {exc}")
                continue
            latencies[name].append(time.perf_counter() - started)
            if status == 204:
                continue
            if not 200 <= status < 300:
                errors.append(f"{name}: HTTP {status} {content[:200]!r}")
                continue
            if name == "review next":
                item = json.loads(content)
                started = time.perf_counter()
                status, content = client.request(
                    "POST", f"/api/review/items/{item['id']}/decision/",
                    {"verdict": rng.choice(["appropriate", "inappropriate"])},
                )  # fmt: skip
                latencies["review decision"].append(time.perf_counter() - started)
                if status != 201:
                    errors.append(f"review decision: HTTP {status} {content[:200]!r}")
    with lock:
        for name, values in latencies.items():
            out["latencies"][name].extend(values)
        out["errors"].extend(errors)


def _percentiles(values: list[float]) -> dict:
    arr = np.array(values) * 1000
    return {
        "count": len(values),
        "p50_ms": round(float(np.percentile(arr, 50)), 2),
        "p90_ms": round(float(np.percentile(arr, 90)), 2),
        "p99_ms": round(float(np.percentile(arr, 99)), 2),
        "max_ms": round(float(arr.max()), 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (default 60)")
    parser.add_argument("--clients", type=int, default=16, help="client threads (default 16)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--images", type=int, default=5000, help="images in the dataset")
    parser.add_argument(
        "--database-url", default="", help="default: a fresh SQLite in var/bench-api"
    )
    args = parser.parse_args(argv)

    work = REPO_ROOT / "var" / "bench-api"
    if args.database_url:
        os.environ["DATABASE_URL"] = args.database_url
        os.environ.setdefault("SECRET_KEY", "bench-secret-key-not-for-production")
        os.environ["Q16_DATA_DIR"] = str(work / "data")
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", verbosity=0, interactive=False)
    else:
        from bench.djangoenv import setup as django_setup

        django_setup(work, fresh=True)
    setup = _prepare(args.images, n_reviewers=max(1, (args.clients + 3) // 4))
    from django.db import connections

    connections.close_all()

    port = _free_port()
    log_path = work / "gunicorn.log"
    gunicorn = Path(sys.executable).parent / "gunicorn"
    env = {**os.environ, "DEBUG": "false", "HTTPS": "false", "ALLOWED_HOSTS": "127.0.0.1"}
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [str(gunicorn), "config.wsgi", "--bind", f"127.0.0.1:{port}", "--workers",
             str(args.workers), "--threads", "4", "--keep-alive", "30", "--log-level", "warning"],  # fmt: skip
            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                status, _ = Client(port, setup["admin_token"]).request("GET", "/api/datasets/")
                if status == 200:
                    break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                print(log_path.read_text()[-3000:], file=sys.stderr)
                return 2
            time.sleep(0.2)

        out: dict = {"latencies": defaultdict(list), "errors": []}
        lock = threading.Lock()
        started = time.monotonic()
        until = started + args.duration
        threads = [
            threading.Thread(target=_worker, args=(port, setup, i, until, out, lock))
            for i in range(args.clients)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)

    all_latencies = [v for values in out["latencies"].values() for v in values]
    result = {
        "benchmark": "api_load",
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "duration_s": round(elapsed, 1),
        "clients": args.clients,
        "gunicorn_workers": args.workers,
        "database": "postgresql" if args.database_url.startswith("postgres") else "sqlite",
        "requests": len(all_latencies),
        "requests_per_second": round(len(all_latencies) / elapsed, 1),
        "errors": len(out["errors"]),
        "error_samples": out["errors"][:20],
        "overall": _percentiles(all_latencies) if all_latencies else {},
        "endpoints": {
            name: _percentiles(values) for name, values in sorted(out["latencies"].items())
        },
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"api-load-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(
        json.dumps({k: result[k] for k in ("requests", "requests_per_second", "errors", "overall")})
    )
    print(f"written to {path}")
    return 1 if out["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
