"""Many-row INSERT and UPDATE statements for the hot paths (scores and review items of a chunk).

PostgreSQL gets one statement per call: each column travels as one array parameter and
``unnest`` turns the arrays back into rows, so 20,000 rows cost one round trip and one plan
(executemany measured ~70 us per row there). SQLite runs in-process, where executemany of
plain tuples is the fastest path it has.

Table and column names come from model metadata, never from users; values are always bound.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection


def _quoted(names: Sequence[str]) -> list[str]:
    return [connection.ops.quote_name(name) for name in names]


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
