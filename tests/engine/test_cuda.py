"""The CUDA path (bf16 autocast, pinned-memory batches); skipped on machines without a GPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.engine.imagegen import make_two_kind_images
from worker.engine.clip import ClipModel, ModelLoadError, ModelSpec, load_clip, resolve_device
from worker.engine.pipeline import encode_files

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_cuda_encode_matches_cpu(
    tiny_clip: ClipModel, tiny_clip_checkpoint: Path, tmp_path: Path
) -> None:
    gpu = load_clip(ModelSpec("q16-tiny", checkpoint_path=str(tiny_clip_checkpoint)), device="cuda")
    assert gpu.device.type == "cuda" and gpu.key == tiny_clip.key
    paths = [path for path, _ in make_two_kind_images(tmp_path, n_per_kind=6, seed=1)]
    on_gpu = encode_files(gpu, paths, batch_size=4)  # 3 batches through one reused pinned buffer
    on_cpu = encode_files(tiny_clip, paths, batch_size=4)
    assert on_gpu.ok_indices == on_cpu.ok_indices
    np.testing.assert_allclose(np.linalg.norm(on_gpu.embeddings, axis=1), 1.0, atol=1e-5)
    cosine = (on_gpu.embeddings * on_cpu.embeddings).sum(axis=1)
    assert cosine.min() > 0.99  # bf16 autocast vs fp32
    texts = ["a photo", "another photo"]
    np.testing.assert_allclose(gpu.encode_texts(texts), tiny_clip.encode_texts(texts), atol=1e-3)


def test_cuda_device_strings() -> None:
    assert resolve_device("auto").type == "cuda"
    assert resolve_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(ModelLoadError, match="CUDA device"):
        resolve_device(f"cuda:{torch.cuda.device_count()}")
