"""Reviewer protection in a real browser: reveals are recorded on the server with their
duration (single view, grid, pagehide), a refused reveal keeps the image blurred and says why,
the break screen covers the page during an enforced break, and the admins' Exposure page."""

from __future__ import annotations

import os
import re
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from audit.models import AuditEvent
from curation.models import Image
from reviewer.models import Decision, ExposureSettings, Reveal
from reviewer.services.exposure import reveal_end, reveal_start

from .conftest import ADMIN_PASSWORD, REVIEWER_PASSWORD, login

pytestmark = pytest.mark.browser

BLURRED = re.compile(r"\bis-blurred\b")
SIZES = ((1366, 900), (1280, 720))


def shoot(page, name: str) -> None:
    """Full-page screenshots at both sizes when Q16_SCREENSHOT_DIR is set."""
    folder = os.environ.get("Q16_SCREENSHOT_DIR")
    if not folder:
        return
    before = page.viewport_size
    for width, height in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(150)  # let the stage re-fit to the new size
        path = Path(folder) / f"{name}-{width}x{height}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(before)


def wait_for(condition, what: str, attempts: int = 100) -> None:
    """Poll the database until `condition()` holds (requests from the page land async)."""
    for _ in range(attempts):
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"never happened: {what}")


def is_start(response) -> bool:
    return response.url.endswith("/api/review/reveals/") and response.request.method == "POST"


def is_end(response) -> bool:
    return "/api/review/reveals/" in response.url and response.url.endswith("/end/")


def open_review(page, review_data):
    login(page, review_data.reviewer.username, REVIEWER_PASSWORD)
    page.goto("/review/")
    expect(page.locator("#review-stage")).to_have_attribute(
        "data-item-id", str(review_data.items[0].pk)
    )


def test_revealing_records_a_reveal_with_its_duration(page, review_data):
    first, second, _ = review_data.items
    open_review(page, review_data)
    # Revealed only once the server has the record.
    with page.expect_response(is_start) as started:
        page.keyboard.press("v")
    assert started.value.status == 201
    expect(page.locator("#review-image")).not_to_have_class(BLURRED)
    reveal = Reveal.objects.get()
    assert (reveal.reviewer, reveal.item, reveal.image_id) == (
        review_data.reviewer,
        first,
        first.image_id,
    )
    assert reveal.view == "single" and reveal.hidden_at is None
    expect(page.locator("#review-app")).to_have_attribute("data-reveals-open", "1")

    # Blurred again: the record ends with a duration.
    with page.expect_response(is_end) as ended:
        page.keyboard.press("v")
    assert ended.value.status == 200
    expect(page.locator("#review-image")).to_have_class(BLURRED)
    reveal.refresh_from_db()
    assert reveal.hidden_at is not None and reveal.duration_ms is not None
    assert reveal.hidden_at >= reveal.revealed_at

    # Revealed, then a verdict: the next item comes blurred and the record ends.
    with page.expect_response(is_start):
        page.keyboard.press("v")
    expect(page.locator("#review-image")).not_to_have_class(BLURRED)
    with page.expect_response(is_end):
        page.keyboard.press("r")
    expect(page.locator("#review-stage")).to_have_attribute("data-item-id", str(second.pk))
    assert Reveal.objects.filter(hidden_at__isnull=True).count() == 0
    assert Reveal.objects.count() == 2

    # The grid: a tile's reveal is recorded as such, and ends when the tile is blurred.
    page.keyboard.press("g")
    expect(page.locator("#review-grid .tile").first).to_be_visible()
    with page.expect_response(is_start):
        page.keyboard.press("v")
    focused = page.locator("#review-grid .tile.is-current")
    expect(focused).not_to_have_class(BLURRED)
    grid_reveal = Reveal.objects.latest("id")
    assert grid_reveal.view == "grid" and grid_reveal.hidden_at is None
    with page.expect_response(is_end):
        page.keyboard.press("v")
    grid_reveal.refresh_from_db()
    assert grid_reveal.duration_ms is not None

    # Left revealed when the page goes: the beacon on pagehide ends the record.
    with page.expect_response(is_start):
        page.keyboard.press("v")
    expect(page.locator("#review-grid .tile.is-current")).not_to_have_class(BLURRED)
    last = Reveal.objects.latest("id")
    page.goto("/accounts/login/")
    wait_for(
        lambda: Reveal.objects.filter(pk=last.pk, hidden_at__isnull=False).exists(),
        "the pagehide beacon ended the reveal",
    )


