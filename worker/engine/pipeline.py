"""Batched, pipelined image encoding: reader -> mapper -> writer.

A thread pool decodes and preprocesses files (the reader) a few batches ahead
of the model's forward pass (the mapper), so decoding overlaps inference; the
caller collects embeddings (the writer). Pillow's decoders and torchvision's
tensor ops release the GIL, so threads give real parallelism here without the
cost of process pools (no pickling of tensors, no CUDA-after-fork hazards).

On a CPU the decode pool and the forward share the same cores, and running them
at once makes them compete (a decode thread preempting one of PyTorch's intra-op
threads stalls the whole matmul behind it). So there the split is measured, per
process and model: :class:`CpuSchedule` tries both ways on the first batches it is
given and keeps the faster for the rest of the process:

- ``"alternate"``: each batch is decoded by every core while the forward waits, then
  the forward runs on every core while decoding waits (no competition; the forward's
  share of the cores is the model-only forward's);
- ``"overlap"``: the next batch decodes on cores-1 threads while the forward runs.

On CUDA the forward runs on the GPU, so decoding always overlaps it.

Per-file failures (unreadable, disallowed, corrupt) are recorded with a reason
and never abort the batch.
"""

from __future__ import annotations

import logging
import os
import threading
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

__all__ = [
    "SCHEDULES",
    "CpuSchedule",
    "EncodeResult",
    "cpu_schedule_for",
    "default_decode_workers",
    "encode_files",
    "usable_cores",
]

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
        schedule: ``"cuda"``, or the CPU schedule(s) the batches ran with
            (``"alternate"``, ``"overlap"``, or both while the choice was measured).
    """

    embeddings: np.ndarray
    ok_indices: list[int]
    failures: dict[int, str]
    timings: dict[str, float] = field(default_factory=dict)
    schedule: str = ""

    @property
    def images_per_second(self) -> float:
        """Encoded images per wall-clock second (0.0 when nothing was timed)."""
        wall = self.timings.get("wall", 0.0)
        return len(self.ok_indices) / wall if wall > 0 else 0.0


def usable_cores() -> int:
    """CPUs this process may run on (CPU affinity, taskset and cgroup cpusets included)."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, usable or 1)


def default_decode_workers(*, cuda: bool = True) -> int:
    """Default size of the decode pool.

    With CUDA: all usable CPUs but one (left for the loop feeding the GPU). On a CPU: all of
    them (in the ``"alternate"`` schedule decoding has every core to itself; the
    ``"overlap"`` schedule lets only cores-1 of them decode at once).
    """
    cores = usable_cores()
    return max(1, cores - 1) if cuda else cores


SCHEDULES: tuple[str, ...] = ("alternate", "overlap")
"""The two ways to share a CPU between decoding and the forward (see the module doc)."""


