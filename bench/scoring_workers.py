"""``python -m bench.scoring_workers``: scoring throughput with one and two Celery workers.

One dataset of generated JPEGs is scored twice in one run, by real ``celery worker``
processes on a real Redis and PostgreSQL: first by one worker, then by two started
together, each worker with its share of the cores (torch threads). Every run must score
each image exactly once; the figure per run is images per second from the first chunk
taken to the run's end, with each worker's share of the chunks and its own rate as the
chunks record them.

On a 2-core machine the forward is CPU-bound, so two workers split the same cores: the
point is that a second worker adds no overhead and takes its share; on a second machine
it would add its own cores (docs/scaling.md).

    python -m bench.scoring_workers                       # 400 images, ViT-B-32
    python -m bench.scoring_workers --images 200 --model q16-tiny

PostgreSQL: a scratch database from BENCH_ADMIN_URL (default postgres://postgres@127.0.0.1:
5432/postgres); Redis: BENCH_REDIS_URL (default redis://127.0.0.1:6379/13, flushed).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.indexing import _jpeg
from bench.rescore_pg import _cpu_model
from bench.review_latency import database_url_for, drop_database, recreate_database, setup_django

REPO_ROOT = Path(__file__).resolve().parent.parent


def _start_worker(name: str, *, env: dict[str, str], log: Path) -> subprocess.Popen:
    celery = shutil.which("celery", path=str(Path(sys.executable).parent)) or "celery"
    with open(log, "w") as out:
        process = subprocess.Popen(
            [
                celery, "-A", "config", "worker", "--loglevel", "INFO", "--pool", "solo",
                "--without-gossip", "--without-mingle", "--hostname", f"{name}@%h",
            ],
            cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + 120
    while " ready." not in log.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"worker {name} did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)
    return process


def _stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def _score_once(
    *, dataset: Any, version: Any, workers: int, env: dict[str, str], logs: Path, chunk: int
) -> dict[str, Any]:
    from django.db.models import Count

    from curation.models import Embedding, Image, Score, ScoringChunk, ScoringRun
    from curation.services.scoring import scoring_run_start

    threads = max(1, (os.cpu_count() or 1) // workers)
    worker_env = {**env, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    processes = [
        _start_worker(f"bench{workers}-{i}", env=worker_env, log=logs / f"w{workers}-{i}.log")
        for i in range(workers)
    ]
    try:
        # The workers load the model on their first chunk: warm them on a throwaway run.
        warm = scoring_run_start(
            dataset=dataset, prompt_version=version, threshold=0.5, chunk_size=chunk
        )
        _wait(warm.pk)
        # Emptied, or the measured run would read the warm-up's embeddings, not encode.
        Embedding.objects.filter(model_key=warm.model_key).delete()
        run = scoring_run_start(
            dataset=dataset, prompt_version=version, threshold=0.5, chunk_size=chunk
        )
        run = _wait(run.pk)
    finally:
        _stop(processes)
    if run.state != ScoringRun.State.SUCCEEDED:
        raise RuntimeError(f"the scoring run ended {run.state}: {run.error}")
    images = Image.objects.filter(dataset=dataset, status=Image.Status.OK).count()
    scored = Score.objects.filter(run=run).values("image").distinct().count()
    if scored != images or Score.objects.filter(run=run).count() != images:
        raise RuntimeError(f"{scored} of {images} images scored once")
    if run.encoded != images:
        raise RuntimeError(f"{run.encoded} of {images} images encoded (the cache was not empty)")
    chunks = ScoringChunk.objects.filter(run=run)
    started = min(c.started_at for c in chunks if c.started_at)
    finished = max(c.finished_at for c in chunks if c.finished_at)
    seconds = (finished - started).total_seconds()
    shares = {
        row["worker"]: row["n"]
        for row in chunks.values("worker").annotate(n=Count("id")).order_by("worker")
    }
    rates = {
        worker: round(
            float(
                np.median(
                    [
                        c.processed / (c.finished_at - c.started_at).total_seconds()
                        for c in chunks
                        if c.worker == worker and c.finished_at and c.started_at
                    ]
                )
            ),
            2,
        )
        for worker in shares
    }
    return {
        "workers": workers,
        "threads_per_worker": threads,
        "images": images,
        "chunks": chunks.count(),
        "seconds": round(seconds, 2),
        "images_per_second": round(images / seconds, 2),
        "chunks_per_worker": shares,
        "median_chunk_images_per_second": rates,
    }


def _wait(run_id: int, timeout: float = 1800.0) -> Any:
    from curation.models import ScoringRun

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = ScoringRun.objects.get(pk=run_id)
        if run.state in (ScoringRun.State.SUCCEEDED, ScoringRun.State.FAILED):
            return run
        time.sleep(0.2)
    raise RuntimeError(f"scoring run {run_id} did not finish in {timeout:.0f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scoring_workers", description=__doc__)
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--model", default="ViT-B-32", help="an open_clip config (random weights)")
    parser.add_argument("--chunk", type=int, default=32, help="images per scoring chunk")
    parser.add_argument("--db", default=f"q16bench_workers_{os.getpid()}")
    args = parser.parse_args(argv)
    if args.images <= 0 or args.chunk <= 0:
        parser.error("--images and --chunk must be positive")
    logging.basicConfig(level=logging.WARNING)
    admin_url = os.environ.get("BENCH_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    recreate_database(admin_url, args.db)
    results: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="q16-bench-workers-") as work:
            work_dir = Path(work)
            folder = work_dir / "images"
            folder.mkdir()
            rng = np.random.default_rng(0)
            for i in range(args.images):
                (folder / f"{i:06d}.jpg").write_bytes(_jpeg(rng, i))
            from worker.engine.clip import build_random_checkpoint

            checkpoint = build_random_checkpoint(args.model, work_dir / "clip.pt", seed=0)
            database_url = database_url_for(admin_url, args.db)
            env = {
                **os.environ,
                "DATABASE_URL": database_url,
                "REDIS_URL": redis_url,
                "SECRET_KEY": "bench-secret-key-not-for-production",
                "Q16_DATA_DIR": str(work_dir / "data"),
                "Q16_IMPORT_ROOTS": str(folder),
                "Q16_CLIP_MODEL": args.model,
                "Q16_CLIP_CHECKPOINT": str(checkpoint),
                "Q16_DEVICE": "cpu",
                "Q16_BACKEND": "torch",
                "PYTHONUNBUFFERED": "1",
            }
            os.environ.update({k: v for k, v in env.items() if k.startswith(("Q16_", "REDIS"))})
            setup_django(database_url, work_dir / "data")
            from curation.services.clip_config import configured_model_key
            from curation.services.clip_runtime import get_clip
            from curation.services.datasets import dataset_create_from_folder, dataset_import
            from curation.services.prompt_zero_shot import prompt_version_create_zero_shot

            dataset = dataset_import(
                dataset_id=dataset_create_from_folder(
                    name="bench workers", folder=str(folder), queue=False
                ).pk
            )
            version = prompt_version_create_zero_shot(clip=get_clip(configured_model_key()))
            for workers in (1, 2):
                results.append(
                    _score_once(
                        dataset=dataset,
                        version=version,
                        workers=workers,
                        env=env,
                        logs=work_dir,
                        chunk=args.chunk,
                    )  # fmt: skip
                )
            from django.db import connections

            connections.close_all()
    finally:
        drop_database(admin_url, args.db)
    cpu = _cpu_model()
    report = {"cpu": cpu, "cores": os.cpu_count(), "model": args.model, "results": results}
    if len(results) == 2:
        report["two_over_one"] = round(
            results[1]["images_per_second"] / results[0]["images_per_second"], 3
        )
    print(json.dumps(report, indent=2))
    print(f"CPU: {cpu} ({os.cpu_count()} cores), {args.model} random weights, torch backend")
    for row in results:
        print(
            f"{row['workers']} worker(s) x {row['threads_per_worker']} thread(s): "
            f"{row['images']} images in {row['seconds']} s = {row['images_per_second']} img/s; "
            f"chunks per worker {row['chunks_per_worker']}"
        )
    if "two_over_one" in report:
        print(f"two workers / one worker: {report['two_over_one']:.2f}x on the same cores")
    out = REPO_ROOT / "bench" / "results" / f"scoring-workers-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"written {out.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
