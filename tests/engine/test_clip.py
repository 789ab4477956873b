"""Model specs, cache keys, loading through open_clip, and encoding with the tiny CLIP."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch

from worker.engine.clip import (
    MODEL_CONFIG_DIR,
    ClipModel,
    ModelLoadError,
    ModelSpec,
    build_random_checkpoint,
    load_clip,
    register_model_configs,
    resolve_device,
)


def test_tiny_clip_loads_frozen_from_checkpoint(tiny_clip: ClipModel) -> None:
    assert tiny_clip.dim == 64
    assert tiny_clip.image_size == 64
    assert tiny_clip.device == torch.device("cpu")
    assert not tiny_clip.model.training
    assert not any(p.requires_grad for p in tiny_clip.model.parameters())
    assert tiny_clip.key == tiny_clip.spec.key
    name, _, digest = tiny_clip.key.partition("/sha256-")
    assert name == "q16-tiny"
    assert len(digest) == 16 and int(digest, 16) >= 0


def test_encode_image_batch_is_normalised_and_deterministic(tiny_clip: ClipModel) -> None:
    pixels = torch.randn(5, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    first = tiny_clip.encode_image_batch(pixels)
    assert first.shape == (5, 64)
    assert first.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(first, tiny_clip.encode_image_batch(pixels))
    with pytest.raises(ValueError, match="N, 3, H, W"):
        tiny_clip.encode_image_batch(pixels[0])


def test_encode_texts_returns_raw_features(tiny_clip: ClipModel) -> None:
    features = tiny_clip.encode_texts(["a photo", "another photo", "a photo"])
    assert features.shape == (3, 64)
    assert features.dtype == np.float32
    assert not np.allclose(np.linalg.norm(features, axis=1), 1.0)
    np.testing.assert_allclose(features[0], features[2], atol=1e-6)
    with pytest.raises(TypeError):
        tiny_clip.encode_texts("a photo")
    with pytest.raises(ValueError):
        tiny_clip.encode_texts([])


def test_checkpoint_round_trip_gives_identical_model(
    tiny_clip: ClipModel, tiny_clip_checkpoint: Path, tmp_path: Path
) -> None:
    again = build_random_checkpoint("q16-tiny", tmp_path / "again.pt", seed=0)
    assert ModelSpec("q16-tiny", checkpoint_path=str(again)).key == tiny_clip.key
    reloaded = load_clip(ModelSpec("q16-tiny", checkpoint_path=str(again)), device="cpu")
    pixels = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    np.testing.assert_array_equal(
        reloaded.encode_image_batch(pixels), tiny_clip.encode_image_batch(pixels)
    )


def test_key_follows_content_not_path(tiny_clip_checkpoint: Path, tmp_path: Path) -> None:
    spec = ModelSpec("q16-tiny", checkpoint_path=str(tiny_clip_checkpoint))
    assert spec.key == spec.key
    moved = tmp_path / "elsewhere" / "renamed.bin"
    moved.parent.mkdir()
    shutil.copy(tiny_clip_checkpoint, moved)
    assert ModelSpec("q16-tiny", checkpoint_path=str(moved)).key == spec.key

    other = build_random_checkpoint("q16-tiny", tmp_path / "seed1.pt", seed=1)
    assert ModelSpec("q16-tiny", checkpoint_path=str(other)).key != spec.key
    # Overwriting a file with other weights changes its key (cache keyed by size+mtime).
    shutil.copy(other, moved)
    assert ModelSpec("q16-tiny", checkpoint_path=str(moved)).key != spec.key


def test_pretrained_key_and_spec_validation() -> None:
    assert ModelSpec("ViT-B-16", pretrained="openai").key == "ViT-B-16/openai"
    with pytest.raises(ModelLoadError, match="exactly one"):
        ModelSpec("ViT-B-16")
    with pytest.raises(ModelLoadError, match="exactly one"):
        ModelSpec("ViT-B-16", pretrained="openai", checkpoint_path="/x.pt")
    assert issubclass(ModelLoadError, ValueError)


def test_missing_checkpoint_is_a_load_error(tmp_path: Path) -> None:
    spec = ModelSpec("q16-tiny", checkpoint_path=str(tmp_path / "nope.pt"))
    with pytest.raises(ModelLoadError, match="not found"):
        _ = spec.key
    with pytest.raises(ModelLoadError, match="not found"):
        load_clip(spec, device="cpu")


def test_unreadable_or_mismatched_checkpoint_is_a_load_error(
    tiny_clip_checkpoint: Path, tmp_path: Path
) -> None:
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"definitely not a torch checkpoint" * 10)
    with pytest.raises(ModelLoadError, match="could not load model 'q16-tiny'"):
        load_clip(ModelSpec("q16-tiny", checkpoint_path=str(garbage)), device="cpu")

    state = torch.load(tiny_clip_checkpoint, weights_only=True)
    del state["text_projection"]
    partial = tmp_path / "partial.pt"
    torch.save(state, partial)
    with pytest.raises(ModelLoadError, match="text_projection"):
        load_clip(ModelSpec("q16-tiny", checkpoint_path=str(partial)), device="cpu")


def test_unknown_model_or_tag_fails_before_any_download(tiny_clip_checkpoint: Path) -> None:
    with pytest.raises(ModelLoadError, match="unknown open_clip model 'no-such-model'"):
        load_clip(ModelSpec("no-such-model", checkpoint_path=str(tiny_clip_checkpoint)))
    with pytest.raises(ModelLoadError, match="unknown pretrained tag 'no-such-tag'"):
        load_clip(ModelSpec("ViT-B-16", pretrained="no-such-tag"), device="cpu")


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ModelLoadError, match="unsupported device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ModelLoadError, match="CUDA is not available"):
            resolve_device("cuda:0")


def test_register_model_configs_is_idempotent() -> None:
    register_model_configs()
    register_model_configs()
    assert "q16-tiny" in open_clip.list_models()
    paths = open_clip.factory._MODEL_CONFIG_PATHS
    assert sum(Path(p) == MODEL_CONFIG_DIR for p in paths) == 1
    assert open_clip.get_tokenizer("q16-tiny")(["hello"]).shape == (1, 77)


def test_build_random_checkpoint_leaves_global_rng_alone(tmp_path: Path) -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_random_checkpoint("q16-tiny", tmp_path / "deep" / "dir" / "ck.pt", seed=5)
    assert torch.equal(torch.rand(3), expected)
    assert (tmp_path / "deep" / "dir" / "ck.pt").is_file()
    assert not list((tmp_path / "deep" / "dir").glob(".*tmp"))
    with pytest.raises(ModelLoadError):
        build_random_checkpoint("no-such-model", tmp_path / "x.pt")
