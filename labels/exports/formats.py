"""Export rows as file bytes, one function per format; each is deterministic (rows in the
order given, keys in ROW_COLUMNS order), so unchanged data gives the same bytes.

Provenance: JSON files hold it as a `provenance` object, Parquet files in the schema metadata
(key `q16_provenance`); every export also gets a sidecar .json with it, which is the only
place the tabular and list formats (CSV, JSONL, hash lists, hash-bank CSV) carry it, so that
those load into any tool as they are.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable
from typing import Any

from audit.spreadsheet import spreadsheet_cell
from curation.models import Export
from labels.exports.rows import ROW_COLUMNS

PARQUET_PROVENANCE_KEY = b"q16_provenance"
# ThreatExchange's `threatexchange dataset --print --csv` columns, which HMA and the
# python-threatexchange file exchange read back: one signal per row.
HASH_BANK_COLUMNS = ("signal_type", "signal_str", "collab", "category", "tags")
PDQ_SIGNAL_TYPE = "pdq"
POSITIVE_CLASS = "POSITIVE_CLASS"  # confirmed or matched: known bad
INVESTIGATION_SEED = "INVESTIGATION_SEED"  # flagged, not yet settled: worth a look
HASH_LIST_COLUMNS: dict[str, str] = {
    Export.Format.SHA256: "sha256",
    Export.Format.PHASH: "phash",
    Export.Format.PDQ: "pdq",
}


def _cell(value: Any) -> Any:
    """A CSV cell: lists joined with ';'; text that a spreadsheet would run is neutralised."""
    if isinstance(value, list):
        value = ";".join(value)
    return spreadsheet_cell(value) if isinstance(value, str) else value


def render_csv(rows: list[dict[str, Any]], provenance: dict[str, Any]) -> bytes:
    handle = io.StringIO(newline="")
    writer = csv.DictWriter(handle, fieldnames=ROW_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    # Paths, keys and labels come from the dataset's owners: no cell may run as a formula.
    writer.writerows({key: _cell(value) for key, value in row.items()} for row in rows)
    return handle.getvalue().encode("utf-8")


def render_json(rows: list[dict[str, Any]], provenance: dict[str, Any]) -> bytes:
    return json.dumps(
        {"provenance": provenance, "rows": rows}, indent=1, ensure_ascii=False
    ).encode("utf-8")


def render_jsonl(rows: list[dict[str, Any]], provenance: dict[str, Any]) -> bytes:
    return "".join(
        json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n" for row in rows
    ).encode("utf-8")


def render_parquet(rows: list[dict[str, Any]], provenance: dict[str, Any]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [
            ("image_id", pa.int64()),
            ("sha256", pa.string()),
            ("phash", pa.string()),
            ("pdq", pa.string()),
            ("pdq_quality", pa.int16()),
            ("path", pa.string()),
            ("sample_key", pa.string()),
            ("class_label", pa.string()),
            ("score", pa.float64()),
            ("verdict", pa.string()),
            ("category", pa.string()),
            ("verdicts", pa.int32()),
            ("agreement", pa.float64()),
            ("banks", pa.list_(pa.string())),
            ("prompt_version", pa.string()),
            ("run", pa.int64()),
        ],
        metadata={PARQUET_PROVENANCE_KEY: json.dumps(provenance).encode("utf-8")},
    )
    table = pa.Table.from_pylist(rows, schema=schema)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return bytes(sink.getvalue().to_pybytes())


def hash_values(rows: Iterable[dict[str, Any]], column: str) -> list[str]:
    """The column's distinct non-empty values in row order (identical images share a hash)."""
    return list(dict.fromkeys(row[column] for row in rows if row[column]))


def _hash_list(column: str) -> Callable[[list[dict[str, Any]], dict[str, Any]], bytes]:
    def render(rows: list[dict[str, Any]], provenance: dict[str, Any]) -> bytes:
        return "".join(f"{value}\n" for value in hash_values(rows, column)).encode("ascii")

    return render


def _tag(text: str) -> str:
    """ThreatExchange tags are space-separated words."""
    return "_".join(text.split()).lower()


def hash_bank_rows(rows: Iterable[dict[str, Any]], *, collab: str) -> list[dict[str, str]]:
    """One PDQ signal per distinct hash; its category and tags from the first row with it."""
    signals: dict[str, dict[str, str]] = {}
    for row in rows:
        if not row["pdq"] or row["pdq"] in signals:
            continue
        blocked = row["verdict"] in ("inappropriate", "matched")
        tags = ["q16", *([_tag(row["category"])] if row["category"] else [])]
        tags += [f"bank:{_tag(bank)}" for bank in row["banks"]]
        signals[row["pdq"]] = {
            "signal_type": PDQ_SIGNAL_TYPE,
            "signal_str": row["pdq"],
            "collab": collab,
            "category": POSITIVE_CLASS if blocked else INVESTIGATION_SEED,
            "tags": " ".join(tags),
        }
    return list(signals.values())


def render_hash_bank(rows: list[dict[str, Any]], provenance: dict[str, Any]) -> bytes:
    handle = io.StringIO(newline="")
    writer = csv.DictWriter(handle, fieldnames=HASH_BANK_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for signal in hash_bank_rows(rows, collab=provenance["dataset"]["name"]):
        writer.writerow({key: _cell(value) for key, value in signal.items()})
    return handle.getvalue().encode("utf-8")


RENDERERS: dict[str, Callable[[list[dict[str, Any]], dict[str, Any]], bytes]] = {
    Export.Format.CSV: render_csv,
    Export.Format.JSON: render_json,
    Export.Format.JSONL: render_jsonl,
    Export.Format.PARQUET: render_parquet,
    Export.Format.SHA256: _hash_list("sha256"),
    Export.Format.PHASH: _hash_list("phash"),
    Export.Format.PDQ: _hash_list("pdq"),
    Export.Format.HASH_BANK: render_hash_bank,
}


def written_count(export_format: str, rows: list[dict[str, Any]]) -> int | None:
    """How many hashes a list or bank format holds (None: one line per row)."""
    if export_format in HASH_LIST_COLUMNS:
        return len(hash_values(rows, HASH_LIST_COLUMNS[export_format]))
    if export_format == Export.Format.HASH_BANK:
        return len(hash_values(rows, "pdq"))
    return None
