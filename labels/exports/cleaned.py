"""Cleaned copies of a dataset: the keep-list's images, in the dataset's own layout.

- WebDataset shards: each source shard is read as a stream and its kept samples' members
  (image and every sidecar, same names, same bytes, same order) go to a shard of the same
  name; a blocked sample leaves no member behind.
- ImageFolder tree: each kept loose file at its path in the dataset (class folders kept),
  copied, hard-linked or symlinked (links only on this machine's disk).
- URL table: the source table's rows whose URL is kept, same columns, same format.

The target is a folder under Q16_EXPORT_ROOTS or an fsspec URL under
Q16_EXPORT_URL_PREFIXES (checked when the export is created, curation.services.exports);
`q16-provenance.json` next to the copy says what it is.
"""

from __future__ import annotations

import csv
import io
import json
import os
import posixpath
import shutil
import tarfile
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import IO, Any

from curation.models import Dataset, Export
from worker.engine.locators import is_url, open_binary

PROVENANCE_NAME = "q16-provenance.json"
PROGRESS_EVERY = 500
Progress = Callable[[int], None]


class CopyError(Exception):
    """The copy cannot be made (source gone, unsupported layout); the export fails with it."""


class CopyTarget:
    """A folder on this machine or at an fsspec URL; names inside it are relative POSIX
    paths that never leave it."""

    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self.remote = is_url(target)

    def _safe(self, name: str) -> str:
        clean = posixpath.normpath(name.replace("\\", "/")).lstrip("/")
        if clean in ("", ".") or clean.split("/")[0] == "..":
            raise CopyError(f"name outside the target: {name!r}")
        return clean

    def local(self, name: str) -> Path:
        path = Path(self.target) / self._safe(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def open(self, name: str) -> IO[bytes]:
        if not self.remote:
            return self.local(name).open("wb")
        import fsspec

        return fsspec.open(f"{self.target}/{self._safe(name)}", "wb").open()

    def write(self, name: str, data: bytes) -> None:
        with self.open(name) as handle:
            handle.write(data)

    def put(self, source: Path, name: str, mode: str) -> None:
        """One loose file into the copy: copied, or linked where the target is local."""
        if self.remote or mode == Export.CopyMode.COPY:
            with source.open("rb") as reader, self.open(name) as writer:
                shutil.copyfileobj(reader, writer, 1 << 20)
            return
        path = self.local(name)
        if path.is_symlink() or path.exists():
            path.unlink()
        if mode == Export.CopyMode.HARDLINK:
            os.link(source, path)
        else:
            os.symlink(source, path)


def _shard_names(shards: list[str]) -> dict[str, str]:
    """Each source shard's name in the copy: its file name, numbered where two collide."""
    names: dict[str, str] = {}
    used: set[str] = set()
    for index, shard in enumerate(shards):
        name = PurePosixPath(shard.split("://", 1)[-1]).name or f"shard-{index:06d}.tar"
        if name in used:
            name = f"{index:06d}-{name}"
        used.add(name)
        names[shard] = name
    return names


def _copy_webdataset(
    dataset: Dataset, images: list[dict[str, Any]], target: CopyTarget, progress: Progress
) -> dict[str, Any]:
    from curation.services.sources.webdataset import split_key

    kept: dict[str, set[str]] = defaultdict(set)
    for image in images:
        kept[image["container"]].add(image["sample_key"])
    shards = list((dataset.options or {}).get("shards") or [])
    shards += sorted(set(kept) - set(shards))
    names = _shard_names(shards)
    done = samples = 0
    written: list[str] = []
    for shard in shards:
        keys = kept.get(shard)
        if not keys:
            continue  # every sample of the shard blocked (or failed): no empty shard
        try:
            with (
                open_binary(shard) as source,
                tarfile.open(fileobj=source, mode="r|") as reader,
                target.open(names[shard]) as sink,
                tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as writer,
            ):
                last_key = None
                for member in reader:
                    parts = split_key(member.name) if member.isfile() else None
                    if parts is None or parts[0] not in keys:
                        continue
                    writer.addfile(member, reader.extractfile(member))
                    if parts[0] != last_key:
                        last_key = parts[0]
                        samples += 1
                        done += 1
                        if done % PROGRESS_EVERY == 0:
                            progress(done)
        except (tarfile.TarError, OSError) as exc:
            raise CopyError(f"shard {shard} unreadable: {exc}") from exc
        written.append(names[shard])
    return {"shards": written, "samples": samples}


def _copy_imagefolder(
    dataset: Dataset,
    images: list[dict[str, Any]],
    target: CopyTarget,
    mode: str,
    progress: Progress,
) -> dict[str, Any]:
    root = Path(dataset.root_path).resolve()
    for done, image in enumerate(images, start=1):
        if image["container"]:
            raise CopyError("the dataset's images are shard members: make a WebDataset copy")
        source = (root / image["relative_path"]).resolve()
        if not source.is_relative_to(root) or not source.is_file():
            raise CopyError(f"image file missing: {image['relative_path']}")
        target.put(source, image["relative_path"], mode)
        if done % PROGRESS_EVERY == 0:
            progress(done)
    return {"files": len(images)}


def _copy_table(dataset: Dataset, images: list[dict[str, Any]], target: CopyTarget) -> dict:
    options = dataset.options or {}
    table_format = options.get("table_format", "csv")
    url_column = options.get("url_column", "url")
    kept = {image["source_url"] for image in images}
    try:
        data = Path(dataset.source).read_bytes()
    except OSError as exc:
        raise CopyError(f"the source table is gone: {exc}") from exc
    name = PurePosixPath(dataset.source_name or f"table.{table_format}").name
    if table_format == "parquet":
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        table = pq.read_table(pa.BufferReader(data))
        urls = pc.utf8_trim_whitespace(table.column(url_column).cast(pa.string()))
        filtered = table.filter(
            pc.fill_null(pc.is_in(urls, value_set=pa.array(sorted(kept))), False)
        )
        sink = pa.BufferOutputStream()
        pq.write_table(filtered, sink)
        target.write(name, sink.getvalue().to_pybytes())
        return {"rows": filtered.num_rows, "name": name}
    text = data.decode("utf-8-sig")
    if table_format == "jsonl":
        lines = []
        for line in text.splitlines():
            try:
                record = json.loads(line) if line.strip() else None
            except ValueError:
                record = None
            value = record.get(url_column) if isinstance(record, dict) else None
            if isinstance(value, str) and value.strip() in kept:
                lines.append(line + "\n")
        target.write(name, "".join(lines).encode("utf-8"))
        return {"rows": len(lines), "name": name}
    delimiter = "\t" if table_format == "tsv" else ","
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header = next(reader, [])
    if url_column not in header:
        raise CopyError(f"the source table has no column {url_column!r}")
    index = header.index(url_column)
    out = io.StringIO(newline="")
    # Training data, not a spreadsheet: values are copied as they are.
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    writer.writerow(header)
    count = 0
    for record in reader:
        if len(record) > index and record[index].strip() in kept:
            writer.writerow(record)
            count += 1
    target.write(name, out.getvalue().encode("utf-8"))
    return {"rows": count, "name": name}


def cleaned_copy_write(
    *,
    export: Export,
    images: list[dict[str, Any]],
    provenance: dict[str, Any],
    progress: Progress,
) -> dict[str, Any]:
    """Write the cleaned copy of the kept `images` to the export's target; what was written."""
    target = CopyTarget(export.copy_target)
    dataset = export.dataset
    if export.copy_kind == Export.CopyKind.WEBDATASET:
        written = _copy_webdataset(dataset, images, target, progress)
    elif export.copy_kind == Export.CopyKind.IMAGEFOLDER:
        written = _copy_imagefolder(dataset, images, target, export.copy_mode, progress)
    elif export.copy_kind == Export.CopyKind.TABLE:
        written = _copy_table(dataset, images, target)
    else:
        raise CopyError(f"unknown cleaned copy {export.copy_kind!r}")
    body = {**provenance, "cleaned_copy": {**(provenance.get("cleaned_copy") or {}), **written}}
    target.write(PROVENANCE_NAME, json.dumps(body, indent=1, ensure_ascii=False).encode("utf-8"))
    return written
