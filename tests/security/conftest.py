"""Real objects for the access tests: an admin, a reviewer assigned to the dataset and one who
is not, a dataset with a real PNG on disk, a scored run, a review item, a prompt version, a
prompt job and a finished export with its file."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from curation.bank_models import HashBank, HashBankEntry
from curation.models import (
    Dataset,
    DatasetAssignment,
    Export,
    Image,
    PromptJob,
    PromptVersion,
    ScoringRun,
)
from curation.services.clip_config import configured_model_key
from reviewer.models import ReviewItem
from worker.engine.store import prompts_to_bytes

PASSWORD = "review-pass-123"


def write_png(path: Path, size: tuple[int, int] = (16, 12)) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.zeros((size[1], size[0], 3), np.uint8)
    pixels[..., 0] = np.linspace(0, 255, size[0], dtype=np.uint8)[None, :]
    PILImage.fromarray(pixels).save(path, format="PNG")
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class World:
    admin: object
    assigned: object  # a reviewer assigned to `dataset`
    other: object  # a reviewer assigned to nothing
    dataset: Dataset
    image: Image
    image_path: Path
    version: PromptVersion
    run: ScoringRun
    item: ReviewItem
    job: PromptJob
    export: Export
    bank: HashBank


@pytest.fixture
def world(db, settings, tmp_path, admin_user, django_user_model) -> World:
    settings.MEDIA_ROOT = tmp_path / "media"
    assigned = django_user_model.objects.create_user(username="rita", password=PASSWORD)
    other = django_user_model.objects.create_user(username="otto", password=PASSWORD)
    folder = tmp_path / "images"
    image_path = folder / "street" / "a.png"
    sha = write_png(image_path)
    dataset = Dataset.objects.create(
        name="street photos", source_kind=Dataset.SourceKind.FOLDER, source=str(folder),
        root_path=str(folder), state=Dataset.State.READY, total=1, processed=1,
    )  # fmt: skip
    image = Image.objects.create(
        dataset=dataset, relative_path="street/a.png", sha256=sha, format="PNG",
        width=16, height=12, bytes=image_path.stat().st_size,
    )  # fmt: skip
    version = PromptVersion.objects.create(
        name="zero-shot", model_key=configured_model_key(), dim=512,
        vectors=prompts_to_bytes(np.zeros((2, 512), np.float32)),
        source=PromptVersion.Source.ZERO_SHOT,
    )  # fmt: skip
    run = ScoringRun.objects.create(
        dataset=dataset, prompt_version=version, model_key=version.model_key, threshold=0.5,
        state=ScoringRun.State.SUCCEEDED, total=1, processed=1, flagged=1,
    )  # fmt: skip
    item = ReviewItem.objects.create(dataset=dataset, image=image, score=0.9, margin=0.4, run=run)
    job = PromptJob.objects.create(
        kind=PromptJob.Kind.ZERO_SHOT, model_key=version.model_key,
        state=PromptJob.State.SUCCEEDED, result=version,
    )  # fmt: skip
    export_path = tmp_path / "exports" / "blocklist.csv"
    export_path.parent.mkdir()
    export_path.write_text("sha256,path\n" + f"{sha},street/a.png\n")
    export = Export.objects.create(
        dataset=dataset, format=Export.Format.CSV, state=Export.State.SUCCEEDED, rows=1,
        file_path=str(export_path), run=run, prompt_version=version, threshold=0.5,
    )  # fmt: skip
    DatasetAssignment.objects.create(dataset=dataset, user=assigned, assigned_by=admin_user)
    bank = HashBank.objects.create(name="known bad", sha256_count=1)
    HashBankEntry.objects.create(bank=bank, kind="sha256", value=sha)
    return World(
        admin=admin_user, assigned=assigned, other=other, dataset=dataset, image=image,
        image_path=image_path, version=version, run=run, item=item, job=job, export=export,
        bank=bank,
    )  # fmt: skip
