"""``Q16_BACKEND=auto``: measure every backend on this CPU and pick the fastest faithful one.

On the calibration sample (a few hundred of the dataset's own images) each available
backend encodes the same images; its images/s and its fidelity to fp32 PyTorch are
measured: embedding cosine (mean >= 0.99) and flag agreement at the run's threshold and
at the fp32 median (each >= 99 %). The fastest backend within these bounds wins; fp32
PyTorch is the reference and always qualifies.

The measurement runs in a child process (``python -m worker.engine.backend_choice``) so
that the backends it tries (OpenVINO's thread pools) never stay loaded in the worker, and
the torch reference is measured before any OpenVINO code is loaded. The choice is written
to the backend cache (:func:`worker.engine.spec.backend_choice_path`, per model and CPU
class), where every later process reads it, the web process included (torch-free).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .auto_backend import source_from_json
from .locators import ImageLocator
from .spec import (
    ModelLoadError,
    ModelSpec,
    backend_choice_path,
    cpu_signature,
    model_key_for,
)

__all__ = [
    "FIDELITY_BOUNDS",
    "choose_backend",
    "fidelity",
    "passes_bounds",
]

logger = logging.getLogger(__name__)

FIDELITY_BOUNDS: dict[str, float] = {
    "cosine_mean": 0.99,
    "flag_agreement": 0.99,
    "flag_agreement_at_fp32_median": 0.99,
}
"""The least fidelity to fp32 PyTorch a faster backend must show to be chosen."""

FIDELITY_IMAGES = 128
"""Images of the calibration sample each candidate encodes (fidelity, and its speed)."""


def fidelity(
    reference: np.ndarray, other: np.ndarray, *, prompts: np.ndarray, threshold: float
) -> dict[str, float]:
    """Cosine of ``other``'s embeddings to ``reference``'s, and flag agreement of their scores."""
    from .scoring import inappropriate_probability

    cosine = (reference * other).sum(1) / (
        np.linalg.norm(reference, axis=1) * np.linalg.norm(other, axis=1)
    )
    p_ref = inappropriate_probability(reference, prompts)
    p = inappropriate_probability(other, prompts)
    median = float(np.median(p_ref))
    return {
        "cosine_mean": float(cosine.mean()),
        "cosine_min": float(cosine.min()),
        "flag_agreement": float(((p_ref >= threshold) == (p >= threshold)).mean()),
        "flag_agreement_at_fp32_median": float(((p_ref >= median) == (p >= median)).mean()),
    }


def passes_bounds(measured: dict[str, float], bounds: dict[str, float] = FIDELITY_BOUNDS) -> bool:
    """Whether every bounded figure is at least its bound."""
    return all(measured.get(name, 0.0) >= bound for name, bound in bounds.items())


def _candidates() -> list[str]:
    """The backends worth trying on this CPU: bf16 only where the CPU has it."""
    names = ["torch"]
    try:
        from .backends import cpu_has_bf16

        has_bf16 = cpu_has_bf16()
    except Exception:  # openvino missing: torch is the only candidate
        return names
    names.append("openvino")
    if has_bf16:
        names.append("openvino-bf16")
    try:
        import nncf  # noqa: F401

        names.append("openvino-int8")
    except ImportError:
        pass
    return names


def _encode_timed(clip: Any, pixels: Any) -> tuple[np.ndarray, float]:
    clip.encode_image_batch(pixels[: min(len(pixels), clip.cpu_forward_batch or 16)])  # warm
    started = time.perf_counter()
    embeddings = clip.encode_image_batch(pixels)
    return embeddings, len(pixels) / (time.perf_counter() - started)


def choose_backend(
    spec: ModelSpec,
    *,
    calibration_sources: Sequence[str | Path | ImageLocator],
    threshold: float,
    prompts: np.ndarray | None = None,
    cache_dir: str | Path | None = None,
    candidates: Sequence[str] | None = None,
    bounds: dict[str, float] = FIDELITY_BOUNDS,
    fidelity_images: int = FIDELITY_IMAGES,
) -> dict[str, Any]:
    """Measure the candidates (in this process) and record the fastest faithful one.

    Returns the record written to :func:`backend_choice_path`: ``backend``, ``model_key``,
    ``cpu`` and, per candidate, its ``images_per_second``, fidelity and ``passes`` (or
    ``error``).
    """
    import torch

    from .clip import load_clip
    from .int8 import CALIBRATION_IMAGES, calibration_tensors, sample_evenly
    from .scoring import zero_shot_prompts

    names = list(candidates) if candidates is not None else _candidates()
    started = time.perf_counter()
    reference_clip = load_clip(spec, device="cpu")
    sample = sample_evenly(calibration_sources, CALIBRATION_IMAGES)
    tensors = calibration_tensors(
        preprocess=reference_clip.preprocess,
        image_size=reference_clip.image_size,
        sources=sample,
    )
    if not tensors:
        raise ModelLoadError(
            "Q16_BACKEND=auto needs readable calibration images; none could be read"
        )
    pixels = torch.stack(sample_evenly(tensors, fidelity_images))
    if prompts is None:
        prompts = zero_shot_prompts(reference_clip)
    reference, torch_speed = _encode_timed(reference_clip, pixels)
    measured: dict[str, dict[str, Any]] = {
        "torch": {"images_per_second": torch_speed, "passes": True}
    }
    for name in names:
        if name == "torch":
            continue
        try:
            clip = load_clip(
                spec,
                device="cpu",
                backend=name,
                backend_cache_dir=cache_dir,
                calibration_images=lambda: tensors,
            )
            embeddings, speed = _encode_timed(clip, pixels)
        except Exception as exc:  # a backend that cannot run here is simply not chosen
            logger.warning("auto: backend %s cannot run here: %s", name, exc)
            measured[name] = {"error": f"{type(exc).__name__}: {exc}", "passes": False}
            continue
        figures = fidelity(reference, embeddings, prompts=prompts, threshold=threshold)
        measured[name] = {
            "images_per_second": speed,
            **figures,
            "passes": passes_bounds(figures, bounds),
        }
    qualified = [name for name, m in measured.items() if m["passes"]]
    best = max(qualified, key=lambda name: measured[name]["images_per_second"])
    record = {
        "backend": best,
        "model_key": model_key_for(spec.key, best),
        "spec_key": spec.key,
        **cpu_signature(),
        "threshold": threshold,
        "bounds": bounds,
        "calibration_images": len(tensors),
        "fidelity_images": len(pixels),
        "measured": measured,
        "seconds": round(time.perf_counter() - started, 1),
        "chosen_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    path = backend_choice_path(spec.key, cache_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, indent=2))
    os.replace(tmp, path)
    logger.info(
        "auto chose backend %s for %s on %s (%s): %s",
        best,
        spec.key,
        record["cpu"],
        ", ".join(record["flags"]) or "no AVX2",
        ", ".join(
            f"{name} {m.get('images_per_second', 0.0):.2f} img/s{'' if m['passes'] else ' (refused)'}"
            for name, m in measured.items()
        ),
    )
    return record


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m worker.engine.backend_choice",
        description="Measure the backends on this CPU and record Q16_BACKEND=auto's choice "
        "(reads the job as JSON on stdin).",
    )
    parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    job = json.loads(sys.stdin.read())
    spec = ModelSpec(
        job["name"], pretrained=job["pretrained"], checkpoint_path=job["checkpoint_path"]
    )
    record = choose_backend(
        spec,
        calibration_sources=[source_from_json(item) for item in job["sources"]],
        threshold=float(job["threshold"]),
        prompts=np.asarray(job["prompts"], dtype=np.float32) if job["prompts"] else None,
        cache_dir=job["cache_dir"],
    )
    sys.stdout.write(json.dumps({"backend": record["backend"]}) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
