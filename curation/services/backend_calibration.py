"""The calibration sample of the int8 backend and of Q16_BACKEND=auto: the dataset's own images.

NNCF measures activation ranges on these images and ``auto`` measures each backend's
speed and fidelity on them, so they should look like what the workers will score: a
sample spread evenly over a dataset (by default the most recently imported ready one).
"""

from __future__ import annotations

from pathlib import Path

from curation.models import Dataset, Image
from worker.engine.locators import ImageLocator

# worker.engine.int8.CALIBRATION_IMAGES (not imported: that module loads torch).
CALIBRATION_IMAGES = 300


def calibration_dataset(*, dataset_id: int | None = None) -> Dataset | None:
    """The dataset to calibrate on: the one named, else the most recent ready one."""
    if dataset_id is not None:
        return Dataset.objects.filter(pk=dataset_id).first()
    return Dataset.objects.filter(state=Dataset.State.READY).order_by("-created_at", "-pk").first()


def calibration_sources(
    *, dataset_id: int | None = None, count: int = CALIBRATION_IMAGES
) -> list[Path | ImageLocator]:
    """Up to ``count`` readable images of the dataset, spread evenly over it (by id)."""
    dataset = calibration_dataset(dataset_id=dataset_id)
    if dataset is None:
        return []
    ids = list(
        Image.objects.filter(dataset=dataset, status=Image.Status.OK)
        .order_by("id")
        .values_list("id", flat=True)
    )
    if len(ids) > count:
        step = len(ids) / count
        ids = [ids[int(i * step)] for i in range(count)]
    root = Path(dataset.root_path)
    sources: list[Path | ImageLocator] = []
    for relative_path, container, offset, size in Image.objects.filter(id__in=ids).values_list(
        "relative_path", "container", "member_offset", "member_size"
    ):
        sources.append(ImageLocator(container, offset, size) if container else root / relative_path)
    return sources
