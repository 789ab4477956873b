"""0018 makes (run, image) the scores' primary key and back, keeping every score, on
SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from tests.helpers import run_django_script
from tests.migrations.harness import scratch_postgres_url

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


def test_scores_keep_through_the_primary_key_change_on_sqlite(tmp_path):
    out = run_django_script(
        SCRIPT,
        database_url=f"sqlite:///{tmp_path / 'fresh.sqlite3'}",
        Q16_DATA_DIR=str(tmp_path / "data"),
    )
    assert "score-primary-key-migration-ok" in out


@pytest.mark.django_db
def test_scores_keep_through_the_primary_key_change_on_postgresql(tmp_path):
    with scratch_postgres_url("q16_scorepk") as database_url:
        out = run_django_script(
            SCRIPT, database_url=database_url, Q16_DATA_DIR=str(tmp_path / "data")
        )
    assert "score-primary-key-migration-ok" in out
