"""Thumbnails and exports in an S3 bucket (a real S3-compatible server, tests/s3.py), and a
Celery worker with its own disk that writes through the bucket."""

from __future__ import annotations

import csv
import io

import pytest
from PIL import Image as PILImage
from rest_framework.test import APIClient

from curation.models import Export
from curation.services.exports import export_create
from labels.exports import export_build
from tests.helpers import wait_for
from tests.reviewer.factories import make_dataset, sha
from tests.security.test_headers import _assert_safe_image


@pytest.fixture
def photo(db, tmp_path):
    root = tmp_path / "images"
    root.mkdir()
    PILImage.new("RGB", (800, 400), (200, 30, 30)).save(root / "big.jpg", quality=90)
    dataset, run, images = make_dataset(
        [0.9], paths=["big.jpg"], hashes=[sha("big")], root=str(root)
    )
    images[0].format = "JPEG"
    images[0].save(update_fields=["format"])
    return dataset, run, images[0]


def _api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_thumbnail_is_generated_into_and_served_from_the_bucket(
    client, admin_user, photo, s3_storage, settings
):
    _, _, image = photo
    client.force_login(admin_user)
    response = client.get(f"/images/{image.pk}/thumbnail/")
    assert response.status_code == 200
    _assert_safe_image(response, "image/jpeg")  # the headers of every image response
    picture = PILImage.open(io.BytesIO(b"".join(response.streaming_content)))
    assert picture.format == "JPEG" and picture.size == (320, 160)
    key = f"{s3_storage.prefix}/thumbnails/{image.sha256[:2]}/{image.sha256}.jpg"
    assert s3_storage.keys("thumbnails") == [key]
    assert not settings.MEDIA_ROOT.exists()  # nothing written to the web server's disk
    # Served from the bucket: replace the object and the next response carries it.
    PILImage.new("RGB", (10, 10), (0, 0, 255)).save(buffer := io.BytesIO(), format="JPEG")
    s3_storage.bucket.put(key, buffer.getvalue())
    again = client.get(f"/images/{image.pk}/thumbnail/")
    assert PILImage.open(io.BytesIO(b"".join(again.streaming_content))).size == (10, 10)


def test_export_is_written_to_and_downloaded_from_the_bucket(
    admin_user, photo, s3_storage, settings
):
    dataset, _, image = photo
    export = export_create(dataset=dataset, format="csv", scope="flagged", queue=False)
    export = export_build(export_id=export.pk)
    assert export.state == Export.State.SUCCEEDED
    assert export.file_path == f"storage:exports/export-{export.pk}.csv"
    assert s3_storage.keys("exports") == [
        f"{s3_storage.prefix}/exports/export-{export.pk}.{name}"
        for name in ("csv", "provenance.json")
    ]
    assert not settings.MEDIA_ROOT.exists()
    response = _api(admin_user).get(f"/api/exports/{export.pk}/download/")
    assert response.status_code == 200
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [row["sha256"] for row in rows] == [image.sha256]


def test_an_export_gone_from_the_bucket_answers_404(admin_user, photo, s3_storage):
    dataset, _, _ = photo
    export = export_build(
        export_id=export_create(dataset=dataset, format="json", scope="flagged", queue=False).pk
    )
    s3_storage.bucket.client.delete_object(
        Bucket=s3_storage.bucket.bucket, Key=f"{s3_storage.prefix}/exports/export-{export.pk}.json"
    )
    response = _api(admin_user).get(f"/api/exports/{export.pk}/download/")
    assert response.status_code == 404


@pytest.mark.celery
def test_a_worker_on_another_disk_writes_the_export_to_the_bucket(
    workers, admin_user, photo, s3_storage, settings, tmp_path
):
    """The worker's MEDIA_ROOT is a folder the web process never reads; the web process
    serves the file the worker stored, from the bucket."""
    dataset, _, image = photo
    worker_media = tmp_path / "worker-media"
    worker = workers.start("storage", MEDIA_ROOT=str(worker_media), **s3_storage.worker_env())
    response = _api(admin_user).post(
        "/api/exports/", {"dataset": dataset.pk, "format": "csv", "scope": "flagged"}, format="json"
    )
    assert response.status_code == 201, response.content
    export_id = response.json()["id"]
    export = wait_for(
        lambda: Export.objects.filter(pk=export_id, state__in=["succeeded", "failed"]).first(),
        what=f"export {export_id}",
        log=worker.log_path,
    )
    assert export.state == "succeeded", export.error
    assert export.file_path == f"storage:exports/export-{export_id}.csv"
    assert s3_storage.keys("exports") == [
        f"{s3_storage.prefix}/exports/export-{export_id}.{name}"
        for name in ("csv", "provenance.json")
    ]
    assert not worker_media.joinpath("exports").exists()  # nothing on the worker's disk either
    assert not settings.MEDIA_ROOT.exists()
    download = _api(admin_user).get(f"/api/exports/{export_id}/download/")
    assert download.status_code == 200
    rows = list(csv.DictReader(io.StringIO(b"".join(download.streaming_content).decode())))
    assert [row["sha256"] for row in rows] == [image.sha256]
