"""Fixtures for the audit trail tests: a logged-in admin (browser forms and API), a ready
dataset with valid images, prompt versions of the configured model, and a helper that finds
the one event an action recorded."""

from __future__ import annotations

import io

import numpy as np
import pytest
from django.test import Client
from rest_framework.test import APIClient

from audit.models import AuditEvent
from curation.models import Dataset, Image, PromptVersion, ScoringRun
from curation.services.clip_config import configured_model_key
from worker.engine.prompt_files import write_published_prompts
from worker.engine.store import prompts_to_bytes


@pytest.fixture
def web(admin_user) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client


@pytest.fixture
def api(admin_user) -> APIClient:
    client = APIClient()
    client.force_login(admin_user)
    return client


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def model_key(db) -> str:
    return configured_model_key()


def make_version(model_key: str, *, name: str, **fields) -> PromptVersion:
    return PromptVersion.objects.create(
        name=name,
        model_key=model_key,
        dim=512,
        vectors=prompts_to_bytes(np.zeros((2, 512), np.float32)),
        source=fields.pop("source", PromptVersion.Source.ZERO_SHOT),
        **fields,
    )


@pytest.fixture
def version(model_key) -> PromptVersion:
    return make_version(model_key, name="paper zero-shot", is_active=True)


@pytest.fixture
def dataset(db, tmp_path) -> Dataset:
    folder = tmp_path / "images"
    folder.mkdir()
    dataset = Dataset.objects.create(
        name="holiday photos", source_kind=Dataset.SourceKind.FOLDER, source=str(folder),
        root_path=str(folder), state=Dataset.State.READY, total=2, processed=2,
    )  # fmt: skip
    for name in ("a.png", "b.png"):
        Image.objects.create(
            dataset=dataset, relative_path=name, sha256=name[0] * 64, format="PNG",
            width=8, height=8,
        )  # fmt: skip
    return dataset


@pytest.fixture
def scored(dataset, version) -> ScoringRun:
    """The dataset scored once with the active version (a succeeded run)."""
    return ScoringRun.objects.create(
        dataset=dataset, prompt_version=version, model_key=version.model_key, threshold=0.6,
        state=ScoringRun.State.SUCCEEDED, total=2, processed=2,
    )  # fmt: skip


def prompt_file() -> bytes:
    buffer = io.BytesIO()
    write_published_prompts(np.ones((2, 512), np.float32), buffer)
    return buffer.getvalue()


def only_event(action: str) -> AuditEvent:
    """The one event of this action; fails when there are none or several."""
    events = list(AuditEvent.objects.filter(action=action))
    assert len(events) == 1, (action, [(e.action, e.before, e.after) for e in events])
    return events[0]


def actions() -> list[str]:
    return list(AuditEvent.objects.order_by("id").values_list("action", flat=True))
