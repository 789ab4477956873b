"""Prompt tuning with the paper's settings on synthetic labelled embeddings."""

from __future__ import annotations

import time
from typing import Any

from bench import data


def bench_train(n: int, dim: int) -> dict[str, Any]:
    """train_prompts with the paper's settings on n labelled synthetic embeddings."""
    from worker.engine.scoring import inappropriate_probability
    from worker.engine.tuning import TuningConfig, train_prompts

    embeddings, labels = data.labelled_embeddings(n, dim, seed=5)
    init = data.unit_vectors(2, dim, seed=6) * 3.0
    config = TuningConfig()
    started = time.perf_counter()
    result = train_prompts(embeddings, labels, init_prompts=init, config=config)
    seconds = time.perf_counter() - started
    accuracy = float(
        ((inappropriate_probability(embeddings, result.prompts) >= 0.5) == labels).mean()
    )
    return {
        "embeddings": n,
        "epochs": config.epochs,
        "batch_size": config.batch_size,
        "seconds": seconds,
        "train_accuracy": accuracy,
    }
