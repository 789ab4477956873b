"""The strict Content-Security-Policy holds in a real browser: the review page (with its
images and thumbnails), the dataset page and the stats page run with no CSP violation."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ADMIN_PASSWORD, REVIEWER_PASSWORD, login

pytestmark = pytest.mark.browser


@pytest.fixture
def csp_messages(page):
    messages: list[str] = []
    page.on(
        "console",
        lambda message: (
            messages.append(message.text)
            if "Content Security Policy" in message.text
            or "Content-Security-Policy" in message.text
            else None
        ),
    )
    return messages


@pytest.fixture
def admin(transactional_db, django_user_model):
    return django_user_model.objects.create_user(
        username="ada", password=ADMIN_PASSWORD, is_staff=True
    )


def test_review_page_runs_under_the_strict_policy(page, review_data, csp_messages):
    login(page, review_data.reviewer.username, REVIEWER_PASSWORD)
    response = page.goto(f"/review/?dataset={review_data.dataset.pk}")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    expect(page.locator("#review-image, .review-image, img").first).to_be_visible()
    page.wait_for_load_state("networkidle")
    assert csp_messages == []


def test_dataset_and_stats_pages_run_under_the_strict_policy(
    page, review_data, admin, csp_messages
):
    login(page, admin.username, ADMIN_PASSWORD)
    response = page.goto(f"/datasets/{review_data.dataset.pk}/")
    assert "unsafe-inline" not in response.headers["content-security-policy"]
    page.wait_for_load_state("networkidle")
    response = page.goto(f"/datasets/{review_data.dataset.pk}/stats/")
    assert "unsafe-inline" not in response.headers["content-security-policy"]
    expect(page.locator("#stats-app")).to_have_attribute("data-state", "ready")
    page.wait_for_load_state("networkidle")
    assert csp_messages == []


def test_a_violation_is_seen(page, review_data, csp_messages):
    """The listener works: an inline script injected into the page is blocked and reported."""
    login(page, review_data.reviewer.username, REVIEWER_PASSWORD)
    page.goto("/review/")
    page.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = 'window.__x = 1';"
        " document.body.appendChild(s); }"
    )
    page.wait_for_timeout(200)
    assert page.evaluate("window.__x") is None
    assert csp_messages, "the inline script should have been refused by the policy"
