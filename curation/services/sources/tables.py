"""URL tables: CSV, TSV, JSONL or Parquet, one image URL per row in a configurable column
(default `url`); the row's other columns (caption, key, ...) become the image's metadata.

Every URL goes through the URL-list rules (curation.services.url_import: http(s) only, no
private or local addresses, size and time caps). A row without a usable URL is recorded as a
failed image with the reason; the rest import.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

from curation.models import Dataset
from curation.services.sources.common import SourceError
from curation.services.url_import import validate_url
from curation.storage import stored_open

TABLE_FORMATS = ("csv", "tsv", "jsonl", "parquet")
DEFAULT_URL_COLUMN = "url"


class TableError(ValueError):
    """The table cannot be read at all (wrong format, no such URL column)."""


@dataclass(frozen=True)
class TableRow:
    url: str
    problem: str | None
    metadata: dict


def table_format_for(name: str, chosen: str = "") -> str:
    """The explicit choice, else the file name's extension (.csv, .tsv, .jsonl, .parquet)."""
    if chosen:
        if chosen not in TABLE_FORMATS:
            raise TableError(f"unknown table format {chosen!r} (one of {', '.join(TABLE_FORMATS)})")
        return chosen
    suffix = Path(name).suffix.lower().lstrip(".")
    aliases = {"ndjson": "jsonl", "txt": "tsv", "pq": "parquet"}
    suffix = aliases.get(suffix, suffix)
    if suffix not in TABLE_FORMATS:
        raise TableError(
            f"cannot tell the table format from {Path(name).name!r}: name it .csv, .tsv, "
            ".jsonl or .parquet, or choose the format"
        )
    return suffix


def _jsonable(value: object) -> object:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return json.loads(json.dumps(value, default=str))


def _records(data: bytes, table_format: str) -> list[dict]:
    if table_format == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            return pq.read_table(pa.BufferReader(data)).to_pylist()
        except (pa.ArrowException, OSError) as exc:
            raise TableError(f"not a readable Parquet file: {exc}") from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TableError("the table is not UTF-8 text") from exc
    if table_format == "jsonl":
        records: list[dict] = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                parsed = json.loads(line)
            except ValueError:
                parsed = None
            # A bad line stays a row (a failed image with the reason), never stops the import.
            records.append(parsed if isinstance(parsed, dict) else {"_bad_line": number})
        return records
    delimiter = "\t" if table_format == "tsv" else ","
    try:
        return list(csv.DictReader(io.StringIO(text), delimiter=delimiter))
    except csv.Error as exc:
        raise TableError(f"not a readable {table_format.upper()} table: {exc}") from exc


def parse_table(data: bytes, *, table_format: str, url_column: str) -> list[TableRow]:
    """The table's rows in order: each URL (validated) and the other columns as metadata."""
    records = _records(data, table_format)
    if not records:
        raise TableError("the table has no rows")
    columns = set().union(*(record.keys() for record in records))
    if url_column not in columns:
        shown = ", ".join(sorted(str(c) for c in columns if c is not None)[:20])
        raise TableError(f"the table has no column {url_column!r} (columns: {shown})")
    rows = []
    for number, record in enumerate(records, start=1):
        metadata = {
            str(k): _jsonable(v) for k, v in record.items() if k != url_column and k is not None
        }
        raw = record.get(url_column)
        url = raw.strip() if isinstance(raw, str) else ""
        if "_bad_line" in record:
            problem: str | None = f"row {number}: not a JSON object"
        elif not url:
            problem = f"row {number}: no URL in column {url_column!r}"
        else:
            problem = validate_url(url)
        rows.append(TableRow(url=url or f"[row {number}]", problem=problem, metadata=metadata))
    return rows


def read_table_rows(dataset: Dataset) -> list[TableRow]:
    """The stored table of a URL-table dataset, parsed with its options; SourceError if not."""
    options = dataset.options or {}
    try:
        with stored_open(dataset.source) as handle:
            data = handle.read()
        return parse_table(
            data,
            table_format=options.get("table_format", "csv"),
            url_column=options.get("url_column", DEFAULT_URL_COLUMN),
        )
    except (OSError, TableError) as exc:
        raise SourceError(f"URL table unreadable: {exc}") from exc
