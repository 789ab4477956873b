"""Faster CPU backends for CLIP's image encoder (selected by ``load_clip(..., backend=...)``).

The default backend is ``"torch"``: open_clip's visual tower run by PyTorch. On a
CPU, OpenVINO runs the same graph several times faster, above all with bf16 on
CPUs that have AVX-512 bf16 / AMX (measured by ``make bench``; see README.md):

- ``"openvino"``: OpenVINO, fp32 inference precision. Embeddings match PyTorch's
  to fp32 rounding (cosine ~1.0), so the model key (the embedding-cache identity)
  stays the model's own key.
- ``"openvino-bf16"``: OpenVINO, bf16 inference precision. Embeddings are close
  (cosine ~0.9999) but not identical, so the key gets a ``"+bf16"`` suffix and
  its embeddings never mix with fp32 ones in the cache.
- ``"openvino-int8"``: the visual tower quantised to int8 by NNCF (post-training,
  calibrated on a few hundred of the dataset's own images; :mod:`worker.engine.int8`),
  for CPUs without bf16. Key suffix ``"+int8"``.

The visual tower is converted once, from the loaded weights, and saved as OpenVINO
IR (fp32 weights) in a cache folder keyed by the model key; later loads read the
IR instead of converting again. The text tower always stays in PyTorch (a handful
of prompt texts).

The ``openvino`` (and, for int8, ``nncf``) packages are optional dependencies (extra
``cpu-fast``); requesting an OpenVINO backend without them raises :class:`BackendUnavailable`.
They are imported only when such a backend is built: a torch worker never loads them
(their thread pools would slow PyTorch's forward).
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .spec import (
    BACKENDS,
    BackendUnavailable,
    backend_key_suffix,
    default_backend_cache_dir,
    model_key_for,
    safe_dirname,
    validate_backend,
)

__all__ = [
    "BACKENDS",
    "BackendUnavailable",
    "OpenVinoImageEncoder",
    "backend_key_suffix",
    "build_image_encoder",
    "compile_ir",
    "cpu_has_bf16",
    "default_backend_cache_dir",
    "ensure_fp32_ir",
    "fp32_ir_path",
    "model_key_for",
    "validate_backend",
]

logger = logging.getLogger(__name__)

# Inference precision of each OpenVINO backend (int8 layers run in int8 whatever the hint;
# the hint sets the precision of the layers NNCF left in floating point).
_OV_PRECISION = {"openvino": "f32", "openvino-bf16": "bf16", "openvino-int8": "f32"}

# Bump when the export changes in a way that makes old cached IR files wrong.
_EXPORT_VERSION = 1

ImageEncoder = Callable[[torch.Tensor], torch.Tensor]


def _import_openvino() -> Any:
    try:
        import openvino as ov
    except ImportError as exc:  # optional dependency
        raise BackendUnavailable(
            "the OpenVINO backend needs the 'openvino' package: pip install 'q16-curator[cpu-fast]'"
        ) from exc
    return ov


class OpenVinoImageEncoder:
    """CLIP's visual tower compiled by OpenVINO for the CPU.

    Call it with a float tensor (N, 3, H, W); it returns the raw (not normalised)
    image features (N, D) as a float32 tensor. Calls are serialised by a lock (one
    infer request); OpenVINO itself uses every core for each call.

    Attributes:
        precision: ``"f32"``, ``"bf16"`` or ``"int8"`` (of the quantised layers).
        ir_path: the cached IR file the model was compiled from.
    """

    def __init__(self, compiled: Any, *, precision: str, ir_path: Path) -> None:
        self._compiled = compiled
        self._request = compiled.create_infer_request()
        self._lock = threading.Lock()
        self.precision = precision
        self.ir_path = ir_path

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        array = np.ascontiguousarray(pixels.detach().cpu().numpy(), dtype=np.float32)
        with self._lock:
            result = self._request.infer({0: array})
            features = np.array(result[self._compiled.output(0)], dtype=np.float32, copy=True)
        return torch.from_numpy(features)


def _export_openvino_ir(visual: torch.nn.Module, image_size: int, target: Path) -> None:
    """Convert the visual tower to OpenVINO IR (dynamic batch, fp32 weights) at ``target``."""
    ov = _import_openvino()
    started = time.perf_counter()
    example = torch.zeros(1, 3, image_size, image_size)
    with torch.no_grad(), warnings.catch_warnings():
        # OpenVINO traces with torch.jit, which PyTorch now marks deprecated.
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.jit")
        warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.jit")
        ov_model = ov.convert_model(visual, example_input=example)
    ov_model.reshape([-1, 3, image_size, image_size])
    # Write into a private folder, then rename it into place: a concurrent loader
    # sees either no IR or a complete one.
    tmp_dir = target.parent.with_name(f".{target.parent.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp_dir, ignore_errors=True)
    tmp_dir.mkdir(parents=True)
    try:
        ov.save_model(ov_model, tmp_dir / target.name, compress_to_fp16=False)
        try:
            os.replace(tmp_dir, target.parent)
        except OSError:
            if not target.exists():  # someone else won the race only if the IR exists now
                raise
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    logger.info(
        "exported the visual tower to OpenVINO IR %s in %.1fs",
        target,
        time.perf_counter() - started,
    )


def cpu_has_bf16() -> bool:
    """Whether OpenVINO runs bf16 natively on this CPU (AVX-512 bf16 / AMX)."""
    ov = _import_openvino()
    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def fp32_ir_path(model_key: str, image_size: int, cache_dir: str | Path | None = None) -> Path:
    """Where the fp32 OpenVINO IR of a model's visual tower is cached."""
    ov = _import_openvino()
    root = Path(cache_dir) if cache_dir is not None else default_backend_cache_dir()
    return (
        root
        / safe_dirname(model_key)
        / f"openvino-v{_EXPORT_VERSION}-{ov.__version__.split('-')[0]}-{image_size}"
        / "visual.xml"
    )


