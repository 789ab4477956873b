"""API tokens expire after Q16_TOKEN_TTL_HOURS and die with a password change or a deactivation,
however the change is made (set_password + save, the admin password form, changepassword)."""

from __future__ import annotations

import datetime as dt
from io import StringIO
from unittest import mock

import pytest
from django.contrib.auth.hashers import make_password
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from .conftest import PASSWORD

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-new-pass-4567"


@pytest.fixture
def rita(django_user_model):
    return django_user_model.objects.create_user(username="rita", password=PASSWORD)


def _token_client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def _obtain(username: str = "rita", password: str = PASSWORD) -> str:
    response = APIClient().post(
        reverse("api-token"), {"username": username, "password": password}, format="json"
    )
    assert response.status_code == 200, response.content
    return response.json()["token"]


def _config(key: str):
    return _token_client(key).get(reverse("api-config"))


def test_the_default_lifetime_is_thirty_days(settings):
    assert settings.Q16_TOKEN_TTL_HOURS == 720
    assert settings.REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"][0] == (
        "curation.api.authentication.ExpiringTokenAuthentication"
    )


def test_a_fresh_token_works(rita):
    assert _config(_obtain()).status_code == 200


def test_an_expired_token_answers_401_token_expired(rita, settings):
    settings.Q16_TOKEN_TTL_HOURS = 1
    key = _obtain()
    Token.objects.filter(key=key).update(created=timezone.now() - dt.timedelta(hours=1, seconds=1))
    response = _config(key)
    assert response.status_code == 401
    assert "expired" in response.json()["detail"].lower()
    assert response["WWW-Authenticate"].startswith("Token")
    # Logging in again issues a new, working token.
    new_key = _obtain()
    assert new_key != key
    assert _config(new_key).status_code == 200


def test_a_token_just_inside_its_lifetime_works(rita, settings):
    settings.Q16_TOKEN_TTL_HOURS = 1
    key = _obtain()
    Token.objects.filter(key=key).update(created=timezone.now() - dt.timedelta(minutes=59))
    assert _config(key).status_code == 200


def test_set_password_and_save_revokes_the_token(rita):
    key = _obtain()
    rita.set_password(NEW_PASSWORD)
    rita.save()
    assert _config(key).status_code == 401
    assert not Token.objects.filter(user=rita).exists()
    assert _config(_obtain(password=NEW_PASSWORD)).status_code == 200


def test_a_hash_assigned_directly_revokes_the_token(rita):
    key = _obtain()
    rita.password = make_password(NEW_PASSWORD)
    rita.save(update_fields=["password"])
    assert _config(key).status_code == 401


def test_saving_other_fields_or_logging_in_keeps_the_token(rita, client):
    key = _obtain()
    rita.first_name = "Rita"
    rita.save()
    rita.refresh_from_db()
    rita.email = "rita@example.org"
    rita.save(update_fields=["email"])
    response = client.post(reverse("login"), {"username": "rita", "password": PASSWORD})
    assert response.status_code == 302  # logged in: last_login saved
    assert _config(key).status_code == 200


def test_rehashing_the_same_password_on_login_keeps_the_token(rita, settings):
    """Django re-hashes a password when its hasher changes (e.g. after an upgrade): that is not
    a password change, and must not break the user's API clients."""
    key = _obtain()
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.MD5PasswordHasher",
    ]
    with mock.patch("django.contrib.auth.hashers.PBKDF2PasswordHasher.iterations", 1000):
        _obtain()  # logs in, and Django stores a PBKDF2 hash in place of the MD5 one
        rita.refresh_from_db()
        assert rita.password.startswith("pbkdf2_sha256$")
        assert _config(key).status_code == 200


def test_the_admin_password_form_revokes_the_token(rita, admin_user, client):
    key = _obtain()
    client.force_login(admin_user)
    response = client.post(
        reverse("admin:auth_user_password_change", args=[rita.pk]),
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert _config(key).status_code == 401


def test_the_changepassword_command_revokes_the_token(rita):
    key = _obtain()
    with mock.patch("getpass.getpass", return_value=NEW_PASSWORD):
        call_command("changepassword", "rita", stdout=StringIO())
    assert _config(key).status_code == 401
    assert _config(_obtain(password=NEW_PASSWORD)).status_code == 200


def test_deactivating_the_account_revokes_the_token(rita, admin_user):
    key = _obtain()
    rita.is_active = False
    rita.save()
    assert _config(key).status_code == 401
    assert not Token.objects.filter(user=rita).exists()
    # Reactivating does not bring the old token back.
    rita.is_active = True
    rita.save()
    assert _config(key).status_code == 401
