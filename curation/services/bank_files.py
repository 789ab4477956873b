"""Reading hash-bank files: this app's blocklist exports, plain hash lists, HMA/ThreatExchange CSVs.

Formats (detected from the name and the first bytes unless given):
- CSV, JSON ({"rows": [...]} or a list of objects), JSONL (one object a line) and Parquet
  blocklists as labels/exports.py writes them. Columns are found by name, so columns added
  later are ignored: `sha256`, `phash`, `pdq` (any of them, per row), and `verdict` /
  `label`, `category`, `path` / `url` kept with the entry.
- An HMA / ThreatExchange signal CSV: `signal_type,signal_str,...` (the columns of
  `threatexchange dataset --csv`: signal_type, signal_str, collab, category, tags); signal
  types pdq, sha256 (also video_sha256 / photo_sha256) and phash are read, others (md5, url,
  text) are counted as skipped. The older HMA 1.0 rows without a header (hash, indicator
  id, descriptor id, added on, labels) are read when the kind is given.
- A plain list, one hash a line (`#` comments and blank lines ignored). The kind is given,
  or inferred from the length: 16 hex digits are a pHash; 64 are a SHA-256 or a PDQ hash,
  which look alike, so for those the kind must be given.

Every problem is reported with its line (or row) number; nothing is returned unless the
whole file is good. Duplicate hashes are merged (an export lists a file's hash once per
copy of it) and counted.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from curation.bank_models import HASH_HEX_LENGTHS, HashKind
from curation.errors import ValidationFailed

FORMATS = ("auto", "csv", "json", "jsonl", "parquet", "hashes")
# Problems listed in one error message (the count says how many more there were).
MAX_PROBLEMS_SHOWN = 20

_HEX = re.compile(r"[0-9a-f]+")
_HASH_COLUMNS = {
    HashKind.SHA256: ("sha256", "content_hash", "sha256_hash"),
    HashKind.PHASH: ("phash", "perceptual_hash", "phash_hex"),
    HashKind.PDQ: ("pdq", "pdq_hash", "pdq_hex"),
}
_LABEL_COLUMNS = ("verdict", "label", "labels", "tags")
_CATEGORY_COLUMNS = ("category",)
_SOURCE_COLUMNS = ("path", "url", "source_url", "relative_path", "source", "collab")
_SIGNAL_TYPE_COLUMNS = ("signal_type", "indicator_type", "type")
_SIGNAL_VALUE_COLUMNS = ("signal_str", "signal_value", "indicator", "hash", "value")
# HMA / ThreatExchange signal type names (and a few spellings seen in the wild) -> kind.
_SIGNAL_KINDS = {
    "pdq": HashKind.PDQ,
    "hash_pdq": HashKind.PDQ,
    "pdq_hash": HashKind.PDQ,
    "sha256": HashKind.SHA256,
    "hash_sha256": HashKind.SHA256,
    "photo_sha256": HashKind.SHA256,
    "video_sha256": HashKind.SHA256,
    "phash": HashKind.PHASH,
    "hash_phash": HashKind.PHASH,
}


@dataclass(frozen=True)
class BankEntryRow:
    kind: str
    value: str
    label: str = ""
    category: str = ""
    source: str = ""


@dataclass
class ParsedBank:
    """A whole, valid bank file: its entries (unique per kind and value) and what was merged
    or skipped on the way."""

    format: str
    entries: list[BankEntryRow] = field(default_factory=list)
    duplicates: int = 0
    # Rows of signal types this app does not store (md5, url, ...), by type.
    skipped: dict[str, int] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        counts = {kind.value: 0 for kind in HashKind}
        for entry in self.entries:
            counts[entry.kind] += 1
        return counts


class BankFileError(ValidationFailed):
    """The file cannot become a bank; the message lists the problems with their lines."""

    def __init__(self, problems: list[str], *, total: int | None = None) -> None:
        total = len(problems) if total is None else total
        shown = problems[:MAX_PROBLEMS_SHOWN]
        more = f" (and {total - len(shown)} more)" if total > len(shown) else ""
        super().__init__("; ".join(shown) + more)
        self.problems = shown


def bank_file_parse(
    *, data: bytes, file_name: str = "", kind: str = "", file_format: str = "auto"
) -> ParsedBank:
    """Parse a bank file whole; raises BankFileError (a ValidationFailed) on any problem."""
    if kind and kind not in HashKind.values:
        raise BankFileError([f"Unknown hash kind {kind!r}; use one of {', '.join(HashKind)}."])
    if file_format not in FORMATS:
        raise BankFileError([f"Unknown format {file_format!r}; use one of {', '.join(FORMATS)}."])
    if not data.strip():
        raise BankFileError(["The file is empty."])
    detected = _detect(data, file_name) if file_format == "auto" else file_format
    parsed = ParsedBank(format=detected)
    if detected == "parquet":
        rows: Iterable[tuple[int, dict[str, Any]]] = _parquet_rows(data)
        _collect(parsed, _table_entries(rows, kind=kind, where="row"))
    else:
        text = _text(data)
        if detected == "json":
            _collect(parsed, _table_entries(_json_rows(text), kind=kind, where="row"))
        elif detected == "jsonl":
            _collect(parsed, _table_entries(_jsonl_rows(text), kind=kind, where="line"))
        elif detected == "csv":
            _collect(parsed, _csv_entries(text, kind=kind))
        else:
            _collect(parsed, _list_entries(text, kind=kind))
    if not parsed.entries:
        skipped = ", ".join(f"{n} {name}" for name, n in sorted(parsed.skipped.items()))
        raise BankFileError(
            [
                f"No hashes of a kind this app matches (skipped: {skipped})."
                if skipped
                else "No hashes found in the file."
            ]
        )
    return parsed


def _detect(data: bytes, file_name: str) -> str:
    name = file_name.lower()
    for suffix, detected in (
        (".parquet", "parquet"),
        (".jsonl", "jsonl"),
        (".ndjson", "jsonl"),
        (".json", "json"),
        (".csv", "csv"),
    ):
        if name.endswith(suffix):
            return detected
    if data[:4] == b"PAR1":
        return "parquet"
    head = data.lstrip()[:1]
    if head == b"[":
        return "json"
    if head == b"{":
        first_line = data.lstrip().split(b"\n", 1)[0].strip()
        try:
            first_object = json.loads(first_line)
        except ValueError:
            return "json"  # a document over several lines
        whole = isinstance(first_object, dict) and "rows" in first_object
        return "json" if whole and b"\n" not in data.strip() else "jsonl"
    first = next(
        (line for line in data.splitlines() if line.strip() and not line.startswith(b"#")), b""
    )
    header_names = {name for names in _HASH_COLUMNS.values() for name in names}
    header_names |= set(_SIGNAL_TYPE_COLUMNS)
    if b"," in first or first.strip().decode("latin-1").lower() in header_names:
        return "csv"
    return "hashes"


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise BankFileError([f"line {line}: not UTF-8 text"]) from None


def _collect(parsed: ParsedBank, found: Iterator[tuple[BankEntryRow | None, str | None]]) -> None:
    """Gather entries, merging duplicates; raise once with every problem found."""
    problems: list[str] = []
    total_problems = 0
    seen: set[tuple[str, str]] = set()
    for entry, problem in found:
        if problem is not None:
            if problem.startswith("skip:"):
                name = problem[5:]
                parsed.skipped[name] = parsed.skipped.get(name, 0) + 1
                continue
            total_problems += 1
            if len(problems) < MAX_PROBLEMS_SHOWN:
                problems.append(problem)
            continue
        assert entry is not None
        key = (entry.kind, entry.value)
        if key in seen:
            parsed.duplicates += 1
            continue
        seen.add(key)
        parsed.entries.append(entry)
    if total_problems:
        raise BankFileError(problems, total=total_problems)


def _hash_problem(value: str, kind: str) -> str | None:
    want = HASH_HEX_LENGTHS[HashKind(kind)]
    if not _HEX.fullmatch(value):
        return f"{value[:80]!r} is not a hexadecimal {kind} hash"
    if len(value) != want:
        return f"a {kind} hash has {want} hex digits, this one has {len(value)}"
    return None


def _clean(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _first(row: dict[str, Any], names: tuple[str, ...]) -> str:
    for name in names:
        if name in row and _clean(row[name]):
            return _clean(row[name])[:1024]
    return ""


def _row_entries(
    row: dict[str, Any], *, kind: str, where: str
) -> Iterator[tuple[BankEntryRow | None, str | None]]:
    """The entries of one row (a CSV record, a JSON object): a hash column per kind, or an
    HMA signal_type / signal_str pair."""
    row = {str(key).strip().lower(): value for key, value in row.items()}
    extra = {
        "label": _first(row, _LABEL_COLUMNS)[:200],
        "category": _first(row, _CATEGORY_COLUMNS)[:200],
        "source": _first(row, _SOURCE_COLUMNS),
    }
    signal_type = _first(row, _SIGNAL_TYPE_COLUMNS).lower()
    if signal_type and not any(_first(row, names) for names in _HASH_COLUMNS.values()):
        value = _first(row, _SIGNAL_VALUE_COLUMNS).lower()
        signal_kind = _SIGNAL_KINDS.get(signal_type)
        if signal_kind is None:
            yield None, f"skip:{signal_type[:40]}"
            return
        if problem := _hash_problem(value, signal_kind):
            yield None, f"{where}: {problem}"
            return
        yield BankEntryRow(kind=signal_kind, value=value, **extra), None
        return
    found = False
    for column_kind, names in _HASH_COLUMNS.items():
        if kind and column_kind != kind:
            continue
        value = _first(row, names).lower()
        if not value:
            continue
        found = True
        if problem := _hash_problem(value, column_kind):
            yield None, f"{where}: {problem}"
            continue
        yield BankEntryRow(kind=column_kind, value=value, **extra), None
    if not found:
        wanted = kind or "sha256, phash or pdq"
        yield None, f"{where}: no {wanted} hash in this row"


def _table_entries(
    rows: Iterable[tuple[int, dict[str, Any]]], *, kind: str, where: str
) -> Iterator[tuple[BankEntryRow | None, str | None]]:
    for number, row in rows:
        if not isinstance(row, dict):
            yield None, f"{where} {number}: not an object"
            continue
        yield from _row_entries(row, kind=kind, where=f"{where} {number}")


def _json_rows(text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BankFileError([f"line {exc.lineno}: not valid JSON ({exc.msg})"]) from None
    rows = document.get("rows") if isinstance(document, dict) else document
    if not isinstance(rows, list):
        raise BankFileError(['A JSON bank is a list of objects, or an object with a "rows" list.'])
    yield from enumerate(rows, start=1)


def _has_hash_fields(row: Any) -> bool:
    if not isinstance(row, dict):
        return True  # reported as "not an object"
    keys = {str(key).strip().lower() for key in row}
    names = {name for names in _HASH_COLUMNS.values() for name in names}
    return bool(keys & (names | set(_SIGNAL_TYPE_COLUMNS)))


def _jsonl_rows(text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    problems = []
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append((number, json.loads(line)))
        except json.JSONDecodeError as exc:
            problems.append(f"line {number}: not valid JSON ({exc.msg})")
    if problems:
        raise BankFileError(problems)
    # A first line without hashes is the file's provenance (dataset, run, counts), not a row.
    if rows and not _has_hash_fields(rows[0][1]):
        rows = rows[1:]
    yield from rows


def _parquet_rows(data: bytes) -> Iterator[tuple[int, dict[str, Any]]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(data))
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise BankFileError([f"not a readable Parquet file ({exc})"]) from None
    yield from enumerate(table.to_pylist(), start=1)


def _csv_entries(text: str, *, kind: str) -> Iterator[tuple[BankEntryRow | None, str | None]]:
    lines = text.splitlines()
    # Provenance lines before the header (`# dataset: ...`) are not rows.
    skip = 0
    while skip < len(lines) and (not lines[skip].strip() or lines[skip].startswith("#")):
        skip += 1
    reader = csv.reader(lines[skip:])
    try:
        header = [cell.strip().lower() for cell in next(reader)]
    except StopIteration:
        yield None, "The file is empty."
        return
    known = {name for names in _HASH_COLUMNS.values() for name in names}
    known |= set(_SIGNAL_TYPE_COLUMNS)
    if not known & set(header):
        # No header: the HMA 1.0 rows (hash first), which say nothing of their kind.
        if not kind:
            yield (
                None,
                (
                    f"line {skip + 1}: no column named sha256, phash, pdq or signal_type; "
                    "for a headerless HMA file give the hash kind"
                ),
            )
            return
        yield from _headerless_entries(lines, skip=skip, kind=kind)
        return
    try:
        for offset, cells in enumerate(reader, start=skip + 2):
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) > len(header):
                yield None, f"line {offset}: {len(cells)} cells under a {len(header)}-column header"
                continue
            row = dict(zip(header, cells, strict=False))
            yield from _row_entries(row, kind=kind, where=f"line {offset}")
    except csv.Error as exc:
        yield None, f"line {reader.line_num + skip}: {exc}"


def _headerless_entries(
    lines: list[str], *, skip: int, kind: str
) -> Iterator[tuple[BankEntryRow | None, str | None]]:
    try:
        for offset, cells in enumerate(csv.reader(lines[skip:]), start=skip + 1):
            if not cells or not cells[0].strip():
                continue
            value = cells[0].strip().lower()
            if problem := _hash_problem(value, kind):
                yield None, f"line {offset}: {problem}"
                continue
            label = cells[4].strip()[:200] if len(cells) > 4 else ""
            yield BankEntryRow(kind=kind, value=value, label=label), None
    except csv.Error as exc:
        yield None, f"CSV: {exc}"


def _list_entries(text: str, *, kind: str) -> Iterator[tuple[BankEntryRow | None, str | None]]:
    for number, raw in enumerate(text.splitlines(), start=1):
        value = raw.strip().lower()
        if not value or value.startswith("#"):
            continue
        line_kind = kind
        if not line_kind:
            if len(value) == HASH_HEX_LENGTHS[HashKind.PHASH]:
                line_kind = HashKind.PHASH
            elif len(value) == 64:
                yield (
                    None,
                    (
                        f"line {number}: 64 hex digits is a SHA-256 or a PDQ hash; "
                        "give the kind (sha256 or pdq)"
                    ),
                )
                continue
            else:
                yield (
                    None,
                    (
                        f"line {number}: {len(value)} characters is no hash this app knows "
                        "(16 hex digits: pHash; 64: SHA-256 or PDQ)"
                    ),
                )
                continue
        if problem := _hash_problem(value, line_kind):
            yield None, f"line {number}: {problem}"
            continue
        yield BankEntryRow(kind=line_kind, value=value), None
