"""Reading every export format back (what a dataset's users would do with the file)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from curation.models import Export
from curation.storage import stored_open

INTS = ("image_id", "pdq_quality", "verdicts", "run")
FLOATS = ("score", "agreement")


def export_bytes(export: Export, *, provenance: bool = False) -> bytes:
    with stored_open(export.provenance_path if provenance else export.file_path) as handle:
        return handle.read()


def _typed_csv_row(row: dict[str, str]) -> dict[str, Any]:
    typed: dict[str, Any] = dict(row)
    for key in INTS:
        typed[key] = int(row[key]) if row[key] else None
    for key in FLOATS:
        typed[key] = float(row[key]) if row[key] else None
    typed["banks"] = row["banks"].split(";") if row["banks"] else []
    typed["prompt_version"] = row["prompt_version"] or None
    return typed


def parse_rows(export: Export) -> list[dict[str, Any]]:
    """The rows of a CSV, JSON, JSONL or Parquet export as Python values."""
    data = export_bytes(export)
    if export.format == Export.Format.CSV:
        return [_typed_csv_row(row) for row in csv.DictReader(io.StringIO(data.decode()))]
    if export.format == Export.Format.JSON:
        return json.loads(data)["rows"]
    if export.format == Export.Format.JSONL:
        return [json.loads(line) for line in data.decode().splitlines()]
    if export.format == Export.Format.PARQUET:
        return pq.read_table(pa.BufferReader(data)).to_pylist()
    raise AssertionError(f"not a row format: {export.format}")


def parse_lines(export: Export) -> list[str]:
    return export_bytes(export).decode("ascii").splitlines()


def parse_hash_bank(export: Export) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(export_bytes(export).decode())))


def parquet_provenance(export: Export) -> dict[str, Any]:
    schema = pq.read_schema(pa.BufferReader(export_bytes(export)))
    return json.loads(schema.metadata[b"q16_provenance"])
