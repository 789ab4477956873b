"""Hash-bank fixtures: photo-like images (PDQ needs texture), datasets with edited copies."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from PIL import ImageDraw, ImageFilter

from curation.models import Dataset, Image
from curation.services.datasets import dataset_create_from_folder, dataset_import


def textured_image(seed: int, size: int = 256) -> PILImage.Image:
    """Smooth colour fields with random shapes: enough structure for PDQ quality >= 50."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    base = np.stack(
        [
            127 + 100 * np.sin(2 * np.pi * (x * rng.uniform(0.5, 2) + rng.uniform())),
            127 + 100 * np.cos(2 * np.pi * (y * rng.uniform(0.5, 2) + rng.uniform())),
            127 + 100 * np.sin(2 * np.pi * ((x + y) * rng.uniform(0.5, 2))),
        ],
        axis=-1,
    )
    img = PILImage.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(12):
        x0, y0 = (int(v) for v in rng.integers(0, size - 40, 2))
        x1, y1 = x0 + int(rng.integers(20, 120)), y0 + int(rng.integers(20, 120))
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        (draw.ellipse if rng.uniform() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=colour)
    return img.filter(ImageFilter.GaussianBlur(1))


def reencoded(img: PILImage.Image, *, scale: float = 0.75, quality: int = 70) -> PILImage.Image:
    """The same picture resized and saved as a lossy JPEG: a different file, same content."""
    width, height = img.size
    small = img.resize((int(width * scale), int(height * scale)), PILImage.Resampling.BICUBIC)
    buffer = io.BytesIO()
    small.save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    return PILImage.open(buffer).convert("RGB")


def import_folder(name: str, folder: Path) -> Dataset:
    created = dataset_create_from_folder(name=name, folder=str(folder), queue=False)
    return dataset_import(dataset_id=created.pk)


@pytest.fixture
def two_datasets(tmp_path):
    """`source`: five distinct images. `other`: a resized re-encoded copy of source's
    original-0, a byte-identical copy of original-1, and an unrelated image."""
    source_dir = tmp_path / "source"
    source_dir.mkdir()
    originals = [textured_image(seed) for seed in range(5)]
    for i, img in enumerate(originals):
        img.save(source_dir / f"original-{i}.png")
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    reencoded(originals[0]).save(other_dir / "copy-of-0.jpg", quality=95)
    (other_dir / "exact-1.png").write_bytes((source_dir / "original-1.png").read_bytes())
    textured_image(99).save(other_dir / "unrelated.png")
    source = import_folder("source", source_dir)
    other = import_folder("other", other_dir)
    return source, other


def image(dataset: Dataset, name: str) -> Image:
    return Image.objects.get(dataset=dataset, relative_path=name)


def export_csv(images: list[Image], *, with_pdq: bool = True) -> bytes:
    """A blocklist in the shape labels/exports.py writes (plus the PDQ column H3 adds)."""
    header = "sha256,phash,path,score,verdict,prompt_version,prompt_version_id"
    lines = [header + (",pdq" if with_pdq else "")]
    for img in images:
        row = f"{img.sha256},{img.phash},{img.relative_path},0.9,inappropriate,v1,1"
        lines.append(row + (f",{img.pdq}" if with_pdq else ""))
    return ("\r\n".join(lines) + "\r\n").encode()
