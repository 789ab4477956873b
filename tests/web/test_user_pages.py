"""The Users pages: admins only; each form calls its service; refusals are shown next to the
form (4xx), a generated password is shown once and never cached."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.authtoken.models import Token

from audit.models import AuditEvent
from curation.models import DatasetAssignment

pytestmark = pytest.mark.django_db

GOOD_PASSWORD = "correct-horse-battery-42"


@pytest.fixture(autouse=True)
def _reviewers_assigned():
    """Assignments are what these pages set: nobody is assigned behind the test's back."""


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def can_log_in(username: str, password: str) -> bool:
    response = Client().post(reverse("login"), {"username": username, "password": password})
    return response.status_code == 302


def generated_password(response) -> str:
    html = response.content.decode()
    start = html.index('id="generated-password">') + len('id="generated-password">')
    return html[start : html.index("</code>", start)]


def test_the_list_shows_role_status_last_login_and_datasets(
    admin_client, admin_user, reviewer_user, dataset, django_user_model
):
    DatasetAssignment.objects.create(user=reviewer_user, dataset=dataset)
    gone = django_user_model.objects.create_user(username="gone", password="x", is_active=False)
    html = admin_client.get(reverse("user-list")).content.decode()
    for account in (admin_user, reviewer_user, gone):
        assert reverse("user-detail", args=[account.pk]) in html
    assert "holiday photos" in html and "deactivated" in html and "never" in html
    # Linked from the navigation, for admins.
    assert 'id="nav-users"' in html


def test_reviewers_and_strangers_are_kept_out(client, reviewer_user, admin_user):
    pages = [
        ("get", reverse("user-list")),
        ("post", reverse("user-list")),
        ("get", reverse("user-detail", args=[admin_user.pk])),
        ("post", reverse("user-password", args=[admin_user.pk])),
        ("post", reverse("user-role", args=[admin_user.pk])),
        ("post", reverse("user-deactivate", args=[admin_user.pk])),
        ("post", reverse("user-reactivate", args=[admin_user.pk])),
        ("post", reverse("user-datasets", args=[reviewer_user.pk])),
    ]
    for method, path in pages:
        assert getattr(client, method)(path).status_code == 302  # to the login page
    client.force_login(reviewer_user)
    for method, path in pages:
        assert getattr(client, method)(path, {"role": "reviewer"}).status_code == 403
    admin_user.refresh_from_db()
    assert admin_user.is_staff and admin_user.is_active
    assert 'id="nav-users"' not in client.get(reverse("review")).content.decode()


def test_an_unknown_user_is_404(admin_client):
    for name in ("user-detail", "user-password", "user-role", "user-deactivate"):
        method = admin_client.get if name == "user-detail" else admin_client.post
        assert method(reverse(name, args=[987654])).status_code == 404


def test_create_with_a_generated_password_shows_it_once(admin_client, django_user_model):
    response = admin_client.post(
        reverse("user-list"), {"username": "rita", "role": "reviewer", "password": ""}
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    password = generated_password(response)
    rita = django_user_model.objects.get(username="rita")
    assert not rita.is_staff
    assert can_log_in("rita", password)
    # Not on the user's page afterwards.
    assert password not in admin_client.get(reverse("user-detail", args=[rita.pk])).content.decode()
    assert AuditEvent.objects.filter(action="user.create", target_id=rita.pk).count() == 1


def test_create_an_admin_with_a_chosen_password(admin_client, django_user_model):
    response = admin_client.post(
        reverse("user-list"),
        {"username": "ada", "role": "admin", "password": GOOD_PASSWORD,
         "password_repeat": GOOD_PASSWORD},
    )  # fmt: skip
    ada = django_user_model.objects.get(username="ada")
    assert response.status_code == 302
    assert response["Location"] == reverse("user-detail", args=[ada.pk])
    assert ada.is_staff and can_log_in("ada", GOOD_PASSWORD)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"username": "rita", "role": "reviewer", "password": "short", "password_repeat": "short"},
         "too short"),
        ({"username": "rita", "role": "reviewer", "password": GOOD_PASSWORD,
          "password_repeat": "something else"}, "The two passwords differ"),
        ({"username": "Admin", "role": "reviewer"}, "exists already"),
        ({"username": "bad name!", "role": "reviewer"}, "Enter a valid username"),
        ({"username": "", "role": "reviewer"}, "This field is required"),
        ({"username": "u" * 151, "role": "reviewer"}, "at most 150 characters"),
        ({"username": "rita", "role": "owner"}, "Select a valid choice"),
        ({"username": "rita"}, "This field is required"),
    ],
)  # fmt: skip
def test_create_refuses_bad_input_inline(admin_client, django_user_model, data, message):
    before = django_user_model.objects.count()
    response = admin_client.post(reverse("user-list"), data)
    assert response.status_code == 400
    assert message in response.content.decode().replace("&#x27;", "'")
    assert django_user_model.objects.count() == before
    # What was typed is kept (never the password).
    if data.get("username") and len(data["username"]) <= 150:
        assert f'value="{data["username"]}"' in response.content.decode().replace("&quot;", '"')
    if data.get("password"):
        assert f'value="{data["password"]}"' not in response.content.decode()


