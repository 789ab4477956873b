"""img2dataset output folders (its webdataset output format): `00000.tar`, `00001.tar`, ...
shards holding the downloaded images with `.json` / `.txt` sidecars, and one `.parquet` per
shard with a row per URL (key, url, caption, status, error_message, sizes...).

The shards are imported as WebDataset shards; a parquet row whose download did not succeed
(status != "success") becomes a failed image with img2dataset's error message.
"""

from __future__ import annotations

import json
from pathlib import Path

from curation.models import Image


def folder_contents(folder: Path) -> tuple[list[str], list[Path]]:
    """The folder's shards and parquet files, in name order (img2dataset's own layout)."""
    shards = sorted(str(p) for p in folder.glob("*.tar") if p.is_file() and not p.is_symlink())
    tables = sorted(p for p in folder.glob("*.parquet") if p.is_file() and not p.is_symlink())
    return shards, tables


def failed_download_rows(tables: list[Path]) -> list[Image]:
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
