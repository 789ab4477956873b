"""The CLIP model of this process (a worker, or a command that scores in-process): loaded once, after the fork, on first use."""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from curation.services.clip_config import configured_model_key, configured_model_spec
from worker.engine.clip import ClipModel, load_clip
from worker.engine.spec import ModelLoadError

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
    except ImproperlyConfigured as exc:  # unknown Q16_BACKEND
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
            _models[model_key] = load_clip(spec, device=settings.Q16_DEVICE, backend=backend)
        return _models[model_key]


def loaded_model_keys() -> list[str]:
    return list(_models)
