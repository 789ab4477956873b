"""One chunk of a scoring run, as a worker processes it: embed what is not cached, score, flag.

A chunk is the unit of work of one Celery task. Processing a chunk twice (a
redelivered task after a killed worker) is harmless: embeddings and scores are
upserts, and the chunk's counters are added to the run only in the transaction
that moves the chunk to DONE. A chunk whose run was cancelled meanwhile rolls its
writes back (see curation.services.scoring).

Worker-side: this module loads the engine's encode pipeline (torch).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
from django.conf import settings
from django.db import connection
from django.db.models import F
from django.utils import timezone

from curation import dispatch
from curation.bulk import copy_in_columns, jit_off, select_columns
from curation.hooks import chunk_scored
from curation.models import Embedding, EmbeddingShard, Image, Score, ScoringChunk, ScoringRun
from curation.services.embeddings import (
    embeddings_store,
    vectors_from_locations,
    vectors_from_shard_rows,
)
from curation.services.scoring import STOPPED_STATES, scoring_chunk_assign
from worker.engine.clip import ClipModel
from worker.engine.locators import ImageLocator, is_url
from worker.engine.pipeline import encode_files
from worker.engine.scoring import inappropriate_probability
from worker.engine.store import embeddings_from_bytes, embeddings_to_bytes, prompts_from_bytes

# A cached embedding's place: (shard file name on storage, row), or None when not cached.
CachedAt = tuple[str, int] | None

logger = logging.getLogger(__name__)

# Returns the loaded CLIP model for a model key (the worker keeps one per process).
ClipProvider = Callable[[str], ClipModel]


class RunStopped(Exception):
    """Raised inside a chunk's final transaction to roll it back: the run was cancelled."""


class ChunkImage(NamedTuple):
    id: int
    sha256: str
    relative_path: str
    # A shard member (WebDataset imports): read by a range read, see worker.engine.locators.
    container: str = ""
    member_offset: int | None = None
    member_size: int | None = None


def _replace_scores(
    *,
    run_id: int,
    first_image_id: int,
    last_image_id: int,
    image_ids: np.ndarray,
    probabilities: np.ndarray,
) -> None:
    """Write a chunk's (image id, score) rows, replacing any of the run's scores in its range.

    A chunk's scores commit only with the chunk's DONE (see _write_chunk), so the range is
    empty unless something wrote there outside this path; deleting it first is what lets
    the rows go in by COPY, which has no ON CONFLICT. Plain arrays, not Score instances:
    building instances costs more than the database write itself at a million rows.
    """
    Score.objects.filter(
        run_id=run_id, image_id__gte=first_image_id, image_id__lte=last_image_id
    ).delete()
    copy_in_columns(
        table=Score._meta.db_table,
        columns=["run_id", "image_id", "p_inappropriate"],
        pg_types=["bigint", "bigint", "float8"],
        arrays=[np.full(len(image_ids), run_id, dtype=np.int64), image_ids, probabilities],
    )


