"""Many-row INSERT and UPDATE statements for the hot paths (scores and review items of a chunk).

PostgreSQL gets one statement per call: each column travels as one array parameter and
``unnest`` turns the arrays back into rows, so 20,000 rows cost one round trip and one plan
(executemany measured ~70 us per row there). SQLite runs in-process, where executemany of
plain tuples is the fastest path it has.

Table and column names come from model metadata, never from users; values are always bound.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
from django.db import connection, transaction


def _quoted(names: Sequence[str]) -> list[str]:
    return [connection.ops.quote_name(name) for name in names]


@contextmanager
def jit_off() -> Iterator[None]:
    """A transaction (or the caller's) in which PostgreSQL does not JIT-compile queries.

    The chunk statements are index-driven and take tens of milliseconds; their plans'
    costs still pass jit_above_cost, and compiling took about a sixth of each reference
    look-up (10 ms of 60). SET LOCAL ends with the transaction. Elsewhere: a transaction.
    """
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL jit = off")
        yield


def insert_rows(
    *,
    table: str,
    columns: Sequence[str],
    pg_types: Sequence[str],
    rows: Sequence[Sequence[Any]],
    on_conflict: str,
) -> None:
    """INSERT rows (tuples in ``columns`` order) with an ``ON CONFLICT ...`` clause.

    ``pg_types`` are the PostgreSQL element types of the columns (``bigint``, ``float8``...).
    """
    if not rows:
        return
    names = ", ".join(_quoted(columns))
    quoted_table = connection.ops.quote_name(table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            arrays = ", ".join(f"%s::{pg_type}[]" for pg_type in pg_types)
            cursor.execute(
                f"INSERT INTO {quoted_table} ({names}) SELECT * FROM unnest({arrays}) {on_conflict}",
                [list(column) for column in zip(*rows, strict=True)],
            )
        else:
            placeholders = ", ".join(["%s"] * len(columns))
            cursor.executemany(
                f"INSERT INTO {quoted_table} ({names}) VALUES ({placeholders}) {on_conflict}", rows
            )


def update_rows(
    *,
    table: str,
    key: str,
    columns: Sequence[str],
    pg_types: Sequence[str],
    rows: Sequence[Sequence[Any]],
) -> None:
    """UPDATE ``columns`` of the rows whose ``key`` matches; each row is (key, *values).

    ``pg_types`` covers the key first, then the columns.
    """
    if not rows:
        return
    quoted_table = connection.ops.quote_name(table)
    quoted_key, *quoted_columns = _quoted([key, *columns])
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            arrays = ", ".join(f"%s::{pg_type}[]" for pg_type in pg_types)
            aliases = ", ".join([quoted_key, *quoted_columns])
            assignments = ", ".join(f"{column} = new.{column}" for column in quoted_columns)
            cursor.execute(
                f"UPDATE {quoted_table} AS t SET {assignments} "
                f"FROM unnest({arrays}) AS new({aliases}) WHERE t.{quoted_key} = new.{quoted_key}",
                [list(column) for column in zip(*rows, strict=True)],
            )
        else:
            assignments = ", ".join(f"{column} = %s" for column in quoted_columns)
            cursor.executemany(
                f"UPDATE {quoted_table} SET {assignments} WHERE {quoted_key} = %s",
                [(*row[1:], row[0]) for row in rows],
            )


# PostgreSQL's binary COPY framing: signature, flags, header-extension length; a trailer.
_PG_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_PG_COPY_TRAILER = b"\xff\xff"
# The fixed-width column types the binary paths handle (each value travels as 8 bytes).
_PG_FIXED_TYPES = {"bigint": ">i8", "float8": ">f8"}


def _copy_row_dtype(pg_types: Sequence[str]) -> np.dtype:
    """One binary COPY tuple of these columns: field count, then (length, value) per field."""
    fields: list[tuple[str, str]] = [("fields", ">i2")]
    for index, pg_type in enumerate(pg_types):
        if pg_type not in _PG_FIXED_TYPES:
            raise ValueError(f"binary COPY handles bigint and float8 columns, not {pg_type}")
        fields += [(f"length{index}", ">i4"), (f"value{index}", _PG_FIXED_TYPES[pg_type])]
    return np.dtype(fields)


def copy_in_columns(
    *, table: str, columns: Sequence[str], pg_types: Sequence[str], arrays: Sequence[np.ndarray]
) -> None:
    """Append rows given as one array per column (bigint and float8 columns only).

    PostgreSQL: one binary COPY whose bytes numpy lays out (no per-row Python), the
    fastest way in; COPY has no ON CONFLICT, so callers delete what they replace first.
    Elsewhere: executemany of the rows.
    """
    count = len(arrays[0]) if arrays else 0
    if count == 0:
        return
    quoted_table = connection.ops.quote_name(table)
    names = ", ".join(_quoted(columns))
    if connection.vendor != "postgresql":
        placeholders = ", ".join(["%s"] * len(columns))
        with connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {quoted_table} ({names}) VALUES ({placeholders})",
                list(zip(*(np.asarray(a).tolist() for a in arrays), strict=True)),
            )
        return
    rows = np.empty(count, dtype=_copy_row_dtype(pg_types))
    rows["fields"] = len(columns)
    for index, array in enumerate(arrays):
        rows[f"length{index}"] = 8
        rows[f"value{index}"] = array
    connection.ensure_connection()
    statement = f"COPY {quoted_table} ({names}) FROM STDIN (FORMAT binary)"
    with connection.connection.cursor() as pg_cursor, pg_cursor.copy(statement) as copy:
        copy.write(_PG_COPY_HEADER)
        copy.write(rows.tobytes())
        copy.write(_PG_COPY_TRAILER)


def select_columns(*, sql: str, params: Sequence[Any], pg_types: Sequence[str]) -> np.ndarray:
    """A query's rows as an (N, columns) array (bigint or float8 columns, no NULLs), float64
    if any column is float8, else int64.

    PostgreSQL: each column comes back packed into one bytea (``string_agg`` of its values'
    binary send form; the aggregates of one query see the rows in the same order), parsed
    by numpy: no Python object per row, where a cursor or a COPY out costs one per row.
    Elsewhere: fetchall.
    """
    result_type = np.float64 if "float8" in pg_types else np.int64
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(sql, list(params))
            fetched = cursor.fetchall()
        return np.array(fetched, dtype=result_type).reshape(len(fetched), len(pg_types))
    import psycopg

    for pg_type in pg_types:
        if pg_type not in _PG_FIXED_TYPES:
            raise ValueError(f"packed selects handle bigint and float8 columns, not {pg_type}")
    send = {"bigint": "int8send", "float8": "float8send"}
    names = [f"c{index}" for index in range(len(pg_types))]
    packed = ", ".join(
        f"string_agg({send[pg_type]}(q.{name}::{pg_type}), ''::bytea)"
        for name, pg_type in zip(names, pg_types, strict=True)
    )
    query = f"SELECT count(*), {packed} FROM ({sql}) AS q({', '.join(names)})"
    with jit_off(), psycopg.Cursor(connection.connection) as pg_cursor:
        pg_cursor.execute(query, list(params), binary=True)
        result = pg_cursor.fetchone()
    if result is None:  # an aggregate always returns a row
        raise ValueError("the packed select returned no row")
    count, *columns = result
    out = np.empty((count, len(pg_types)), dtype=result_type)
    for index, (column, pg_type) in enumerate(zip(columns, pg_types, strict=True)):
        values = np.frombuffer(column or b"", dtype=_PG_FIXED_TYPES[pg_type])
        if values.size != count:
            raise ValueError(f"column {index} of the query has NULLs ({values.size} of {count})")
        out[:, index] = values
    return out
