"""The CLIP model this installation is configured to use (settings -> engine ModelSpec).

Torch-free (worker.engine.spec): the web process and light commands need the model key,
never the model.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from worker.engine.spec import ModelSpec, model_key_for


def configured_model_spec() -> ModelSpec:
    """The model from Q16_CLIP_MODEL plus Q16_CLIP_CHECKPOINT (wins) or Q16_CLIP_PRETRAINED."""
    if settings.Q16_CLIP_CHECKPOINT:
        return ModelSpec(settings.Q16_CLIP_MODEL, checkpoint_path=settings.Q16_CLIP_CHECKPOINT)
    return ModelSpec(settings.Q16_CLIP_MODEL, pretrained=settings.Q16_CLIP_PRETRAINED)


def configured_model_key() -> str:
    """The embedding-cache key of the configured model and backend.

    A lossy backend (openvino-bf16) gets its own key, so its embeddings and prompt
    versions never mix with fp32 ones.
    """
    try:
        return model_key_for(configured_model_spec().key, settings.Q16_BACKEND)
    except ValueError as exc:  # an unknown Q16_BACKEND
        raise ImproperlyConfigured(str(exc)) from exc