def test_at_the_cap_the_image_stays_blurred_with_the_message(page, review_data):
    first, _, third = review_data.items
    ExposureSettings.objects.create(reviewer=review_data.reviewer, daily_reveal_cap=1)
    earlier = reveal_start(reviewer=review_data.reviewer, item_id=third.pk)
    reveal_end(reviewer=review_data.reviewer, reveal_id=earlier.pk)
    open_review(page, review_data)
    with page.expect_response(is_start) as refused:
        page.keyboard.press("v")
    assert refused.value.status == 429
    notice = page.locator("#review-exposure-notice")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("Daily limit reached")
    expect(page.locator("#review-status")).to_contain_text("The image stays blurred")
    expect(page.locator("#review-app")).to_have_attribute("data-exposure-state", "cap")
    expect(page.locator("#review-stage")).to_have_class(BLURRED)
    expect(page.locator("#review-image")).to_have_class(BLURRED)
    assert page.get_attribute("#review-reveal", "aria-pressed") == "false"
    assert Reveal.objects.filter(item=first).count() == 0
    shoot(page, "review-cap")


def test_the_break_screen_covers_the_page_and_counts_down(page, review_data, settings):
    settings.Q16_EXPOSURE_BREAK_AFTER_MINUTES = 50
    settings.Q16_EXPOSURE_BREAK_MINUTES = 10
    _, _, third = review_data.items
    now = timezone.now()
    for minutes in range(56, 0, -5):
        decision = Decision.objects.create(
            item=third, image_id=third.image_id, reviewer=review_data.reviewer, verdict="skip"
        )
        Decision.objects.filter(pk=decision.pk).update(created_at=now - timedelta(minutes=minutes))
    login(page, review_data.reviewer.username, REVIEWER_PASSWORD)
    page.goto("/review/")
    screen = page.locator("#review-exposure-break")
    expect(screen).to_be_visible()
    expect(page.locator("#review-exposure-break-title")).to_have_text("Time for a break")
    expect(page.locator("#review-exposure-break-text")).to_contain_text(
        "After 50 minutes of reviewing"
    )
    expect(page.locator("#review-exposure-break-left")).to_have_text(
        re.compile(r"^[0-9]:[0-5][0-9]$")
    )
    expect(page.locator("#review-app")).to_have_attribute("data-exposure-state", "break")
    # The server leased nothing: next/batch answered the break.
    expect(page.locator("#review-status")).to_contain_text("Time for a break")
    assert not Reveal.objects.exists()
    shoot(page, "review-break")
    # The break is over (as if 11 minutes went by): the server says so, the page offers to go on.
    Decision.objects.filter(reviewer=review_data.reviewer).update(
        created_at=now - timedelta(minutes=70)
    )
    page.click("#review-exposure-break-check")
    expect(page.locator("#review-exposure-break-title")).to_have_text("Break over")
    resume = page.locator("#review-exposure-break-resume")
    expect(resume).to_be_visible()
    resume.click()
    expect(page.locator("#review-stage")).to_have_attribute(
        "data-item-id", str(review_data.items[0].pk)
    )
    expect(screen).to_be_hidden()


