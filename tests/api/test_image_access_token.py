"""API clients fetch the image_url and thumbnail_url of the review API with their token, under
the same rules as the browser: a reviewer assigned to the dataset, or an admin. Without
credentials an API client gets 401 (a browser is still sent to the login page)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from curation.models import Dataset, DatasetAssignment, Image, PromptVersion, ScoringRun
from reviewer.models import ReviewItem
from tests.security.conftest import write_png

pytestmark = pytest.mark.django_db

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"


@pytest.fixture
def _reviewers_assigned():
    """Overrides tests/api/conftest.py: access is what these tests are about."""
    return None


@pytest.fixture
def picture(settings, tmp_path, admin_user, django_user_model):
    settings.MEDIA_ROOT = tmp_path / "media"
    assigned = django_user_model.objects.create_user(username="rita", password="x-pass-123")
    other = django_user_model.objects.create_user(username="otto", password="x-pass-123")
    folder = tmp_path / "images"
    sha = write_png(folder / "a.png")
    dataset = Dataset.objects.create(
        name="street", source_kind=Dataset.SourceKind.FOLDER, source=str(folder),
        root_path=str(folder), state=Dataset.State.READY, total=1, processed=1,
    )  # fmt: skip
    image = Image.objects.create(
        dataset=dataset, relative_path="a.png", sha256=sha, format="PNG", width=16, height=12,
        bytes=(folder / "a.png").stat().st_size,
    )  # fmt: skip
    version = PromptVersion.objects.create(
        name="zs", model_key="m", dim=2, vectors=b"\0" * 16, source=PromptVersion.Source.ZERO_SHOT
    )
    run = ScoringRun.objects.create(
        dataset=dataset, prompt_version=version, model_key="m", threshold=0.5,
        state=ScoringRun.State.SUCCEEDED, total=1, processed=1, flagged=1,
    )  # fmt: skip
    ReviewItem.objects.create(dataset=dataset, image=image, score=0.9, margin=0.4, run=run)
    DatasetAssignment.objects.create(dataset=dataset, user=assigned, assigned_by=admin_user)
    return {"image": image, "dataset": dataset, "assigned": assigned, "other": other}


def _token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def _urls(image) -> dict[str, str]:
    return {
        "image_url": reverse("image-file", args=[image.pk]),
        "thumbnail_url": reverse("image-thumbnail", args=[image.pk]),
    }


def test_the_urls_of_the_review_api_serve_the_image_to_a_token_client(picture):
    client = _token_client(picture["assigned"])
    response = client.get(reverse("api-review-next"), {"dataset": picture["dataset"].pk})
    assert response.status_code == 200, response.content
    item = response.json()
    file_response = client.get(item["image_url"])
    assert file_response.status_code == 200
    assert file_response["Content-Type"] == "image/png"
    assert b"".join(file_response.streaming_content).startswith(PNG_SIGNATURE)
    assert file_response["X-Content-Type-Options"] == "nosniff"
    thumb = client.get(item["thumbnail_url"])
    assert thumb.status_code == 200 and thumb["Content-Type"] == "image/jpeg"
    assert b"".join(thumb.streaming_content).startswith(JPEG_SIGNATURE)


@pytest.mark.parametrize("kind", ["image_url", "thumbnail_url"])
def test_an_admin_token_gets_the_image(picture, admin_user, kind):
    response = _token_client(admin_user).get(_urls(picture["image"])[kind])
    assert response.status_code == 200


@pytest.mark.parametrize("kind", ["image_url", "thumbnail_url"])
def test_an_unassigned_reviewer_token_gets_404(picture, kind):
    response = _token_client(picture["other"]).get(_urls(picture["image"])[kind])
    assert response.status_code == 404


@pytest.mark.parametrize("kind", ["image_url", "thumbnail_url"])
@pytest.mark.parametrize("accept", ["*/*", "application/json", "image/*"])
def test_an_api_client_without_credentials_gets_401(picture, kind, accept):
    response = APIClient().get(_urls(picture["image"])[kind], HTTP_ACCEPT=accept)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Token")


@pytest.mark.parametrize("kind", ["image_url", "thumbnail_url"])
def test_a_bad_or_expired_token_gets_401(picture, settings, kind):
    url = _urls(picture["image"])[kind]
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert bad.get(url).status_code == 401
    client = _token_client(picture["assigned"])
    Token.objects.update(
        created=timezone.now() - dt.timedelta(hours=settings.Q16_TOKEN_TTL_HOURS + 1)
    )
    response = client.get(url)
    assert response.status_code == 401 and "expired" in response.json()["detail"].lower()


@pytest.mark.parametrize("kind", ["image_url", "thumbnail_url"])
def test_an_inactive_user_token_gets_401(picture, kind):
    client = _token_client(picture["assigned"])
    # Deactivated without save() signals (a bulk update): the token still must not work.
    type(picture["assigned"]).objects.filter(pk=picture["assigned"].pk).update(is_active=False)
    assert client.get(_urls(picture["image"])[kind]).status_code == 401


@pytest.mark.parametrize("kind", ["image_url", "thumbnail_url"])
def test_the_browser_is_unchanged(picture, kind):
    url = _urls(picture["image"])[kind]
    # Anonymous page load: the login page.
    anonymous = Client().get(url, HTTP_ACCEPT="text/html,application/xhtml+xml,*/*;q=0.8")
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    assert Client().get(url).status_code == 302
    # A logged-in reviewer: the image, or 404 outside their datasets.
    browser = Client()
    browser.force_login(picture["assigned"])
    assert browser.get(url).status_code == 200
    browser.force_login(picture["other"])
    assert browser.get(url).status_code == 404
