"""Image-encoder sections: the forward pass alone, the paper's naive loop, decode + preprocess."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np


def timed(fn: Callable[[], Any]) -> float:
    """Seconds ``fn()`` takes."""
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def bench_model(clip: Any, batch_sizes: list[int], repeats: int = 2) -> dict[str, Any]:
    """Forward alone on ready tensors: the best images/s over the batch sizes."""
    import torch

    generator = torch.Generator().manual_seed(0)
    size = clip.image_size
    clip.encode_image_batch(torch.randn(min(batch_sizes), 3, size, size, generator=generator))
    by_size: dict[str, float] = {}
    for batch in batch_sizes:
        x = torch.randn(batch, 3, size, size, generator=generator)
        best = min(timed(partial(clip.encode_image_batch, x)) for _ in range(repeats))
        by_size[str(batch)] = batch / best
    best_size = max(by_size, key=lambda k: by_size[k])
    return {
        "images_per_second": by_size[best_size],
        "best_batch_size": int(best_size),
        "by_batch_size": by_size,
    }


def bench_naive(clip: Any, paths: list[Path], prompts: np.ndarray) -> dict[str, Any]:
    """The paper repository's loop: one image at a time, open, preprocess, forward, softmax."""
    import torch
    from PIL import Image as PILImage

    prompt_t = torch.from_numpy(prompts)
    prompt_t = prompt_t / prompt_t.norm(dim=-1, keepdim=True)
    model = clip.model
    started = time.perf_counter()
    with torch.no_grad():
        for path in paths:
            image = PILImage.open(path)
            x = clip.preprocess(image).unsqueeze(0)
            features = model.encode_image(x)
            features = features / features.norm(dim=-1, keepdim=True)
            (100.0 * features @ prompt_t.T).softmax(dim=-1)[0, 1].item()
    seconds = time.perf_counter() - started
    return {"images": len(paths), "seconds": seconds, "images_per_second": len(paths) / seconds}


def bench_decode(clip: Any, small: list[Path], large: list[Path]) -> dict[str, Any]:
    """Decode + preprocess on one thread (per core), with and without JPEG draft mode."""
    import torch

    from worker.engine.images import load_rgb

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out: dict[str, Any] = {}
    try:
        for label, paths in (("small_500x375", small), ("large_3000x2000", large)):
            for draft in (True, False):
                target = clip.image_size if draft else None
                clip.preprocess(load_rgb(paths[0], target_size=target))  # warm

                def decode_all(paths: list[Path] = paths, target: int | None = target) -> list[Any]:
                    return [clip.preprocess(load_rgb(p, target_size=target)) for p in paths]

                seconds = timed(decode_all)
                out[f"{label}_{'draft' if draft else 'nodraft'}"] = {
                    "images": len(paths),
                    "images_per_second": len(paths) / seconds,
                }
    finally:
        torch.set_num_threads(threads)
    return out
