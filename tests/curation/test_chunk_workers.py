"""Runs show their per-worker progress: the worker (Celery hostname) that takes each chunk is
recorded on it, with when it started and how many images it processed; the run table and the
API run detail show chunks done, in progress and the rate per worker."""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from curation.models import ScoringChunk, ScoringRun
from curation.selectors import run_worker_progress, runs_worker_progress
from curation.services.chunks import scoring_run_rescore
from curation.services.clip_runtime import get_clip
from curation.services.datasets import dataset_create_from_folder, dataset_import
from curation.services.prompt_zero_shot import prompt_version_create_zero_shot
from curation.services.scoring import scoring_chunk_assign, scoring_run_start
from tests.engine.imagegen import make_two_kind_images
from tests.helpers import wait_for
from worker import tasks


@pytest.fixture
def scored_setup(tiny_model_settings, tmp_path):
    from curation.services.clip_config import configured_model_key

    folder = tmp_path / "imgs"
    make_two_kind_images(folder, 10, seed=2)
    dataset = dataset_import(
        dataset_id=dataset_create_from_folder(name="w", folder=str(folder), queue=False).pk
    )
    version = prompt_version_create_zero_shot(clip=get_clip(configured_model_key()))
    return dataset, version


@pytest.mark.django_db
def test_the_task_records_its_worker_on_the_chunk(scored_setup):
    dataset, version = scored_setup
    run = scoring_run_start(
        dataset=dataset, prompt_version=version, threshold=0.5, chunk_size=8, queue=False
    )
    for chunk in run.chunks.all():
        # Eager, as a worker would: Celery's request names the host.
        tasks.score_chunk.apply(args=(chunk.pk,))
    chunks = list(ScoringChunk.objects.filter(run=run).order_by("index"))
    assert {chunk.worker for chunk in chunks} == {socket.gethostname()}
    assert all(chunk.started_at and chunk.finished_at >= chunk.started_at for chunk in chunks)
    assert [chunk.processed for chunk in chunks] == [8, 8, 4]
    (row,) = run_worker_progress(run=ScoringRun.objects.get(pk=run.pk))
    assert row["worker"] == socket.gethostname()
    assert (row["chunks"], row["chunks_done"], row["chunks_in_progress"]) == ([0, 1, 2], 3, 0)
    assert row["images"] == 20 and row["images_per_second"] > 0


@pytest.mark.django_db
def test_a_rescore_records_its_worker_on_every_chunk(scored_setup):
    dataset, version = scored_setup
    first = scoring_run_start(dataset=dataset, prompt_version=version, threshold=0.5, queue=False)
    for chunk in first.chunks.all():
        tasks.score_chunk.apply(args=(chunk.pk,))
    rescore = scoring_run_start(
        dataset=dataset, prompt_version=version, threshold=0.4, kind=ScoringRun.Kind.RESCORE,
        chunk_size=6, queue=False,
    )  # fmt: skip
    scoring_run_rescore(run_id=rescore.pk, worker="rescorer@gpu-2")
    assert set(rescore.chunks.values_list("worker", flat=True)) == {"rescorer@gpu-2"}
    (row,) = run_worker_progress(run=ScoringRun.objects.get(pk=rescore.pk))
    assert row["chunks_done"] == rescore.chunks_total == 4 and row["images"] == 20


