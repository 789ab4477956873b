"""Synthetic benchmark inputs: JPEG files (generated once, reused) and embeddings."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

SMALL_SIZE = (500, 375)  # ImageNet-like
LARGE_SIZE = (3000, 2000)  # camera-sized


def _image(seed: int, size: tuple[int, int]) -> Image.Image:
    """A distinct, photo-like (smooth plus grain) RGB image for a seed."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(12, 16, 3), dtype=np.uint8)
    img = Image.fromarray(coarse).resize(size, Image.Resampling.BICUBIC)
    grain = rng.integers(-12, 13, size=(size[1] // 4, size[0] // 4, 3), dtype=np.int16)
    noise = np.asarray(Image.fromarray((grain + 128).astype(np.uint8)).resize(size))
    pixels = np.asarray(img).astype(np.int16) + noise.astype(np.int16) - 128
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def ensure_jpegs(
    folder: Path, *, prefix: str, count: int, size: tuple[int, int], seed0: int
) -> list[Path]:
    """``count`` JPEGs named ``<prefix><i>.jpg`` in folder; existing files are reused."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"{prefix}{i:05d}.jpg"
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            _image(seed0 + i, size).save(tmp, "JPEG", quality=90)
            os.replace(tmp, path)
        paths.append(path)
    return paths


def link_folder(folder: Path, sources: list[Path]) -> Path:
    """A folder of hard links to sources (same inode, no copy), rebuilt if it differs."""
    folder.mkdir(parents=True, exist_ok=True)
    wanted = {source.name for source in sources}
    for existing in folder.iterdir():
        if existing.name not in wanted:
            existing.unlink()
    for source in sources:
        target = folder / source.name
        if not target.exists():
            try:
                os.link(source, target)
            except OSError:
                target.write_bytes(source.read_bytes())
    return folder


def unit_vectors(n: int, dim: int, *, seed: int, block: int = 100_000) -> np.ndarray:
    """(n, dim) float32 random unit vectors, generated block by block."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, block):
        stop = min(start + block, n)
        chunk = rng.standard_normal((stop - start, dim), dtype=np.float32)
        chunk /= np.linalg.norm(chunk, axis=1, keepdims=True)
        out[start:stop] = chunk
    return out


def labelled_embeddings(n: int, dim: int, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two noisy clusters on the unit sphere, about 30 % labelled 1 (inappropriate)."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.3).astype(np.int64)
    centres = unit_vectors(2, dim, seed=seed + 1)
    x = centres[labels] + 0.08 * rng.standard_normal((n, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), labels


def rescore_prompts(dim: int, *, seed: int) -> np.ndarray:
    """A (2, D) prompt matrix (raw scale ~3, like text features) for the rescore benchmark."""
    return unit_vectors(2, dim, seed=seed) * 3.0


def rescore_embeddings(
    n: int,
    dim: int,
    prompts: np.ndarray,
    *,
    seed: int,
    flag_share: float = 0.05,
    block: int = 100_000,
) -> np.ndarray:
    """(n, D) unit embeddings of which about ``flag_share`` score >= 0.5 with ``prompts``.

    Random directions pushed slightly away from the inappropriate prompt, so a rescore
    flags a realistic few percent (random embeddings alone would flag half).
    """
    from statistics import NormalDist

    rows = prompts / np.linalg.norm(prompts, axis=1, keepdims=True)
    d = (rows[1] - rows[0]).astype(np.float32)
    d_norm = float(np.linalg.norm(d))
    # r . d of a random unit r has std |d| / sqrt(D); shift its mean to the flag_share quantile.
    z = -NormalDist().inv_cdf(flag_share)
    beta = z / (d_norm * np.sqrt(dim))
    out = unit_vectors(n, dim, seed=seed, block=block)
    for start in range(0, n, block):
        chunk = out[start : start + block]
        chunk -= beta * d
        chunk /= np.linalg.norm(chunk, axis=1, keepdims=True)
    return out
