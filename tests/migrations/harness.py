"""What the migration tests share: a scratch PostgreSQL database for a migration script
(tests.helpers.run_django_script runs it, as an operator runs `manage.py migrate`)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from tests.conftest import require


@contextmanager
def scratch_postgres_url(prefix: str) -> Iterator[str]:
    """A new, empty PostgreSQL database on the test server (its URL), dropped afterwards."""
    from django.db import connection

    db = connection.settings_dict
    require(db["ENGINE"].endswith("postgresql"), "the test database is not PostgreSQL")
    import psycopg

    host, port = db.get("HOST") or "127.0.0.1", db.get("PORT") or 5432
    user, password = db.get("USER") or "", db.get("PASSWORD") or ""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin_dsn = dict(host=host, port=port, user=user, password=password, dbname="postgres")
    with psycopg.connect(**admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        auth = f"{user}{':' + password if password else ''}@" if user else ""
        yield f"postgres://{auth}{host}:{port}/{name}"
    finally:
        with psycopg.connect(**admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
