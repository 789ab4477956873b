"""PDQ hashes at probe time: the hex form hash-sharing systems exchange, stable under re-encoding."""

from __future__ import annotations

import io

import numpy as np
import pdqhash
import pytest
from PIL import Image, ImageDraw

from worker.engine.images import pdq_hash, probe_image_bytes


def _scene(seed: int, size: int = 640) -> Image.Image:
    """A photo-like picture: a gradient with a few filled shapes (PDQ reads low frequencies)."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 255, size, dtype=np.float32)
    base = np.stack([np.add.outer(ramp, ramp[::-1]) / 2] * 3, axis=-1)
    img = Image.fromarray(base.astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(6):
        x0, y0 = rng.integers(0, size * 3 // 4, 2)
        w, h = rng.integers(size // 8, size // 3, 2)
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        draw.ellipse((int(x0), int(y0), int(x0 + w), int(y0 + h)), fill=colour)
    return img


def _encoded(img: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def _distance(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def test_hex_form_is_the_library_bits_most_significant_first() -> None:
    img = _scene(1)
    digest, quality = pdq_hash(img)
    assert len(digest) == 64 and int(digest, 16) >= 0
    bits, library_quality = pdqhash.compute(np.asarray(img))
    assert "".join(str(int(b)) for b in bits) == format(int(digest, 16), "0256b")
    assert quality == library_quality


def test_probe_records_pdq_and_its_quality() -> None:
    info = probe_image_bytes(_encoded(_scene(2), "PNG"))
    assert len(info.pdq) == 64
    assert 50 <= info.pdq_quality <= 100


def test_reencoded_copy_stays_within_the_usual_match_distance() -> None:
    original = _scene(3)
    png = probe_image_bytes(_encoded(original, "PNG"))
    jpeg = probe_image_bytes(_encoded(original.resize((480, 480)), "JPEG", quality=70))
    assert _distance(png.pdq, jpeg.pdq) <= 31  # HMA's default PDQ match threshold


def test_different_pictures_are_far_apart() -> None:
    a = probe_image_bytes(_encoded(_scene(4), "PNG"))
    b = probe_image_bytes(_encoded(_scene(5), "PNG"))
    assert _distance(a.pdq, b.pdq) > 64


@pytest.mark.parametrize("value", [0, 128])
def test_a_flat_image_hashes_with_low_quality(value: int) -> None:
    flat = Image.new("RGB", (300, 300), (value, value, value))
    info = probe_image_bytes(_encoded(flat, "PNG"))
    assert info.pdq_quality < 50
