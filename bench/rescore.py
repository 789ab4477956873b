"""Cached embeddings -> stored scores for new prompts: through the service, and as engine math."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench import data


def bench_rescore_service(
    n: int, dim: int, *, threshold: float, processes: int = 1
) -> dict[str, Any]:
    """A RESCORE run of n cached embeddings through the rescore service (Django).

    As after a first scoring run, every 20th image already has a pending review item: the
    rescore updates those (withdrawing the ones that fall below the threshold) and creates
    items for the newly flagged. With processes > 1 the run's chunk ranges
    (rescore_ranges, as scoring_run_rescore_fan_out queues them) run in that many forked
    processes at once, as a Celery prefork worker with that concurrency runs the
    rescore_chunks tasks; the broker round trip is not in the figure.
    """
    from curation.models import ScoringRun
    from curation.services.chunks import rescore_ranges, scoring_run_rescore_range
    from curation.services.scoring import scoring_run_start

    setup_started = time.perf_counter()
    dataset, version = _rescore_fixture(n, dim)
    setup_seconds = time.perf_counter() - setup_started
    started = time.perf_counter()
    run = scoring_run_start(
        dataset=dataset,
        prompt_version=version,
        threshold=threshold,
        kind=ScoringRun.Kind.RESCORE,
        queue=False,
    )
    start_seconds = time.perf_counter() - started
    if processes <= 1:
        scoring_run_rescore_range(run_id=run.pk, first_index=0, last_index=None)
    else:
        _rescore_in_processes(run.pk, rescore_ranges(run_id=run.pk, parts=processes))
    seconds = time.perf_counter() - started
    run = ScoringRun.objects.get(pk=run.pk)
    if run.state != ScoringRun.State.SUCCEEDED or run.processed != n or run.failed:
        raise RuntimeError(
            f"rescore run {run.pk} ended {run.state}, {run.processed}/{n}, {run.failed} failed"
        )
    timings = dict(run.timings)
    timings["run_start"] = round(start_seconds, 4)
    stages = {k: v for k, v in timings.items() if k not in {"total", "write"}}
    return {
        "embeddings": n,
        "processes": processes,
        "seconds": seconds,
        "embeddings_per_second": n / seconds,
        "projected_1m_seconds": seconds * 1_000_000 / n,
        # Stage seconds are summed over processes (CPU-ish time), not wall time.
        "timings": timings,
        "slowest_stage": max(stages, key=lambda k: stages[k]) if stages else "",
        "flagged": run.flagged,
        "chunks": run.chunks_total,
        "setup_seconds": setup_seconds,
    }


def _rescore_in_processes(run_id: int, ranges: list[tuple[int, int]]) -> None:
    """Each chunk range in its own forked process (fresh database connections), all at once."""
    import multiprocessing

    from django.db import connections

    connections.close_all()  # a forked child must not share the parent's socket
    context = multiprocessing.get_context("fork")
    children = [
        context.Process(target=_rescore_range_child, args=(run_id, first, last))
        for first, last in ranges
    ]
    for child in children:
        child.start()
    for child in children:
        child.join()
    failed = [child.exitcode for child in children if child.exitcode != 0]
    if failed:
        raise RuntimeError(f"rescore range processes exited with {failed}")


def _rescore_range_child(run_id: int, first_index: int, last_index: int) -> None:
    from django.db import connections

    from curation.services.chunks import scoring_run_rescore_range

    connections.close_all()
    scoring_run_rescore_range(run_id=run_id, first_index=first_index, last_index=last_index)
    connections.close_all()


def _rescore_fixture(n: int, dim: int) -> tuple[Any, Any]:
    """A READY dataset of n images whose embeddings are cached in shards of 20,000 (as
    scoring chunks write them), every 20th with a pending review item, and new prompts."""
    from django.db import connection
    from django.utils import timezone

    from curation.models import Dataset, Embedding, EmbeddingShard, Image, PromptVersion
    from curation.shard_files import shard_file_write
    from reviewer.models import ReviewItem
    from worker.engine.store import prompts_to_bytes

    key = f"bench-rescore-{n}/sha256-synthetic"
    dataset = Dataset.objects.create(
        name=f"bench rescore {n} {time.time_ns()}",
        source_kind=Dataset.SourceKind.FOLDER,
        source="/nonexistent",
        root_path="/nonexistent",
        state=Dataset.State.READY,
        total=n,
        processed=n,
    )
    prompts = data.rescore_prompts(dim, seed=12)
    added = connection.ops.adapt_datetimefield_value(timezone.now())
    block = 20_000
    for start in range(0, n, block):
        stop = min(start + block, n)
        # Generated block by block: a million float32 rows at once would be 2 GB.
        vectors = data.rescore_embeddings(stop - start, dim, prompts, seed=11 + start)
        shas = [f"{dataset.pk:08x}{i:056x}" for i in range(start, stop)]
        path = shard_file_write(model_key=key, hashes=shas, matrix=vectors)
        shard = EmbeddingShard.objects.create(model_key=key, dim=dim, path=path, rows=len(shas))
        _load_rows(
            Image._meta.db_table,
            [
                "dataset_id", "relative_path", "source_url", "sha256", "phash", "format",
                "status", "error", "created_at", "sample_key", "metadata", "container",
                "class_label",
            ],
            [
                (dataset.pk, f"{i}.jpg", "", sha, "", "JPEG", Image.Status.OK.value, "", added,
                 "", "{}", "", "")
                for i, sha in zip(range(start, stop), shas, strict=True)
            ],
        )  # fmt: skip
        _load_rows(
            Embedding._meta.db_table,
            ["model_key", "sha256", "shard_id", "row", "created_at"],
            [(key, sha, shard.pk, row, added) for row, sha in enumerate(shas)],
        )
    first_id = Image.objects.filter(dataset=dataset).order_by("id").values_list("id", flat=True)[0]
    _load_rows(
        ReviewItem._meta.db_table,
        ["dataset_id", "image_id", "score", "margin", "is_audit", "state", "created_at"],
        [
            (dataset.pk, first_id + i, 0.6, 0.1, False, ReviewItem.State.PENDING.value, added)
            for i in range(0, n, 20)
        ],
    )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # As autovacuum would have by the time anyone rescores (an import and a first
            # scoring run are hours of inserts): statistics, the visibility map and hint
            # bits set. Without it the rescore's first read of each fresh row writes its page.
            cursor.execute("VACUUM (ANALYZE)")
    version = PromptVersion.objects.create(
        name="bench new prompts",
        model_key=key,
        dim=dim,
        vectors=prompts_to_bytes(prompts),
        source=PromptVersion.Source.IMPORTED,
    )
    return dataset, version


def _load_rows(table: str, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    """Bulk-load fixture rows: COPY on PostgreSQL, executemany elsewhere."""
    from django.db import connection, transaction

    names = ", ".join(connection.ops.quote_name(column) for column in columns)
    quoted = connection.ops.quote_name(table)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            connection.ensure_connection()
            statement = f"COPY {quoted} ({names}) FROM STDIN"
            with connection.connection.cursor() as cursor, cursor.copy(statement) as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            placeholders = ", ".join(["%s"] * len(columns))
            with connection.cursor() as cursor:
                cursor.executemany(f"INSERT INTO {quoted} ({names}) VALUES ({placeholders})", rows)


def bench_rescore_engine(n: int, dim: int, work: Path, *, threshold: float) -> dict[str, Any]:
    """n cached float16 embeddings read from SQLite, scored by the engine, scores bulk-written."""
    from worker.engine.scoring import inappropriate_probability

    db = work / "rescore_engine.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    con = sqlite3.connect(db)
    try:
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        con.execute("CREATE TABLE embedding (id INTEGER PRIMARY KEY, vector BLOB NOT NULL)")
        con.execute(
            "CREATE TABLE score (run_id INTEGER NOT NULL, image_id INTEGER NOT NULL, "
            "p REAL NOT NULL, PRIMARY KEY (run_id, image_id))"
        )
        block = 100_000
        prompts = data.rescore_prompts(dim, seed=12)
        for start in range(0, n, block):
            stop = min(start + block, n)
            chunk = data.rescore_embeddings(stop - start, dim, prompts, seed=start).astype(
                np.float16
            )
            con.executemany(
                "INSERT INTO embedding VALUES (?, ?)",
                ((start + i, chunk[i].tobytes()) for i in range(stop - start)),
            )
        con.commit()

        started = time.perf_counter()
        ids = np.empty(n, dtype=np.int64)
        embeddings = np.empty((n, dim), dtype=np.float16)
        for row, (image_id, blob) in enumerate(con.execute("SELECT id, vector FROM embedding")):
            ids[row] = image_id
            embeddings[row] = np.frombuffer(blob, dtype=np.float16)
        read_s = time.perf_counter() - started

        t0 = time.perf_counter()
        probabilities = np.empty(n, dtype=np.float32)
        for start in range(0, n, block):
            stop = min(start + block, n)
            probabilities[start:stop] = inappropriate_probability(
                embeddings[start:stop].astype(np.float32), prompts
            )
        score_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        con.executemany(
            "INSERT INTO score (run_id, image_id, p) VALUES (1, ?, ?)",
            zip(ids.tolist(), probabilities.tolist(), strict=True),
        )
        con.commit()
        write_s = time.perf_counter() - t0
        seconds = time.perf_counter() - started
    finally:
        con.close()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
    return {
        "embeddings": n,
        "seconds": seconds,
        "embeddings_per_second": n / seconds,
        "timings": {"cache_read": read_s, "score": score_s, "write": write_s},
        "flagged": int((probabilities >= threshold).sum()),
    }
