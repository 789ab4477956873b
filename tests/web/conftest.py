"""Fixtures for the browser-page tests: datasets, prompt versions and runs made through the ORM."""

from __future__ import annotations

import numpy as np
import pytest

from curation.models import Dataset, Image, PromptVersion, ScoringRun
from curation.services.clip_config import configured_model_spec
from worker.engine.store import prompts_to_bytes


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def model_key() -> str:
    """The configured model (ViT-B-16/openai by default): no weights are loaded for its key."""
    return configured_model_spec().key


@pytest.fixture
def dataset(db, tmp_path) -> Dataset:
    folder = tmp_path / "images"
    folder.mkdir()
    dataset = Dataset.objects.create(
        name="holiday photos",
        source_kind=Dataset.SourceKind.FOLDER,
        source=str(folder),
        root_path=str(folder),
        state=Dataset.State.READY,
        total=3,
        processed=3,
        failed=1,
    )
    Image.objects.create(
        dataset=dataset, relative_path="a.png", sha256="a" * 64, format="PNG", width=8, height=8
    )
    Image.objects.create(
        dataset=dataset, relative_path="b.png", sha256="b" * 64, format="PNG", width=8, height=8
    )
    Image.objects.create(
        dataset=dataset,
        relative_path="notes.txt",
        status=Image.Status.FAILED,
        error="not an image: cannot identify image file",
    )
    return dataset


def make_version(model_key: str, *, name: str, dim: int = 512, **fields) -> PromptVersion:
    return PromptVersion.objects.create(
        name=name,
        model_key=model_key,
        dim=dim,
        vectors=prompts_to_bytes(np.zeros((2, dim), np.float32)),
        source=fields.pop("source", PromptVersion.Source.ZERO_SHOT),
        **fields,
    )


@pytest.fixture
def version(db, model_key) -> PromptVersion:
    return make_version(
        model_key,
        name="paper zero-shot",
        is_active=True,
        texts={
            "appropriate": ["This image is about something positive"],
            "inappropriate": ["This image is about something negative"],
        },
    )


@pytest.fixture
def run(dataset, version) -> ScoringRun:
    return ScoringRun.objects.create(
        dataset=dataset,
        prompt_version=version,
        model_key=version.model_key,
        threshold=0.5,
        state=ScoringRun.State.RUNNING,
        total=2,
        processed=1,
    )


@pytest.fixture(autouse=True)
def _reviewers_assigned(reviewers_assigned_everywhere):
    """These tests are about the queue and pages, not access: reviewers are assigned to the
    datasets the test creates (access is tested in tests/security)."""
    return reviewers_assigned_everywhere
