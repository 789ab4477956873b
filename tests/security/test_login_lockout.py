"""Login throttling and lockout (django-axes) on the login page, the Django admin login and the
API token endpoint: after AXES_FAILURE_LIMIT failures for a username from one address, even the
right password is refused for the cool-off time; a successful login resets the count."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from .conftest import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def rita(django_user_model):
    return django_user_model.objects.create_user(username="rita", password=PASSWORD)


def login_form(client: Client, password: str, username: str = "rita"):
    return client.post(reverse("login"), {"username": username, "password": password})


def token(client: APIClient, password: str, username: str = "rita"):
    return client.post(
        reverse("api-token"), {"username": username, "password": password}, format="json"
    )


def test_settings_lock_after_five_failures_for_fifteen_minutes(settings):
    assert settings.AXES_ENABLED is True
    assert settings.AXES_FAILURE_LIMIT == 5
    assert pytest.approx(0.25) == settings.AXES_COOLOFF_TIME
    # The pair, and the username over all addresses (tests/security/test_proxy_lockout.py).
    assert settings.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"], "username"]
    assert settings.AUTHENTICATION_BACKENDS[0] == "axes.backends.AxesStandaloneBackend"


def test_login_page_locks_out_after_five_failures_even_with_the_right_password(rita):
    client = Client()
    for _ in range(4):
        assert login_form(client, "wrong").status_code == 200  # the form again, with an error
    assert login_form(client, "wrong").status_code == 429  # the fifth failure locks
    response = login_form(client, PASSWORD)
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    # Another username from the same address is not locked (username + address pair).
    assert login_form(Client(), "wrong", username="someone-else").status_code == 200


def test_token_endpoint_locks_out_after_five_failures_even_with_the_right_password(rita):
    client = APIClient()
    for _ in range(4):
        assert token(client, "wrong").status_code == 400
    assert token(client, "wrong").status_code == 429  # the fifth failure locks
    response = token(client, PASSWORD)
    assert response.status_code == 429
    assert "token" not in response.json()


def test_failures_on_the_api_and_the_page_add_up(rita):
    for _ in range(3):
        assert token(APIClient(), "wrong").status_code == 400
    assert login_form(Client(), "wrong").status_code == 200
    assert login_form(Client(), "wrong").status_code == 429
    assert login_form(Client(), PASSWORD).status_code == 429


def test_a_successful_login_resets_the_count(rita):
    client = Client()
    for _ in range(4):
        login_form(client, "wrong")
    assert login_form(client, PASSWORD).status_code == 302
    client = Client()
    for _ in range(4):
        assert login_form(client, "wrong").status_code == 200
    assert login_form(client, PASSWORD).status_code == 302
    api = APIClient()
    for _ in range(4):
        token(api, "wrong")
    assert token(api, PASSWORD).status_code == 200
    for _ in range(4):
        token(api, "wrong")
    assert token(api, PASSWORD).status_code == 200


def test_admin_site_login_is_locked_too(rita):
    client = Client()
    url = reverse("admin:login")
    for _ in range(5):
        client.post(url, {"username": "rita", "password": "wrong"})
    assert client.post(url, {"username": "rita", "password": PASSWORD}).status_code == 429


def test_lockout_is_per_address_and_forwarded_for_is_ignored_without_a_proxy(rita):
    for _ in range(5):
        login_form(Client(REMOTE_ADDR="10.0.0.1"), "wrong")
    assert login_form(Client(REMOTE_ADDR="10.0.0.1"), PASSWORD).status_code == 429
    # A forged X-Forwarded-For does not escape the lockout when no proxy is trusted.
    forged = Client(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert login_form(forged, PASSWORD).status_code == 429
    # Another address is not locked.
    assert login_form(Client(REMOTE_ADDR="10.0.0.2"), PASSWORD).status_code == 302


def test_behind_a_trusted_proxy_the_proxy_appended_address_counts(rita, settings):
    settings.AXES_BEHIND_PROXY = True
    for _ in range(5):
        login_form(
            Client(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="1.2.3.4, 198.51.100.7"), "wrong"
        )
    # The client forged the first entry; the proxy's (last) entry is what counts.
    proxied = Client(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="9.9.9.9, 198.51.100.7")
    assert login_form(proxied, PASSWORD).status_code == 429
    other = Client(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.8")
    assert login_form(other, PASSWORD).status_code == 302
