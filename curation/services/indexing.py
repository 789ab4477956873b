"""Indexing an import in chunks that several workers take in parallel, like scoring.

The import task (datasets.dataset_import) lists the candidates, which is cheap: a folder
walk (after extracting an upload), the lines of a URL list, the rows of a table, the shard
names. import_plan records them as ImportChunks in one transaction and queues one
`index_chunk` task per chunk on the cpu queue; each worker hashes, checks and records its
chunk's images (index_chunk_process). The last chunk to finish completes the dataset, once:
its final transaction locks the dataset row, and only the one that finds every other chunk
done moves the dataset from IMPORTING to READY (dataset_indexing_finished).

Cancelling stops the queued chunks (they find the dataset no longer importing and do
nothing) and the running ones before their next batch; a resume queues again only the
chunks not done, and a chunk carried on skips what it had recorded.

"The same source" on a re-import: the same dataset and the same relative path (folders and
extracted archives), source URL (URL lists and tables) or shard and member (WebDataset,
img2dataset). Only candidates not recorded under that identity are indexed; a file with new
content under a known path is not re-read (re-import into a new dataset for that). Two files
with identical content under different paths are two images (both show where they came
from); they share one cached embedding, keyed by their sha256.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from curation import dispatch
from curation.models import Dataset, Image, ImportChunk
from curation.services.archives import ArchiveError
from curation.services.sources.common import (
    IMPORT_BATCH,
    ImportStopped,
    SourceError,
    dataset_file_writer,
    download_image,
    image_limits,
    record_batch,
    refresh_import_counts,
    still_importing,
)
from curation.services.sources.files import collect_candidates, discard_upload, probe_file
from curation.services.sources.img2dataset import failed_download_rows, folder_contents
from curation.services.sources.tables import read_table_rows
from curation.services.sources.webdataset import index_shard
from curation.services.url_import import FetchLimits, UrlFetcher, parse_url_list
from curation.storage import stored_open

logger = logging.getLogger("curation.services.datasets")

URL_DOWNLOAD_WORKERS = 8
# Sources whose size is known only once their shards are read.
SHARD_SOURCES = (Dataset.SourceKind.WEBDATASET, Dataset.SourceKind.IMG2DATASET)
AfterBatch = Callable[[], None]


def default_url_fetcher() -> UrlFetcher:
    """The production address policy and limits (curation.services.url_import)."""
    return UrlFetcher(
        limits=FetchLimits(
            max_bytes=settings.Q16_MAX_IMAGE_BYTES,
            connect_timeout=getattr(settings, "Q16_URL_CONNECT_TIMEOUT", 5.0),
            total_timeout=getattr(settings, "Q16_URL_TOTAL_TIMEOUT", 30.0),
            max_redirects=getattr(settings, "Q16_URL_MAX_REDIRECTS", 5),
        )
    )


# --- Planning: list the candidates, record the chunks ----------------------------------------


def _slices(items: list, size: int) -> Iterable[list]:
    size = max(1, size)
    return (items[start : start + size] for start in range(0, len(items), size))


Planned = list[tuple[str, list[Any]]]


def _list_candidates(dataset: Dataset) -> tuple[Planned, int | None]:
    """The chunks to record as (kind, items), and the source's size when it is known."""
    per_chunk = settings.Q16_INDEX_CHUNK_SIZE
    kind = dataset.source_kind
    if kind in (Dataset.SourceKind.FOLDER, Dataset.SourceKind.ARCHIVE):
        try:
            candidates = collect_candidates(dataset)
        except (ArchiveError, OSError) as exc:
            raise SourceError(str(exc)) from exc
        known = set(dataset.images.values_list("relative_path", flat=True))
        todo: list[list[Any]] = [
            [path, problem] for path, problem in candidates if path not in known
        ]
        return [(ImportChunk.Kind.FILES, part) for part in _slices(todo, per_chunk)], len(
            candidates
        )
    if kind == Dataset.SourceKind.URLS:
        try:
            with stored_open(dataset.source) as handle:
                text = handle.read().decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SourceError(f"URL list unreadable: {exc}") from exc
        entries = parse_url_list(text)
        known = set(dataset.images.values_list("source_url", flat=True))
        todo = [
            [index, url, problem]
            for index, (url, problem) in enumerate(entries)
            if url not in known
        ]
        return [(ImportChunk.Kind.URLS, part) for part in _slices(todo, per_chunk)], len(entries)
    if kind == Dataset.SourceKind.TABLE:
        rows = read_table_rows(dataset)
        known = set(dataset.images.values_list("source_url", flat=True))
        todo = [
            [index, row.url, row.problem, row.metadata]
            for index, row in enumerate(rows)
            if row.url not in known
        ]
        return [(ImportChunk.Kind.TABLE_ROWS, part) for part in _slices(todo, per_chunk)], len(rows)
    shards_per_chunk = settings.Q16_INDEX_SHARDS_PER_CHUNK
    if kind == Dataset.SourceKind.WEBDATASET:
        shards = list((dataset.options or {}).get("shards") or [])
        if not shards:
            raise SourceError("no shards to import")
        planned_shards: Planned = [
            (ImportChunk.Kind.SHARDS, part) for part in _slices(shards, shards_per_chunk)
        ]
        return planned_shards, None
    if kind == Dataset.SourceKind.IMG2DATASET:
        folder = Path(dataset.root_path)
        if not folder.is_dir():
            raise SourceError(f"img2dataset folder {folder} does not exist or is not a folder")
        shards, tables = folder_contents(folder)
        if not shards and not tables:
            raise SourceError(f"{folder} holds no img2dataset shards (.tar) or .parquet files")
        planned: Planned = [
            (ImportChunk.Kind.SHARDS, part) for part in _slices(shards, shards_per_chunk)
        ]
        if tables:
            planned.append((ImportChunk.Kind.FAILED_DOWNLOADS, [str(path) for path in tables]))
        return planned, None
    raise SourceError(f"unknown source kind {kind!r}")


