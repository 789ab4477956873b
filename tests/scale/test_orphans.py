"""Orphaned embedding shards and scores of deleted runs: found, reported by a dry run, removed
(local storage and the S3-compatible server), and nothing young or referenced touched."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from io import StringIO

import numpy as np
import pytest
from django.core.management import call_command
from django.utils import timezone

from curation.models import Embedding, EmbeddingShard, Score
from curation.services.embeddings import embeddings_store
from curation.services.orphans import orphans_remove
from curation.shard_files import shard_file_write, shard_storage
from curation.storage import storages_reset
from tests.reviewer.factories import make_dataset, sha

KEY = "m/orphans"


@pytest.fixture
def local_embeddings(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    storages_reset()
    yield
    storages_reset()


def _vectors(n: int) -> np.ndarray:
    return np.eye(n, 4, dtype=np.float32)


def _stored_names() -> set[str]:
    storage = shard_storage()
    folders, _ = storage.listdir("")
    return {f"{folder}/{name}" for folder in folders for name in storage.listdir(folder)[1]}


def _scenario() -> dict[str, str]:
    """A referenced shard, a shard row whose hashes were all cached before (no reference),
    a file whose row was never written, and a dataset whose run was deleted under its scores."""
    kept = embeddings_store(model_key=KEY, hashes=[sha(1), sha(2)], matrix=_vectors(2))
    unreferenced = embeddings_store(model_key=KEY, hashes=[sha(1)], matrix=_vectors(1))
    assert kept and unreferenced
    assert not Embedding.objects.filter(shard=unreferenced).exists()
    rowless = shard_file_write(model_key=KEY, hashes=[sha(3)], matrix=_vectors(1))
    return {"kept": kept.path, "unreferenced": unreferenced.path, "rowless": rowless}


def _age_files(names: list[str]) -> None:
    """Local files an hour old (S3 objects cannot be back-dated: those tests use grace 0)."""
    for name in names:
        path = shard_storage().path(name)
        old = time.time() - 7200
        os.utime(path, (old, old))


@pytest.mark.django_db
def test_local_orphans_dry_run_then_removal(local_embeddings, django_capture_on_commit_callbacks):
    paths = _scenario()
    EmbeddingShard.objects.update(created_at=timezone.now() - timedelta(hours=2))
    _age_files(list(paths.values()))
    dataset, run, images = make_dataset([0.9, 0.1])
    gone_run_id = run.pk
    # The run is deleted, then a chunk that was committing meanwhile leaves a score of it.
    run.__class__.objects.filter(pk=run.pk).delete()
    Score.objects.bulk_create([Score(run_id=gone_run_id, image=images[0], p_inappropriate=0.5)])

    out = StringIO()
    call_command("cleanup_orphans", "--dry-run", stdout=out)
    assert (
        "would remove 1 shard file(s) without a row, 1 shard row(s) without references, "
        "1 score(s) of 1 deleted run(s)" in out.getvalue()
    )
    assert _stored_names() == set(paths.values())

    with django_capture_on_commit_callbacks(execute=True):
        report = orphans_remove()
    assert report.shard_files == [paths["rowless"]]
    assert report.shard_rows == [paths["unreferenced"]]
    assert report.score_runs == [gone_run_id] and report.scores == 1
    assert _stored_names() == {paths["kept"]}
    assert list(EmbeddingShard.objects.values_list("path", flat=True)) == [paths["kept"]]
    assert not Score.objects.filter(run_id=gone_run_id).exists()
    # Idempotent.
    assert orphans_remove().shard_files == []


@pytest.mark.django_db
def test_young_shards_and_files_are_left_alone(local_embeddings):
    paths = _scenario()
    report = orphans_remove(grace=timedelta(hours=1))
    assert report.shard_files == [] and report.shard_rows == []
    assert _stored_names() == set(paths.values())


@pytest.mark.django_db
def test_s3_orphans_removed_from_the_bucket(s3_storage, django_capture_on_commit_callbacks):
    paths = _scenario()
    assert sorted(s3_storage.keys("embeddings")) == sorted(
        f"{s3_storage.prefix}/embeddings/{name}" for name in paths.values()
    )
    with django_capture_on_commit_callbacks(execute=True):
        report = orphans_remove(grace=timedelta(0))
    assert report.shard_files == [paths["rowless"]]
    assert report.shard_rows == [paths["unreferenced"]]
    assert s3_storage.keys("embeddings") == [f"{s3_storage.prefix}/embeddings/{paths['kept']}"]


@pytest.mark.django_db
def test_cleanup_orphans_rejects_a_negative_grace():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="0 or more"):
        call_command("cleanup_orphans", "--grace-minutes", "-1")
