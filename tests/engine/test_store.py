"""Byte encodings of embeddings and prompts."""

from __future__ import annotations

import numpy as np
import pytest

from worker.engine.store import (
    embeddings_from_bytes,
    embeddings_to_bytes,
    prompts_from_bytes,
    prompts_to_bytes,
)


def test_embeddings_round_trip_as_float16() -> None:
    e = np.random.default_rng(0).normal(size=(7, 64)).astype(np.float32)
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    data = embeddings_to_bytes(e)
    assert len(data) == 7 * 64 * 2
    restored = embeddings_from_bytes(data, dim=64)
    assert restored.dtype == np.float32 and restored.shape == (7, 64)
    np.testing.assert_allclose(restored, e, atol=1e-3)
    np.testing.assert_array_equal(embeddings_from_bytes(memoryview(data), dim=64), restored)
    assert embeddings_from_bytes(embeddings_to_bytes(e[0]), dim=64).shape == (1, 64)
    assert embeddings_from_bytes(b"", dim=64).shape == (0, 64)


def test_embedding_errors() -> None:
    with pytest.raises(ValueError, match="whole number"):
        embeddings_from_bytes(b"\x00" * 10, dim=64)
    with pytest.raises(ValueError):
        embeddings_to_bytes(np.ones((2, 2, 2)))
    with pytest.raises(ValueError, match="overflow"):
        embeddings_to_bytes(np.full((1, 4), 1e9))
    with pytest.raises(ValueError, match="NaN"):
        embeddings_to_bytes(np.full((1, 4), np.nan))


def test_prompts_round_trip_exactly() -> None:
    p = np.random.default_rng(1).normal(scale=10, size=(2, 512)).astype(np.float32)
    data = prompts_to_bytes(p)
    assert len(data) == 2 * 512 * 4
    np.testing.assert_array_equal(prompts_from_bytes(data), p)
    np.testing.assert_array_equal(prompts_from_bytes(memoryview(data), dim=512), p)
    with pytest.raises(ValueError, match="dimension 512, expected 768"):
        prompts_from_bytes(data, dim=768)
    with pytest.raises(ValueError):
        prompts_from_bytes(data[:-4])
    with pytest.raises(ValueError):
        prompts_to_bytes(np.ones((3, 4)))