def scoring_chunk_process(
    *,
    chunk_id: int,
    clip_provider: ClipProvider | None,
    batch_size: int | None = None,
    decode_workers: int | None = None,
) -> ScoringChunk:
    """Embed the chunk's uncached images, score all of them and flag those over the threshold.

    clip_provider=None scores from cached embeddings only (rescore): an image without a
    cached embedding counts as failed instead of being encoded.
    """
    chunk = ScoringChunk.objects.select_related("run", "run__prompt_version", "run__dataset").get(
        pk=chunk_id
    )
    run = chunk.run
    if chunk.state == ScoringChunk.State.DONE or run.state in STOPPED_STATES:
        return chunk
    now = timezone.now()
    ScoringChunk.objects.filter(pk=chunk.pk).update(attempts=F("attempts") + 1, started_at=now)
    ScoringRun.objects.filter(pk=run.pk, state=ScoringRun.State.PENDING).update(
        state=ScoringRun.State.RUNNING, started_at=now
    )
    ScoringRun.objects.filter(pk=run.pk).update(heartbeat_at=now)

    timings: dict[str, float] = {}
    started = time.perf_counter()
    if clip_provider is None:
        image_ids, vectors, failures = _cached_chunk_vectors(
            run=run, chunk=chunk, dim=run.prompt_version.dim, timings=timings
        )
        encoded = 0
        failed_images = int((~vectors.ok).sum())
    else:
        images, cached = _chunk_images(
            dataset_id=run.dataset_id,
            model_key=run.model_key,
            first_image_id=chunk.first_image_id,
            last_image_id=chunk.last_image_id,
        )
        timings["cache_read"] = time.perf_counter() - started
        vectors, failures, encoded = _embeddings_for(
            images=images,
            cached=cached,
            model_key=run.model_key,
            dim=run.prompt_version.dim,
            root=run.dataset.root_path,
            clip_provider=clip_provider,
            batch_size=batch_size or settings.Q16_BATCH_SIZE,
            decode_workers=decode_workers or settings.Q16_DECODE_WORKERS or None,
            timings=timings,
            run_id=run.pk,
            chunk_id=chunk.pk,
        )
        image_ids = np.fromiter((image.id for image in images), dtype=np.int64, count=len(images))
        failed_images = sum(1 for image in images if image.sha256 in failures)

    t0 = time.perf_counter()
    scored_ids = image_ids if vectors.ok.all() else image_ids[vectors.ok]
    prompts = prompts_from_bytes(bytes(run.prompt_version.vectors))
    # float64 of the float32 scores: exactly the values the score column stores.
    probabilities = (
        inappropriate_probability(
            vectors.matrix if vectors.ok.all() else vectors.matrix[vectors.ok], prompts
        ).astype(np.float64)
        if len(scored_ids)
        else np.zeros(0, dtype=np.float64)
    )
    timings["score"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    try:
        locked = _write_chunk(
            chunk=chunk,
            run=run,
            image_count=len(image_ids),
            failed_images=failed_images,
            scored_ids=scored_ids,
            probabilities=probabilities,
            failures=failures,
            encoded=encoded,
            timings=timings,
            started=started,
            t0=t0,
        )
    except RunStopped as stopped:
        # The run was cancelled while this chunk ran: its writes were rolled back and the
        # chunk stays PENDING for a resume.
        logger.info("run %s chunk %s: result dropped, the run is %s", run.pk, chunk.index, stopped)
        chunk.refresh_from_db()
        return chunk
    return locked


def _write_chunk(
    *,
    chunk: ScoringChunk,
    run: ScoringRun,
    image_count: int,
    failed_images: int,
    scored_ids: np.ndarray,
    probabilities: np.ndarray,
    failures: dict[str, str],
    encoded: int,
    timings: dict[str, float],
    started: float,
    t0: float,
) -> ScoringChunk:
    """The chunk's final transaction: scores, review items, DONE and the run's counters."""
    with jit_off():
        locked = ScoringChunk.objects.select_for_update().get(pk=chunk.pk)
        if locked.state == ScoringChunk.State.DONE:
            return locked  # a duplicate delivery finished first
        # Cheap early look (no lock) so a cancelled run skips the writes; the locked
        # re-check in _add_chunk_to_run is the one that counts.
        state = ScoringRun.objects.values_list("state", flat=True).get(pk=run.pk)
        if state == ScoringRun.State.CANCELLED:
            raise RunStopped(state)
        _replace_scores(
            run_id=run.pk,
            first_image_id=chunk.first_image_id,
            last_image_id=chunk.last_image_id,
            image_ids=scored_ids,
            probabilities=probabilities,
        )
        timings["write_scores"] = time.perf_counter() - t0
        chunk_scored.send(
            sender=ScoringRun,
            run=run,
            first_image_id=chunk.first_image_id,
            last_image_id=chunk.last_image_id,
            image_ids=scored_ids,
            probabilities=probabilities,
        )
        flagged = int((probabilities >= run.threshold).sum())
        timings["write_review_items"] = time.perf_counter() - t0 - timings["write_scores"]
        locked.state = ScoringChunk.State.DONE
        locked.error = "; ".join(f"{sha[:12]}: {reason}" for sha, reason in failures.items())[:5000]
        locked.finished_at = timezone.now()
        locked.processed = image_count
        locked.save(update_fields=["state", "error", "finished_at", "processed"])
        timings["write"] = time.perf_counter() - t0
        timings["total"] = time.perf_counter() - started
        _add_chunk_to_run(
            run_id=run.pk,
            processed=image_count,
            failed=failed_images,
            flagged=flagged,
            encoded=encoded,
            timings=timings,
        )
    logger.info(
        "run %s chunk %s: %s images, %s encoded, %s failed, %s flagged, %s",
        run.pk,
        chunk.index,
        image_count,
        encoded,
        failed_images,
        flagged,
        {k: round(v, 3) for k, v in timings.items()},
    )
    return locked


def _cached_chunk_vectors(
    *, run: ScoringRun, chunk: ScoringChunk, dim: int, timings: dict[str, float]
) -> tuple[np.ndarray, ChunkVectors, dict[str, str]]:
    """A rescore chunk's valid image ids and their cached embeddings; failures by hash.

    The references come back as three integer columns (image id, shard id, row) parsed by
    numpy (binary COPY on PostgreSQL): a million images per rescore make any per-row
    Python, or a shard path repeated per row, the largest cost of the read.
    """
    t0 = time.perf_counter()
    image_table = connection.ops.quote_name(Image._meta.db_table)
    embedding_table = connection.ops.quote_name(Embedding._meta.db_table)
    if connection.vendor == "postgresql":
        # One index probe per image, whatever the size of the embedding table: given a plain
        # join, the planner hashes the chunk and scans every embedding of the model per
        # chunk, which made the cost per image grow with the cache (the key is unique, so
        # LIMIT 1 changes nothing else).
        join = (
            f"LEFT JOIN LATERAL (SELECT e.shard_id, e.row FROM {embedding_table} e "
            "WHERE e.model_key = %s AND e.sha256 = i.sha256 LIMIT 1) e ON true"
        )
    else:
        join = f"LEFT JOIN {embedding_table} e ON e.model_key = %s AND e.sha256 = i.sha256"
    located = select_columns(
        sql=(
            "SELECT i.id, COALESCE(e.shard_id, -1), CAST(COALESCE(e.row, -1) AS bigint) "
            f"FROM {image_table} i {join} "
            "WHERE i.dataset_id = %s AND i.status = %s AND i.id >= %s AND i.id <= %s"
        ),
        params=[
            run.model_key,
            run.dataset_id,
            Image.Status.OK,
            chunk.first_image_id,
            chunk.last_image_id,
        ],
        pg_types=["bigint", "bigint", "bigint"],
    )
    timings["locate"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    image_ids = np.ascontiguousarray(located[:, 0])
    matrix, ok = vectors_from_shard_rows(shard_ids=located[:, 1], rows=located[:, 2], dim=dim)
    timings["cache_read"] = time.perf_counter() - t0
    failures: dict[str, str] = {}
    if not ok.all():
        missing = image_ids[~ok].tolist()
        for start in range(0, len(missing), 1000):
            for sha in Image.objects.filter(pk__in=missing[start : start + 1000]).values_list(
                "sha256", flat=True
            ):
                failures[sha] = "no cached embedding for this model"
    return image_ids, ChunkVectors(matrix=matrix, ok=ok), failures


def _chunk_images(
    *, dataset_id: int, model_key: str, first_image_id: int, last_image_id: int
) -> tuple[list[ChunkImage], list[CachedAt]]:
    """A chunk's valid images, and where each one's cached embedding is (or None).

    One LEFT JOIN on the embedding references' (model key, hash) index and their shards,
    read with a plain cursor:
    at a million images per rescore, model instances and per-row converters cost more than
    the query.
    """
    image_table = connection.ops.quote_name(Image._meta.db_table)
    embedding_table = connection.ops.quote_name(Embedding._meta.db_table)
    shard_table = connection.ops.quote_name(EmbeddingShard._meta.db_table)
    # No ORDER BY: the two lists stay aligned whatever the order, and sorting 20 MB of
    # vectors spilled to disk on PostgreSQL.
    sql = (
        "SELECT i.id, i.sha256, i.relative_path, s.path, i.container, i.member_offset, "
        f"i.member_size, e.row FROM {image_table} i "
        f"LEFT JOIN {embedding_table} e ON e.model_key = %s AND e.sha256 = i.sha256 "
        f"LEFT JOIN {shard_table} s ON s.id = e.shard_id "
        "WHERE i.dataset_id = %s AND i.status = %s AND i.id >= %s AND i.id <= %s"
    )
    params: list[str | int] = [
        model_key,
        dataset_id,
        Image.Status.OK,
        first_image_id,
        last_image_id,
    ]
    if connection.vendor == "postgresql":
        import psycopg

        connection.ensure_connection()
        # Binary results (which Django's client-side cursors cannot ask for): bytea arrives
        # as bytes, not as hex text twice its size to parse.
        with psycopg.Cursor(connection.connection) as pg_cursor:
            pg_cursor.execute(sql, params, binary=True)
            rows = pg_cursor.fetchall()
    else:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
    return [ChunkImage(row[0], row[1], row[2], row[4], row[5], row[6]) for row in rows], [
        None if row[3] is None else (row[3], row[7]) for row in rows
    ]


class ChunkVectors(NamedTuple):
    # (n, D) float32 in the chunk's image order; rows where ``ok`` is False are zeros.
    matrix: np.ndarray
    ok: np.ndarray


def _embeddings_for(
    *,
    images: list[ChunkImage],
    cached: list[CachedAt],
    model_key: str,
    dim: int,
    root: str,
    clip_provider: ClipProvider | None,
    batch_size: int,
    decode_workers: int | None,
    timings: dict[str, float],
    run_id: int | None = None,
    chunk_id: int | None = None,
) -> tuple[ChunkVectors, dict[str, str], int]:
    """Every image's embedding (cached, or encoded now), failures by hash, count encoded."""
    t0 = time.perf_counter()
    # Each needed shard is read once (grouped by shard), whatever the order of the images.
    matrix, ok = vectors_from_locations(locations=cached, dim=dim)
    timings["cache_read"] = timings.get("cache_read", 0.0) + time.perf_counter() - t0

    # Rows by missing hash: identical files are encoded once.
    missing: dict[str, list[int]] = {}
    for row in np.flatnonzero(~ok).tolist():
        missing.setdefault(images[row].sha256, []).append(row)
    failures: dict[str, str] = {}
    vectors = ChunkVectors(matrix=matrix, ok=ok)
    if not missing:
        return vectors, failures, 0
    if clip_provider is None:
        return vectors, {sha: "no cached embedding for this model" for sha in missing}, 0

    clip = clip_provider(model_key)
    if run_id is not None:  # the run says which backend encoded it (auto resolved)
        ScoringRun.objects.filter(pk=run_id, backend="").update(backend=clip.backend)
    missing_items = list(missing.items())
    result = encode_files(
        clip,
        [_file_source(root, images[rows[0]]) for _, rows in missing_items],
        batch_size=batch_size,
        decode_workers=decode_workers,
    )
    timings["encode"] = result.timings.get("wall", 0.0)
    timings["decode"] = result.timings.get("decode", 0.0)
    timings["forward"] = result.timings.get("forward", 0.0)
    for position, reason in result.failures.items():
        failures[missing_items[position][0]] = reason
    new_hashes: list[str] = []
    new_vectors = np.zeros((len(result.ok_indices), dim), dtype=np.float16)
    for row, position in enumerate(result.ok_indices):
        sha, rows = missing_items[position]
        blob = embeddings_to_bytes(result.embeddings[row][None, :])
        # Score from the cached (float16) value, so a rescore reproduces these scores exactly.
        new_vectors[row] = embeddings_from_bytes(blob, dim=dim)[0]
        matrix[rows] = new_vectors[row]
        ok[rows] = True
        new_hashes.append(sha)
    # The chunk's newly encoded embeddings: one shard file, one reference per row.
    embeddings_store(
        model_key=model_key, hashes=new_hashes, matrix=new_vectors, run_id=run_id, chunk_id=chunk_id
    )
    return vectors, failures, len(result.ok_indices)


def _file_source(root: str, image: ChunkImage) -> Path | ImageLocator:
    """A loose file's path (or its URL in the bucket, for imports stored there), or a shard
    member's locator (range read, never extracted)."""
    if image.container:
        return ImageLocator(image.container, image.member_offset, image.member_size)
    if is_url(root):
        return ImageLocator(f"{root.rstrip('/')}/{image.relative_path}")
    return Path(root) / image.relative_path


def _add_chunk_to_run(
    *, run_id: int, processed: int, failed: int, flagged: int, encoded: int, timings: dict
) -> None:
    # FOR NO KEY UPDATE: the counters are not a key, and a plain FOR UPDATE would block
    # every other chunk's review-item writes (their run_id foreign key takes a KEY SHARE
    # lock on this row) until this chunk commits.
    run = ScoringRun.objects.select_for_update(no_key=True).get(pk=run_id)
    if run.state == ScoringRun.State.CANCELLED:
        # Cancelled since the chunk started: roll the whole chunk back. (A failed run keeps
        # the chunk: a resume then has one chunk fewer to redo.)
        raise RunStopped(run.state)
    run.processed += processed
    run.failed += failed
    run.flagged += flagged
    run.encoded += encoded
    run.chunks_done += 1
    merged = dict(run.timings or {})
    for stage, seconds in timings.items():
        merged[stage] = round(merged.get(stage, 0.0) + seconds, 4)
    run.timings = merged
    run.heartbeat_at = timezone.now()
    if run.chunks_done >= run.chunks_total and run.state != ScoringRun.State.FAILED:
        run.state = ScoringRun.State.SUCCEEDED
        run.finished_at = run.heartbeat_at
    run.save()


def scoring_run_rescore(*, run_id: int, worker: str = "") -> ScoringRun:
    """Score every chunk of a rescore run from cached embeddings, in this process (worker:
    its hostname, recorded on each chunk it takes)."""
    return scoring_run_rescore_range(run_id=run_id, first_index=0, last_index=None, worker=worker)


def scoring_run_rescore_range(
    *, run_id: int, first_index: int, last_index: int | None, worker: str = ""
) -> ScoringRun:
    """Score the run's pending chunks with index in [first_index, last_index] (None: to the
    end), in index order: their images are in id order, so their shards are read in turn."""
    pending = ScoringChunk.objects.filter(
        run_id=run_id, state=ScoringChunk.State.PENDING, index__gte=first_index
    )
    if last_index is not None:
        pending = pending.filter(index__lte=last_index)
    for chunk_id in pending.order_by("index").values_list("id", flat=True):
        if ScoringRun.objects.filter(pk=run_id, state__in=STOPPED_STATES).exists():
            break  # cancelled between chunks: stop at once
        scoring_chunk_assign(chunk_id=chunk_id, worker=worker)
        scoring_chunk_process(chunk_id=chunk_id, clip_provider=None)
    return ScoringRun.objects.get(pk=run_id)


def rescore_ranges(*, run_id: int, parts: int) -> list[tuple[int, int]]:
    """The run's pending chunk indexes cut into at most ``parts`` contiguous ranges."""
    indexes = list(
        ScoringChunk.objects.filter(run_id=run_id, state=ScoringChunk.State.PENDING)
        .order_by("index")
        .values_list("index", flat=True)
    )
    if not indexes:
        return []
    size = -(-len(indexes) // max(1, parts))
    return [
        (indexes[start], indexes[min(start + size, len(indexes)) - 1])
        for start in range(0, len(indexes), size)
    ]


def scoring_run_rescore_fan_out(*, run_id: int, parts: int | None = None) -> list[tuple[int, int]]:
    """Queue one task per range of the run's pending chunks, for several workers at once."""
    ranges = rescore_ranges(run_id=run_id, parts=parts or settings.Q16_RESCORE_PARALLEL)
    for first_index, last_index in ranges:
        dispatch.send_task(dispatch.RESCORE_CHUNKS, run_id, first_index, last_index)
    return ranges
