"""Migrations apply forward and backward, on SQLite and on PostgreSQL.

Each database is fresh (a new SQLite file; a scratch PostgreSQL database created and
dropped here), and `manage.py migrate` runs in a subprocess, as an operator would run it.
"""

from __future__ import annotations

import pytest

from tests.helpers import run_django_script
from tests.migrations.harness import scratch_postgres_url

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


def _forward_and_back(database_url: str) -> None:
    out = run_django_script(SCRIPT % (PROJECT_APPS,), database_url=database_url)
    assert "forward-backward-ok" in out


def test_models_and_migrations_agree(tmp_path):
    code = (
        "import django; django.setup(); from django.core.management import call_command; "
        "call_command('makemigrations', check=True, dry_run=True, verbosity=0)"
    )
    run_django_script(code, database_url=f"sqlite:///{tmp_path / 'check.sqlite3'}")


def test_migrations_forward_and_backward_on_sqlite(tmp_path):
    _forward_and_back(f"sqlite:///{tmp_path / 'fresh.sqlite3'}")


@pytest.mark.django_db
def test_migrations_forward_and_backward_on_postgresql():
    with scratch_postgres_url("q16_migrations") as database_url:
        _forward_and_back(database_url)
