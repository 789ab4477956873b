"""Byte encodings for storing embeddings and prompt matrices in database blobs.

- Embeddings: float16, row-major (C order), no header: ``N * D * 2`` bytes. Half
  precision halves the cache size; unit-norm CLIP embeddings lose nothing that
  matters for a cosine score (relative error ~1e-3).
- Prompts: float32, row-major, shape (2, D), no header: ``2 * D * 4`` bytes. Kept
  in full precision because training continues from them.

Byte order is little-endian on every platform, so blobs are portable.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "embeddings_from_bytes",
    "embeddings_to_bytes",
    "prompts_from_bytes",
    "prompts_to_bytes",
]

_EMBEDDING_DTYPE = np.dtype("<f2")
_PROMPT_DTYPE = np.dtype("<f4")


def embeddings_to_bytes(arr: np.ndarray) -> bytes:
    """Encode embeddings (N, D) (or a single (D,) vector) as float16 bytes.

    Raises:
        ValueError: not 1-D/2-D, or values outside the float16 range.
    """
    a = np.asarray(arr)
    if a.ndim not in (1, 2):
        raise ValueError(f"embeddings must be (N, D) or (D,), got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError("embeddings contain NaN or infinity")
    if a.size and np.abs(a).max() > np.finfo(np.float16).max:
        raise ValueError("embeddings overflow float16")
    half = np.ascontiguousarray(a, dtype=_EMBEDDING_DTYPE)
    return half.tobytes()


def embeddings_from_bytes(data: bytes | bytearray | memoryview, *, dim: int) -> np.ndarray:
    """Decode bytes from :func:`embeddings_to_bytes` into float32 (N, D).

    Accepts ``memoryview`` too (what database drivers return for binary columns).

    Raises:
        ValueError: the byte length is not a multiple of ``dim`` float16 values.
    """
    if dim <= 0:
        raise ValueError(f"dim must be positive, got {dim}")
    row_bytes = dim * _EMBEDDING_DTYPE.itemsize
    data = bytes(data) if isinstance(data, memoryview) else data
    if len(data) % row_bytes:
        raise ValueError(f"{len(data)} bytes is not a whole number of {dim}-dim float16 rows")
    return np.frombuffer(data, dtype=_EMBEDDING_DTYPE).reshape(-1, dim).astype(np.float32)


def prompts_to_bytes(prompts: np.ndarray) -> bytes:
    """Encode a (2, D) prompt matrix as float32 bytes.

    Raises:
        ValueError: not of shape (2, D), or not finite.
    """
    p = np.asarray(prompts)
    if p.ndim != 2 or p.shape[0] != 2:
        raise ValueError(f"prompts must have shape (2, D), got {p.shape}")
    full = np.ascontiguousarray(p, dtype=_PROMPT_DTYPE)
    if not np.isfinite(full).all():
        raise ValueError("prompts contain NaN or infinity")
    return full.tobytes()


def prompts_from_bytes(
    data: bytes | bytearray | memoryview, *, dim: int | None = None
) -> np.ndarray:
    """Decode bytes from :func:`prompts_to_bytes` into float32 (2, D).

    Args:
        data: the stored bytes (``memoryview`` accepted).
        dim: the expected D, checked when given.

    Raises:
        ValueError: the byte length does not describe two float32 rows (of ``dim``).
    """
    data = bytes(data) if isinstance(data, memoryview) else data
    row_pairs = 2 * _PROMPT_DTYPE.itemsize
    if len(data) == 0 or len(data) % row_pairs:
        raise ValueError(f"{len(data)} bytes do not hold a (2, D) float32 matrix")
    prompts = np.frombuffer(data, dtype=_PROMPT_DTYPE).reshape(2, -1).astype(np.float32)
    if dim is not None and prompts.shape[1] != dim:
        raise ValueError(f"stored prompts have dimension {prompts.shape[1]}, expected {dim}")
    return prompts
