"""The int8 image encoder: NNCF post-training quantisation of the cached fp32 OpenVINO IR.

For CPUs without bf16 (AVX2-only, AVX-512 without bf16) int8 is the fast path: NNCF
inserts int8 quantise/dequantise pairs around the matmuls (transformer preset: smooth
quant for the activations' outliers, fast bias correction), with ranges measured on a
few hundred of the dataset's own images, so the ranges fit what the model really sees.

The quantised IR is written once per model key (beside the fp32 IR, and named by the
OpenVINO and NNCF versions) with a ``calibration.json`` saying what it was calibrated on;
later loads read it back without calibrating again. Its embeddings carry the model key
suffix ``"+int8"`` (:func:`worker.engine.spec.model_key_for`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .images import InvalidImageError, load_rgb
from .locators import ImageLocator
from .spec import BackendUnavailable

__all__ = [
    "CALIBRATION_IMAGES",
    "calibration_tensors",
    "ensure_int8_ir",
    "int8_ir_path",
    "sample_evenly",
]

logger = logging.getLogger(__name__)

CALIBRATION_IMAGES = 300
"""Images NNCF measures activation ranges on: a few hundred is NNCF's own default size."""

# Bump when the quantisation recipe changes in a way that makes old int8 IR files wrong.
_INT8_VERSION = 1


def _import_nncf() -> Any:
    try:
        import nncf
    except ImportError as exc:  # optional dependency
        raise BackendUnavailable(
            "the openvino-int8 backend needs the 'nncf' package: pip install 'q16-curator[cpu-fast]'"
        ) from exc
    return nncf


def int8_ir_path(fp32_ir: Path) -> Path:
    """The quantised IR that belongs to a cached fp32 IR (same model key, same input size)."""
    nncf = _import_nncf()
    folder = fp32_ir.parent.name.replace("openvino-", f"openvino-int8-q{_INT8_VERSION}-", 1)
    return fp32_ir.parent.parent / f"{folder}-nncf{nncf.__version__}" / fp32_ir.name


def sample_evenly(sources: Sequence[Any], count: int) -> list[Any]:
    """``count`` items spread evenly over ``sources`` (all of them when there are fewer)."""
    if count <= 0:
        raise ValueError(f"count must be positive, got {count}")
    if len(sources) <= count:
        return list(sources)
    positions = np.linspace(0, len(sources) - 1, count).round().astype(int)
    return [sources[i] for i in dict.fromkeys(positions.tolist())]


def calibration_tensors(
    *,
    preprocess: Callable[[Any], torch.Tensor],
    image_size: int,
    sources: Iterable[str | Path | ImageLocator],
) -> list[torch.Tensor]:
    """Decode and preprocess calibration images like the pipeline does; unreadable ones are skipped."""
    tensors = []
    for source in sources:
        try:
            tensors.append(preprocess(load_rgb(source, target_size=image_size)))
        except InvalidImageError as exc:
            logger.info("calibration skips %s: %s", source, exc.reason)
        except OSError as exc:  # a missing file or container member
            logger.info("calibration skips %s: %s", source, exc)
    return tensors


def _quantize(fp32_ir: Path, images: list[torch.Tensor], target: Path) -> None:
    import openvino as ov

    nncf = _import_nncf()
    started = time.perf_counter()
    model = ov.Core().read_model(fp32_ir)
    dataset = nncf.Dataset([image.unsqueeze(0).numpy().astype(np.float32) for image in images])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantized = nncf.quantize(
            model,
            dataset,
            model_type=nncf.ModelType.TRANSFORMER,
            preset=nncf.QuantizationPreset.MIXED,
            subset_size=len(images),
        )
    # A private folder renamed into place: a concurrent loader sees no IR or a whole one.
    tmp_dir = target.parent.with_name(f".{target.parent.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp_dir, ignore_errors=True)
    tmp_dir.mkdir(parents=True)
    seconds = time.perf_counter() - started
    try:
        ov.save_model(quantized, tmp_dir / target.name, compress_to_fp16=False)
        (tmp_dir / "calibration.json").write_text(
            json.dumps(
                {
                    "images": len(images),
                    "seconds": round(seconds, 1),
                    "nncf": nncf.__version__,
                    "openvino": ov.__version__,
                    "fp32_ir": str(fp32_ir),
                }
            )
        )
        try:
            os.replace(tmp_dir, target.parent)
        except OSError:
            if not target.exists():  # someone else won the race only if the IR exists now
                raise
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    logger.info(
        "quantised %s to int8 with NNCF on %d calibration images in %.1fs: %s",
        fp32_ir,
        len(images),
        seconds,
        target,
    )


def ensure_int8_ir(
    *, fp32_ir: Path, calibration: Callable[[], Iterable[torch.Tensor]] | None
) -> Path:
    """The cached int8 IR of a model, quantised now (from ``calibration()``) if there is none.

    Raises:
        BackendUnavailable: nncf is missing, or nothing is cached and no calibration images
            were given (or none of them could be read).
    """
    target = int8_ir_path(fp32_ir)
    if target.is_file() and target.with_suffix(".bin").is_file():
        return target
    images = list(calibration()) if calibration is not None else []
    if not images:
        raise BackendUnavailable(
            "the openvino-int8 backend has no quantised model cached for this model yet and "
            "needs calibration images (a sample of the dataset's own) to make one"
        )
    if len(images) < 100:
        logger.warning(
            "int8 calibration on only %d images (a few hundred give steadier ranges)", len(images)
        )
    _quantize(fp32_ir, images, target)
    return target


def calibration_record(ir_path: Path) -> dict[str, Any]:
    """What a cached int8 IR was calibrated on (``calibration.json``), or {} when unknown."""
    try:
        record = json.loads((ir_path.parent / "calibration.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}
