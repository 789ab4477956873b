"""The CUDA path up to the device choice, on a machine without a GPU.

The real CUDA run is tests/engine/test_cuda.py (skipped without a GPU); these tests pin
down everything before it: how settings pick the device, and that a worker passes the
configured device to the model loader.
"""

from __future__ import annotations

import pytest
import torch

from worker.engine.clip import ModelLoadError, resolve_device


@pytest.fixture
def pretend_two_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


def test_auto_picks_cuda_when_a_gpu_is_present(pretend_two_gpus):
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cuda:1") == torch.device("cuda:1")
    assert resolve_device(" CPU ") == torch.device("cpu")


def test_a_missing_gpu_index_is_a_clear_error(pretend_two_gpus):
    with pytest.raises(ModelLoadError, match="only 2 CUDA device"):
        resolve_device("cuda:2")
    with pytest.raises(ModelLoadError, match="unsupported device"):
        resolve_device("tpu")


def test_the_worker_loads_its_model_on_the_configured_device(settings, monkeypatch):
    import curation.services.clip_runtime as runtime

    settings.Q16_CLIP_MODEL, settings.Q16_CLIP_PRETRAINED = "ViT-B-16", "openai"
    settings.Q16_CLIP_CHECKPOINT, settings.Q16_BACKEND = "", "torch"
    settings.Q16_DEVICE = "cuda:1"
    calls = []
    monkeypatch.setattr(runtime, "_models", {})
    monkeypatch.setattr(
        runtime, "load_clip", lambda spec, **kwargs: calls.append((spec, kwargs)) or "model"
    )
    assert runtime.get_clip("ViT-B-16/openai") == "model"
    assert runtime.get_clip("ViT-B-16/openai") == "model"  # once per process
    ((spec, kwargs),) = calls
    assert spec.name == "ViT-B-16" and kwargs["device"] == "cuda:1"
