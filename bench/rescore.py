"""Cached embeddings -> stored scores for new prompts: through the service, and as engine math."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench import data


def bench_rescore_service(n: int, dim: int, *, threshold: float) -> dict[str, Any]:
    """A RESCORE run of n cached embeddings through scoring_run_rescore (Django, SQLite).

    As after a first scoring run, every 20th image already has a pending review item: the
    rescore updates those (withdrawing the ones that fall below the threshold) and creates
    items for the newly flagged.
    """
    from django.db import connection, transaction
    from django.utils import timezone

    from curation.bulk import insert_rows
    from curation.models import Dataset, Embedding, EmbeddingShard, Image, PromptVersion, ScoringRun
    from curation.services.chunks import scoring_run_rescore
    from curation.services.scoring import scoring_run_start
    from curation.shard_files import shard_file_write
    from reviewer.models import ReviewItem
    from worker.engine.store import prompts_to_bytes

    key = f"bench-rescore-{n}/sha256-synthetic"
    setup_started = time.perf_counter()
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
    vectors = data.rescore_embeddings(n, dim, prompts, seed=11)
    # Plain executemany: model instances would make the set-up take minutes at 1M.
    added = connection.ops.adapt_datetimefield_value(timezone.now())
    block = 20_000
    for start in range(0, n, block):
        stop = min(start + block, n)
        shas = [f"{dataset.pk:08x}{i:056x}" for i in range(start, stop)]
        # One shard file per block, as scoring chunks write them, and a reference per row.
        path = shard_file_write(model_key=key, hashes=shas, matrix=vectors[start:stop])
        with transaction.atomic():
            insert_rows(
                table=Image._meta.db_table,
                columns=[
                    "dataset_id", "relative_path", "source_url", "sha256", "phash", "format",
                    "status", "error", "created_at", "sample_key", "metadata", "container",
                    "class_label",
                ],
                pg_types=[
                    "bigint", "text", "text", "text", "text", "text", "text", "text",
                    "timestamptz", "text", "jsonb", "text", "text",
                ],
                rows=[
                    (dataset.pk, f"{i}.jpg", "", sha, "", "JPEG", Image.Status.OK, "", added,
                     "", "{}", "", "")
                    for i, sha in zip(range(start, stop), shas, strict=True)
                ],
                on_conflict="",
            )  # fmt: skip
            shard = EmbeddingShard.objects.create(model_key=key, dim=dim, path=path, rows=len(shas))
            insert_rows(
                table=Embedding._meta.db_table,
                columns=["model_key", "sha256", "shard_id", "row", "created_at"],
                pg_types=["text", "text", "bigint", "bigint", "timestamptz"],
                rows=[(key, sha, shard.pk, row, added) for row, sha in enumerate(shas)],
                on_conflict="",
            )
    first_id = Image.objects.filter(dataset=dataset).order_by("id").values_list("id", flat=True)[0]
    ReviewItem.objects.bulk_create(
        [
            ReviewItem(dataset=dataset, image_id=first_id + i, score=0.6, margin=0.1)
            for i in range(0, n, 20)
        ],
        batch_size=5000,
    )
    version = PromptVersion.objects.create(
        name="bench new prompts",
        model_key=key,
        dim=dim,
        vectors=prompts_to_bytes(prompts),
        source=PromptVersion.Source.IMPORTED,
    )
    setup_seconds = time.perf_counter() - setup_started
    started = time.perf_counter()
    run = scoring_run_start(
        dataset=dataset,
        prompt_version=version,
        threshold=threshold,
        kind=ScoringRun.Kind.RESCORE,
        queue=False,
    )
    run = scoring_run_rescore(run_id=run.pk)
    seconds = time.perf_counter() - started
    if run.state != ScoringRun.State.SUCCEEDED or run.processed != n or run.failed:
        raise RuntimeError(
            f"rescore run {run.pk} ended {run.state}, {run.processed}/{n}, {run.failed} failed"
        )
    timings = dict(run.timings)
    stages = {k: v for k, v in timings.items() if k not in {"total"}}
    return {
        "embeddings": n,
        "seconds": seconds,
        "embeddings_per_second": n / seconds,
        "projected_1m_seconds": seconds * 1_000_000 / n,
        "timings": timings,
        "slowest_stage": max(stages, key=lambda k: stages[k]) if stages else "",
        "flagged": run.flagged,
        "chunks": run.chunks_total,
        "setup_seconds": setup_seconds,
    }


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
