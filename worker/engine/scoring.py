"""The Q16 score: how likely an image is inappropriate, given two prompt vectors.

``p = softmax(100 * normalize(e) @ normalize(P).T)[:, 1]`` with ``P`` a (2, D)
matrix in CLIP's joint space, row 0 = appropriate, row 1 = inappropriate (the
paper's order). The scale 100 is fixed, as in the paper.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .clip import ClipModel

__all__ = [
    "APPROPRIATE",
    "DEFAULT_APPROPRIATE_TEXTS",
    "DEFAULT_INAPPROPRIATE_TEXTS",
    "INAPPROPRIATE",
    "PROMPT_SCALE",
    "threshold_error",
    "inappropriate_probability",
    "zero_shot_prompts",
]

PROMPT_SCALE = 100.0
"""Fixed logit scale of the Q16 score (CLIP's trained temperature, as in the paper)."""

APPROPRIATE = 0
"""Row of the prompt matrix (and class label) meaning *appropriate*."""
INAPPROPRIATE = 1
"""Row of the prompt matrix (and class label) meaning *inappropriate*."""


def threshold_error(threshold: float) -> str | None:
    """Why a flag threshold is unusable, or None: images with p >= threshold are flagged, so
    it lies in (0, 1] (0 would flag every image)."""
    if not 0.0 < threshold <= 1.0:
        return "The threshold must be in (0, 1]."
    return None


DEFAULT_APPROPRIATE_TEXTS: tuple[str, ...] = ("This image is about something positive",)
"""The paper's zero-shot text for row 0."""
DEFAULT_INAPPROPRIATE_TEXTS: tuple[str, ...] = ("This image is about something negative",)
"""The paper's zero-shot text for row 1."""

_EPS = 1e-12


def _l2_normalize(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    # Guard all-zero rows (which have no direction) against division by zero.
    return x / np.maximum(norms, _EPS)


def inappropriate_probability(embeddings: np.ndarray, prompts: np.ndarray) -> np.ndarray:
    """Score image embeddings with a prompt matrix.

    Computes ``softmax(100 * normalize(e) @ normalize(P).T, axis=1)[:, 1]``.
    Embeddings are normalised again defensively (cached ones already are).

    Args:
        embeddings: (N, D) image embeddings.
        prompts: (2, D) prompt matrix, row 0 appropriate, row 1 inappropriate.

    Returns:
        float32 array (N,): probability that each image is inappropriate.

    Raises:
        ValueError: shapes do not fit.
    """
    e = np.asarray(embeddings)
    p = np.asarray(prompts)
    if p.ndim != 2 or p.shape[0] != 2:
        raise ValueError(f"prompts must have shape (2, D), got {p.shape}")
    if e.ndim != 2:
        raise ValueError(f"embeddings must have shape (N, D), got {e.shape}")
    if e.shape[1] != p.shape[1]:
        raise ValueError(
            f"embedding dimension {e.shape[1]} does not match prompt dimension {p.shape[1]}"
        )
    # Memory stays O(N) for float32 input (rescoring millions of cached rows): e is
    # never normalised into a copy; only (N, 2) and (N,) temporaries are made.
    e32 = np.asarray(e, dtype=np.float32)
    p_unit = _l2_normalize(p.astype(np.float64)).astype(np.float32)
    dots = (e32 @ p_unit.T).astype(np.float64)
    e_norms = np.sqrt(np.einsum("ij,ij->i", e32, e32).astype(np.float64))
    cosines = dots / np.maximum(e_norms, _EPS)[:, None]
    logits = PROMPT_SCALE * cosines
    # Two-class softmax == sigmoid of the logit difference; the tanh form never overflows.
    diff = logits[:, INAPPROPRIATE] - logits[:, APPROPRIATE]
    return (0.5 * (1.0 + np.tanh(0.5 * diff))).astype(np.float32)


def zero_shot_prompts(
    clip: ClipModel,
    *,
    appropriate: Sequence[str] = DEFAULT_APPROPRIATE_TEXTS,
    inappropriate: Sequence[str] = DEFAULT_INAPPROPRIATE_TEXTS,
) -> np.ndarray:
    """Build a zero-shot prompt matrix from texts.

    Each row is the mean of the RAW text features of its texts (several
    templates may be averaged). Rows are left unnormalised: the score
    normalises them, and their norm sets the effective step size of tuning.

    Args:
        clip: the loaded model.
        appropriate: texts describing appropriate images (row 0).
        inappropriate: texts describing inappropriate images (row 1).

    Returns:
        float32 array (2, D).
    """
    for label, texts in (("appropriate", appropriate), ("inappropriate", inappropriate)):
        if isinstance(texts, str) or len(texts) == 0:
            raise ValueError(f"{label} texts must be a non-empty sequence of strings")
    features = clip.encode_texts([*appropriate, *inappropriate])
    n_app = len(appropriate)
    rows = [features[:n_app].mean(axis=0), features[n_app:].mean(axis=0)]
    return np.stack(rows).astype(np.float32)
