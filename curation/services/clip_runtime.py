"""The CLIP model of this process (a worker, or a command that scores in-process): loaded once, after the fork, on first use."""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from curation.services.backend_calibration import calibration_sources
from curation.services.clip_config import configured_model_key, configured_model_spec
from worker.engine.clip import ClipModel, load_clip
from worker.engine.spec import (
    AUTO_BACKEND,
    ModelLoadError,
    read_backend_choice,
    validate_backend_setting,
)

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_models: dict[str, ClipModel] = {}


def get_clip(model_key: str) -> ClipModel:
    """The configured model, if its key is model_key; loaded on the first call in this process.

    Raises ModelLoadError when this worker is configured with other weights than the
    run needs, since scoring with them would mix incompatible embeddings.
    """
    try:
        worker_key = configured_model_key()
    except ImproperlyConfigured as exc:  # unknown Q16_BACKEND, or auto not measured yet
        raise ModelLoadError(str(exc)) from exc
    if worker_key != model_key:
        raise ModelLoadError(
            f"this worker is configured with {worker_key}, but the job needs {model_key}; "
            "start a worker with matching Q16_CLIP_MODEL / Q16_CLIP_PRETRAINED / Q16_CLIP_CHECKPOINT"
            " / Q16_BACKEND"
        )
    backend = settings.Q16_BACKEND
    spec = configured_model_spec()
    with _lock:
        if model_key not in _models:
            logger.info(
                "loading CLIP %s on %s (backend %s)", model_key, settings.Q16_DEVICE, backend
            )
            _models[model_key] = load_clip(
                spec,
                device=settings.Q16_DEVICE,
                backend=backend,
                calibration_sources=_calibration_if_needed(backend, spec.key),
                auto_threshold=settings.Q16_DEFAULT_THRESHOLD,
            )
        clip = _models[model_key]
        if backend == AUTO_BACKEND:
            logger.info("Q16_BACKEND=auto: this worker encodes with %s", clip.backend)
        return clip


def _calibration_if_needed(backend: str, spec_key: str) -> list | None:
    """The dataset's images int8 or auto calibrate on, when they may need them; else None."""
    name = validate_backend_setting(backend)
    if name == AUTO_BACKEND and read_backend_choice(spec_key) is not None:
        return None
    if name not in (AUTO_BACKEND, "openvino-int8"):
        return None
    return list(calibration_sources())


def loaded_model_keys() -> list[str]:
    return list(_models)
