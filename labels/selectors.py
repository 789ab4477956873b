"""Training labels: images with a verdict and a cached embedding, as arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from curation.models import Image
from curation.services.embeddings import cached_vectors
from reviewer.models import Decision
from reviewer.selectors.verdicts import latest_verdict_subquery


@dataclass(frozen=True)
class LabelledEmbeddings:
    image_ids: list[int]
    embeddings: np.ndarray  # float32 (N, D)
    labels: np.ndarray  # int64 (N,): 1 = inappropriate (confirmed), 0 = appropriate
    hashes: tuple[str, ...] = ()  # content hash (sha256) of each image


def labelled_embeddings(*, dataset_id: int, model_key: str, dim: int) -> LabelledEmbeddings:
    """Images with a verdict (the latest one counts) and a cached embedding for model_key."""
    rows = list(
        Image.objects.filter(dataset_id=dataset_id, status=Image.Status.OK)
        .annotate(verdict=latest_verdict_subquery())
        .filter(verdict__isnull=False)
        .order_by("id")
        .values_list("id", "sha256", "verdict")
    )
    # Grouped by shard: each shard file holding one of these embeddings is read once.
    vectors = cached_vectors(model_key=model_key, dim=dim, hashes=[sha for _, sha, _ in rows])
    kept = [(image_id, sha, verdict) for image_id, sha, verdict in rows if sha in vectors]
    if not kept:
        return LabelledEmbeddings([], np.zeros((0, 0), dtype=np.float32), np.zeros(0, np.int64))
    return LabelledEmbeddings(
        image_ids=[image_id for image_id, _, _ in kept],
        embeddings=np.stack([vectors[sha] for _, sha, _ in kept]).astype(np.float32),
        labels=np.array(
            [1 if verdict == Decision.Verdict.INAPPROPRIATE else 0 for _, _, verdict in kept],
            dtype=np.int64,
        ),
        hashes=tuple(sha for _, sha, _ in kept),
    )
