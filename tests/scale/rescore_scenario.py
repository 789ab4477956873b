"""A rescore whose cached embeddings lie scattered over two shards, one image not cached:
run in-process on PostgreSQL and in a subprocess on SQLite (tests/scale/test_rescore_paths.py)."""

from __future__ import annotations

import numpy as np

from curation.models import Score, ScoringRun
from curation.services.chunks import scoring_run_rescore
from curation.services.embeddings import embeddings_store
from curation.services.scoring import scoring_run_start
from reviewer.models import ReviewItem
from tests.reviewer.factories import make_dataset, make_version
from worker.engine.scoring import inappropriate_probability
from worker.engine.store import prompts_from_bytes


def rescore_scattered() -> None:
    rng = np.random.default_rng(5)
    dim = 8
    prompts = rng.standard_normal((2, dim)).astype(np.float32)
    version = make_version("m/rescore", dim=dim, vectors=prompts)
    # First run: images 0 and 1 flagged (with items), the rest not.
    dataset, _, images = make_dataset([0.9, 0.8, 0.1, 0.2, 0.3, 0.4], version=version)
    vectors = rng.standard_normal((6, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    hashes = [image.sha256 for image in images]
    # Shard A holds images 4, 0, 2 (out of order), shard B holds 1 and 3; 5 is not cached.
    embeddings_store(model_key=version.model_key, hashes=[hashes[i] for i in (4, 0, 2)],
                     matrix=vectors[[4, 0, 2]])  # fmt: skip
    embeddings_store(model_key=version.model_key, hashes=[hashes[1], hashes[3]],
                     matrix=vectors[[1, 3]])  # fmt: skip
    run = scoring_run_start(
        dataset=dataset, prompt_version=version, threshold=0.5,
        kind=ScoringRun.Kind.RESCORE, chunk_size=4, queue=False,
    )  # fmt: skip
    run = scoring_run_rescore(run_id=run.pk)
    assert run.state == ScoringRun.State.SUCCEEDED, run.state
    assert (run.processed, run.failed, run.chunks_done) == (6, 1, 2), run
    # Exactly the engine's scores of the cached float16 values.
    cached = vectors[:5].astype(np.float16).astype(np.float32)
    expected = inappropriate_probability(cached, prompts_from_bytes(bytes(version.vectors)))
    stored = dict(Score.objects.filter(run=run).values_list("image_id", "p_inappropriate"))
    assert stored == {images[i].pk: float(expected[i]) for i in range(5)}, stored
    assert run.flagged == int((expected >= 0.5).sum())
    items = dict(ReviewItem.objects.filter(dataset=dataset).values_list("image_id", "state"))
    want = {}
    for i in range(5):
        if expected[i] >= 0.5:
            want[images[i].pk] = "pending"
        elif i in (0, 1):
            want[images[i].pk] = "withdrawn"
    assert items == want, (items, want)
    assert hashes[5][:12] in ScoringRun.objects.get(pk=run.pk).chunks.get(index=1).error
