"""The Q16 score formula, its row order and its input checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from worker.engine.clip import ClipModel
from worker.engine.scoring import (
    DEFAULT_APPROPRIATE_TEXTS,
    DEFAULT_INAPPROPRIATE_TEXTS,
    PROMPT_SCALE,
    inappropriate_probability,
    zero_shot_prompts,
)


def _reference(embeddings: np.ndarray, prompts: np.ndarray) -> np.ndarray:
    e = F.normalize(torch.from_numpy(embeddings).double(), dim=1)
    p = F.normalize(torch.from_numpy(prompts).double(), dim=1)
    return torch.softmax(100.0 * e @ p.T, dim=1)[:, 1].numpy()


def test_matches_direct_softmax_on_normalised_vectors() -> None:
    rng = np.random.default_rng(0)
    embeddings = rng.normal(size=(50, 32)).astype(np.float32) * 3.0  # deliberately not unit norm
    prompts = rng.normal(size=(2, 32)).astype(np.float32) * 7.0
    got = inappropriate_probability(embeddings, prompts)
    assert got.dtype == np.float32
    assert got.shape == (50,)
    np.testing.assert_allclose(got, _reference(embeddings, prompts), atol=1e-5)
    assert PROMPT_SCALE == 100.0


def test_row_one_is_inappropriate() -> None:
    rng = np.random.default_rng(1)
    direction = rng.normal(size=16).astype(np.float32)
    other = rng.normal(size=16).astype(np.float32)
    embedding = direction[None, :]
    assert inappropriate_probability(embedding, np.stack([other, direction]))[0] > 0.99
    assert inappropriate_probability(embedding, np.stack([direction, other]))[0] < 0.01


def test_prompt_norm_does_not_matter_and_extremes_stay_finite() -> None:
    rng = np.random.default_rng(2)
    embeddings = rng.normal(size=(10, 8)).astype(np.float32)
    prompts = np.stack([embeddings[0], -embeddings[0]])  # cosine +-1: logit gap of 200
    scaled = inappropriate_probability(embeddings, prompts * 1000.0)
    np.testing.assert_allclose(inappropriate_probability(embeddings, prompts), scaled, atol=1e-6)
    assert np.isfinite(scaled).all()
    assert scaled[0] == pytest.approx(0.0, abs=1e-30)


def test_accepts_float16_and_empty_input() -> None:
    rng = np.random.default_rng(3)
    embeddings = rng.normal(size=(5, 8)).astype(np.float16)
    prompts = rng.normal(size=(2, 8)).astype(np.float32)
    np.testing.assert_allclose(
        inappropriate_probability(embeddings, prompts),
        _reference(embeddings.astype(np.float32), prompts),
        atol=1e-4,
    )
    assert inappropriate_probability(np.zeros((0, 8), np.float32), prompts).shape == (0,)


@pytest.mark.parametrize(
    ("embedding_shape", "prompt_shape", "message"),
    [
        ((4, 8), (3, 8), r"prompts must have shape \(2, D\)"),
        ((4, 8), (8,), r"prompts must have shape \(2, D\)"),
        ((4, 8), (2, 9), "embedding dimension 8 does not match prompt dimension 9"),
        ((8,), (2, 8), r"embeddings must have shape \(N, D\)"),
    ],
)
def test_shape_errors(
    embedding_shape: tuple[int, ...], prompt_shape: tuple[int, ...], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        inappropriate_probability(np.ones(embedding_shape), np.ones(prompt_shape))


def test_default_texts_are_the_papers() -> None:
    assert DEFAULT_APPROPRIATE_TEXTS == ("This image is about something positive",)
    assert DEFAULT_INAPPROPRIATE_TEXTS == ("This image is about something negative",)


def test_zero_shot_prompts_are_raw_mean_text_features(tiny_clip: ClipModel) -> None:
    prompts = zero_shot_prompts(tiny_clip)
    assert prompts.shape == (2, tiny_clip.dim)
    assert prompts.dtype == np.float32
    raw = tiny_clip.encode_texts([*DEFAULT_APPROPRIATE_TEXTS, *DEFAULT_INAPPROPRIATE_TEXTS])
    np.testing.assert_allclose(prompts, raw, atol=1e-6)
    assert not np.allclose(np.linalg.norm(prompts, axis=1), 1.0)  # not normalised

    templates = ["a photo of something good", "a nice picture"]
    averaged = zero_shot_prompts(tiny_clip, appropriate=templates, inappropriate=["bad"])
    np.testing.assert_allclose(
        averaged[0], tiny_clip.encode_texts(templates).mean(axis=0), atol=1e-5
    )

    with pytest.raises(ValueError, match="appropriate texts"):
        zero_shot_prompts(tiny_clip, appropriate=[], inappropriate=["x"])
