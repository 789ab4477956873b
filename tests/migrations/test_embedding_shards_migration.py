"""0010 moves the in-database embedding cache into shard files and back, SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from tests.helpers import run_django_script
from tests.migrations.harness import scratch_postgres_url

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


def test_the_cache_moves_to_shards_and_back_on_sqlite(tmp_path):
    out = run_django_script(
        SCRIPT,
        database_url=f"sqlite:///{tmp_path / 'fresh.sqlite3'}",
        MEDIA_ROOT=str(tmp_path / "media"),
    )
    assert "embedding-shards-migration-ok" in out


@pytest.mark.django_db
def test_the_cache_moves_to_shards_and_back_on_postgresql(tmp_path):
    with scratch_postgres_url("q16_shardmig") as database_url:
        out = run_django_script(
            SCRIPT, database_url=database_url, MEDIA_ROOT=str(tmp_path / "media")
        )
    assert "embedding-shards-migration-ok" in out