def test_the_admin_page_shows_the_days_totals(page, review_data, admin_user, django_user_model):
    first, second, third = review_data.items
    rita = review_data.reviewer
    for item, seconds in ((first, 30), (second, 60), (first, 30)):
        reveal = reveal_start(reviewer=rita, item_id=item.pk)
        Reveal.objects.filter(pk=reveal.pk).update(
            revealed_at=timezone.now() - timedelta(seconds=seconds)
        )
        reveal_end(reviewer=rita, reveal_id=reveal.pk)
    # bob is due a break (his own rule), cleo reached her own daily cap.
    bob = django_user_model.objects.create_user(username="bob", password="x")
    ExposureSettings.objects.create(reviewer=bob, break_after_minutes=50)
    now = timezone.now()
    for minutes in range(56, 0, -5):
        decision = Decision.objects.create(
            item=third, image_id=third.image_id, reviewer=bob, verdict="skip"
        )
        Decision.objects.filter(pk=decision.pk).update(created_at=now - timedelta(minutes=minutes))
    cleo = django_user_model.objects.create_user(username="cleo", password="x")
    ExposureSettings.objects.create(reviewer=cleo, daily_reveal_cap=1)
    reveal_start(reviewer=cleo, item_id=third.pk)
    login(page, admin_user.username, ADMIN_PASSWORD)
    page.goto("/")
    page.click("nav.main-nav >> text=Exposure")
    expect(page).to_have_url(re.compile(r"/review/exposure/$"))
    day = page.locator(f"tr.exposure-day[data-reviewer='{rita.username}']")
    expect(day).to_have_count(1)
    expect(day.locator("[data-col=images]")).to_have_text("2")
    expect(day.locator("[data-col=reveals]")).to_have_text("3")
    expect(day.locator("[data-col=revealed]")).to_have_text(re.compile(r"^2\.0$"))
    row = page.locator(f"#reviewer-{rita.pk}")
    expect(row.locator(".exposure-today")).to_contain_text("2 images")
    expect(page.locator(f"#reviewer-{bob.pk} .exposure-now")).to_contain_text("On break until")
    expect(page.locator(f"#reviewer-{bob.pk} input[name=break_after_minutes]")).to_have_value("50")
    expect(page.locator(f"#reviewer-{cleo.pk} .exposure-now")).to_contain_text("Daily cap reached")
    shoot(page, "exposure-page")

    # Set rita's own rules: saved, shown, audited.
    row.locator("input[name=daily_reveal_cap]").fill("150")
    row.locator("input[name=break_after_minutes]").fill("45")
    row.locator("button[type=submit]").click()
    expect(page.locator(".messages")).to_contain_text(
        f"Exposure settings of {rita.username} saved."
    )
    row = page.locator(f"#reviewer-{rita.pk}")
    expect(row.locator("input[name=daily_reveal_cap]")).to_have_value("150")
    expect(row.locator(".exposure-today")).to_contain_text("2 images of 150")
    own = ExposureSettings.objects.get(reviewer=rita)
    assert (own.daily_reveal_cap, own.break_after_minutes, own.break_minutes) == (150, 45, None)
    assert (
        AuditEvent.objects.filter(action="exposure_settings.update", actor=admin_user).count() == 1
    )

    # A bad value: refused in place with the reason, nothing saved.
    row.locator("input[name=break_minutes]").fill("0")
    row.locator("input[name=break_minutes]").evaluate("input => input.removeAttribute('min')")
    row.locator("button[type=submit]").click()
    expect(page.locator(f"#reviewer-{rita.pk} .field-error")).to_be_visible()
    shoot(page, "exposure-page-error")
    assert ExposureSettings.objects.get(reviewer=rita).break_minutes is None


def test_a_reveal_in_the_full_window_view_is_full_size(page, review_data):
    first = review_data.items[0]
    open_review(page, review_data)
    page.click("#review-full-view")
    expect(page.locator("#review-stage")).to_have_class(re.compile(r"\bis-full\b"))
    with page.expect_response(is_start):
        page.keyboard.press("v")
    expect(page.locator("#review-image")).not_to_have_class(BLURRED)
    reveal = Reveal.objects.get()
    assert (reveal.view, reveal.item_id) == ("full-size", first.pk)
    # Leaving the full-window view keeps the same image revealed: the same record.
    page.keyboard.press("Escape")
    expect(page.locator("#review-stage")).not_to_have_class(re.compile(r"\bis-full\b"))
    expect(page.locator("#review-image")).not_to_have_class(BLURRED)
    expect(page.locator("#review-app")).to_have_attribute("data-reveals-open", "1")
    with page.expect_response(is_end):
        page.keyboard.press("v")
    assert Reveal.objects.count() == 1
    reveal.refresh_from_db()
    assert reveal.duration_ms is not None


def test_a_duplicates_thumbnail_is_recorded_by_its_image(page, review_data):
    first, second, _ = review_data.items
    Image.objects.filter(pk=second.image_id).update(sha256=first.image.sha256)
    open_review(page, review_data)
    thumb = page.locator(f"#review-identical .thumb-button[data-image-id='{second.image_id}']")
    expect(thumb).to_have_class(BLURRED)
    with page.expect_response(is_start) as started:
        thumb.click()
    assert started.value.status == 201
    expect(thumb).not_to_have_class(BLURRED)
    reveal = Reveal.objects.get()
    assert (reveal.image_id, reveal.item_id, reveal.view) == (second.image_id, None, "single")
    with page.expect_response(is_end):
        thumb.click()
    expect(thumb).to_have_class(BLURRED)
    reveal.refresh_from_db()
    assert reveal.duration_ms is not None
