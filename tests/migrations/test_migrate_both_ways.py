"""Migrations apply forward and backward, on SQLite and on PostgreSQL.

Each database is fresh (a new SQLite file; a scratch PostgreSQL database created and
dropped here), and `manage.py migrate` runs in a subprocess, as an operator would run it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from tests.conftest import REPO_ROOT, require

PROJECT_APPS = ["reviewer", "curation"]  # unapplied in this order (reviewer depends on curation)


# One subprocess per database (Django starts once); the steps run through call_command,
# exactly what `manage.py migrate` runs.
SCRIPT = r"""
import io, sys
import django
django.setup()
from django.core.management import call_command

APPS = %r
ALL = ("authtoken", "admin", "axes", "sessions", "auth", "contenttypes")

def shown(*labels):
    out = io.StringIO()
    call_command("showmigrations", *labels, stdout=out)
    return out.getvalue()

def migrate(*labels):
    call_command("migrate", *labels, interactive=False, verbosity=0)

migrate()
for app in APPS:
    migrate(app, "zero")
    assert "[X]" not in shown(app), shown(app)
migrate()
assert "[ ]" not in shown(), shown()
listing = "\n" + shown()
for app in (*APPS, *ALL):
    if "\n" + app + "\n" in listing:
        migrate(app, "zero")
assert "[X]" not in shown(), shown()
migrate()
assert "[ ]" not in shown(), shown()
print("forward-backward-ok")
"""


def _run(database_url: str, code: str) -> str:
    env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "migrations-test"}
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


def _forward_and_back(database_url: str) -> None:
    assert "forward-backward-ok" in _run(database_url, SCRIPT % (PROJECT_APPS,))


def test_models_and_migrations_agree(tmp_path):
    code = (
        "import django; django.setup(); from django.core.management import call_command; "
        "call_command('makemigrations', check=True, dry_run=True, verbosity=0)"
    )
    _run(f"sqlite:///{tmp_path / 'check.sqlite3'}", code)


def test_migrations_forward_and_backward_on_sqlite(tmp_path):
    _forward_and_back(f"sqlite:///{tmp_path / 'fresh.sqlite3'}")


@pytest.mark.django_db
def test_migrations_forward_and_backward_on_postgresql():
    from django.db import connection

    db = connection.settings_dict
    require(db["ENGINE"].endswith("postgresql"), "the test database is not PostgreSQL")
    import psycopg

    host, port = db.get("HOST") or "127.0.0.1", db.get("PORT") or 5432
    user, password = db.get("USER") or "", db.get("PASSWORD") or ""
    name = f"q16_migrations_{uuid.uuid4().hex[:12]}"
    admin_dsn = dict(host=host, port=port, user=user, password=password, dbname="postgres")
    with psycopg.connect(**admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        auth = f"{user}{':' + password if password else ''}@" if user else ""
        _forward_and_back(f"postgres://{auth}{host}:{port}/{name}")
    finally:
        with psycopg.connect(**admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
