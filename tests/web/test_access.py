"""Who may see and post what, as a table; and the CSP hygiene of every rendered page."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

PAGES = ["dataset-list", "dataset-detail", "prompt-versions"]
ADMIN_POSTS = [
    "dataset-list",
    "dataset-run-start",
    "dataset-train",
    "dataset-export",
    "prompt-zero-shot",
    "prompt-import",
    "prompt-activate",
]


def _url(name: str, dataset, version) -> str:
    if name.startswith("dataset-") and name != "dataset-list":
        return reverse(name, args=[dataset.pk])
    if name == "prompt-activate":
        return reverse(name, args=[version.pk])
    return reverse(name)


@pytest.fixture
def as_user(client, admin_user, reviewer_user):
    def login(kind: str):
        if kind == "admin":
            client.force_login(admin_user)
        elif kind == "reviewer":
            client.force_login(reviewer_user)
        return client

    return login


@pytest.mark.parametrize(
    ("kind", "expected"), [("admin", 200), ("reviewer", 403), ("anonymous", 302)]
)
@pytest.mark.parametrize("name", PAGES)
def test_admin_pages(as_user, dataset, version, name, kind, expected):
    url = _url(name, dataset, version)
    response = as_user(kind).get(url)
    assert response.status_code == expected
    if kind == "anonymous":
        assert response["Location"].startswith(reverse("login") + "?next=")


@pytest.mark.parametrize(("kind", "expected"), [("reviewer", 403), ("anonymous", 302)])
@pytest.mark.parametrize("name", ADMIN_POSTS)
def test_admin_forms_refuse_others(as_user, dataset, version, name, kind, expected):
    response = as_user(kind).post(_url(name, dataset, version), {})
    assert response.status_code == expected
    if kind == "anonymous":
        assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize(
    ("kind", "target"),
    [("admin", "dataset-list"), ("reviewer", "review"), ("anonymous", "login")],
)
def test_home_sends_each_role_to_its_page(as_user, db, kind, target):
    response = as_user(kind).get(reverse("home"))
    assert response.status_code == 302
    assert response["Location"].split("?")[0] == reverse(target)


@pytest.mark.parametrize(
    ("kind", "expected"), [("admin", 200), ("reviewer", 200), ("anonymous", 302)]
)
def test_review_page_is_for_every_logged_in_user(as_user, db, kind, expected):
    assert as_user(kind).get(reverse("review")).status_code == expected


def test_login_form_logs_in_and_header_has_post_logout(client, reviewer_user):
    page = client.get(reverse("login"))
    assert page.status_code == 200
    assert b'name="username"' in page.content and b'name="password"' in page.content
    response = client.post(
        reverse("login"), {"username": "reviewer", "password": "review-pass-123"}, follow=True
    )
    assert response.redirect_chain[-1][0] == reverse("review")
    html = response.content.decode()
    assert f'<form method="post" action="{reverse("logout")}"' in html
    # Reviewers do not get the admin sections in the navigation.
    assert reverse("dataset-list") not in html
    logout = client.post(reverse("logout"))
    assert logout.status_code == 302
    assert client.get(reverse("review")).status_code == 302


def test_failed_login_shows_an_error(client, reviewer_user):
    response = client.post(reverse("login"), {"username": "reviewer", "password": "wrong"})
    assert response.status_code == 200
    assert b'class="form-errors"' in response.content


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I)
INLINE_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.I)
INLINE_STYLE = re.compile(r"<[^>]+\sstyle\s*=", re.I)


@pytest.mark.parametrize("name", [*PAGES, "review", "login"])
def test_pages_have_no_inline_script_style_or_handlers(
    client, admin_user, dataset, version, run, name
):
    """A strict Content-Security-Policy (no 'unsafe-inline') must not break any page."""
    if name != "login":
        client.force_login(admin_user)
    html = client.get(_url(name, dataset, version)).content.decode()
    assert not INLINE_SCRIPT.search(html), INLINE_SCRIPT.search(html).group(0)
    assert not INLINE_HANDLER.search(html), INLINE_HANDLER.search(html).group(0)
    assert not INLINE_STYLE.search(html), INLINE_STYLE.search(html).group(0)
