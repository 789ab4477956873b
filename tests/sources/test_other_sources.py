"""Tar archives (and their hostile entries), ImageFolder class labels, URL tables with a custom
column and bad rows, img2dataset folders, and a WebDataset shard on S3."""

from __future__ import annotations

import io
import json
import tarfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings

from curation.errors import ValidationFailed
from curation.models import Dataset, Image
from curation.services.archives import ArchiveLimits, extract_archive
from curation.services.datasets import (
    dataset_create_from_archive,
    dataset_create_from_folder,
    dataset_import,
)
from curation.services.sources.create import (
    dataset_create_from_img2dataset,
    dataset_create_from_table,
    dataset_create_from_webdataset,
)
from curation.services.url_import import UrlFetcher
from tests.hostile import files
from tests.sources.shards import add_member, sample_members, shard_bytes, write_img2dataset_folder

pytestmark = pytest.mark.django_db


def _tar(entries, mode="w:gz") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:
        for entry in entries:
            if isinstance(entry, tarfile.TarInfo):
                archive.addfile(entry)
            else:
                add_member(archive, *entry)
    return buffer.getvalue()


def _special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


def test_tar_gz_upload_imports_and_refuses_hostile_entries(tmp_path):
    data = _tar(
        [
            ("ok/a.png", files.png()),
            ("../escape.png", files.png()),
            ("/abs.png", files.png()),
            _special("link.png", tarfile.SYMTYPE, "/etc/passwd"),
            _special("hard.png", tarfile.LNKTYPE, "ok/a.png"),
            _special("dev", tarfile.CHRTYPE),
            _special("fifo", tarfile.FIFOTYPE),
            ("inner.zip", b"PK\x03\x04"),
            ("nested.tar.gz", b"\x1f\x8b"),
        ]
    )
    upload = SimpleUploadedFile("photos.tar.gz", data)
    dataset = dataset_create_from_archive(name="tgz", archive=upload, queue=False)
    dataset = dataset_import(dataset_id=dataset.pk)
    assert dataset.state == Dataset.State.READY, dataset.error
    errors = {i.relative_path: i.error for i in dataset.images.all()}
    assert errors.pop("ok/a.png") == ""
    assert errors == {
        "[refused] ../escape.png": "path traversal ('..') in archive entry",
        "[refused] /abs.png": "absolute path in archive entry",
        "[refused] link.png": "symbolic link in archive",
        "[refused] hard.png": "hard link in archive",
        "[refused] dev": "special file in archive",
        "[refused] fifo": "special file in archive",
        "[refused] inner.zip": "nested archive refused",
        "[refused] nested.tar.gz": "nested archive refused",
    }
    assert not (tmp_path.parent / "escape.png").exists()


def test_tar_size_ratio_and_entry_caps(tmp_path):
    big = _tar([("zeros.png", b"\0" * 2_000_000), ("small.png", files.png())])
    (tmp_path / "bomb.tgz").write_bytes(big)
    result = extract_archive(tmp_path / "bomb.tgz", tmp_path / "out", limits=ArchiveLimits())
    assert dict(result.rejected)["zeros.png"].startswith("compression ratio above")
    result = extract_archive(
        tmp_path / "bomb.tgz",
        tmp_path / "out2",
        limits=ArchiveLimits(max_entry_bytes=1000, max_ratio=10**6),
    )
    assert dict(result.rejected)["zeros.png"].startswith("entry too large")
    plain = _tar([(f"{i}.png", files.png()) for i in range(3)], mode="w")
    (tmp_path / "many.tar").write_bytes(plain)
    with pytest.raises(ValueError, match="more than the limit"):
        extract_archive(tmp_path / "many.tar", tmp_path / "o3", limits=ArchiveLimits(max_entries=2))


def test_truncated_tar_keeps_what_came_before(tmp_path):
    data = _tar([("a.png", files.png()), ("b.png", files.png(color=(1, 2, 3)))], mode="w")
    (tmp_path / "cut.tar").write_bytes(data[: data.index(files.png(color=(1, 2, 3))) + 50])
    result = extract_archive(tmp_path / "cut.tar", tmp_path / "out", limits=ArchiveLimits())
    assert result.extracted == ["a.png"]
    assert (
        result.rejected
        and "corrupt" in result.rejected[0][1]
        or "truncated" in str(result.rejected)
    )


def test_image_folder_class_labels_only_when_asked(tmp_path):
    root = tmp_path / "imagenet"
    for wnid in ("n01440764", "n01443537"):
        (root / wnid).mkdir(parents=True)
        (root / wnid / "x.png").write_bytes(files.png())
    (root / "top.png").write_bytes(files.png())
    labelled = dataset_import(
        dataset_id=dataset_create_from_folder(
            name="classes", folder=str(root), class_folders=True, queue=False
        ).pk
    )
    labels = dict(labelled.images.values_list("relative_path", "class_label"))
    assert labels == {"n01440764/x.png": "n01440764", "n01443537/x.png": "n01443537", "top.png": ""}
    plain = dataset_import(
        dataset_id=dataset_create_from_folder(name="plain", folder=str(root), queue=False).pk
    )
    assert set(plain.images.values_list("class_label", flat=True)) == {""}