def ensure_fp32_ir(
    *, visual: torch.nn.Module, model_key: str, image_size: int, cache_dir: str | Path | None
) -> Path:
    """The cached fp32 IR of the visual tower, exported on first use."""
    ir_path = fp32_ir_path(model_key, image_size, cache_dir)
    if not ir_path.is_file() or not ir_path.with_suffix(".bin").is_file():
        ir_path.parent.parent.mkdir(parents=True, exist_ok=True)
        _export_openvino_ir(visual, image_size, ir_path)
    return ir_path


def compile_ir(ir_path: Path, *, precision: str) -> OpenVinoImageEncoder:
    """Compile a cached IR for the CPU with an inference precision hint."""
    ov = _import_openvino()
    started = time.perf_counter()
    core = ov.Core()
    compiled = core.compile_model(
        core.read_model(ir_path),
        "CPU",
        {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY"},
    )
    logger.info(
        "compiled %s for the CPU (%s) in %.1fs", ir_path, precision, time.perf_counter() - started
    )
    return OpenVinoImageEncoder(compiled, precision=precision, ir_path=ir_path)


def build_image_encoder(
    *,
    backend: str,
    visual: torch.nn.Module,
    model_key: str,
    image_size: int,
    cache_dir: str | Path | None = None,
    calibration: Callable[[], Iterable[torch.Tensor]] | None = None,
) -> ImageEncoder | None:
    """Build the image encoder of a backend (``None`` for ``"torch"``: use the model itself).

    Args:
        backend: one of :data:`BACKENDS`.
        visual: open_clip's visual tower (``model.visual``), in eval mode.
        model_key: the model's own key (:attr:`ModelSpec.key`), which names the cached export.
        image_size: the model's input side.
        cache_dir: folder of cached exports; default :func:`default_backend_cache_dir`.
        calibration: for ``"openvino-int8"``: gives the preprocessed calibration images
            (3, H, W), called only when no quantised model is cached yet.

    Raises:
        BackendUnavailable: the backend's package is missing, or int8 has no cached model
            and no calibration images.
        ValueError: unknown backend.
    """
    name = validate_backend(backend)
    if name == "torch":
        return None
    _import_openvino()
    ir_path = ensure_fp32_ir(
        visual=visual, model_key=model_key, image_size=image_size, cache_dir=cache_dir
    )
    if name == "openvino-int8":
        from .int8 import ensure_int8_ir

        int8_path = ensure_int8_ir(fp32_ir=ir_path, calibration=calibration)
        encoder = compile_ir(int8_path, precision=_OV_PRECISION[name])
        encoder.precision = "int8"
        return encoder
    precision = _OV_PRECISION[name]
    if precision == "bf16" and not cpu_has_bf16():
        # OpenVINO then quietly runs fp32: no speed-up (measured 1.05x on an AVX2-only EPYC).
        logger.warning(
            "this CPU has no bf16 instructions (AVX-512 bf16 / AMX): %s runs in fp32 here, "
            "no faster than Q16_BACKEND=openvino; openvino-int8 is the fast path on such CPUs",
            name,
        )
    return compile_ir(ir_path, precision=precision)
