"""Batched, pipelined image encoding: reader -> mapper -> writer.

A thread pool decodes and preprocesses files (the reader) a few batches ahead
of the model's forward pass (the mapper), so decoding overlaps inference; the
caller collects embeddings (the writer). Pillow's decoders and torchvision's
tensor ops release the GIL, so threads give real parallelism here without the
cost of process pools (no pickling of tensors, no CUDA-after-fork hazards).

Per-file failures (unreadable, disallowed, corrupt) are recorded with a reason
and never abort the batch.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .clip import ClipModel
from .images import InvalidImageError, load_rgb
from .locators import ImageLocator

__all__ = ["EncodeResult", "default_decode_workers", "encode_files"]

logger = logging.getLogger(__name__)

_Prepared = tuple[torch.Tensor | None, str | None, float]


@dataclass
class EncodeResult:
    """The output of :func:`encode_files`.

    Attributes:
        embeddings: float32 (N_ok, D), L2-normalised, in the order of ``ok_indices``.
        ok_indices: ascending positions (in the input sequence) of encoded files.
        failures: position -> short reason for each file that could not be encoded.
        timings: seconds spent: ``"decode"`` (decode + preprocess, summed over
            workers), ``"forward"`` (model, including host/device copies),
            ``"wait"`` (forward loop blocked on decoding) and ``"wall"``.
    """

    embeddings: np.ndarray
    ok_indices: list[int]
    failures: dict[int, str]
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def images_per_second(self) -> float:
        """Encoded images per wall-clock second (0.0 when nothing was timed)."""
        wall = self.timings.get("wall", 0.0)
        return len(self.ok_indices) / wall if wall > 0 else 0.0


def default_decode_workers() -> int:
    """Default size of the decode pool: all usable CPUs but one (left for the forward loop)."""
    # CPU affinity (taskset, cgroup cpusets) can be narrower than the machine.
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (usable or 2) - 1)


def _prepare(clip: ClipModel, source: str | Path | ImageLocator) -> _Prepared:
    """Decode and preprocess one file; never raises (failures become reasons)."""
    started = time.perf_counter()
    try:
        image = load_rgb(source, target_size=clip.image_size)
        tensor = clip.preprocess(image)
        return tensor, None, time.perf_counter() - started
    except InvalidImageError as exc:
        return None, exc.reason, time.perf_counter() - started
    except Exception as exc:  # a per-file problem must never sink the batch
        logger.warning("unexpected failure preparing %s", source, exc_info=True)
        return (
            None,
            f"preprocessing failed: {type(exc).__name__}: {exc}",
            time.perf_counter() - started,
        )


def encode_files(
    clip: ClipModel,
    sources: Sequence[str | Path | ImageLocator],
    *,
    batch_size: int = 64,
    decode_workers: int | None = None,
    on_batch: Callable[[int], None] | None = None,
    prefetch_batches: int = 3,
) -> EncodeResult:
    """Encode image files into normalised CLIP embeddings.

    Files are decoded (:func:`~worker.engine.images.load_rgb` at the model's
    input size) and preprocessed in a thread pool that runs up to
    ``prefetch_batches`` batches ahead of the forward pass; memory stays bounded
    by that window. On CUDA, batches are assembled in one reused pinned buffer
    so the host-to-device copy is asynchronous (the buffer is reused only after
    :meth:`ClipModel.encode_image_batch` has returned, i.e. synchronised).

    Args:
        clip: the loaded model.
        sources: file paths, or ImageLocators (container members are range-read).
        batch_size: images per forward pass.
        decode_workers: decode threads; default :func:`default_decode_workers`.
        on_batch: called after each batch with the number of input files handled
            so far (encoded or failed), for progress reporting. Exceptions it
            raises abort the call (pending decodes are cancelled).
        prefetch_batches: how many batches decoding may run ahead of the forward.

    Returns:
        Embeddings for the files that could be read, their positions, the
        reasons for the others, and per-stage timings.
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if prefetch_batches < 0:
        raise ValueError(f"prefetch_batches must be >= 0, got {prefetch_batches}")
    workers = decode_workers if decode_workers is not None else default_decode_workers()
    if workers <= 0:
        raise ValueError(f"decode_workers must be positive, got {workers}")

    started = time.perf_counter()
    total = len(sources)
    batch_starts = range(0, total, batch_size)
    chunks: list[np.ndarray] = []
    ok_indices: list[int] = []
    failures: dict[int, str] = {}
    decode_s = forward_s = wait_s = 0.0
    pinned: torch.Tensor | None = None

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="q16-decode")
    pending: deque[list[Future[_Prepared]]] = deque()
    next_batch = 0

    def submit_next() -> None:
        nonlocal next_batch
        start = batch_starts[next_batch]
        stop = min(start + batch_size, total)
        pending.append([pool.submit(_prepare, clip, sources[i]) for i in range(start, stop)])
        next_batch += 1

    try:
        while next_batch < len(batch_starts) and len(pending) <= prefetch_batches:
            submit_next()
        for start in batch_starts:
            futures = pending.popleft()
            # Refill the window before blocking, so the workers never idle on us.
            if next_batch < len(batch_starts):
                submit_next()

            waited = time.perf_counter()
            prepared = [future.result() for future in futures]
            wait_s += time.perf_counter() - waited

            tensors: list[torch.Tensor] = []
            for offset, (tensor, reason, seconds) in enumerate(prepared):
                decode_s += seconds
                if tensor is None:
                    failures[start + offset] = reason or "unknown error"
                else:
                    tensors.append(tensor)
                    ok_indices.append(start + offset)

            if tensors:
                if clip.is_cuda:
                    if pinned is None or pinned.shape[1:] != tensors[0].shape:
                        pinned = torch.empty(
                            (batch_size, *tensors[0].shape), dtype=tensors[0].dtype, pin_memory=True
                        )
                    batch = torch.stack(tensors, out=pinned[: len(tensors)])
                else:
                    batch = torch.stack(tensors)
                forward_started = time.perf_counter()
                chunks.append(clip.encode_image_batch(batch))
                forward_s += time.perf_counter() - forward_started

            if on_batch is not None:
                on_batch(start + len(futures))
    finally:
        # On error, drop queued decodes instead of finishing them.
        pool.shutdown(wait=True, cancel_futures=True)

    embeddings = (
        np.concatenate(chunks, axis=0) if chunks else np.zeros((0, clip.dim), dtype=np.float32)
    )
    timings = {
        "decode": decode_s,
        "forward": forward_s,
        "wait": wait_s,
        "wall": time.perf_counter() - started,
    }
    result = EncodeResult(
        embeddings=embeddings, ok_indices=ok_indices, failures=failures, timings=timings
    )
    logger.info(
        "encoded %d/%d images with %s in %.2fs (%.1f img/s; decode %.2fs over %d workers, "
        "forward %.2fs, waited on decode %.2fs; %d failed)",
        len(ok_indices),
        total,
        clip.key,
        timings["wall"],
        result.images_per_second,
        decode_s,
        workers,
        forward_s,
        wait_s,
        len(failures),
    )
    return result
