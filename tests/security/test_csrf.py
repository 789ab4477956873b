"""CSRF on every state-changing request with session authentication, the login form included;
API requests authenticated by token need no CSRF token (no ambient credential)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from .conftest import PASSWORD


@pytest.fixture
def rita(django_user_model):
    return django_user_model.objects.create_user(username="rita", password=PASSWORD)


def test_login_form_without_csrf_token_is_refused(rita):
    client = Client(enforce_csrf_checks=True)
    response = client.post(reverse("login"), {"username": "rita", "password": PASSWORD})
    assert response.status_code == 403
    assert "_auth_user_id" not in client.session


def test_login_form_with_csrf_token_logs_in(rita):
    client = Client(enforce_csrf_checks=True)
    client.get(reverse("login"))
    token = client.cookies["csrftoken"].value
    response = client.post(
        reverse("login"), {"username": "rita", "password": PASSWORD, "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302


def test_html_form_post_without_csrf_token_is_refused(world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.admin)
    url = reverse("dataset-reviewers", args=[world.dataset.pk])
    assert client.post(url, {"reviewers": [world.other.pk]}).status_code == 403
    client.get(reverse("dataset-detail", args=[world.dataset.pk]))
    token = client.cookies["csrftoken"].value
    response = client.post(url, {"reviewers": [world.other.pk], "csrfmiddlewaretoken": token})
    assert response.status_code == 302


def test_logout_without_csrf_token_is_refused(world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.assigned)
    assert client.post(reverse("logout")).status_code == 403


def test_api_post_with_session_auth_without_csrf_token_is_refused(world):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(world.assigned)
    url = reverse("api-review-decision", args=[world.item.pk])
    response = client.post(url, {"verdict": "inappropriate"}, format="json")
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    client.get(reverse("review"))  # the page sets the cookie the script sends back
    token = client.cookies["csrftoken"].value
    response = client.post(url, {"verdict": "inappropriate"}, format="json", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 201


def test_api_put_with_session_auth_without_csrf_token_is_refused(world):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(world.assigned)
    response = client.put(reverse("api-review-preferences"), {"greyscale": True}, format="json")
    assert response.status_code == 403


def test_api_post_with_token_auth_needs_no_csrf_token(world):
    client = APIClient(enforce_csrf_checks=True)
    token = Token.objects.create(user=world.assigned)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    url = reverse("api-review-decision", args=[world.item.pk])
    assert client.post(url, {"verdict": "inappropriate"}, format="json").status_code == 201


def test_token_endpoint_with_a_session_cookie_needs_the_csrf_token(world):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(world.assigned)
    data = {"username": "rita", "password": PASSWORD}
    assert client.post(reverse("api-token"), data, format="json").status_code == 403
    # Without the session (no ambient credential) it needs none.
    assert (
        APIClient(enforce_csrf_checks=True)
        .post(reverse("api-token"), data, format="json")
        .status_code
        == 200
    )
