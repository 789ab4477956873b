"""Workers with the int8 backend and with Q16_BACKEND=auto: calibration on the dataset's own
images, the model key of each, and the run saying which backend encoded it."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from curation.models import ScoringRun
from curation.services import clip_runtime
from curation.services.chunks import scoring_chunk_process
from curation.services.clip_config import configured_model_key, configured_model_spec
from curation.services.clip_runtime import get_clip
from curation.services.datasets import dataset_create_from_folder, dataset_import
from curation.services.prompt_zero_shot import prompt_version_create_zero_shot
from curation.services.scoring import scoring_run_start
from tests.engine.imagegen import make_two_kind_images
from tests.engine.test_int8 import _require_int8
from worker.engine.spec import model_key_for, read_backend_choice

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    """One export cache for the module: auto reuses the int8 model the first test made."""
    return tmp_path_factory.mktemp("backends")


@pytest.fixture
def backend_cache(shared_cache, monkeypatch):
    cache = shared_cache
    monkeypatch.setenv("Q16_BACKEND_CACHE", str(cache))
    monkeypatch.setattr(clip_runtime, "_models", {})  # each test loads its own backend
    return cache


@pytest.fixture
def dataset(tiny_model_settings, tmp_path):
    folder = tmp_path / "imgs"
    make_two_kind_images(folder, 16, seed=5)
    return dataset_import(
        dataset_id=dataset_create_from_folder(name="cal", folder=str(folder), queue=False).pk
    )


def _score(dataset, key: str) -> ScoringRun:
    version = prompt_version_create_zero_shot(clip=get_clip(key))
    run = scoring_run_start(dataset=dataset, prompt_version=version, threshold=0.5, queue=False)
    for chunk in run.chunks.all():
        scoring_chunk_process(chunk_id=chunk.pk, clip_provider=get_clip)
    run.refresh_from_db()
    return run


def test_an_int8_worker_calibrates_on_the_dataset_and_the_run_says_so(
    tiny_model_settings, dataset, backend_cache
):
    _require_int8()
    tiny_model_settings.Q16_BACKEND = "openvino-int8"
    key = configured_model_key()
    assert key == configured_model_spec().key + "+int8"
    run = _score(dataset, key)
    assert run.state == ScoringRun.State.SUCCEEDED and run.encoded == dataset.images.count()
    assert run.model_key == key and run.backend == "openvino-int8"
    (calibration,) = backend_cache.rglob("calibration.json")  # calibrated once, on the dataset
    assert json.loads(calibration.read_text())["images"] == dataset.images.count()


def test_auto_is_measured_once_then_every_process_agrees(
    tiny_model_settings, dataset, backend_cache
):
    _require_int8()
    tiny_model_settings.Q16_BACKEND = "auto"
    with pytest.raises(ImproperlyConfigured, match="choose_backend"):
        configured_model_key()  # before any measurement: a clear error, never a guessed key

    out = StringIO()
    call_command("choose_backend", dataset=dataset.pk, stdout=out)
    record = read_backend_choice(configured_model_spec().key, backend_cache)
    assert record is not None
    assert f"Q16_BACKEND=auto uses {record['backend']}" in out.getvalue()
    assert "torch: ok" in out.getvalue()
    assert record["calibration_images"] == dataset.images.count()
    key = configured_model_key()
    assert key == model_key_for(configured_model_spec().key, record["backend"])

    run = _score(dataset, key)
    assert run.state == ScoringRun.State.SUCCEEDED
    assert run.backend == record["backend"] and run.model_key == key


def test_choose_backend_without_a_dataset_is_a_clear_error(tiny_model_settings, backend_cache):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no dataset"):
        call_command("choose_backend", stdout=StringIO())
