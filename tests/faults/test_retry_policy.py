"""The scoring task's retry policy: transient errors retry with backoff, bounded."""

from __future__ import annotations

import pytest
from celery.app.task import Task
from django.db import OperationalError

from curation.models import Dataset, PromptVersion, ScoringChunk, ScoringRun
from worker import tasks

pytestmark = pytest.mark.django_db


@pytest.fixture
def chunk(admin_user):
    import numpy as np

    dataset = Dataset.objects.create(
        name="d", source_kind=Dataset.SourceKind.FOLDER, source="/x", root_path="/x"
    )
    version = PromptVersion.objects.create(
        name="v",
        source=PromptVersion.Source.ZERO_SHOT,
        model_key="m",
        dim=4,
        vectors=np.zeros((2, 4), dtype=np.float32).tobytes(),
    )
    run = ScoringRun.objects.create(
        dataset=dataset, prompt_version=version, threshold=0.5, model_key="m", chunks_total=1
    )
    return ScoringChunk.objects.create(run=run, index=0, first_image_id=1, last_image_id=1)


@pytest.fixture
def countdowns(monkeypatch):
    """Record the countdown of every retry (eager mode runs retries at once)."""
    seen: list[float] = []
    original = Task.retry

    def recording(self, *args, **kwargs):
        seen.append(kwargs.get("countdown"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Task, "retry", recording)
    # Eager retries re-apply the task; they must not re-raise Retry to the caller.
    monkeypatch.setitem(tasks.score_chunk.app.conf, "task_eager_propagates", False)
    return seen


def test_transient_errors_retry_with_backoff_then_succeed(chunk, monkeypatch, countdowns):
    calls: list[int] = []

    def flaky(*, chunk_id, clip_provider):
        calls.append(chunk_id)
        if len(calls) <= 2:
            raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr("curation.services.chunks.scoring_chunk_process", flaky)
    tasks.score_chunk.apply(args=(chunk.pk,), throw=False)
    assert calls == [chunk.pk] * 3
    assert countdowns == [5, 10]  # exponential backoff
    chunk.run.refresh_from_db()
    assert chunk.run.state != ScoringRun.State.FAILED


def test_transient_errors_are_bounded_then_the_run_fails(chunk, monkeypatch, countdowns):
    calls: list[int] = []

    def down(*, chunk_id, clip_provider):
        calls.append(chunk_id)
        raise OperationalError("could not connect to server")

    monkeypatch.setattr("curation.services.chunks.scoring_chunk_process", down)
    tasks.score_chunk.apply(args=(chunk.pk,), throw=False)
    assert len(calls) == tasks.MAX_RETRIES + 1
    assert countdowns == [5, 10, 20]
    run = ScoringRun.objects.get(pk=chunk.run_id)
    assert run.state == ScoringRun.State.FAILED
    assert f"after {tasks.MAX_RETRIES} retries" in run.error
    assert ScoringChunk.objects.get(pk=chunk.pk).state == ScoringChunk.State.FAILED


def test_permanent_errors_are_not_retried(chunk, monkeypatch, countdowns):
    from worker.engine.clip import ModelLoadError

    def broken(*, chunk_id, clip_provider):
        raise ModelLoadError("checkpoint /x.pt is not a torch file")

    monkeypatch.setattr("curation.services.chunks.scoring_chunk_process", broken)
    tasks.score_chunk.apply(args=(chunk.pk,), throw=False)
    assert countdowns == []
    run = ScoringRun.objects.get(pk=chunk.run_id)
    assert run.state == ScoringRun.State.FAILED and "model could not load" in run.error
