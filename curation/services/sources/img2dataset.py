"""img2dataset output folders (its webdataset output format): `00000.tar`, `00001.tar`, ...
shards holding the downloaded images with `.json` / `.txt` sidecars, and one `.parquet` per
shard with a row per URL (key, url, caption, status, error_message, sizes...).

The shards are imported as WebDataset shards; a parquet row whose download did not succeed
(status != "success") becomes a failed image with img2dataset's error message.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from curation.models import Dataset, Image
from curation.services.sources.common import (
    ImportStopped,
    ProgressCallback,
    SourceError,
    finish_import,
    record_batch,
    refresh_import_counts,
    still_importing,
)
from curation.services.sources.webdataset import import_shards

FAILED_ROWS_BATCH = 1000


def folder_contents(folder: Path) -> tuple[list[str], list[Path]]:
    """The folder's shards and parquet files, in name order (img2dataset's own layout)."""
    shards = sorted(str(p) for p in folder.glob("*.tar") if p.is_file() and not p.is_symlink())
    tables = sorted(p for p in folder.glob("*.parquet") if p.is_file() and not p.is_symlink())
    return shards, tables


def _failed_download_rows(tables: list[Path]) -> list[Image]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows: list[Image] = []
    for table_path in tables:
        try:
            records = pq.read_table(table_path).to_pylist()
        except (pa.ArrowException, OSError) as exc:
            rows.append(
                Image(
                    relative_path=f"[parquet] {table_path.name}"[:1024],
                    status=Image.Status.FAILED,
                    error=f"parquet file unreadable: {exc}"[:500],
                )
            )
            continue
        for record in records:
            if record.get("status") == "success":
                continue
            key = str(record.get("key") or "")
            url = str(record.get("url") or "")
            metadata = json.loads(json.dumps(record, default=str))
            rows.append(
                Image(
                    relative_path=f"[failed download] {table_path.stem} {key or url}"[:1024],
                    source_url=url[:2048],
                    sample_key=key[:512],
                    metadata=metadata,
                    status=Image.Status.FAILED,
                    error=str(record.get("error_message") or "download failed")[:500],
                )
            )
    return rows


def import_img2dataset(dataset: Dataset, *, progress: ProgressCallback | None) -> Dataset:
    folder = Path(dataset.root_path)
    if not folder.is_dir():
        raise SourceError(f"img2dataset folder {folder} does not exist or is not a folder")
    shards, tables = folder_contents(folder)
    if not shards and not tables:
        raise SourceError(f"{folder} holds no img2dataset shards (.tar) or .parquet files")
    with ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 2)) as pool:
        import_shards(dataset, shards, progress=progress, pool=pool)
    if not still_importing(dataset.pk):
        raise ImportStopped
    failed = _failed_download_rows(tables)
    for start in range(0, len(failed), FAILED_ROWS_BATCH):
        record_batch(dataset, failed[start : start + FAILED_ROWS_BATCH])
    refresh_import_counts(dataset, total_is_processed=True)
    finish_import(dataset, what="img2dataset samples")
    return dataset
