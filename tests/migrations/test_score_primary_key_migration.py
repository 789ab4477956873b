"""0018 makes (run, image) the scores' primary key and back, keeping every score, on
SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from tests.conftest import REPO_ROOT, require

SCRIPT = r"""
import django
django.setup()
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

def migrate(target):
    call_command("migrate", "curation", target, interactive=False, verbosity=0)

def historical(target):
    state = MigrationExecutor(connection).loader.project_state(("curation", target))
    return state.apps.get_model("curation", "Score")

def columns():
    with connection.cursor() as cursor:
        return [c.name for c in connection.introspection.get_table_description(cursor, "curation_score")]

def primary_key():
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, "curation_score")
    return [sorted(c["columns"]) for c in found.values() if c["primary_key"]]

migrate("0017_dataset_banks_matched_at")
Old = historical("0017_dataset_banks_matched_at")
# No database foreign keys on scores: plain ids stand for runs and images.
Old.objects.bulk_create(
    [Old(run_id=run, image_id=image, p_inappropriate=run + image / 1000)
     for run in (1, 2) for image in range(1, 301)]
)
migrate("0018_score_run_image_primary_key")
assert "id" not in columns(), columns()
assert primary_key() == [["image_id", "run_id"]], primary_key()
from curation.models import Score
assert Score.objects.count() == 600
assert Score.objects.get(run_id=2, image_id=150).p_inappropriate == 2.15
try:
    with transaction.atomic():
        Score.objects.create(run_id=1, image_id=5, p_inappropriate=0.0)
except IntegrityError:
    pass
else:
    raise AssertionError("a second score for the same run and image was accepted")
Score.objects.filter(run_id=1, image_id__lte=100).delete()
assert Score.objects.count() == 500

migrate("0017_dataset_banks_matched_at")
assert "id" in columns(), columns()
assert primary_key() == [["id"]], primary_key()
Old = historical("0017_dataset_banks_matched_at")
assert Old.objects.count() == 500
assert Old.objects.get(run_id=2, image_id=150).p_inappropriate == 2.15
assert len(set(Old.objects.values_list("id", flat=True))) == 500
Old.objects.create(run_id=3, image_id=1, p_inappropriate=0.5)  # ids still generated
migrate("0018_score_run_image_primary_key")
assert Score.objects.count() == 501
print("score-primary-key-migration-ok")
"""


def _run(database_url: str, data_dir: str) -> str:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SECRET_KEY": "migrations-test",
        "Q16_DATA_DIR": data_dir,
    }
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr[-6000:]}"
    return result.stdout


def test_scores_keep_through_the_primary_key_change_on_sqlite(tmp_path):
    out = _run(f"sqlite:///{tmp_path / 'fresh.sqlite3'}", str(tmp_path / "data"))
    assert "score-primary-key-migration-ok" in out


@pytest.mark.django_db
def test_scores_keep_through_the_primary_key_change_on_postgresql(tmp_path):
    from django.db import connection

    db = connection.settings_dict
    require(db["ENGINE"].endswith("postgresql"), "the test database is not PostgreSQL")
    import psycopg

    host, port = db.get("HOST") or "127.0.0.1", db.get("PORT") or 5432
    user, password = db.get("USER") or "", db.get("PASSWORD") or ""
    name = f"q16_scorepk_{uuid.uuid4().hex[:12]}"
    admin_dsn = dict(host=host, port=port, user=user, password=password, dbname="postgres")
    with psycopg.connect(**admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        auth = f"{user}{':' + password if password else ''}@" if user else ""
        out = _run(f"postgres://{auth}{host}:{port}/{name}", str(tmp_path / "data"))
        assert "score-primary-key-migration-ok" in out
    finally:
        with psycopg.connect(**admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
