"""Reviewer protection over the API: POST /api/review/reveals/ (start), .../<id>/end/, GET
/api/review/exposure/, and the break refusing next/batch. Bad input is a 4xx, never a 500."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from curation.models import DatasetAssignment
from reviewer.models import Decision, ExposureSettings, Reveal, ReviewItem
from tests.reviewer.factories import item_of, make_dataset

pytestmark = pytest.mark.django_db

START = "/api/review/reveals/"
STATUS = "/api/review/exposure/"


def end_url(reveal_id) -> str:
    return f"/api/review/reveals/{reveal_id}/end/"


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def flagged(reviewer_user):
    dataset, _, images = make_dataset([0.9, 0.8, 0.7])
    return dataset, images, [item_of(image) for image in images]


def test_start_and_end_a_reveal(reviewer_user, flagged):
    _, images, items = flagged
    client = client_for(reviewer_user)
    response = client.post(START, {"item_id": items[0].pk, "view": "full-size"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["item"] == items[0].pk and body["image"] == images[0].pk
    assert body["view"] == "full-size"
    assert body["exposure"]["state"] == "ok" and body["exposure"]["reveals_today"] == 1
    ended = client.post(end_url(body["id"]), {"duration_ms": 1500}, format="json")
    assert ended.status_code == 200
    assert ended.json()["duration_ms"] <= 1500 and ended.json()["hidden_at"]
    # Idempotent: the same answer again.
    again = client.post(end_url(body["id"]), {}, format="json")
    assert again.status_code == 200 and again.json() == ended.json()
    status = client.get(STATUS).json()
    assert status["reveals_today"] == 1 and status["images_today"] == 1
    assert status["daily_cap"] is None and status["break_after_minutes"] is None


def test_a_duplicates_image_by_id(reviewer_user, flagged):
    _, images, _ = flagged
    response = client_for(reviewer_user).post(START, {"image_id": images[2].pk}, format="json")
    assert response.status_code == 201
    assert response.json()["item"] is None and response.json()["view"] == "single"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"view": "single"},
        {"item_id": 2**63},
        {"item_id": "²"},
        {"item_id": "١٢"},
        {"item_id": -1},
        {"item_id": "abc"},
        {"image_id": 0},
        {"item_id": 1, "view": "sideways"},
    ],
)
def test_bad_starts_are_400(reviewer_user, flagged, body):
    response = client_for(reviewer_user).post(START, body, format="json")
    assert response.status_code == 400, response.content
    assert not Reveal.objects.exists()


def test_an_items_image_must_match(reviewer_user, flagged):
    _, images, items = flagged
    response = client_for(reviewer_user).post(
        START, {"item_id": items[0].pk, "image_id": images[1].pk}, format="json"
    )
    assert response.status_code == 400


def test_what_the_reviewer_may_not_see_is_not_found(reviewer_user, flagged):
    dataset, images, items = flagged
    DatasetAssignment.objects.filter(user=reviewer_user, dataset=dataset).delete()
    client = client_for(reviewer_user)
    assert client.post(START, {"item_id": items[0].pk}, format="json").status_code == 404
    assert client.post(START, {"image_id": images[0].pk}, format="json").status_code == 404
    assert client.post(START, {"item_id": 10**15}, format="json").status_code == 404
    assert not Reveal.objects.exists()


def test_another_reviewers_item_is_a_conflict(reviewer_user, flagged, django_user_model):
    _, _, items = flagged
    other = django_user_model.objects.create_user(username="otto", password="x")
    ReviewItem.objects.filter(pk=items[0].pk).update(
        leased_by=other, lease_expires_at=timezone.now() + timedelta(minutes=2)
    )
    response = client_for(reviewer_user).post(START, {"item_id": items[0].pk}, format="json")
    assert response.status_code == 409
    assert "another reviewer" in response.json()["detail"]


def test_the_cap_is_a_429_with_the_reason(reviewer_user, flagged, admin_user):
    _, _, items = flagged
    ExposureSettings.objects.create(reviewer=reviewer_user, daily_reveal_cap=1)
    client = client_for(reviewer_user)
    assert client.post(START, {"item_id": items[0].pk}, format="json").status_code == 201
    response = client.post(START, {"item_id": items[1].pk}, format="json")
    assert response.status_code == 429
    body = response.json()
    assert body["reason"] == "cap" and "Daily limit reached" in body["detail"]
    assert body["exposure"]["state"] == "cap" and body["exposure"]["images_left_today"] == 0
    assert int(response["Retry-After"]) > 0
    assert Reveal.objects.count() == 1
    assert client.get(STATUS).json()["state"] == "cap"


@pytest.fixture
def on_break(reviewer_user, flagged, settings):
    """Reviewing without a pause for 55 minutes, up to a minute ago: a 10-minute break is due."""
    settings.Q16_EXPOSURE_BREAK_AFTER_MINUTES = 50
    settings.Q16_EXPOSURE_BREAK_MINUTES = 10
    _, _, items = flagged
    now = timezone.now()
    for minutes in range(56, 0, -5):
        decision = Decision.objects.create(
            item=items[2], image_id=items[2].image_id, reviewer=reviewer_user, verdict="skip"
        )
        Decision.objects.filter(pk=decision.pk).update(created_at=now - timedelta(minutes=minutes))
    return items


def test_during_a_break_reveals_next_and_batch_are_429(reviewer_user, on_break):
    client = client_for(reviewer_user)
    response = client.post(START, {"item_id": on_break[0].pk}, format="json")
    assert response.status_code == 429
    body = response.json()
    assert body["reason"] == "break" and "Time for a break" in body["detail"]
    assert body["exposure"]["state"] == "break"
    assert 0 < body["exposure"]["break_seconds_left"] <= 10 * 60
    assert 0 < int(response["Retry-After"]) <= 10 * 60
    for url in ("/api/review/next/", "/api/review/batch/"):
        refused = client.get(url)
        assert refused.status_code == 429, url
        assert "Time for a break" in refused.json()["detail"]
    assert not ReviewItem.objects.filter(leased_by=reviewer_user).exists()
    status = client.get(STATUS).json()
    assert status["state"] == "break" and status["break_ends_at"]
    assert not Reveal.objects.exists()


def test_an_open_reveal_ends_during_a_break(reviewer_user, flagged, settings):
    """The end of a reveal started before the break is due is always accepted."""
    _, _, items = flagged
    client = client_for(reviewer_user)
    reveal_id = client.post(START, {"item_id": items[0].pk}, format="json").json()["id"]
    settings.Q16_EXPOSURE_BREAK_AFTER_MINUTES = 1
    Reveal.objects.filter(pk=reveal_id).update(revealed_at=timezone.now() - timedelta(minutes=2))
    assert client.get(STATUS).json()["state"] == "break"
    assert client.post(end_url(reveal_id), {}, format="json").status_code == 200


def test_only_the_owner_ends_a_reveal(reviewer_user, flagged, admin_user):
    _, _, items = flagged
    reveal_id = (
        client_for(reviewer_user).post(START, {"item_id": items[0].pk}, format="json").json()["id"]
    )
    assert client_for(admin_user).post(end_url(reveal_id), {}, format="json").status_code == 404
    assert client_for(reviewer_user).post(end_url(10**12), {}, format="json").status_code == 404
    assert Reveal.objects.get(pk=reveal_id).hidden_at is None


@pytest.mark.parametrize("duration", [-1, 2**31, "abc", "²", 1.5])
def test_bad_durations_are_400(reviewer_user, flagged, duration):
    _, _, items = flagged
    client = client_for(reviewer_user)
    reveal_id = client.post(START, {"item_id": items[0].pk}, format="json").json()["id"]
    response = client.post(end_url(reveal_id), {"duration_ms": duration}, format="json")
    assert response.status_code == 400, response.content
    assert Reveal.objects.get(pk=reveal_id).hidden_at is None


def test_hostile_path_ids_are_404(reviewer_user):
    client = client_for(reviewer_user)
    assert client.post(end_url(2**63), {}, format="json").status_code == 404
    assert client.post("/api/review/reveals/0/end/", {}, format="json").status_code == 404


def test_the_end_takes_a_beacons_form_body_with_the_csrf_token(reviewer_user, flagged):
    """navigator.sendBeacon cannot set headers: the token travels in the form body."""
    _, _, items = flagged
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(reviewer_user)
    token = browser.get("/review/").cookies["csrftoken"].value
    started = browser.post(
        START, {"item_id": items[0].pk}, content_type="application/json", HTTP_X_CSRFTOKEN=token
    )
    assert started.status_code == 201
    reveal_id = started.json()["id"]
    assert browser.post(end_url(reveal_id), {"duration_ms": "900"}).status_code == 403
    assert Reveal.objects.get(pk=reveal_id).hidden_at is None
    ended = browser.post(end_url(reveal_id), {"duration_ms": "900", "csrfmiddlewaretoken": token})
    assert ended.status_code == 200, ended.content
    assert Reveal.objects.get(pk=reveal_id).duration_ms <= 900


def test_anonymous_requests_are_401(flagged):
    client = APIClient()
    assert client.post(START, {"item_id": flagged[2][0].pk}, format="json").status_code == 401
    assert client.post(end_url(1), {}, format="json").status_code == 401
    assert client.get(STATUS).status_code == 401
