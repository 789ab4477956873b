"""Images inside WebDataset shards are read by range reads where loose files are opened:
scoring encodes them (the same embedding as the loose file), the media views serve the
member and its thumbnail."""

from __future__ import annotations

import numpy as np
import pytest
from django.urls import reverse

from curation.models import Embedding, ScoringRun
from curation.services.chunks import scoring_chunk_process
from curation.services.clip_config import configured_model_spec
from curation.services.clip_runtime import get_clip
from curation.services.datasets import dataset_import
from curation.services.prompt_zero_shot import prompt_version_create_zero_shot
from curation.services.scoring import scoring_run_start
from curation.services.sources.create import dataset_create_from_webdataset
from tests.engine.imagegen import make_two_kind_images
from tests.sources.shards import write_shard
from worker.engine.pipeline import encode_files
from worker.engine.store import embeddings_from_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def shard_dataset(tmp_path):
    loose = tmp_path / "loose"
    make_two_kind_images(loose, 4, seed=3)
    paths = sorted(p for p in loose.rglob("*.*") if p.is_file())
    members = [
        (f"s{index:03d}{path.suffix}", path.read_bytes()) for index, path in enumerate(paths)
    ]
    shard = write_shard(tmp_path / "wds" / "00000.tar", members)
    dataset = dataset_create_from_webdataset(name="scored-wds", shards=str(shard), queue=False)
    return dataset_import(dataset_id=dataset.pk), paths


def test_scoring_reads_container_members(tiny_model_settings, shard_dataset):
    dataset, paths = shard_dataset
    assert dataset.failed == 0 and dataset.processed == len(paths)
    key = configured_model_spec().key
    clip = get_clip(key)
    version = prompt_version_create_zero_shot(clip=clip)
    run = scoring_run_start(
        dataset=dataset, prompt_version=version, threshold=0.5, chunk_size=5, queue=False
    )
    for chunk in run.chunks.all():
        scoring_chunk_process(chunk_id=chunk.pk, clip_provider=get_clip)
    run.refresh_from_db()
    assert run.state == ScoringRun.State.SUCCEEDED, run.error
    assert (run.processed, run.failed, run.encoded) == (len(paths), 0, len(paths))
    # Each member's embedding is the loose file's.
    loose = encode_files(clip, paths, batch_size=8, decode_workers=2)
    for image in dataset.images.all():
        index = int(image.sample_key[1:])
        blob = Embedding.objects.get(model_key=key, sha256=image.sha256).vector
        stored = embeddings_from_bytes(bytes(blob), dim=version.dim)[0]
        row = loose.ok_indices.index(index)
        assert np.allclose(stored, loose.embeddings[row], atol=2e-3)


def test_media_views_serve_a_member_and_its_thumbnail(admin_client, shard_dataset):
    dataset, paths = shard_dataset
    image = dataset.images.order_by("sample_key").first()
    response = admin_client.get(reverse("image-file", args=[image.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png" or response["Content-Type"].startswith("image/")
    assert response.content == paths[0].read_bytes()
    assert response["X-Content-Type-Options"] == "nosniff"
    thumb = admin_client.get(reverse("image-thumbnail", args=[image.pk]))
    assert thumb.status_code == 200 and thumb["Content-Type"] == "image/jpeg"


def test_media_view_refuses_a_member_whose_shard_changed(admin_client, shard_dataset):
    dataset, _ = shard_dataset
    image = dataset.images.order_by("sample_key").first()
    shard = image.container
    with open(shard, "r+b") as handle:  # overwrite the member's first bytes
        handle.seek(image.member_offset)
        handle.write(b"<html>")
    assert admin_client.get(reverse("image-file", args=[image.pk])).status_code == 404
