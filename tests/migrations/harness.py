"""What the migration tests share: a Django script in a subprocess (as an operator runs
`manage.py migrate`) against a fresh database, and a scratch PostgreSQL database."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from tests.conftest import REPO_ROOT, require


def run_django_script(code: str, *, database_url: str, **extra_env: str) -> str:
    """Run ``code`` (which calls django.setup()) with this database; returns its stdout."""
    env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "migrations-test", **extra_env}
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr[-6000:]}"
    return result.stdout


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
