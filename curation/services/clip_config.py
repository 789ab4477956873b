"""The CLIP model this installation is configured to use (settings -> engine ModelSpec).

Torch-free (worker.engine.spec): the web process and light commands need the model key,
never the model.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from worker.engine.spec import (
    AUTO_BACKEND,
    ModelSpec,
    model_key_for,
    read_backend_choice,
    validate_backend_setting,
)


def configured_model_spec() -> ModelSpec:
    """The model from Q16_CLIP_MODEL plus Q16_CLIP_CHECKPOINT (wins) or Q16_CLIP_PRETRAINED."""
    if settings.Q16_CLIP_CHECKPOINT:
        return ModelSpec(settings.Q16_CLIP_MODEL, checkpoint_path=settings.Q16_CLIP_CHECKPOINT)
    return ModelSpec(settings.Q16_CLIP_MODEL, pretrained=settings.Q16_CLIP_PRETRAINED)


def configured_backend() -> str:
    """Q16_BACKEND with ``auto`` resolved to the choice recorded for this model and CPU class.

    Raises:
        ImproperlyConfigured: an unknown backend, or ``auto`` before its first measurement
            (``manage.py choose_backend``, or a worker's first scoring, records one).
    """
    try:
        backend = validate_backend_setting(settings.Q16_BACKEND)
    except ValueError as exc:
        raise ImproperlyConfigured(str(exc)) from exc
    if backend != AUTO_BACKEND:
        return backend
    choice = read_backend_choice(configured_model_spec().key)
    if choice is None:
        raise ImproperlyConfigured(
            "Q16_BACKEND=auto has not measured the backends on this CPU yet: run "
            "`python -m stack manage choose_backend` (it calibrates on a dataset's images)"
        )
    return str(choice["backend"])


def configured_model_key() -> str:
    """The embedding-cache key of the configured model and backend.

    A lossy backend (openvino-bf16, openvino-int8) gets its own key, so its embeddings and
    prompt versions never mix with fp32 ones.
    """
    return model_key_for(configured_model_spec().key, configured_backend())
