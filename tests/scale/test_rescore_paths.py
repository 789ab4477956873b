"""The rescore's fast paths: binary COPY in, packed columns out, shard-row gathers, and a whole
rescore over scattered shards on PostgreSQL and on SQLite."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from django.db import connection

from curation.bulk import copy_in_columns, jit_off, select_columns
from curation.models import Score
from curation.services.embeddings import embeddings_store, vectors_from_shard_rows
from tests.conftest import REPO_ROOT, require
from tests.reviewer.factories import make_dataset, sha
from tests.scale.rescore_scenario import rescore_scattered


@pytest.mark.django_db
def test_copy_in_and_packed_select_round_trip():
    _, run, images = make_dataset([0.1, 0.2, 0.3])
    Score.objects.filter(run=run).delete()
    ids = np.array([image.pk for image in images], dtype=np.int64)
    ps = np.array([0.125, 1 / 3, 0.999999999], dtype=np.float64)
    copy_in_columns(
        table=Score._meta.db_table, columns=["run_id", "image_id", "p_inappropriate"],
        pg_types=["bigint", "bigint", "float8"],
        arrays=[np.full(3, run.pk, dtype=np.int64), ids, ps],
    )  # fmt: skip
    assert dict(Score.objects.filter(run=run).values_list("image_id", "p_inappropriate")) == dict(
        zip(ids.tolist(), ps.tolist(), strict=True)
    )
    table = connection.ops.quote_name(Score._meta.db_table)
    rows = select_columns(
        sql=f"SELECT image_id, run_id FROM {table} WHERE run_id = %s ORDER BY image_id",
        params=[run.pk],
        pg_types=["bigint", "bigint"],
    )
    assert rows.dtype == np.int64 and rows.tolist() == [[i, run.pk] for i in sorted(ids.tolist())]
    floats = select_columns(
        sql=f"SELECT p_inappropriate FROM {table} WHERE run_id = %s", params=[run.pk],
        pg_types=["float8"],
    )  # fmt: skip
    assert sorted(floats[:, 0].tolist()) == sorted(ps.tolist())
    empty = select_columns(
        sql=f"SELECT image_id FROM {table} WHERE run_id = %s", params=[-1], pg_types=["bigint"]
    )
    assert empty.shape == (0, 1)
    with pytest.raises(ValueError, match="NULL"):
        select_columns(sql="SELECT NULL::bigint", params=[], pg_types=["bigint"])
    with pytest.raises(ValueError, match="not text"):
        select_columns(sql="SELECT 'x'", params=[], pg_types=["text"])


@pytest.mark.django_db(transaction=True)
def test_jit_is_off_inside_the_chunk_statements_and_back_after():
    require(connection.vendor == "postgresql", "JIT is PostgreSQL's")
    with connection.cursor() as cursor:
        cursor.execute("SET jit = on")
        with jit_off():
            cursor.execute("SHOW jit")
            assert cursor.fetchone() == ("off",)
        cursor.execute("SHOW jit")
        assert cursor.fetchone() == ("on",)  # SET LOCAL: the session's setting again
        cursor.execute("RESET jit")


@pytest.mark.django_db
def test_vectors_from_shard_rows_slices_gathers_and_refuses_bad_references():
    matrix = np.arange(5 * 4, dtype=np.float32).reshape(5, 4)
    shard = embeddings_store(model_key="m/rows", hashes=[sha(i) for i in range(5)], matrix=matrix)
    assert shard is not None
    # Consecutive rows (a slice), then scattered rows with a missing one.
    got, ok = vectors_from_shard_rows(shard_ids=np.full(5, shard.pk), rows=np.arange(5), dim=4)
    assert ok.all() and np.array_equal(got, matrix)
    got, ok = vectors_from_shard_rows(
        shard_ids=np.array([shard.pk, -1, shard.pk]), rows=np.array([3, -1, 0]), dim=4
    )
    assert ok.tolist() == [True, False, True]
    assert np.array_equal(got[[0, 2]], matrix[[3, 0]]) and not got[1].any()
    with pytest.raises(ValueError, match="5 rows"):
        vectors_from_shard_rows(shard_ids=np.array([shard.pk]), rows=np.array([5]), dim=4)
    with pytest.raises(ValueError, match="4-dimensional"):
        vectors_from_shard_rows(shard_ids=np.array([shard.pk]), rows=np.array([0]), dim=8)
    # A shard row that went away: not found, not an error.
    _, ok = vectors_from_shard_rows(shard_ids=np.array([shard.pk + 999]), rows=np.array([0]), dim=4)
    assert ok.tolist() == [False]


@pytest.mark.django_db
def test_rescore_over_scattered_shards_on_postgresql():
    rescore_scattered()


SQLITE_SCRIPT = r"""
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0, interactive=False)
from tests.scale.rescore_scenario import rescore_scattered
rescore_scattered()
print("sqlite-rescore-ok")
"""


def test_rescore_over_scattered_shards_on_sqlite(tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'rescore.sqlite3'}",
        "SECRET_KEY": "rescore-test",
        "Q16_DATA_DIR": str(tmp_path / "data"),
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    result = subprocess.run(
        [sys.executable, "-c", SQLITE_SCRIPT], cwd=REPO_ROOT, env=env,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr[-6000:]}"
    assert "sqlite-rescore-ok" in result.stdout
