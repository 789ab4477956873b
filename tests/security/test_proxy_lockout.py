"""Behind the compose deployment's reverse proxy every request comes from the proxy's address:
the lockout must count the client address the proxy forwards, so that one client's failures do
not lock the others out, and must also cap failures per username across all addresses
(password spraying from many addresses)."""

from __future__ import annotations

import pytest
import yaml
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from tests.conftest import REPO_ROOT

from .conftest import PASSWORD

pytestmark = pytest.mark.django_db

PROXY = "172.18.0.1"  # what the web container sees as REMOTE_ADDR: the proxy


@pytest.fixture
def rita(django_user_model):
    return django_user_model.objects.create_user(username="rita", password=PASSWORD)


@pytest.fixture
def behind_proxy(settings):
    settings.AXES_BEHIND_PROXY = True
    return settings


def _via_proxy(client_address: str) -> Client:
    return Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=client_address)


def _login(client: Client, password: str, username: str = "rita"):
    return client.post(reverse("login"), {"username": username, "password": password})


def test_compose_trusts_the_proxy_header():
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    environment = compose["x-app-environment"]
    assert str(environment["AXES_BEHIND_PROXY"]).startswith("${AXES_BEHIND_PROXY:-true}")


def test_settings_lock_the_pair_and_the_username(settings):
    assert settings.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"], "username"]
    assert settings.AXES_FAILURE_LIMIT == 5
    assert settings.Q16_USERNAME_FAILURE_LIMIT == 20
    assert settings.AXES_HANDLER == "config.lockout.LockoutHandler"


def test_two_clients_behind_the_proxy_are_not_locked_out_together(rita, behind_proxy):
    for _ in range(5):
        _login(_via_proxy("198.51.100.7"), "wrong")
    assert _login(_via_proxy("198.51.100.7"), PASSWORD).status_code == 429
    # Another client through the same proxy logs in.
    assert _login(_via_proxy("198.51.100.8"), PASSWORD).status_code == 302


def test_without_the_proxy_setting_everybody_behind_the_proxy_shares_one_address(rita, settings):
    """What the compose setting fixes: with AXES_BEHIND_PROXY off, the proxy's address counts."""
    settings.AXES_BEHIND_PROXY = False
    for _ in range(5):
        _login(_via_proxy("198.51.100.7"), "wrong")
    assert _login(_via_proxy("198.51.100.8"), PASSWORD).status_code == 429


def test_failures_from_many_addresses_lock_the_username(rita, behind_proxy):
    # Four failures from each of five addresses: no pair reaches its limit of five...
    statuses = [
        _login(_via_proxy(f"203.0.113.{host}"), "wrong").status_code
        for host in range(5)
        for _ in range(4)
    ]
    # ...but the twentieth failure on one username locks that username, from every address.
    assert statuses == [200] * 19 + [429]
    assert _login(_via_proxy("203.0.113.200"), PASSWORD).status_code == 429
    response = APIClient(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="203.0.113.201").post(
        reverse("api-token"), {"username": "rita", "password": PASSWORD}, format="json"
    )
    assert response.status_code == 429


def test_nineteen_failures_from_many_addresses_do_not_lock(rita, behind_proxy):
    for host in range(19):
        assert _login(_via_proxy(f"203.0.113.{host}"), "wrong").status_code == 200
    assert _login(_via_proxy("203.0.113.200"), PASSWORD).status_code == 302


def test_a_locked_username_does_not_lock_the_others(rita, behind_proxy, django_user_model):
    django_user_model.objects.create_user(username="otto", password=PASSWORD)
    for host in range(20):
        _login(_via_proxy(f"203.0.113.{host}"), "wrong")
    assert _login(_via_proxy("203.0.113.0"), PASSWORD).status_code == 429
    # Same addresses, another username: not locked.
    assert _login(_via_proxy("203.0.113.0"), PASSWORD, username="otto").status_code == 302
    assert _login(_via_proxy("203.0.113.19"), PASSWORD, username="otto").status_code == 302


def test_the_proxy_count_picks_the_address_the_outermost_trusted_proxy_appended(rita, behind_proxy):
    behind_proxy.Q16_PROXY_COUNT = 2  # e.g. a CDN, then the host's nginx
    for _ in range(5):
        _login(Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.7, 10.0.0.2"),
               "wrong")  # fmt: skip
    # The forged first entry changes; the client the CDN saw (second from the end) is locked.
    forged = Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="7.7.7.7, 198.51.100.7, 10.0.0.2")
    assert _login(forged, PASSWORD).status_code == 429
    other = Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="198.51.100.8, 10.0.0.2")
    assert _login(other, PASSWORD).status_code == 302
