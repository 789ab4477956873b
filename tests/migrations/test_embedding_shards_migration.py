"""0010 moves the in-database embedding cache into shard files and back, SQLite and PostgreSQL."""

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
import numpy as np
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

def migrate(target):
    call_command("migrate", "curation", target, interactive=False, verbosity=0)

def historical(name, target):
    state = MigrationExecutor(connection).loader.project_state(("curation", target))
    return state.apps.get_model("curation", name)

migrate("0009_image_containers")
Old = historical("Embedding", "0009_image_containers")
rng = np.random.default_rng(0)
vectors = rng.normal(size=(45, 8)).astype(np.float16)
# 45 rows in batches of 20 (the migration's BATCH is patched below): 3 shards, two models.
rows = [Old(model_key="m/a" if i < 40 else "m/b", sha256=f"{i:064x}", vector=vectors[i].tobytes())
        for i in range(45)]
Old.objects.bulk_create(rows)
import importlib
module = importlib.import_module("curation.migrations.0010_embedding_shards")
module.BATCH = 20
migrate("0010_embedding_shards")

from curation.models import Embedding, EmbeddingShard
from curation.services.embeddings import cached_vectors
assert Embedding.objects.count() == 45
assert EmbeddingShard.objects.count() == 3, list(EmbeddingShard.objects.values("model_key", "rows"))
found = cached_vectors(model_key="m/a", dim=8, hashes=[f"{i:064x}" for i in range(40)])
assert len(found) == 40
for i in range(40):
    assert np.array_equal(found[f"{i:064x}"], vectors[i].astype(np.float32)), i
assert Embedding.objects.get(sha256=f"{44:064x}").vector == vectors[44].tobytes()
paths = list(EmbeddingShard.objects.values_list("path", flat=True))

migrate("0009_image_containers")
Old = historical("Embedding", "0009_image_containers")
back = {e.sha256: bytes(e.vector) for e in Old.objects.all()}
assert len(back) == 45
assert all(back[f"{i:064x}"] == vectors[i].tobytes() for i in range(45))
from curation.shard_files import shard_storage
assert not any(shard_storage().exists(p) for p in paths), "shard files left after reversing"
migrate("0010_embedding_shards")
print("embedding-shards-migration-ok")
"""


def _run(database_url: str, media_root: str) -> str:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SECRET_KEY": "migrations-test",
        "MEDIA_ROOT": media_root,
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


def test_the_cache_moves_to_shards_and_back_on_sqlite(tmp_path):
    out = _run(f"sqlite:///{tmp_path / 'fresh.sqlite3'}", str(tmp_path / "media"))
    assert "embedding-shards-migration-ok" in out


@pytest.mark.django_db
def test_the_cache_moves_to_shards_and_back_on_postgresql(tmp_path):
    from django.db import connection

    db = connection.settings_dict
    require(db["ENGINE"].endswith("postgresql"), "the test database is not PostgreSQL")
    import psycopg

    host, port = db.get("HOST") or "127.0.0.1", db.get("PORT") or 5432
    user, password = db.get("USER") or "", db.get("PASSWORD") or ""
    name = f"q16_shardmig_{uuid.uuid4().hex[:12]}"
    admin_dsn = dict(host=host, port=port, user=user, password=password, dbname="postgres")
    with psycopg.connect(**admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        auth = f"{user}{':' + password if password else ''}@" if user else ""
        out = _run(f"postgres://{auth}{host}:{port}/{name}", str(tmp_path / "media"))
        assert "embedding-shards-migration-ok" in out
    finally:
        with psycopg.connect(**admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
