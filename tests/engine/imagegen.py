"""Synthetic test images of two visually distinct kinds (no downloads, deterministic).

Kind ``"a"``: mostly red, with noise and random dark rectangles.
Kind ``"b"``: blue-green diagonal stripes over a vertical gradient.

Even a random-weight CLIP separates these two kinds linearly, which is what the
tuning and end-to-end tests need.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["KIND_A", "KIND_B", "make_image", "make_two_kind_images"]

KIND_A = "a"
KIND_B = "b"


def make_image(
    kind: str, rng: np.random.Generator, size: tuple[int, int] = (96, 80)
) -> Image.Image:
    """Draw one RGB image of the given kind (``"a"`` or ``"b"``)."""
    width, height = size
    if kind == KIND_A:
        base = np.empty((height, width, 3), dtype=np.float64)
        base[..., 0] = rng.uniform(170, 230)
        base[..., 1] = rng.uniform(10, 50)
        base[..., 2] = rng.uniform(10, 50)
        base += rng.normal(0, 18, size=base.shape)
        img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(img)
        for _ in range(int(rng.integers(2, 5))):
            x0, y0 = int(rng.integers(0, width - 10)), int(rng.integers(0, height - 10))
            x1, y1 = x0 + int(rng.integers(5, 30)), y0 + int(rng.integers(5, 30))
            shade = int(rng.integers(40, 110))
            draw.rectangle((x0, y0, x1, y1), fill=(shade, 0, 0))
        return img
    if kind == KIND_B:
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
        period = rng.uniform(8, 16)
        phase = rng.uniform(0, 2 * np.pi)
        stripes = 0.5 + 0.5 * np.sin(2 * np.pi * (xx + yy) / period + phase)
        gradient = yy / max(height - 1, 1)
        rgb = np.stack(
            [
                10 + 20 * gradient,
                80 + 140 * stripes,
                120 + 120 * gradient * (1 - 0.5 * stripes),
            ],
            axis=-1,
        )
        rgb += rng.normal(0, 6, size=rgb.shape)
        return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))
    raise ValueError(f"unknown kind {kind!r}")


def make_two_kind_images(
    folder: str | Path, n_per_kind: int, seed: int = 0
) -> list[tuple[Path, str]]:
    """Write ``n_per_kind`` images of each kind into ``folder`` (created if needed).

    Kinds are interleaved, and each kind alternates between JPEG and PNG (so the
    file format says nothing about the kind).

    Returns:
        ``(path, kind)`` pairs, ``kind`` being ``"a"`` or ``"b"``, in creation order.
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    written: list[tuple[Path, str]] = []
    for i in range(n_per_kind):
        for offset, kind in enumerate((KIND_A, KIND_B)):
            img = make_image(kind, rng)
            index = len(written)
            if (i + offset) % 2 == 0:
                path = out / f"img_{index:04d}_{kind}.jpg"
                img.save(path, "JPEG", quality=90)
            else:
                path = out / f"img_{index:04d}_{kind}.png"
                img.save(path, "PNG")
            written.append((path, kind))
    return written
