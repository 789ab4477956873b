"""Files on disk -> stored scores through the scoring service, and each backend's fidelity."""

from __future__ import annotations

import time
from typing import Any

import numpy as np


def bench_end_to_end(
    clip: Any, dataset: Any, *, threshold: float, batch_size: int | None, keep: dict[str, Any]
) -> dict[str, Any]:
    """Files on disk -> stored scores, through the scoring service, cache emptied first.

    The run's stored embeddings and scores are put in ``keep`` (for the fidelity section:
    a backend with the same model key overwrites them in the cache).
    """
    from curation.models import Embedding, ScoringRun
    from curation.services.chunks import scoring_chunk_process
    from curation.services.prompt_zero_shot import prompt_version_create_zero_shot
    from curation.services.scoring import scoring_run_start

    Embedding.objects.filter(model_key=clip.key).delete()
    version = prompt_version_create_zero_shot(clip=clip, name=f"bench zero-shot ({clip.backend})")
    run = scoring_run_start(
        dataset=dataset, prompt_version=version, threshold=threshold, queue=False
    )
    chunk_ids = list(run.chunks.order_by("index").values_list("id", flat=True))
    started = time.perf_counter()
    for chunk_id in chunk_ids:
        scoring_chunk_process(
            chunk_id=chunk_id, clip_provider=lambda _key: clip, batch_size=batch_size
        )
    seconds = time.perf_counter() - started
    run.refresh_from_db()
    keep["embeddings"] = stored_vectors(clip.key)
    keep["scores"] = dict(run.scores.values_list("image_id", "p_inappropriate"))
    if run.state != ScoringRun.State.SUCCEEDED or run.encoded != run.total:
        raise RuntimeError(
            f"end-to-end run {run.pk} ended {run.state} with {run.encoded}/{run.total} encoded, "
            f"{run.failed} failed"
        )
    return {
        "images": run.total,
        "chunks": len(chunk_ids),
        "seconds": seconds,
        "images_per_second": run.total / seconds,
        "timings": run.timings,
        "run_id": run.pk,
        "model_key": clip.key,
    }


def stored_vectors(model_key: str) -> dict[str, np.ndarray]:
    """The cached embeddings of ``model_key``, by image sha256, as float32."""
    from curation.models import Embedding
    from curation.services.embeddings import cached_vectors

    hashes = list(Embedding.objects.filter(model_key=model_key).values_list("sha256", flat=True))
    if not hashes:
        return {}
    dim = Embedding.objects.filter(model_key=model_key).values_list("shard__dim", flat=True)[0]
    # Embeddings now live in shard files: read through the cache's reader (by shard).
    return cached_vectors(model_key=model_key, dim=dim, hashes=hashes)


def fidelity(
    reference: dict[str, Any], other: dict[str, Any], *, threshold: float
) -> dict[str, Any]:
    """Embedding cosine and flag agreement of a backend's run against the fp32 torch run."""
    ref, got = reference["embeddings"], other["embeddings"]
    common = sorted(set(ref) & set(got))
    a = np.stack([ref[s] for s in common])
    b = np.stack([got[s] for s in common])
    cosine = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    ref_scores, scores = reference["scores"], other["scores"]
    ids = sorted(set(ref_scores) & set(scores))
    p_ref = np.array([ref_scores[i] for i in ids])
    p = np.array([scores[i] for i in ids])
    median = float(np.median(p_ref))
    return {
        "images": len(common),
        "cosine_mean": float(cosine.mean()),
        "cosine_min": float(cosine.min()),
        "flag_agreement": float(((p_ref >= threshold) == (p >= threshold)).mean()),
        "flagged_fp32": int((p_ref >= threshold).sum()),
        "flag_agreement_at_fp32_median": float(((p_ref >= median) == (p >= median)).mean()),
        "score_max_abs_diff": float(np.abs(p_ref - p).max()),
    }
