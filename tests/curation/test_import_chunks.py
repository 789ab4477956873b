"""Imports are indexed in chunks (curation.services.indexing): planned once, taken by any
worker in any order, each recorded once; the last one to finish completes the dataset once.
Cancel stops queued chunks, resume re-queues only unfinished ones, recovery re-queues lost
ones, and a re-import indexes only what is new. Two real workers share one import."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.utils import timezone
from PIL import Image as PILImage
from rest_framework.test import APIClient

from curation import dispatch
from curation.models import Dataset, ImportChunk
from curation.services import indexing
from curation.services.datasets import (
    dataset_create_from_folder,
    dataset_import,
    dataset_import_cancel,
    dataset_import_resume,
)
from curation.services.recovery import LiveTasks, recover_stalled_work
from curation.services.sources.create import (
    dataset_create_from_img2dataset,
    dataset_create_from_webdataset,
    dataset_reimport,
)
from tests.helpers import wait_for
from tests.sources.shards import sample_members, write_img2dataset_folder, write_shard


def _png(color=(200, 30, 30), size=(24, 18)) -> bytes:
    buffer = io.BytesIO()
    PILImage.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


def _folder(tmp_path, n: int, name: str = "imgs"):
    folder = tmp_path / name
    folder.mkdir()
    for i in range(n):
        (folder / f"{i:03d}.png").write_bytes(_png((i * 7 % 256, 40, 90)))
    return folder


@pytest.fixture
def sent(monkeypatch):
    """Every task the code queues (name, args), instead of sending it to a broker."""
    calls: list[tuple[str, tuple]] = []
    monkeypatch.setattr(dispatch, "send_task", lambda name, *args: calls.append((name, args)))
    return calls


@pytest.fixture
def finished_calls(monkeypatch):
    calls: list[int] = []
    real = indexing.dataset_indexing_finished

    def record(*, dataset):
        calls.append(dataset.pk)
        real(dataset=dataset)

    monkeypatch.setattr(indexing, "dataset_indexing_finished", record)
    return calls


def _plan(dataset: Dataset, django_capture_on_commit_callbacks) -> list[int]:
    """What the import task does: list the source, record chunks, queue them."""
    with django_capture_on_commit_callbacks(execute=True):
        dataset = dataset_import(dataset_id=dataset.pk, queue_chunks=True)
    assert dataset.state == Dataset.State.IMPORTING
    return list(dataset.import_chunks.order_by("index").values_list("id", flat=True))


@pytest.mark.django_db
def test_chunks_are_planned_queued_and_the_last_one_completes_the_dataset_once(
    tmp_path, settings, sent, finished_calls, django_capture_on_commit_callbacks
):
    settings.Q16_INDEX_CHUNK_SIZE = 3
    dataset = dataset_create_from_folder(name="c", folder=str(_folder(tmp_path, 10)), queue=False)
    chunk_ids = _plan(dataset, django_capture_on_commit_callbacks)
    assert sent == [(dispatch.INDEX_CHUNK, (chunk_id,)) for chunk_id in chunk_ids]
    chunks = list(ImportChunk.objects.filter(dataset=dataset).order_by("index"))
    assert [c.item_count for c in chunks] == [3, 3, 3, 1]
    assert [item[0] for c in chunks for item in c.items] == [f"{i:03d}.png" for i in range(10)]
    assert Dataset.objects.get(pk=dataset.pk).total == 10

    # Workers take them in any order; the dataset finishes only with the last one.
    for chunk_id, worker in zip(reversed(chunk_ids[1:]), ("b@h", "a@h", "b@h"), strict=True):
        chunk = indexing.index_chunk_process(chunk_id=chunk_id, worker=worker)
        assert chunk.state == ImportChunk.State.DONE and chunk.worker == worker
        assert Dataset.objects.get(pk=dataset.pk).state == Dataset.State.IMPORTING
    assert finished_calls == []
    indexing.index_chunk_process(chunk_id=chunk_ids[0], worker="a@h")
    dataset.refresh_from_db()
    assert dataset.state == Dataset.State.READY and finished_calls == [dataset.pk]
    assert (dataset.total, dataset.processed, dataset.failed) == (10, 10, 0)

    # A second delivery of any chunk changes nothing and finishes nothing again.
    again = indexing.index_chunk_process(chunk_id=chunk_ids[2], worker="late@h")
    assert again.worker == "a@h" and again.attempts == 1
    assert finished_calls == [dataset.pk] and dataset.images.count() == 10
    done = list(ImportChunk.objects.filter(dataset=dataset).order_by("index"))
    assert [c.recorded for c in done] == [3, 3, 3, 1]
    assert all(c.finished_at >= c.started_at and "index" in c.timings for c in done)

    # Per-chunk progress on the API and the page.
    progress = APIClient()
    progress.force_login(_admin())
    body = progress.get(f"/api/datasets/{dataset.pk}/").json()["import_chunks"]
    assert (body["chunks_total"], body["chunks_done"], body["chunks_in_progress"]) == (4, 4, 0)
    shares = {row["worker"]: (row["chunks"], row["images"]) for row in body["workers"]}
    assert shares == {"a@h": ([0, 2], 6), "b@h": ([1, 3], 4)}
    page = progress.get(f"/datasets/{dataset.pk}/").content.decode()
    assert "data-import-chunks" in page and 'data-worker="a@h"' in page


def _admin():
    from django.contrib.auth.models import User

    return User.objects.create_superuser("chunk-admin", "a@example.com", "pw-1234567890")


@pytest.mark.django_db
def test_cancel_stops_queued_chunks_and_resume_requeues_only_unfinished_ones(
    tmp_path, settings, sent, django_capture_on_commit_callbacks
):
    settings.Q16_INDEX_CHUNK_SIZE = 4
    dataset = dataset_create_from_folder(name="c", folder=str(_folder(tmp_path, 10)), queue=False)
    first, second, third = _plan(dataset, django_capture_on_commit_callbacks)
    indexing.index_chunk_process(chunk_id=first, worker="a@h")
    dataset_import_cancel(dataset=dataset)
    # A queued chunk arriving after the cancel does nothing and stays pending.
    late = indexing.index_chunk_process(chunk_id=second, worker="a@h")
    assert late.state == ImportChunk.State.PENDING and late.attempts == 0
    assert dataset.images.count() == 4

    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        dataset_import_resume(dataset=dataset)
    assert sent == [(dispatch.IMPORT_DATASET, (dataset.pk,))]
    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        dataset_import(dataset_id=dataset.pk, queue_chunks=True)
    assert sent == [(dispatch.INDEX_CHUNK, (second,)), (dispatch.INDEX_CHUNK, (third,))]
    assert ImportChunk.objects.filter(dataset=dataset).count() == 3  # not planned again
    for chunk_id in (second, third):
        indexing.index_chunk_process(chunk_id=chunk_id)
    dataset.refresh_from_db()
    assert dataset.state == Dataset.State.READY and dataset.images.count() == 10


@pytest.mark.django_db
def test_a_chunk_cancelled_mid_way_keeps_its_batches_and_carries_on_after_resume(
    tmp_path, settings, monkeypatch
):
    settings.Q16_INDEX_CHUNK_SIZE = 100
    monkeypatch.setattr(indexing, "IMPORT_BATCH", 3)
    dataset = dataset_create_from_folder(name="c", folder=str(_folder(tmp_path, 8)), queue=False)
    batches = []

    def cancel_after_first(done, total):
        batches.append(done)
        dataset_import_cancel(dataset=dataset)

    dataset = dataset_import(dataset_id=dataset.pk, progress=cancel_after_first)
    assert dataset.state == Dataset.State.CANCELLED and batches == [3]
    (chunk,) = dataset.import_chunks.all()
    assert chunk.state == ImportChunk.State.PENDING and dataset.images.count() == 3
    dataset_import_resume(dataset=dataset)
    dataset = dataset_import(dataset_id=dataset.pk)
    assert dataset.state == Dataset.State.READY
    assert dataset.images.count() == 8 == dataset.processed
    assert dataset.import_chunks.get().attempts == 2


@pytest.mark.django_db
def test_a_failed_chunk_fails_the_import_and_resume_runs_it_again(
    tmp_path, settings, sent, django_capture_on_commit_callbacks
):
    settings.Q16_INDEX_CHUNK_SIZE = 5
    dataset = dataset_create_from_folder(name="c", folder=str(_folder(tmp_path, 10)), queue=False)
    first, second = _plan(dataset, django_capture_on_commit_callbacks)
    indexing.index_chunk_process(chunk_id=first)
    indexing.index_chunk_fail(chunk_id=second, reason="OSError: disk gone")
    dataset.refresh_from_db()
    assert dataset.state == Dataset.State.FAILED
    assert dataset.error == "import chunk 1: OSError: disk gone"
    assert ImportChunk.objects.get(pk=second).state == ImportChunk.State.FAILED
    # A late failure report does not overwrite a finished import.
    dataset_import_resume(dataset=dataset)
    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        dataset_import(dataset_id=dataset.pk, queue_chunks=True)
    assert sent == [(dispatch.INDEX_CHUNK, (second,))]
    indexing.index_chunk_process(chunk_id=second)
    assert Dataset.objects.get(pk=dataset.pk).state == Dataset.State.READY
    indexing.index_chunk_fail(chunk_id=second, reason="late")
    assert Dataset.objects.get(pk=dataset.pk).state == Dataset.State.READY


@pytest.mark.django_db
def test_reimport_adds_only_new_paths_and_keeps_content_twins_as_images(tmp_path, finished_calls):
    folder = _folder(tmp_path, 4)
    dataset = dataset_import(
        dataset_id=dataset_create_from_folder(name="r", folder=str(folder), queue=False).pk
    )
    assert dataset.images.count() == 4
    (folder / "new.png").write_bytes(_png((1, 2, 3)))
    (folder / "twin.png").write_bytes((folder / "000.png").read_bytes())  # same content
    (folder / "001.png").write_bytes(_png((9, 9, 9)))  # same path, new content: not re-read
    before = {i.relative_path: i.pk for i in dataset.images.all()}
    dataset_reimport(dataset=dataset, queue=False)
    dataset = dataset_import(dataset_id=dataset.pk)
    assert dataset.state == Dataset.State.READY and finished_calls == [dataset.pk, dataset.pk]
    rows = {i.relative_path: i for i in dataset.images.all()}
    assert set(rows) == set(before) | {"new.png", "twin.png"}
    assert all(rows[path].pk == pk for path, pk in before.items())  # untouched
    assert rows["twin.png"].sha256 == rows["000.png"].sha256
    assert (dataset.total, dataset.processed) == (6, 6)
    (chunk,) = dataset.import_chunks.all()  # only the new files were chunked
    assert sorted(item[0] for item in chunk.items) == ["new.png", "twin.png"]
    # Nothing new: no chunk at all, finished at once.
    dataset_reimport(dataset=dataset, queue=False)
    dataset = dataset_import(dataset_id=dataset.pk)
    assert dataset.state == Dataset.State.READY and not dataset.import_chunks.exists()
    assert dataset.images.count() == 6


@pytest.mark.django_db
def test_shards_and_img2dataset_are_chunked_by_shard(tmp_path, settings):
    folder = tmp_path / "wds"
    folder.mkdir()
    write_shard(folder / "00000.tar", sample_members("a") + sample_members("b"))
    write_shard(folder / "00001.tar", sample_members("c", color=(0, 0, 200)))
    dataset = dataset_create_from_webdataset(
        name="w", shards=str(folder / "{00000..00001}.tar"), queue=False
    )
    dataset = dataset_import(dataset_id=dataset.pk)
    assert dataset.state == Dataset.State.READY and (dataset.total, dataset.processed) == (3, 3)
    chunks = list(dataset.import_chunks.order_by("index"))
    assert [(c.kind, c.recorded) for c in chunks] == [("shards", 2), ("shards", 1)]

    i2d = write_img2dataset_folder(tmp_path / "i2d")
    dataset = dataset_import(
        dataset_id=dataset_create_from_img2dataset(name="i", folder=str(i2d), queue=False).pk
    )
    assert dataset.state == Dataset.State.READY
    kinds = list(dataset.import_chunks.order_by("index").values_list("kind", flat=True))
    assert kinds[-1] == ImportChunk.Kind.FAILED_DOWNLOADS and set(kinds[:-1]) == {"shards"}
    assert dataset.images.count() == dataset.processed == dataset.total


@pytest.mark.django_db
def test_recovery_requeues_only_the_lost_index_chunks(
    tmp_path, settings, sent, django_capture_on_commit_callbacks
):
    settings.Q16_INDEX_CHUNK_SIZE = 3
    dataset = dataset_create_from_folder(name="c", folder=str(_folder(tmp_path, 9)), queue=False)
    first, second, third = _plan(dataset, django_capture_on_commit_callbacks)
    indexing.index_chunk_process(chunk_id=first)
    old = timezone.now() - timedelta(seconds=3600)
    Dataset.objects.filter(pk=dataset.pk).update(heartbeat_at=old)
    live = LiveTasks()
    live.add(dispatch.INDEX_CHUNK, [third])  # still queued or held by a worker
    sent.clear()
    with django_capture_on_commit_callbacks(execute=True):
        report = recover_stalled_work(stall_seconds=60, live=live)
    assert report.datasets == [dataset.pk] and report.index_chunks == {dataset.pk: 1}
    assert sent == [(dispatch.INDEX_CHUNK, (second,))]
    # The import task itself still queued: nothing to do.
    Dataset.objects.filter(pk=dataset.pk).update(heartbeat_at=old)
    live.add(dispatch.IMPORT_DATASET, [dataset.pk])
    assert not recover_stalled_work(stall_seconds=60, live=live).datasets


# --- Two real workers ------------------------------------------------------------------------


def _noise_folder(tmp_path, n: int):
    """Images large enough that probing (hashes, PDQ) takes a measurable moment."""
    import numpy as np

    folder = tmp_path / "noise"
    folder.mkdir()
    rng = np.random.default_rng(5)
    for i in range(n):
        pixels = rng.integers(0, 256, (384, 384, 3), dtype=np.uint8)
        PILImage.fromarray(pixels).save(folder / f"{i:03d}.png")
    return folder


def _assert_indexed_exactly_once(dataset: Dataset, files: int) -> None:
    dataset.refresh_from_db()
    assert dataset.state == Dataset.State.READY, dataset.error
    assert dataset.images.count() == files == dataset.processed == dataset.total
    assert dataset.images.values("relative_path").distinct().count() == files
    chunks = list(dataset.import_chunks.all())
    assert all(chunk.state == ImportChunk.State.DONE for chunk in chunks)
    assert sum(chunk.recorded for chunk in chunks) == files


@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_two_real_workers_share_one_import_each_chunk_once(workers, tmp_path):
    folder = _noise_folder(tmp_path, 40)
    env = {"Q16_INDEX_CHUNK_SIZE": "2"}
    alpha = workers.start("alpha", queues="cpu", **env)
    workers.start("beta", queues="cpu", **env)
    dataset = dataset_create_from_folder(name="two", folder=str(folder))
    wait_for(
        lambda: Dataset.objects.get(pk=dataset.pk).state == Dataset.State.READY,
        timeout=120,
        what="the import",
        log=alpha.log_path,
    )
    _assert_indexed_exactly_once(dataset, 40)
    chunks = list(dataset.import_chunks.all())
    assert len(chunks) == 20 and all(chunk.attempts == 1 for chunk in chunks)
    names = {chunk.worker.split("-", 1)[0] for chunk in chunks}
    assert names == {"alpha", "beta"}, workers.logs()


@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_a_killed_workers_chunk_is_recovered(workers, tmp_path, redis_url):
    import redis

    folder = _noise_folder(tmp_path, 40)
    env = {"Q16_INDEX_CHUNK_SIZE": "2"}
    alpha = workers.start("alpha", queues="cpu", **env)
    dataset = dataset_create_from_folder(name="kill", folder=str(folder))
    wait_for(
        lambda: dataset.import_chunks.filter(state=ImportChunk.State.DONE).count() >= 2,
        interval=0.02,
        what="two chunks",
        log=alpha.log_path,
    )
    workers.kill(alpha)  # mid-import: a crashed machine, its chunk and the queue's lost
    redis.Redis.from_url(redis_url).flushdb()
    stuck = Dataset.objects.get(pk=dataset.pk)
    assert stuck.state == Dataset.State.IMPORTING
    assert dataset.import_chunks.exclude(state=ImportChunk.State.DONE).exists()
    Dataset.objects.filter(pk=dataset.pk).update(
        heartbeat_at=timezone.now() - timedelta(seconds=60)
    )
    beta = workers.start("beta", queues="cpu", Q16_STALL_SECONDS="1", **env)
    wait_for(
        lambda: Dataset.objects.get(pk=dataset.pk).state == Dataset.State.READY,
        timeout=120,
        what="the recovered import",
        log=beta.log_path,
    )
    _assert_indexed_exactly_once(dataset, 40)
    names = {c.worker.split("-", 1)[0] for c in dataset.import_chunks.all()}
    assert names == {"alpha", "beta"}
    assert "recovered lost work" in beta.log_path.read_text()
