"""Two real Celery workers rescore one run in parallel ranges of its chunks (so its shards)."""

from __future__ import annotations

import pytest

from curation.models import EmbeddingShard, Score, ScoringChunk, ScoringRun
from curation.services.chunks import scoring_chunk_process
from curation.services.clip_runtime import get_clip
from curation.services.scoring import scoring_run_start
from tests.helpers import wait_for

pytestmark = [pytest.mark.celery, pytest.mark.django_db(transaction=True)]


def test_two_workers_rescore_one_run_each_range_exactly_once(workers, dataset_and_prompts):
    dataset, version = dataset_and_prompts
    first = scoring_run_start(
        dataset=dataset, prompt_version=version, threshold=0.5, chunk_size=100, queue=False
    )
    for chunk in first.chunks.all():
        scoring_chunk_process(chunk_id=chunk.pk, clip_provider=get_clip)
    assert EmbeddingShard.objects.filter(run=first).count() == 3  # one shard per chunk

    env = {"Q16_RESCORE_PARALLEL": "2"}
    a = workers.start("a", queues="cpu", **env)
    b = workers.start("b", queues="cpu", **env)
    run = scoring_run_start(
        dataset=dataset,
        prompt_version=version,
        threshold=0.5,
        kind=ScoringRun.Kind.RESCORE,
        chunk_size=20,
    )
    wait_for(
        lambda: ScoringRun.objects.get(pk=run.pk).state == ScoringRun.State.SUCCEEDED,
        timeout=180,
        what="the parallel rescore",
        log=a.log_path,
    )
    run.refresh_from_db()
    chunks = list(run.chunks.order_by("index"))
    assert run.processed == dataset.images.count() == Score.objects.filter(run=run).count()
    assert all(c.state == ScoringChunk.State.DONE and c.attempts == 1 for c in chunks)
    # Two ranges, each taken by one worker: the chunks' workers change once, at the cut.
    workers_in_order = [c.worker for c in chunks]
    changes = sum(1 for x, y in zip(workers_in_order, workers_in_order[1:], strict=False) if x != y)
    assert changes == 1, workers_in_order
    assert {w.split("-")[0] for w in workers_in_order} == {"a", "b"}, (a.log_path, b.log_path)
    # Same embeddings, same prompts: the rescore reproduces the first run's scores.
    before = dict(Score.objects.filter(run=first).values_list("image_id", "p_inappropriate"))
    after = dict(Score.objects.filter(run=run).values_list("image_id", "p_inappropriate"))
    assert before == pytest.approx(after, abs=1e-6)