def import_plan(*, dataset: Dataset, queue_chunks: bool) -> list[int]:
    """Record the import's chunks (once) and return the ids of those still to index.

    A first run lists the source; a resumed or recovered import, whose chunks exist, only
    puts its failed chunks back to pending. With queue_chunks, one index_chunk task per
    chunk is sent when the transaction commits. An import with nothing to index (an empty
    source, a re-import that finds nothing new) is completed here.
    """
    if not dataset.import_chunks.exists():
        planned, size = _list_candidates(dataset)  # slow (extraction, walk): no lock held
        with transaction.atomic():
            locked = Dataset.objects.select_for_update().get(pk=dataset.pk)
            if locked.state != Dataset.State.IMPORTING:
                raise ImportStopped  # cancelled while the source was listed
            if not locked.import_chunks.exists():  # else a second delivery planned it first
                ImportChunk.objects.bulk_create(
                    ImportChunk(
                        dataset=locked, index=index, kind=kind, items=items, item_count=len(items)
                    )
                    for index, (kind, items) in enumerate(planned)
                )
                refresh_import_counts(locked)
                Dataset.objects.filter(pk=locked.pk).update(
                    total=size if size is not None else F("processed")
                )
    with transaction.atomic():
        locked = Dataset.objects.select_for_update().get(pk=dataset.pk)
        if locked.state != Dataset.State.IMPORTING:
            raise ImportStopped
        locked.import_chunks.filter(state=ImportChunk.State.FAILED).update(
            state=ImportChunk.State.PENDING, error=""
        )
        chunk_ids = list(
            locked.import_chunks.filter(state=ImportChunk.State.PENDING).values_list(
                "id", flat=True
            )
        )
        if not chunk_ids:
            _complete(locked)
        elif queue_chunks:
            dispatch.send_on_commit(dispatch.INDEX_CHUNK, chunk_ids)
    logger.info(
        "import of dataset %s: %s chunks to index%s",
        dataset.pk,
        len(chunk_ids),
        " (queued)" if queue_chunks else "",
    )
    return chunk_ids


def index_chunks_requeue(*, dataset: Dataset, chunk_ids: list[int]) -> None:
    """Send the tasks of an importing dataset's chunks again (recovery); safe to repeat."""
    with transaction.atomic():
        Dataset.objects.filter(pk=dataset.pk, state=Dataset.State.IMPORTING).update(
            heartbeat_at=timezone.now()
        )
        dispatch.send_on_commit(dispatch.INDEX_CHUNK, chunk_ids)


# --- One chunk on one worker -------------------------------------------------------------------