@pytest.mark.django_db
def test_progress_per_worker_done_in_progress_failed_and_rate(scored_setup):
    dataset, version = scored_setup
    run = scoring_run_start(
        dataset=dataset, prompt_version=version, threshold=0.5, chunk_size=4, queue=False
    )
    ScoringRun.objects.filter(pk=run.pk).update(state=ScoringRun.State.RUNNING)
    start = timezone.now() - timedelta(seconds=100)
    chunks = list(run.chunks.order_by("index"))
    # alpha finished chunks 0 and 1 (8 images in 10 s), beta finished 2 and holds 3.
    for chunk, worker, done, seconds in (
        (chunks[0], "alpha@a", True, 4),
        (chunks[1], "alpha@a", True, 10),
        (chunks[2], "beta@b", True, 5),
        (chunks[3], "beta@b", False, None),
    ):
        scoring_chunk_assign(chunk_id=chunk.pk, worker=worker)
        ScoringChunk.objects.filter(pk=chunk.pk).update(
            started_at=start,
            state=ScoringChunk.State.DONE if done else ScoringChunk.State.PENDING,
            processed=4 if done else 0,
            finished_at=start + timedelta(seconds=seconds) if done else None,
        )
    alpha, beta = run_worker_progress(run=ScoringRun.objects.get(pk=run.pk))
    assert (alpha["worker"], alpha["chunks"], alpha["chunks_done"]) == ("alpha@a", [0, 1], 2)
    assert (alpha["images"], alpha["images_per_second"]) == (8, 0.8)
    assert (beta["worker"], beta["chunks"], beta["chunks_in_progress"]) == ("beta@b", [2, 3], 1)
    assert beta["images_per_second"] == pytest.approx(4 / 100, rel=0.1)  # still at work
    # A done chunk keeps the worker that finished it; an unassigned chunk is no worker's.
    scoring_chunk_assign(chunk_id=chunks[0].pk, worker="late@c")
    scoring_chunk_assign(chunk_id=chunks[4].pk, worker="")
    assert ScoringChunk.objects.get(pk=chunks[0].pk).worker == "alpha@a"
    # Once the run stopped, nothing is "in progress" any more.
    ScoringRun.objects.filter(pk=run.pk).update(state=ScoringRun.State.CANCELLED)
    progress = runs_worker_progress(runs=[ScoringRun.objects.get(pk=run.pk)])[run.pk]
    assert [row["chunks_in_progress"] for row in progress] == [0, 0]


@pytest.mark.django_db
def test_api_run_detail_lists_the_workers(scored_setup, admin_user):
    dataset, version = scored_setup
    run = scoring_run_start(
        dataset=dataset, prompt_version=version, threshold=0.5, chunk_size=8, queue=False
    )
    client = APIClient()
    client.force_login(admin_user)
    assert client.get(f"/api/runs/{run.pk}/").json()["workers"] == []
    for chunk in run.chunks.all():
        tasks.score_chunk.apply(args=(chunk.pk,))
    body = client.get(f"/api/runs/{run.pk}/").json()
    (worker,) = body["workers"]
    assert worker["worker"] == socket.gethostname()
    assert (worker["chunks_done"], worker["images"], worker["chunks"]) == (3, 20, [0, 1, 2])
    assert set(worker) == {
        "worker", "chunks", "chunks_done", "chunks_in_progress", "chunks_failed", "images",
        "first_started_at", "last_finished_at", "images_per_second",
    }  # fmt: skip
    # The run list keeps its shape (no per-worker rows there).
    assert "workers" not in client.get(f"/api/runs/?dataset={dataset.pk}").json()[0]


@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_two_real_workers_each_record_their_chunks(workers, scored_setup, admin_user):
    dataset, version = scored_setup
    alpha = workers.start("alpha")
    workers.start("beta")
    run = scoring_run_start(dataset=dataset, prompt_version=version, threshold=0.5, chunk_size=2)
    wait_for(
        lambda: ScoringRun.objects.get(pk=run.pk).state == ScoringRun.State.SUCCEEDED,
        timeout=120,
        what="run to finish",
        log=alpha.log_path,
    )
    names = set(ScoringChunk.objects.filter(run=run).values_list("worker", flat=True))
    hosts = {f"{name}-" for name in ("alpha", "beta")}
    assert names and all(any(n.startswith(h) for h in hosts) for n in names), names
    assert all("@" in n for n in names)  # Celery's name@host
    client = APIClient()
    client.force_login(admin_user)
    rows = client.get(f"/api/runs/{run.pk}/").json()["workers"]
    assert {row["worker"] for row in rows} == names
    assert sum(row["chunks_done"] for row in rows) == run.chunks_total == 10
    assert sum(row["images"] for row in rows) == 20
    assert sorted(i for row in rows for i in row["chunks"]) == list(range(10))
