"""Dataset import: bad files are recorded with a reason and the rest of the import succeeds."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image as PILImage

from curation.errors import ValidationFailed
from curation.models import Dataset, Image
from curation.services.datasets import (
    dataset_create_from_archive,
    dataset_create_from_folder,
    dataset_import,
)

pytestmark = pytest.mark.django_db


def _png_bytes(color=(200, 30, 30), size=(40, 30)) -> bytes:
    buffer = io.BytesIO()
    PILImage.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


def _jpeg_bytes(color=(20, 90, 200), size=(50, 40)) -> bytes:
    buffer = io.BytesIO()
    PILImage.new("RGB", size, color).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def test_folder_import_records_bad_files_with_reasons(tmp_path, django_capture_on_commit_callbacks):
    folder = tmp_path / "data"
    (folder / "nested").mkdir(parents=True)
    (folder / "good.png").write_bytes(_png_bytes())
    (folder / "nested" / "good.jpg").write_bytes(_jpeg_bytes())
    (folder / "corrupt.jpg").write_bytes(_jpeg_bytes()[:200])
    (folder / "notes.png").write_bytes(b"this is a text file, not a PNG\n")
    (folder / "empty.jpg").write_bytes(b"")

    with django_capture_on_commit_callbacks() as callbacks:
        dataset = dataset_create_from_folder(name="mixed", folder=str(folder), queue=False)
    assert callbacks == []  # queue=False sends nothing to Celery
    dataset = dataset_import(dataset_id=dataset.pk)

    assert dataset.state == Dataset.State.READY
    assert (dataset.total, dataset.processed, dataset.failed) == (5, 5, 3)
    rows = {image.relative_path: image for image in dataset.images.all()}
    assert rows["good.png"].status == Image.Status.OK
    assert rows["good.png"].format == "PNG" and (
        rows["good.png"].width,
        rows["good.png"].height,
    ) == (40, 30)
    assert len(rows["good.png"].sha256) == 64 and len(rows["good.png"].phash) == 16
    assert len(rows["good.png"].pdq) == 64 and rows["good.png"].pdq_quality is not None
    assert rows["nested/good.jpg"].status == Image.Status.OK
    for name in ("corrupt.jpg", "notes.png", "empty.jpg"):
        assert rows[name].status == Image.Status.FAILED
        assert rows[name].error, f"{name} has no reason"
    assert "empty" in rows["empty.jpg"].error


def test_import_twice_is_a_no_op(tmp_path):
    (tmp_path / "a.png").write_bytes(_png_bytes())
    dataset = dataset_create_from_folder(name="twice", folder=str(tmp_path), queue=False)
    dataset_import(dataset_id=dataset.pk)
    dataset_import(dataset_id=dataset.pk)
    assert Image.objects.filter(dataset=dataset).count() == 1


def test_interrupted_import_resumes_without_duplicates(tmp_path):
    for index in range(3):
        (tmp_path / f"{index}.png").write_bytes(_png_bytes(color=(index * 50, 0, 0)))
    dataset = dataset_create_from_folder(name="resume", folder=str(tmp_path), queue=False)
    # A worker died after recording one file and marking the dataset as importing.
    Dataset.objects.filter(pk=dataset.pk).update(state=Dataset.State.IMPORTING)
    Image.objects.create(dataset=dataset, relative_path="0.png", sha256="x" * 64)
    dataset = dataset_import(dataset_id=dataset.pk)
    assert dataset.state == Dataset.State.READY
    assert sorted(dataset.images.values_list("relative_path", flat=True)) == [
        "0.png",
        "1.png",
        "2.png",
    ]


def test_archive_import_refuses_traversal_and_keeps_the_rest(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("images/one.png", _png_bytes())
        archive.writestr("images/two.jpg", _jpeg_bytes())
        archive.writestr("../escaped.png", _png_bytes())
        archive.writestr("images/../../also-escaped.png", _png_bytes())
        archive.writestr("/etc/absolute.png", _png_bytes())
        archive.writestr("images/broken.png", b"\x89PNG\r\n\x1a\n-not-really")
        archive.writestr("inner.zip", b"PK\x03\x04")
    upload = SimpleUploadedFile("photos.zip", buffer.getvalue(), content_type="application/zip")

    dataset = dataset_create_from_archive(name="zipped", archive=upload, queue=False)
    dataset = dataset_import(dataset_id=dataset.pk)

    assert dataset.state == Dataset.State.READY
    ok = set(dataset.images.filter(status=Image.Status.OK).values_list("relative_path", flat=True))
    assert ok == {"images/one.png", "images/two.jpg"}
    failed = dict(
        dataset.images.filter(status=Image.Status.FAILED).values_list("relative_path", "error")
    )
    assert len(failed) == 5
    reasons = " | ".join(failed.values())
    assert "traversal" in reasons and "absolute" in reasons and "nested archive" in reasons
    # Nothing was written outside the dataset's folder.
    assert not (tmp_path / "escaped.png").exists()
    assert not (tmp_path / "media" / "escaped.png").exists()
    assert not (tmp_path / "media" / "datasets" / "escaped.png").exists()
    assert not list(tmp_path.rglob("also-escaped.png"))


def test_archive_that_is_not_a_zip_fails_the_dataset_with_a_reason(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    upload = SimpleUploadedFile("photos.zip", b"definitely not a zip file")
    dataset = dataset_create_from_archive(name="bad", archive=upload, queue=False)
    dataset = dataset_import(dataset_id=dataset.pk)
    assert dataset.state == Dataset.State.FAILED
    assert "zip" in dataset.error


def test_folder_must_exist_and_names_must_be_unique(tmp_path):
    with pytest.raises(ValidationFailed, match="not a folder"):
        dataset_create_from_folder(name="x", folder=str(tmp_path / "missing"), queue=False)
    with pytest.raises(ValidationFailed, match="absolute"):
        dataset_create_from_folder(name="x", folder="relative/path", queue=False)
    dataset_create_from_folder(name="x", folder=str(tmp_path), queue=False)
    with pytest.raises(ValidationFailed, match="already exists"):
        dataset_create_from_folder(name="x", folder=str(tmp_path), queue=False)


def test_import_roots_restrict_server_folders(tmp_path, settings):
    settings.Q16_IMPORT_ROOTS = [str(tmp_path / "allowed")]
    (tmp_path / "allowed").mkdir()
    (tmp_path / "other").mkdir()
    dataset_create_from_folder(name="ok", folder=str(tmp_path / "allowed"), queue=False)
    with pytest.raises(ValidationFailed, match="Q16_IMPORT_ROOTS"):
        dataset_create_from_folder(name="no", folder=str(tmp_path / "other"), queue=False)