def test_password_reset_generated_or_chosen(admin_client, reviewer_user):
    Token.objects.create(user=reviewer_user)
    path = reverse("user-password", args=[reviewer_user.pk])
    response = admin_client.post(path, {"password": ""})
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    password = generated_password(response)
    assert can_log_in("reviewer", password) and not can_log_in("reviewer", "review-pass-123")
    assert not Token.objects.filter(user=reviewer_user).exists()
    response = admin_client.post(
        path, {"password": GOOD_PASSWORD, "password_repeat": GOOD_PASSWORD}
    )
    assert response.status_code == 302 and can_log_in("reviewer", GOOD_PASSWORD)
    response = admin_client.post(path, {"password": "abc", "password_repeat": "abc"})
    assert response.status_code == 400 and "too short" in response.content.decode()
    assert can_log_in("reviewer", GOOD_PASSWORD)
    assert AuditEvent.objects.filter(action="user.password_reset").count() == 2


def test_an_admin_resetting_their_own_password_stays_logged_in(admin_client, admin_user):
    path = reverse("user-password", args=[admin_user.pk])
    response = admin_client.post(
        path, {"password": GOOD_PASSWORD, "password_repeat": GOOD_PASSWORD}
    )
    assert response.status_code == 302
    assert admin_client.get(reverse("user-list")).status_code == 200


def test_deactivate_and_reactivate(admin_client, reviewer_user):
    token = Token.objects.create(user=reviewer_user)
    response = admin_client.post(reverse("user-deactivate", args=[reviewer_user.pk]))
    assert response.status_code == 302
    reviewer_user.refresh_from_db()
    assert not reviewer_user.is_active and not can_log_in("reviewer", "review-pass-123")
    api = Client().get(reverse("api-review-stats"), HTTP_AUTHORIZATION=f"Token {token.key}")
    assert api.status_code == 401
    assert admin_client.post(reverse("user-reactivate", args=[reviewer_user.pk])).status_code == 302
    assert can_log_in("reviewer", "review-pass-123")


def test_a_deactivated_users_session_ends(admin_client, reviewer_user):
    session = Client()
    session.force_login(reviewer_user)
    assert session.get(reverse("review")).status_code == 200
    admin_client.post(reverse("user-deactivate", args=[reviewer_user.pk]))
    assert session.get(reverse("review")).status_code == 302
    # Reactivating does not bring the old session back; the admin's own session stays.
    admin_client.post(reverse("user-reactivate", args=[reviewer_user.pk]))
    assert session.get(reverse("review")).status_code == 302
    assert admin_client.get(reverse("user-list")).status_code == 200


def test_an_admin_cannot_deactivate_or_demote_themselves(admin_client, admin_user):
    response = admin_client.post(reverse("user-deactivate", args=[admin_user.pk]))
    assert response.status_code == 403
    assert "You cannot deactivate your own account" in response.content.decode()
    response = admin_client.post(reverse("user-role", args=[admin_user.pk]), {"role": "reviewer"})
    assert response.status_code == 403
    assert "You cannot change your own role" in response.content.decode()
    admin_user.refresh_from_db()
    assert admin_user.is_active and admin_user.is_staff
    # The page does not offer it either.
    page = admin_client.get(reverse("user-detail", args=[admin_user.pk])).content.decode()
    assert "another admin can" in page


def test_change_role(admin_client, reviewer_user):
    path = reverse("user-role", args=[reviewer_user.pk])
    assert admin_client.post(path, {"role": "admin"}).status_code == 302
    reviewer_user.refresh_from_db()
    assert reviewer_user.is_staff
    response = admin_client.post(path, {"role": "king"})
    assert response.status_code == 400 and "Select a valid choice" in response.content.decode()
    assert admin_client.post(path, {"role": "reviewer"}).status_code == 302
    reviewer_user.refresh_from_db()
    assert not reviewer_user.is_staff


def test_assign_datasets(admin_client, admin_user, reviewer_user, dataset):
    path = reverse("user-datasets", args=[reviewer_user.pk])
    assert admin_client.post(path, {"datasets": [dataset.pk]}).status_code == 302
    assert DatasetAssignment.objects.filter(user=reviewer_user, dataset=dataset).exists()
    page = admin_client.get(reverse("user-detail", args=[reviewer_user.pk])).content.decode()
    assert f'value="{dataset.pk}"' in page and "checked" in page
    assert admin_client.post(path, {}).status_code == 302
    assert not DatasetAssignment.objects.filter(user=reviewer_user).exists()
    for bad in (["abc"], [987654], ["9" * 40]):
        response = admin_client.post(path, {"datasets": bad})
        assert response.status_code == 400, bad
    response = admin_client.post(
        reverse("user-datasets", args=[admin_user.pk]), {"datasets": [dataset.pk]}
    )
    assert (
        response.status_code == 400 and "Admins review every dataset" in response.content.decode()
    )


def test_the_pages_have_no_inline_script_or_style(admin_client, reviewer_user):
    pages = [
        admin_client.get(reverse("user-list")),
        admin_client.get(reverse("user-detail", args=[reviewer_user.pk])),
        admin_client.post(reverse("user-list"), {"username": "x!", "role": "reviewer"}),
        admin_client.post(reverse("user-password", args=[reviewer_user.pk]), {}),
    ]
    for response in pages:
        page = response.content.decode()
        assert "<style" not in page and " style=" not in page and "onclick=" not in page
        for chunk in page.split("<script")[1:]:
            assert chunk.split(">", 1)[0].strip().startswith("src=")
