"""Thumbnails: generated once per content hash, cached on disk, served to logged-in users."""

from __future__ import annotations

import io
import os
import time

import pytest
from PIL import Image as PILImage
from rest_framework.test import APIClient

from curation.media import thumbnail_path
from reviewer.services.decisions import review_decision_record
from tests.reviewer.factories import item_of, make_dataset, sha


@pytest.fixture
def photo_dataset(db, tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    root = tmp_path / "images"
    root.mkdir()
    PILImage.new("RGB", (1200, 600), (200, 30, 30)).save(root / "big.jpg", quality=90)
    PILImage.new("RGB", (100, 50), (30, 200, 30)).save(root / "small.png")
    (root / "copy.jpg").write_bytes((root / "big.jpg").read_bytes())
    big = sha("big")
    dataset, _, images = make_dataset(
        [0.9, 0.8, 0.7], paths=["big.jpg", "small.png", "copy.jpg"],
        hashes=[big, sha("small"), big], root=str(root),
    )  # fmt: skip
    for image, fmt in zip(images, ["JPEG", "PNG", "JPEG"], strict=True):
        image.format = fmt
        image.save(update_fields=["format"])
    return dataset, images


def test_thumbnail_requires_login(client, photo_dataset):
    _, images = photo_dataset
    response = client.get(f"/images/{images[0].pk}/thumbnail/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_thumbnail_is_generated_once_and_shared_by_identical_images(
    client, reviewer_user, photo_dataset
):
    _, images = photo_dataset
    client.force_login(reviewer_user)
    response = client.get(f"/images/{images[0].pk}/thumbnail/")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"].startswith("private")
    picture = PILImage.open(io.BytesIO(b"".join(response.streaming_content)))
    assert picture.format == "JPEG" and max(picture.size) == 320 and picture.size == (320, 160)
    path = thumbnail_path(images[0].sha256)
    assert path.is_file()
    first_mtime = path.stat().st_mtime_ns
    old = time.time() - 100
    os.utime(path, (old, old))
    stamped = path.stat().st_mtime_ns
    assert stamped != first_mtime
    # The identical copy and a second request reuse the file: no regeneration.
    assert client.get(f"/images/{images[2].pk}/thumbnail/").status_code == 200
    assert client.get(f"/images/{images[0].pk}/thumbnail/").status_code == 200
    assert path.stat().st_mtime_ns == stamped
    assert len(list(path.parent.iterdir())) == 1
    # Small images are not enlarged.
    small = client.get(f"/images/{images[1].pk}/thumbnail/")
    assert PILImage.open(io.BytesIO(b"".join(small.streaming_content))).size == (100, 50)


def test_missing_file_is_404(client, reviewer_user, photo_dataset, tmp_path):
    _, images = photo_dataset
    (tmp_path / "images" / "small.png").unlink()
    client.force_login(reviewer_user)
    assert client.get(f"/images/{images[1].pk}/thumbnail/").status_code == 404
    assert client.get("/images/999999/thumbnail/").status_code == 404


@pytest.mark.django_db
def test_reviewers_see_only_their_own_history_admins_see_all(
    reviewer_user, admin_user, django_user_model
):
    dataset, _, images = make_dataset([0.9])
    first = django_user_model.objects.create_user(username="first", password="x")
    from reviewer.services.settings import review_settings_update

    review_settings_update(dataset=dataset, required_verdicts=2)
    review_decision_record(item_id=item_of(images[0]).pk, reviewer=first, verdict="inappropriate")
    reviewer = APIClient()
    reviewer.force_login(reviewer_user)
    item = reviewer.get("/api/review/next/", {"dataset": dataset.pk}).json()
    assert item["history"] == [] and item["verdict_count"] == 1 and item["required_verdicts"] == 2
    reviewer.post("/api/review/release/".replace("release/", f"items/{item['id']}/release/"))
    admin = APIClient()
    admin.force_login(admin_user)
    item = admin.get("/api/review/next/", {"dataset": dataset.pk}).json()
    assert [h["reviewer"] for h in item["history"]] == ["first"]