class CpuSchedule:
    """The measured choice between :data:`SCHEDULES` for one model in this process.

    Until decided, steps are handed out in pairs (alternate, alternate, overlap, overlap,
    ...); the second step of each pair is timed (the first still carries the other way's
    decoding). Once each way has ``trial_steps`` timed steps the faster (images per
    second of whole steps: decode wait plus forward) is kept.
    """

    def __init__(self, *, trial_steps: int = 2, fixed: str | None = None) -> None:
        if fixed is not None and fixed not in SCHEDULES:
            raise ValueError(f"unknown schedule {fixed!r}; use one of {', '.join(SCHEDULES)}")
        self.trial_steps = trial_steps
        self.chosen: str | None = fixed
        self.trials: dict[str, list[float]] = {name: [] for name in SCHEDULES}
        self._step = 0
        self._lock = threading.Lock()

    def next_mode(self) -> tuple[str, bool]:
        """The schedule of the next step, and whether that step's time is a trial sample."""
        with self._lock:
            if self.chosen is not None:
                return self.chosen, False
            step = self._step
            self._step += 1
            return SCHEDULES[(step // 2) % 2], step % 2 == 1

    def record(self, mode: str, images: int, seconds: float) -> None:
        """A timed trial step; decides once every way has enough of them."""
        if images <= 0 or seconds <= 0:
            return
        with self._lock:
            if self.chosen is not None:
                return
            self.trials[mode].append(images / seconds)
            if all(len(rates) >= self.trial_steps for rates in self.trials.values()):
                rates = {name: sorted(r)[len(r) // 2] for name, r in self.trials.items()}
                self.chosen = max(rates, key=lambda name: rates[name])
                logger.info(
                    "CPU schedule: %s (measured img/s of a step: %s; %d cores)",
                    self.chosen,
                    ", ".join(f"{name} {rate:.2f}" for name, rate in rates.items()),
                    usable_cores(),
                )

    def describe(self) -> dict[str, object]:
        with self._lock:
            return {"chosen": self.chosen, "trials": {k: list(v) for k, v in self.trials.items()}}


_schedules: dict[str, CpuSchedule] = {}
_schedules_lock = threading.Lock()


def cpu_schedule_for(clip: ClipModel) -> CpuSchedule:
    """This process's schedule for a model on the CPU (``Q16_CPU_SCHEDULE`` fixes it)."""
    fixed = os.environ.get("Q16_CPU_SCHEDULE", "").strip().lower() or None
    with _schedules_lock:
        schedule = _schedules.get(clip.key)
        if schedule is None:
            schedule = _schedules[clip.key] = CpuSchedule(fixed=fixed)
        return schedule


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


def _prepare_in_slot(
    clip: ClipModel, source: str | Path | ImageLocator, slots: threading.Semaphore
) -> _Prepared:
    """:func:`_prepare` holding one of a limited number of decode slots."""
    with slots:
        return _prepare(clip, source)


def encode_files(
    clip: ClipModel,
    sources: Sequence[str | Path | ImageLocator],
    *,
    batch_size: int = 64,
    decode_workers: int | None = None,
    on_batch: Callable[[int], None] | None = None,
    prefetch_batches: int = 3,
    schedule: CpuSchedule | None = None,
) -> EncodeResult:
    """Encode image files into normalised CLIP embeddings.

    Files are decoded (:func:`~worker.engine.images.load_rgb` at the model's
    input size) and preprocessed in a thread pool. On CUDA decoding runs up to
    ``prefetch_batches`` batches ahead of the forward pass (memory stays bounded
    by that window), and batches are assembled in one reused pinned buffer so
    the host-to-device copy is asynchronous (the buffer is reused only after
    :meth:`ClipModel.encode_image_batch` has returned, i.e. synchronised). On a
    CPU, batches are stepped at the forward's own size (:attr:`ClipModel.cpu_forward_batch`)
    and decoding shares the cores with the forward by the measured
    :class:`CpuSchedule` (see the module doc).

    Args:
        clip: the loaded model.
        sources: file paths, or ImageLocators (container members are range-read).
        batch_size: images per forward pass.
        decode_workers: decode threads; default :func:`default_decode_workers`.
        on_batch: called after each batch with the number of input files handled
            so far (encoded or failed), for progress reporting. Exceptions it
            raises abort the call (pending decodes are cancelled).
        prefetch_batches: on CUDA, how many batches decoding may run ahead of the forward.
        schedule: on a CPU, the decode/forward split to use and refine; default
            :func:`cpu_schedule_for` (measured once per process and model).

    Returns:
        Embeddings for the files that could be read, their positions, the
        reasons for the others, and per-stage timings.
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if prefetch_batches < 0:
        raise ValueError(f"prefetch_batches must be >= 0, got {prefetch_batches}")
    cuda = clip.is_cuda
    workers = decode_workers if decode_workers is not None else default_decode_workers(cuda=cuda)
    if workers <= 0:
        raise ValueError(f"decode_workers must be positive, got {workers}")

    started = time.perf_counter()
    total = len(sources)
    step_size = batch_size
    cpu_schedule: CpuSchedule | None = None
    if not cuda:
        cpu_schedule = schedule if schedule is not None else cpu_schedule_for(clip)
        if clip.cpu_forward_batch > 0:
            step_size = min(batch_size, clip.cpu_forward_batch)
    # While the forward runs on the CPU, at most cores-1 decodes run beside it.
    overlap_slots = threading.BoundedSemaphore(max(1, min(workers, usable_cores() - 1)))
    batch_starts = range(0, total, step_size)
    chunks: list[np.ndarray] = []
    ok_indices: list[int] = []
    failures: dict[int, str] = {}
    decode_s = forward_s = wait_s = 0.0
    pinned: torch.Tensor | None = None
    modes_used: dict[str, int] = {}

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="q16-decode")
    pending: deque[list[Future[_Prepared]]] = deque()
    next_batch = 0

    def submit_next(*, beside_forward: bool = False) -> None:
        nonlocal next_batch
        start = batch_starts[next_batch]
        stop = min(start + step_size, total)
        if beside_forward:
            batch = [
                pool.submit(_prepare_in_slot, clip, sources[i], overlap_slots)
                for i in range(start, stop)
            ]
        else:
            batch = [pool.submit(_prepare, clip, sources[i]) for i in range(start, stop)]
        pending.append(batch)
        next_batch += 1

    try:
        if batch_starts:
            submit_next()
        if cuda:
            while next_batch < len(batch_starts) and len(pending) <= prefetch_batches:
                submit_next()
        for start in batch_starts:
            step_started = time.perf_counter()
            futures = pending.popleft()
            mode, timed = ("overlap", False) if cpu_schedule is None else cpu_schedule.next_mode()
            modes_used[mode] = modes_used.get(mode, 0) + 1
            # Refill the window before blocking, so the workers never idle on us (CUDA), or
            # on the CPU let the next batch decode beside this forward ("overlap").
            if next_batch < len(batch_starts) and (cuda or mode == "overlap"):
                submit_next(beside_forward=not cuda)

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
                if cuda:
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

            if cpu_schedule is not None and timed:
                cpu_schedule.record(mode, len(futures), time.perf_counter() - step_started)
            # "alternate": the next batch decodes on every core now that the forward is done.
            if not cuda and not pending and next_batch < len(batch_starts):
                submit_next()

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
        embeddings=embeddings,
        ok_indices=ok_indices,
        failures=failures,
        timings=timings,
        schedule="cuda" if cuda else "+".join(sorted(modes_used)) or "none",
    )
    logger.info(
        "encoded %d/%d images with %s in %.2fs (%.1f img/s; decode %.2fs over %d workers, "
        "forward %.2fs, waited on decode %.2fs; schedule %s; %d failed)",
        len(ok_indices),
        total,
        clip.key,
        timings["wall"],
        result.images_per_second,
        decode_s,
        workers,
        forward_s,
        wait_s,
        result.schedule,
        len(failures),
    )
    return result
