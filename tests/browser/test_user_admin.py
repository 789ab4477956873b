"""The Users pages in a real browser: an admin creates a reviewer who then logs in, resets a
password, assigns datasets, changes a role and deactivates an account (no login, tokens
refused); an admin cannot deactivate themselves."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from curation.models import DatasetAssignment

from .conftest import ADMIN_PASSWORD, login
from .screens import shots

pytestmark = pytest.mark.browser

NEW_PASSWORD = "correct-horse-battery-42"


@pytest.fixture(autouse=True)
def _reviewers_assigned():
    """Assignments are what these pages set: nobody is assigned behind the test's back."""


@pytest.fixture
def admin(transactional_db, django_user_model):
    return django_user_model.objects.create_user(
        username="ada", password=ADMIN_PASSWORD, is_staff=True
    )


@pytest.fixture
def second_page(browser, live_server):
    """Another browser (its own cookies): the reviewer's."""
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": 1360, "height": 900}, color_scheme="dark"
    )
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


def log_in(page, username: str, password: str) -> bool:
    """Submit the login form and wait for the answer; True when it let the user in."""
    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    with page.expect_navigation():
        page.click("button[type=submit]")
    return "/accounts/login/" not in page.url


def test_create_a_reviewer_who_logs_in_then_reset_assign_and_deactivate(
    page, second_page, browser, live_server, admin, review_data, django_user_model
):
    dataset = review_data.dataset
    login(page, "ada", ADMIN_PASSWORD)
    page.click("#nav-users")
    expect(page.locator("h1")).to_have_text("Users")
    expect(page.locator("#user-table")).to_contain_text("rita")
    shots(page, "users-list")

    # Create with a generated password, shown once.
    page.fill("#id_username", "nora")
    page.check("input[name=role][value=reviewer]")
    page.click("#user-create-form button[type=submit]")
    expect(page.locator("h1")).to_have_text("User nora created")
    password = page.locator("#generated-password").inner_text()
    assert len(password) >= 12
    shots(page, "users-password-once")
    nora = django_user_model.objects.get(username="nora")
    assert not nora.is_staff

    # The reviewer logs in with it.
    assert log_in(second_page, "nora", password)
    assert second_page.url.endswith("/review/")

    # Assign a dataset.
    page.click("text=Done")
    expect(page.locator("h1")).to_contain_text("nora")
    page.check(f"#user-datasets-form input[value='{dataset.pk}']")
    page.click("#user-datasets-form button[type=submit]")
    expect(page.locator(".message-success")).to_contain_text("reviews 1 dataset")
    assert DatasetAssignment.objects.filter(user=nora, dataset=dataset).exists()
    second_page.goto("/review/")
    expect(second_page.locator(f"option[value='{dataset.pk}']")).to_have_count(1)
    shots(page, "users-detail")

    # Reset the password to a chosen one: the old one stops working.
    page.fill("#id_password", NEW_PASSWORD)
    page.fill("#id_password_repeat", NEW_PASSWORD)
    page.click("#user-password-form button[type=submit]")
    expect(page.locator(".message-success")).to_contain_text("Password of nora changed")
    second_page.context.clear_cookies()
    assert not log_in(second_page, "nora", password)
    assert log_in(second_page, "nora", NEW_PASSWORD)

    # A password the validators refuse comes back inline.
    page.fill("#id_password", "nora")
    page.fill("#id_password_repeat", "nora")
    page.click("#user-password-form button[type=submit]")
    expect(page.locator("#password .field-error")).to_contain_text("too short")
    shots(page, "users-detail-error")

    # An API token for nora, then deactivation: no login, the token refused.
    api = browser.new_context(base_url=live_server.url).request  # no session cookie
    token = api.post(
        "/api/auth/token/", data={"username": "nora", "password": NEW_PASSWORD}
    ).json()["token"]
    headers = {"Authorization": f"Token {token}"}
    assert api.get("/api/review/stats/", headers=headers).status == 200
    page.goto(f"/users/{nora.pk}/")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#user-deactivate-form button[type=submit]")
    expect(page.locator(".message-success")).to_contain_text("deactivated")
    expect(page.locator("h1 .badge-inactive")).to_have_text("deactivated")
    second_page.goto("/review/")
    assert "/accounts/login/" in second_page.url  # the open session ended
    assert not log_in(second_page, "nora", NEW_PASSWORD)
    assert api.get("/api/review/stats/", headers=headers).status == 401
    page.goto("/users/")
    expect(page.locator(f"#user-{nora.pk}")).to_contain_text("deactivated")

    # Reactivated, nora logs in again.
    page.goto(f"/users/{nora.pk}/")
    page.click("#user-reactivate-form button[type=submit]")
    expect(page.locator(".message-success")).to_contain_text("active again")
    # The session that was open before the deactivation does not come back.
    second_page.goto("/review/")
    assert "/accounts/login/" in second_page.url
    assert log_in(second_page, "nora", NEW_PASSWORD)


def test_create_an_admin_and_change_roles(page, admin, django_user_model):
    login(page, "ada", ADMIN_PASSWORD)
    page.goto("/users/")
    page.fill("#id_username", "grace")
    page.check("input[name=role][value=admin]")
    page.fill("#id_password", NEW_PASSWORD)
    page.fill("#id_password_repeat", NEW_PASSWORD)
    page.click("#user-create-form button[type=submit]")
    expect(page.locator(".message-success")).to_have_text("User grace created.")
    expect(page.locator("h1 .badge-role-admin")).to_have_text("admin")
    assert django_user_model.objects.get(username="grace").is_staff
    page.check("#user-role-form input[value=reviewer]")
    page.click("#user-role-form button[type=submit]")
    expect(page.locator(".message-success")).to_contain_text("grace is now a reviewer")
    assert not django_user_model.objects.get(username="grace").is_staff
    # A taken name comes back inline, with what was typed.
    page.goto("/users/")
    page.fill("#id_username", "Grace")
    page.click("#user-create-form button[type=submit]")
    expect(page.locator("#create .form-errors")).to_contain_text("exists already")
    expect(page.locator("#id_username")).to_have_value("Grace")


def test_an_admin_cannot_deactivate_or_demote_themselves(page, admin):
    login(page, "ada", ADMIN_PASSWORD)
    page.goto(f"/users/{admin.pk}/")
    expect(page.locator("#user-deactivate-form button")).to_be_disabled()
    expect(page.locator("#user-role-form button")).to_be_disabled()
    shots(page, "users-self")
    # Forcing the form anyway: a clear refusal, nothing changed.
    page.locator("#user-deactivate-form button").evaluate("button => button.disabled = false")
    page.once("dialog", lambda dialog: dialog.accept())
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.click("#user-deactivate-form button[type=submit]")
    assert posted.value.status == 403
    expect(page.locator("#access .form-errors")).to_contain_text(
        "You cannot deactivate your own account"
    )
    admin.refresh_from_db()
    assert admin.is_active
