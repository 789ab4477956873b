"""Fault tests start and kill real Celery workers (the `workers` fixture in tests/conftest.py)."""

from __future__ import annotations

import pytest

N_PER_KIND = 150  # 300 images; in chunks of 8 that is 38 chunks


@pytest.fixture
def dataset_and_prompts(tiny_model_settings, tmp_path):
    """An imported dataset of 300 small images and zero-shot prompts of the tiny CLIP."""
    from curation.services.clip_config import configured_model_key
    from curation.services.clip_runtime import get_clip
    from curation.services.datasets import dataset_create_from_folder, dataset_import
    from curation.services.prompt_zero_shot import prompt_version_create_zero_shot
    from tests.engine.imagegen import make_two_kind_images

    folder = tmp_path / "imgs"
    make_two_kind_images(folder, N_PER_KIND, seed=3)
    dataset = dataset_import(
        dataset_id=dataset_create_from_folder(name="faults", folder=str(folder), queue=False).pk
    )
    version = prompt_version_create_zero_shot(clip=get_clip(configured_model_key()))
    return dataset, version
