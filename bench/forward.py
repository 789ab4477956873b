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


def bench_model(clip: Any, batch_sizes: list[int], repeats: int = 3) -> dict[str, Any]:
    """Forward alone on ready tensors: images/s of the median of `repeats` timings per batch
    size (not the best: a VM's speed drifts, and the best of a few overstates it), and the
    batch size where that is highest."""
    import torch

    generator = torch.Generator().manual_seed(0)
    size = clip.image_size
    clip.encode_image_batch(torch.randn(min(batch_sizes), 3, size, size, generator=generator))
    by_size: dict[str, float] = {}
    for batch in batch_sizes:
        x = torch.randn(batch, 3, size, size, generator=generator)
        median = float(
            np.median([timed(partial(clip.encode_image_batch, x)) for _ in range(repeats)])
        )
        by_size[str(batch)] = batch / median
    best_size = max(by_size, key=lambda k: by_size[k])
    return {
        "images_per_second": by_size[best_size],
        "best_batch_size": int(best_size),
        "by_batch_size": by_size,
    }


def bench_pipeline_interleaved(
    clip: Any, files: list[Path], *, step: int, rounds: int = 0
) -> dict[str, Any]:
    """The pipeline (decode + forward, :func:`encode_files`) against the forward alone on the
    same images, interleaved: each round encodes the next two steps of files, then runs the
    forward alone on those images' ready tensors. A shared VM's speed drifts 10-20 % over
    minutes, so sections measured minutes apart cannot show a 5 % difference; rounds
    seconds apart share the drift.

    Returns the summed seconds of each side and their ratio (forward / pipeline: 1.0 means
    the pipeline runs at the speed of the forward alone), and the pipeline's own forward
    share."""
    import torch

    from worker.engine.images import load_rgb
    from worker.engine.pipeline import encode_files

    per_round = 2 * step
    rounds = rounds or max(1, len(files) // per_round)
    pipeline_s = forward_s = forward_in_pipeline_s = 0.0
    images = 0
    for index in range(rounds):
        batch = files[(index * per_round) % len(files) :][:per_round]
        started = time.perf_counter()
        result = encode_files(clip, batch, batch_size=step)
        pipeline_s += time.perf_counter() - started
        forward_in_pipeline_s += result.timings.get("forward", 0.0)
        tensors = torch.stack(
            [clip.preprocess(load_rgb(path, target_size=clip.image_size)) for path in batch]
        )
        started = time.perf_counter()
        for start in range(0, len(batch), step):
            clip.encode_image_batch(tensors[start : start + step])
        forward_s += time.perf_counter() - started
        images += len(result.ok_indices)
    return {"images": images, "rounds": rounds, "step": step,
            "pipeline_seconds": pipeline_s, "forward_seconds": forward_s,
            "images_per_second": images / forward_s,
            "pipeline_images_per_second": images / pipeline_s,
            "pipeline_over_forward": forward_s / pipeline_s,
            # The share of the pipeline's own time in its forward (the rest: waiting on
            # decode, stacking): drift-free, but blind to a forward slowed by decoding.
            "forward_share_of_pipeline": forward_in_pipeline_s / pipeline_s}  # fmt: skip


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
