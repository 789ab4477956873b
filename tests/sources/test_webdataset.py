"""WebDataset imports: samples grouped by key with their sidecars, images kept inside the shard
(read by range reads in scoring and the media views), truncated and corrupt shards failing only
their own samples, re-imports adding only what is new, and the remote-prefix rule."""

from __future__ import annotations

import io

import pytest
from django.test import override_settings
from PIL import Image as PILImage

from curation.errors import ValidationFailed
from curation.media import image_source
from curation.models import Dataset, Image
from curation.services.datasets import dataset_import
from curation.services.sources.create import dataset_create_from_webdataset, dataset_reimport
from tests.hostile import files
from tests.sources.shards import sample_members, write_shard
from worker.engine.images import load_rgb
from worker.engine.locators import ImageLocator, read_image_bytes

pytestmark = pytest.mark.django_db


def _two_shards(tmp_path):
    folder = tmp_path / "wds"
    write_shard(folder / "00000.tar", sample_members("a/s1") + sample_members("a/s2"))
    write_shard(folder / "00001.tar", sample_members("s3", color=(0, 0, 200)))
    return folder


def test_brace_pattern_imports_samples_with_sidecars_and_member_offsets(tmp_path):
    folder = _two_shards(tmp_path)
    dataset = dataset_create_from_webdataset(
        name="wds", shards=f"{folder}/{{00000..00001}}.tar", queue=False
    )
    dataset = dataset_import(dataset_id=dataset.pk)
    assert dataset.state == Dataset.State.READY, dataset.error
    images = {image.sample_key: image for image in dataset.images.all()}
    assert set(images) == {"a/s1", "a/s2", "s3"}
    assert (dataset.total, dataset.processed, dataset.failed) == (3, 3, 0)
    first = images["a/s1"]
    assert first.status == Image.Status.OK and first.format == "JPEG"
    assert first.container == str(folder / "00000.tar")
    assert first.metadata["txt"] == "caption of a/s1"
    assert first.metadata["url"] == "https://example.org/a/s1.jpg"
    # The member's bytes at (offset, size) are the JPEG itself: no extraction anywhere.
    data = read_image_bytes(ImageLocator(first.container, first.member_offset, first.member_size))
    assert data == files.jpeg(color=(200, 30, 30))
    assert load_rgb(image_source(first)).size == (50, 40)


def test_truncated_shard_fails_only_its_own_samples(tmp_path):
    folder = tmp_path / "trunc"
    good = write_shard(folder / "good.tar", sample_members("g1"))
    whole = write_shard(
        folder / "cut.tar", sample_members("c1") + sample_members("c2", color=(1, 2, 3))
    ).read_bytes()
    # Cut inside the second sample's image data.
    cut_at = whole.index(files.jpeg(color=(1, 2, 3))) + 100
    (folder / "cut.tar").write_bytes(whole[:cut_at])
    dataset = dataset_create_from_webdataset(
        name="trunc", shards=f"{good}\n{folder / 'cut.tar'}", queue=False
    )
    dataset = dataset_import(dataset_id=dataset.pk)
    assert dataset.state == Dataset.State.READY
    ok = set(dataset.images.filter(status=Image.Status.OK).values_list("sample_key", flat=True))
    assert ok == {"g1", "c1"}
    failed = list(dataset.images.filter(status=Image.Status.FAILED))
    assert failed and all("truncated" in image.error for image in failed)
    assert "c2" in {image.sample_key for image in failed}


def test_corrupt_member_and_sample_without_image_are_failed_with_reasons(tmp_path):
    shard = write_shard(
        tmp_path / "bad" / "00000.tar",
        sample_members("ok")
        + [("broken.jpg", files.jpeg()[:150]), ("lonely.json", b"{}")]
        + sample_members("after"),
    )
    dataset = dataset_create_from_webdataset(name="bad", shards=str(shard), queue=False)
    dataset = dataset_import(dataset_id=dataset.pk)
    rows = {image.sample_key: image for image in dataset.images.all()}
    assert rows["ok"].status == rows["after"].status == Image.Status.OK
    assert rows["broken"].status == Image.Status.FAILED and rows["broken"].error
    assert rows["lonely"].error == "sample has no image member"


def test_reimport_adds_only_new_samples(tmp_path):
    shard = write_shard(tmp_path / "grow" / "00000.tar", sample_members("k1"))
    dataset = dataset_create_from_webdataset(name="grow", shards=str(shard), queue=False)
    dataset_import(dataset_id=dataset.pk)
    first_ids = set(dataset.images.values_list("id", flat=True))
    # The owner appends a sample to the shard; the first sample keeps its offsets.
    write_shard(shard, sample_members("k1") + sample_members("k2", color=(9, 9, 9)))
    dataset_reimport(dataset=dataset, queue=False)
    dataset = dataset_import(dataset_id=dataset.pk)
    assert dataset.state == Dataset.State.READY
    keys = sorted(dataset.images.values_list("sample_key", flat=True))
    assert keys == ["k1", "k2"]
    assert first_ids < set(dataset.images.values_list("id", flat=True))


def test_missing_shard_and_outside_paths_are_refused(tmp_path):
    with pytest.raises(ValidationFailed, match="not a file"):
        dataset_create_from_webdataset(name="x", shards=str(tmp_path / "none.tar"), queue=False)
    with pytest.raises(ValidationFailed, match="outside the import folders"):
        dataset_create_from_webdataset(name="x", shards="/etc/hosts", queue=False)
    with pytest.raises(ValidationFailed, match="remote imports are off"):
        dataset_create_from_webdataset(name="x", shards="s3://bucket/a.tar", queue=False)
    with override_settings(Q16_IMPORT_URL_PREFIXES=["s3://allowed/prefix/"]):
        with pytest.raises(ValidationFailed, match="outside the allowed remote prefixes"):
            dataset_create_from_webdataset(name="x", shards="s3://other/a.tar", queue=False)
        with pytest.raises(ValidationFailed, match="outside the allowed"):
            dataset_create_from_webdataset(
                name="x", shards="s3://allowed/prefix/../secret/a.tar", queue=False
            )


def test_member_locator_short_read_is_reported(tmp_path):
    shard = write_shard(tmp_path / "s.tar", sample_members("k"))
    with pytest.raises(OSError, match="truncated"):
        read_image_bytes(ImageLocator(str(shard), shard.stat().st_size - 10, 5000))
    picture = PILImage.open(io.BytesIO(files.jpeg()))
    assert picture.size == (50, 40)