def index_chunk_process(
    *,
    chunk_id: int,
    worker: str = "",
    url_fetcher: UrlFetcher | None = None,
    after_batch: AfterBatch | None = None,
) -> ImportChunk:
    """Index one chunk's candidates; safe to run twice (what is recorded is skipped).

    A chunk whose dataset is no longer importing (cancelled, failed) does nothing and stays
    pending for a resume; a cancellation seen between batches stops it the same way.
    """
    chunk = ImportChunk.objects.select_related("dataset").get(pk=chunk_id)
    dataset = chunk.dataset
    if chunk.state == ImportChunk.State.DONE or dataset.state != Dataset.State.IMPORTING:
        return chunk
    field = ImportChunk._meta.get_field("worker")
    ImportChunk.objects.filter(pk=chunk.pk).exclude(state=ImportChunk.State.DONE).update(
        attempts=F("attempts") + 1,
        started_at=timezone.now(),
        worker=worker[: field.max_length] if worker else F("worker"),
    )
    timings: dict[str, float] = {}
    started = time.perf_counter()
    try:
        with ThreadPoolExecutor(max_workers=_pool_size(chunk.kind)) as pool:
            _index_items(
                dataset,
                chunk,
                pool=pool,
                fetcher=url_fetcher,
                after_batch=after_batch,
            )
    except ImportStopped:
        logger.info("import chunk %s of dataset %s stopped: cancelled", chunk.index, dataset.pk)
        chunk.refresh_from_db()
        return chunk
    timings["index"] = round(time.perf_counter() - started, 4)
    return _chunk_done(chunk, timings=timings)


def _pool_size(kind: str) -> int:
    if kind in (ImportChunk.Kind.URLS, ImportChunk.Kind.TABLE_ROWS):
        return URL_DOWNLOAD_WORKERS  # waiting on the network, not the CPU
    return max(1, os.cpu_count() or 2)


def _index_items(
    dataset: Dataset,
    chunk: ImportChunk,
    *,
    pool: ThreadPoolExecutor,
    fetcher: UrlFetcher | None,
    after_batch: AfterBatch | None,
) -> None:
    if chunk.kind == ImportChunk.Kind.SHARDS:
        for shard in chunk.items:
            if not still_importing(dataset.pk):
                raise ImportStopped
            index_shard(dataset, shard, pool=pool, after_batch=after_batch)
        return
    if chunk.kind == ImportChunk.Kind.FAILED_DOWNLOADS:
        rows = failed_download_rows([Path(path) for path in chunk.items])
        known = _recorded(dataset, "relative_path", [row.relative_path for row in rows])
        todo = [row for row in rows if row.relative_path not in known]
        for start in range(0, len(todo), IMPORT_BATCH):
            record_batch(dataset, todo[start : start + IMPORT_BATCH], total_is_processed=True)
        return
    make_row = _row_maker(dataset, chunk.kind, fetcher)
    if chunk.kind == ImportChunk.Kind.FILES:
        known = _recorded(dataset, "relative_path", [item[0] for item in chunk.items])
        todo = [item for item in chunk.items if item[0] not in known]
    else:
        known = _recorded(dataset, "source_url", [item[1] for item in chunk.items])
        todo = [item for item in chunk.items if item[1] not in known]
    for start in range(0, len(todo), IMPORT_BATCH):
        if not still_importing(dataset.pk):
            raise ImportStopped
        record_batch(dataset, list(pool.map(make_row, todo[start : start + IMPORT_BATCH])))
        if after_batch:
            after_batch()


def _recorded(dataset: Dataset, field: str, values: list[str]) -> set[str]:
    """Which of these paths or URLs the dataset already has (a resumed chunk, a re-import)."""
    found: set[str] = set()
    for start in range(0, len(values), 2000):
        found.update(
            Image.objects.filter(
                dataset=dataset, **{f"{field}__in": values[start : start + 2000]}
            ).values_list(field, flat=True)
        )
    return found


def _row_maker(dataset: Dataset, kind: str, fetcher: UrlFetcher | None) -> Callable[[Any], Image]:
    limits = image_limits()
    root = dataset.root_path
    if kind == ImportChunk.Kind.FILES:

        def probe(item: list) -> Image:
            path, problem = item
            if problem is not None:
                return Image(relative_path=path, status=Image.Status.FAILED, error=problem[:500])
            return probe_file(root, path, limits)

        return probe
    store = dataset_file_writer(dataset)
    fetch_with = fetcher or default_url_fetcher()
    if kind == ImportChunk.Kind.URLS:
        return lambda item: download_image(item[0], item[1], item[2], store, fetch_with, limits)

    def fetch_row(item: list) -> Image:
        index, url, problem, metadata = item
        key = metadata.get("key")
        return download_image(
            index, url, problem, store, fetch_with, limits,
            metadata=metadata, sample_key=str(key) if key is not None else "",
        )  # fmt: skip

    return fetch_row


# --- Finishing -----------------------------------------------------------------------------------


