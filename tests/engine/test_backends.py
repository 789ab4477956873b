"""The optional OpenVINO image-encoder backends, on the tiny random-weight CLIP.

Without the ``openvino`` package these tests skip locally but fail in CI (``CI=true``):
the package is in the ``dev`` extra, so CI must exercise the backend.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from worker.engine.backends import (
    BACKENDS,
    backend_key_suffix,
    model_key_for,
    validate_backend,
)
from worker.engine.clip import ClipModel, ModelLoadError, ModelSpec, load_clip


def _require_openvino() -> None:
    try:
        import openvino  # noqa: F401
    except ImportError:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail("openvino is not installed, but CI must test the OpenVINO backend")
        pytest.skip("openvino is not installed (pip install -e '.[dev]')")


@pytest.fixture(scope="module")
def backend_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("backends")


@pytest.fixture(scope="module")
def pixels(tiny_clip: ClipModel) -> torch.Tensor:
    generator = torch.Generator().manual_seed(7)
    size = tiny_clip.image_size
    return torch.randn(12, 3, size, size, generator=generator)


def _load(checkpoint: Path, backend: str, cache: Path) -> ClipModel:
    spec = ModelSpec("q16-tiny", checkpoint_path=str(checkpoint))
    return load_clip(spec, device="cpu", backend=backend, backend_cache_dir=cache)


def test_backend_names_and_key_suffixes() -> None:
    assert BACKENDS[0] == "torch"
    assert validate_backend(" OpenVINO ") == "openvino"
    assert validate_backend("") == "torch"
    with pytest.raises(ValueError, match="unknown backend"):
        validate_backend("tensorrt")
    assert backend_key_suffix("torch") == ""
    assert backend_key_suffix("openvino") == ""  # fp32: same embeddings, same cache key
    assert model_key_for("ViT-B-16/openai", "openvino-bf16") == "ViT-B-16/openai+bf16"


def test_unknown_backend_is_a_model_load_error(tiny_clip_checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="unknown backend"):
        _load(tiny_clip_checkpoint, "tensorrt", tmp_path)


@pytest.mark.parametrize("backend", ["openvino", "openvino-bf16"])
def test_openvino_matches_torch(
    backend: str,
    tiny_clip: ClipModel,
    tiny_clip_checkpoint: Path,
    backend_cache: Path,
    pixels: torch.Tensor,
) -> None:
    _require_openvino()
    clip = _load(tiny_clip_checkpoint, backend, backend_cache)
    assert clip.backend == backend
    reference = tiny_clip.encode_image_batch(pixels)
    embeddings = clip.encode_image_batch(pixels)
    assert embeddings.shape == reference.shape and embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    cosine = (embeddings * reference).sum(axis=1)
    assert cosine.mean() >= 0.99 and cosine.min() >= 0.98
    # Lossy precision never shares the embedding cache with fp32 torch.
    if backend == "openvino":
        assert clip.key == tiny_clip.key
        assert cosine.min() >= 0.9999
    else:
        assert clip.key == tiny_clip.key + "+bf16"
    # Batches of other sizes (dynamic batch) and the text tower still work.
    assert clip.encode_image_batch(pixels[:1]).shape == (1, clip.dim)
    np.testing.assert_allclose(
        clip.encode_texts(["a photo"]), tiny_clip.encode_texts(["a photo"]), atol=1e-5
    )


def test_openvino_export_is_cached_per_model_key(
    tiny_clip_checkpoint: Path, backend_cache: Path, tmp_path: Path
) -> None:
    _require_openvino()
    _load(tiny_clip_checkpoint, "openvino", backend_cache)
    exported = sorted(backend_cache.rglob("visual.xml"))
    assert len(exported) == 1
    mtime = exported[0].stat().st_mtime_ns
    _load(tiny_clip_checkpoint, "openvino-bf16", backend_cache)  # reuses the same fp32 IR
    assert sorted(backend_cache.rglob("visual.xml")) == exported
    assert exported[0].stat().st_mtime_ns == mtime
    # Other weights -> another key -> another export.
    from worker.engine.clip import build_random_checkpoint

    other = build_random_checkpoint("q16-tiny", tmp_path / "other.pt", seed=1)
    _load(other, "openvino", backend_cache)
    assert len(sorted(backend_cache.rglob("visual.xml"))) == 2


def test_backend_rejects_cuda_device(tiny_clip_checkpoint: Path, tmp_path: Path) -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA to reach the device check")
    with pytest.raises(ModelLoadError, match="CPU only"):
        load_clip(
            ModelSpec("q16-tiny", checkpoint_path=str(tiny_clip_checkpoint)),
            device="cuda",
            backend="openvino",
            backend_cache_dir=tmp_path,
        )


def test_cpu_forward_is_split_into_slices(tiny_clip: ClipModel, pixels: torch.Tensor) -> None:
    """A batch larger than cpu_forward_batch gives the same embeddings as one forward."""
    saved = tiny_clip.cpu_forward_batch
    try:
        tiny_clip.cpu_forward_batch = 0
        whole = tiny_clip.encode_image_batch(pixels)
        tiny_clip.cpu_forward_batch = 5  # 12 images -> slices of 5, 5, 2
        sliced = tiny_clip.encode_image_batch(pixels)
    finally:
        tiny_clip.cpu_forward_batch = saved
    assert sliced.shape == whole.shape
    np.testing.assert_allclose(sliced, whole, atol=1e-5)
