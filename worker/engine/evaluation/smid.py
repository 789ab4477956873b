"""SMID on disk: the paper's label rule for moral ratings and the folder reader. NumPy only."""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..scoring import APPROPRIATE, INAPPROPRIATE

__all__ = [
    "DROPPED",
    "IMAGE_FOLDER",
    "MORAL_APPROPRIATE_ABOVE",
    "MORAL_INAPPROPRIATE_BELOW",
    "NORMS_FILE",
    "SmidDataset",
    "SmidFormatError",
    "load_smid",
    "smid_labels",
    "smid_strata",
]

logger = logging.getLogger(__name__)

MORAL_INAPPROPRIATE_BELOW = 2.5
"""Mean moral rating below which a SMID image is *inappropriate* (label 1)."""
MORAL_APPROPRIATE_ABOVE = 3.5
"""Mean moral rating above which a SMID image is *appropriate* (label 0)."""
DROPPED = -1
"""Label of images between the two thresholds (dropped by the protocol)."""
NORMS_FILE = "SMID_norms.csv"
IMAGE_FOLDER = "img"
_REQUIRED_COLUMNS = ("img_name", "moral_mean")
_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


class SmidFormatError(ValueError):
    """A folder is not in SMID's layout (no norms file, missing columns, no image folder)."""


def smid_labels(moral_means: np.ndarray) -> np.ndarray:
    """The paper's label rule for SMID's mean moral ratings.

    Args:
        moral_means: (N,) mean moral ratings (1 = immoral ... 5 = moral).

    Returns:
        int64 (N,): 1 (inappropriate) where the mean is < 2.5, 0 (appropriate)
        where it is > 3.5, :data:`DROPPED` (-1) otherwise, including NaN.
    """
    means = np.asarray(moral_means, dtype=np.float64)
    labels = np.full(means.shape, DROPPED, dtype=np.int64)
    labels[means < MORAL_INAPPROPRIATE_BELOW] = INAPPROPRIATE
    labels[means > MORAL_APPROPRIATE_ABOVE] = APPROPRIATE
    return labels


def smid_strata(moral_means: np.ndarray) -> np.ndarray:
    """The split's strata: the moral mean rounded to an integer (half to even, like NumPy)."""
    return np.round(np.asarray(moral_means, dtype=np.float64)).astype(np.int64)


@dataclass(frozen=True)
class SmidDataset:
    """The labelled part of a SMID folder.

    Attributes:
        names: ``img_name`` of each kept image (labelled and present on disk).
        paths: the image file of each kept image.
        moral_means: (N,) their mean moral ratings.
        labels: (N,) 1 inappropriate, 0 appropriate.
        strata: (N,) rounded moral means, the split's strata.
        rows: rows in the norms file.
        dropped_middle: rows dropped because 2.5 <= moral mean <= 3.5.
        invalid: ``img_name`` of rows without a usable moral mean (dropped).
        missing: ``img_name`` of labelled rows whose image file is missing (dropped).
    """

    names: list[str]
    paths: list[Path]
    moral_means: np.ndarray
    labels: np.ndarray
    strata: np.ndarray
    rows: int
    dropped_middle: int
    invalid: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def without(self, positions: Sequence[int]) -> SmidDataset:
        """A copy without the images at ``positions`` (e.g. files that failed to decode)."""
        drop = set(positions)
        keep = [i for i in range(len(self.names)) if i not in drop]
        return SmidDataset(
            names=[self.names[i] for i in keep],
            paths=[self.paths[i] for i in keep],
            moral_means=self.moral_means[keep],
            labels=self.labels[keep],
            strata=self.strata[keep],
            rows=self.rows,
            dropped_middle=self.dropped_middle,
            invalid=list(self.invalid),
            missing=list(self.missing),
        )


def _image_index(folder: Path) -> dict[str, Path]:
    """Map each image file's name without its last suffix (and its full name) to its path."""
    index: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        index.setdefault(path.name, path)
        if path.suffix.lower() in _IMAGE_SUFFIXES:
            index.setdefault(path.stem, path)
    return index


def _parse_float(value: str | None) -> float:
    try:
        number = float((value or "").strip())
    except ValueError:
        return math.nan
    return number


def load_smid(smid_dir: str | Path) -> SmidDataset:
    """Read a SMID folder: ``SMID_norms.csv`` plus ``img/<img_name>.<ext>``.

    Labels follow :func:`smid_labels`. Rows in the middle band, rows without a
    numeric moral mean, and labelled rows whose image file is missing are
    dropped and counted, never an error.

    Raises:
        SmidFormatError: no norms file, no ``img`` folder, or missing columns.
    """
    root = Path(smid_dir)
    norms = root / NORMS_FILE
    images = root / IMAGE_FOLDER
    if not norms.is_file():
        raise SmidFormatError(
            f"{norms} not found: point at the SMID folder (e.g. SMID_images_400px/) "
            f"holding {NORMS_FILE} and {IMAGE_FOLDER}/"
        )
    if not images.is_dir():
        raise SmidFormatError(f"{images} is not a folder")
    with norms.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        columns = [c.strip() for c in reader.fieldnames or []]
        absent = [c for c in _REQUIRED_COLUMNS if c not in columns]
        if absent:
            raise SmidFormatError(f"{norms} lacks column(s) {', '.join(absent)}")
        reader.fieldnames = columns
        records = [
            ((row.get("img_name") or "").strip(), _parse_float(row.get("moral_mean")))
            for row in reader
        ]

    index = _image_index(images)
    names: list[str] = []
    paths: list[Path] = []
    means: list[float] = []
    invalid: list[str] = []
    missing: list[str] = []
    dropped_middle = 0
    for name, moral_mean in records:
        if not name or not math.isfinite(moral_mean):
            invalid.append(name)
            continue
        if smid_labels(np.array([moral_mean]))[0] == DROPPED:
            dropped_middle += 1
            continue
        path = index.get(name)
        if path is None:
            missing.append(name)
            continue
        names.append(name)
        paths.append(path)
        means.append(moral_mean)
    moral = np.array(means, dtype=np.float64)
    dataset = SmidDataset(
        names=names,
        paths=paths,
        moral_means=moral,
        labels=smid_labels(moral),
        strata=smid_strata(moral),
        rows=len(records),
        dropped_middle=dropped_middle,
        invalid=invalid,
        missing=missing,
    )
    logger.info(
        "SMID %s: %d rows, %d labelled images (%d inappropriate), %d in the middle band, "
        "%d without a moral mean, %d images missing",
        root,
        dataset.rows,
        len(names),
        int(dataset.labels.sum()),
        dropped_middle,
        len(invalid),
        len(missing),
    )
    return dataset