def _chunk_done(chunk: ImportChunk, *, timings: dict[str, float]) -> ImportChunk:
    """Mark the chunk done; the one that finds every chunk done completes the dataset."""
    recorded = Image.objects.filter(dataset_id=chunk.dataset_id)
    with transaction.atomic():
        # The dataset row first (every writer of an import locks it before its chunks): the
        # chunks' last transactions run one after another, so exactly one sees "all done".
        dataset = Dataset.objects.select_for_update().get(pk=chunk.dataset_id)
        updated = (
            ImportChunk.objects.filter(pk=chunk.pk)
            .exclude(state=ImportChunk.State.DONE)
            .update(
                state=ImportChunk.State.DONE,
                finished_at=timezone.now(),
                error="",
                timings=timings,
                recorded=_count_chunk_images(chunk, recorded),
                failed=_count_chunk_images(chunk, recorded.filter(status=Image.Status.FAILED)),
            )
        )
        others_left = dataset.import_chunks.exclude(state=ImportChunk.State.DONE).exists()
        if updated and dataset.state == Dataset.State.IMPORTING and not others_left:
            _complete(dataset)
    chunk.refresh_from_db()
    return chunk


def _count_chunk_images(chunk: ImportChunk, images: Any) -> int:
    """The images of the dataset that came from this chunk's candidates."""
    if chunk.kind == ImportChunk.Kind.SHARDS:
        return sum(images.filter(container=shard).count() for shard in chunk.items)
    if chunk.kind == ImportChunk.Kind.FAILED_DOWNLOADS:
        return int(images.filter(relative_path__startswith="[failed download] ").count())
    if chunk.kind == ImportChunk.Kind.FILES:
        return len(_in(images, "relative_path", [item[0] for item in chunk.items]))
    return len(_in(images, "source_url", [item[1] for item in chunk.items]))


def _in(images: Any, field: str, values: list) -> set:
    found: set = set()
    for start in range(0, len(values), 2000):
        part = values[start : start + 2000]
        found.update(images.filter(**{f"{field}__in": part}).values_list(field, flat=True))
    return found


def _complete(dataset: Dataset) -> None:
    """IMPORTING -> READY with exact counts; the caller holds the dataset's row lock."""
    refresh_import_counts(dataset, total_is_processed=dataset.source_kind in SHARD_SOURCES)
    finished = Dataset.objects.filter(pk=dataset.pk, state=Dataset.State.IMPORTING).update(
        state=Dataset.State.READY, import_finished_at=timezone.now()
    )
    dataset.refresh_from_db()
    if finished:
        dataset_indexing_finished(dataset=dataset)


def dataset_indexing_finished(*, dataset: Dataset) -> None:
    """The one place an import's indexing has finished: called exactly once per import,
    inside the transaction that made the dataset READY (work to queue from here goes
    through dispatch.send_on_commit)."""
    logger.info(
        "imported dataset %s: %s files, %s failed", dataset.pk, dataset.total, dataset.failed
    )
    # Known-bad images are marked before any review: by this task, queued outside the
    # import's transaction (a large bank takes minutes), or by the first scoring run's
    # start when that comes first (scoring_run_start matches when the matches are stale).
    dispatch.send_on_commit(dispatch.MATCH_DATASET_BANKS, [dataset.pk])


def index_chunk_fail(*, chunk_id: int, reason: str) -> None:
    """A chunk that cannot be indexed at all fails the import with the reason; a resume
    queues it again. A cancelled or finished import keeps its state."""
    chunk = ImportChunk.objects.filter(pk=chunk_id).first()
    if chunk is None:
        return
    reason = f"import chunk {chunk.index}: {reason}"[:5000]
    with transaction.atomic():
        Dataset.objects.select_for_update().get(pk=chunk.dataset_id)
        ImportChunk.objects.filter(pk=chunk_id).exclude(state=ImportChunk.State.DONE).update(
            state=ImportChunk.State.FAILED, error=reason
        )
        failed = (
            Dataset.objects.filter(pk=chunk.dataset_id)
            .exclude(state__in=[Dataset.State.READY, Dataset.State.CANCELLED])
            .update(state=Dataset.State.FAILED, error=reason, import_finished_at=timezone.now())
        )
    if failed:
        # The extraction had finished (chunks exist): keep it for the resume.
        discard_upload(Dataset.objects.get(pk=chunk.dataset_id), keep_extracted=True)
    logger.error("import chunk %s failed: %s", chunk_id, reason)


def import_run_here(
    *,
    dataset: Dataset,
    chunk_ids: list[int],
    url_fetcher: UrlFetcher | None = None,
    after_batch: AfterBatch | None = None,
) -> None:
    """Index the chunks in this process, one after another (the import command, tests)."""
    for chunk_id in chunk_ids:
        chunk = index_chunk_process(
            chunk_id=chunk_id, url_fetcher=url_fetcher, after_batch=after_batch
        )
        if chunk.state != ImportChunk.State.DONE:
            raise ImportStopped