class FakeFetcher(UrlFetcher):
    """Serves two known URLs (no network); the SSRF checks ran before it (validate_url)."""

    def __init__(self) -> None:
        pass

    def fetch(self, url: str):  # type: ignore[override]
        from curation.services.url_import import FetchResult, UrlFetchError

        if url.endswith("/missing.png"):
            raise UrlFetchError("HTTP 404")
        return FetchResult(data=files.png(), final_url=url)


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "parquet"])
def test_url_table_with_custom_column_and_bad_rows(fmt):
    rows = [
        {"image": "https://example.org/a.png", "caption": "first", "key": "k1"},
        {"image": "https://example.org/missing.png", "caption": "gone", "key": "k2"},
        {"image": "file:///etc/passwd", "caption": "not http", "key": "k3"},
        {"image": "", "caption": "no url", "key": "k4"},
    ]
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        buffer = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(rows), buffer)
        data = buffer.getvalue()
    elif fmt == "jsonl":
        data = ("\n".join(json.dumps(r) for r in rows) + "\nnot json\n").encode()
    else:
        sep = "," if fmt == "csv" else "\t"
        lines = [sep.join(rows[0])] + [sep.join(r.values()) for r in rows]
        data = ("\n".join(lines) + "\n").encode()
    upload = SimpleUploadedFile(f"urls.{fmt}", data)
    dataset = dataset_create_from_table(
        name=f"t-{fmt}", table=upload, url_column="image", queue=False
    )
    fetcher = FakeFetcher()
    dataset = dataset_import(dataset_id=dataset.pk, url_fetcher=fetcher)
    assert dataset.state == Dataset.State.READY, dataset.error
    by_key = {
        image.metadata.get("key", image.relative_path): image for image in dataset.images.all()
    }
    assert by_key["k1"].status == Image.Status.OK and by_key["k1"].sample_key == "k1"
    assert by_key["k1"].metadata == {"caption": "first", "key": "k1"}
    assert by_key["k2"].error == "HTTP 404"
    assert by_key["k3"].status == Image.Status.FAILED and by_key["k3"].error
    assert "no URL in column 'image'" in by_key["k4"].error
    if fmt == "jsonl":
        assert any("not a JSON object" in image.error for image in dataset.images.all())
    # Re-importing adds nothing new.
    from curation.services.sources.create import dataset_reimport

    count = dataset.images.count()
    dataset_reimport(dataset=dataset, queue=False)
    assert dataset_import(dataset_id=dataset.pk, url_fetcher=fetcher).images.count() == count


def test_url_table_without_the_column_is_refused():
    upload = SimpleUploadedFile("urls.csv", b"link,caption\nhttps://example.org/a.png,x\n")
    with pytest.raises(ValidationFailed, match="no column 'url'"):
        dataset_create_from_table(name="nocol", table=upload, queue=False)
    with pytest.raises(ValidationFailed, match="table format"):
        dataset_create_from_table(
            name="noformat", table=SimpleUploadedFile("urls.bin", b"x"), queue=False
        )
    with pytest.raises(ValidationFailed, match="Parquet"):
        dataset_create_from_table(
            name="badpq", table=SimpleUploadedFile("u.parquet", b"not parquet"), queue=False
        )


def test_img2dataset_folder_imports_shards_and_failed_downloads(tmp_path):
    folder = write_img2dataset_folder(tmp_path / "img2ds")
    dataset = dataset_create_from_img2dataset(name="i2d", folder=str(folder), queue=False)
    dataset = dataset_import(dataset_id=dataset.pk)
    assert dataset.state == Dataset.State.READY, dataset.error
    rows = {image.sample_key: image for image in dataset.images.all()}
    assert set(rows) == {"000000000", "000000001", "000000002"}
    assert rows["000000000"].status == Image.Status.OK
    assert rows["000000000"].container.endswith("00000.tar")
    assert rows["000000000"].metadata["url"] == "https://example.org/0.jpg"
    gone = rows["000000002"]
    assert gone.status == Image.Status.FAILED and gone.error == "HTTP Error 404: Not Found"
    assert gone.source_url == "https://example.org/2.jpg"
    assert (dataset.total, dataset.failed) == (3, 1)


def test_img2dataset_folder_without_shards_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValidationFailed, match="no img2dataset shards"):
        dataset_create_from_img2dataset(name="e", folder=str(tmp_path / "empty"), queue=False)


def test_remote_webdataset_shard_on_s3(s3):
    s3.put("datasets/00000.tar", shard_bytes(sample_members("r1") + sample_members("r2")))
    url = f"s3://{s3.bucket}/datasets/00000.tar"
    with override_settings(Q16_IMPORT_URL_PREFIXES=[f"s3://{s3.bucket}/datasets/"]):
        dataset = dataset_create_from_webdataset(name="remote", shards=url, queue=False)
        dataset = dataset_import(dataset_id=dataset.pk)
    assert dataset.state == Dataset.State.READY, dataset.error
    images = {image.sample_key: image for image in dataset.images.all()}
    assert set(images) == {"r1", "r2"} and images["r1"].container == url
    from curation.media import image_source
    from worker.engine.locators import read_image_bytes

    assert read_image_bytes(image_source(images["r2"])) == files.jpeg(color=(200, 30, 30))


def test_a_new_datasets_files_folder_starts_empty(settings, tmp_path):
    from curation.services.sources.common import dataset_files_root

    settings.MEDIA_ROOT = str(tmp_path)
    leftover = tmp_path / "datasets" / "4242" / "0000000-stale.png"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(files.png())
    assert dataset_files_root(4242) == str(tmp_path / "datasets" / "4242")
    assert not leftover.exists()  # not imported into the new dataset with the same id
