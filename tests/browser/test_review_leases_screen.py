"""Leases on the review screen (issue 11): an empty queue says who holds what is left and
when the first lease ends; the open page renews its leases while the reviewer works, not
when they walked away, and drops the items it lost.

The page's clock is Playwright's (clock.install / fast_forward): no sleeping, no timed
assertions. The server's time is moved through lease_expires_at in the database."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from reviewer.models import Decision, ReviewItem

from .conftest import REVIEWER_PASSWORD, login
from .test_review_flow import SHOWS_ITEM

pytestmark = pytest.mark.browser

TOKYO = "Asia/Tokyo"  # no daylight saving time: the expected clock time is plain arithmetic
HEARTBEAT_MS = 60_000  # half of Q16_LEASE_SECONDS (120)


@pytest.fixture
def tokyo_page(browser, live_server):
    context = browser.new_context(
        base_url=live_server.url,
        viewport={"width": 1366, "height": 900},
        color_scheme="dark",
        timezone_id=TOKYO,
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def shoot(page, name: str) -> None:
    """The conftest's screenshot fixture, for a page of this module's own context."""
    folder = os.environ.get("Q16_SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"))
        page.screenshot(path=str(Path(folder) / f"{name}-full.png"), full_page=True)


def test_an_empty_queue_says_who_holds_the_rest_and_when_the_first_lease_ends(
    tokyo_page, review_data, django_user_model
):
    page = tokyo_page
    other = django_user_model.objects.create_user(username="otto", password="x")
    now = timezone.now()
    ends = [now + timedelta(minutes=m) for m in (7, 3, 9)]
    for item, until in zip(review_data.items, ends, strict=True):
        ReviewItem.objects.filter(pk=item.pk).update(leased_by=other, lease_expires_at=until)
    first_end = min(ends).astimezone(ZoneInfo(TOKYO)).strftime("%H:%M")

    login(page, review_data.reviewer.username, REVIEWER_PASSWORD)
    page.goto(f"/review/?dataset={review_data.dataset.pk}")
    expect(page.locator("#review-empty")).to_be_visible()
    expect(page.locator("#review-remaining")).to_have_text("3")
    held = page.locator("#review-empty-held")
    expect(held).to_be_visible()
    expect(held).to_have_text(
        f"3 items are being reviewed by others; the first lease ends at {first_end}."
    )
    expect(page.locator("#review-status")).to_have_text(
        f"Queue empty. 3 items are being reviewed by others; the first lease ends at {first_end}."
    )
    shoot(page, "review-empty-held-by-others")
    page.set_viewport_size({"width": 1280, "height": 720})
    shoot(page, "review-empty-held-by-others-1280x720")

    # The grid says the same.
    page.click("#review-view-grid")
    expect(page.locator("#review-grid-empty")).to_be_visible()
    expect(page.locator("#review-grid-empty-held")).to_contain_text("3 items are being reviewed")
    shoot(page, "review-grid-empty-held-by-others")

    # One lease ran out: "Check again" gets that item, and the message goes.
    page.click("#review-view-single")
    expect(page.locator("#review-status")).to_have_text(  # the single view's own look is done
        f"Queue empty. 3 items are being reviewed by others; the first lease ends at {first_end}."
    )
    ReviewItem.objects.filter(pk=review_data.items[1].pk).update(
        lease_expires_at=now - timedelta(seconds=1)
    )
    page.click("#review-refresh")
    page.wait_for_function(SHOWS_ITEM, arg=str(review_data.items[1].pk))
    expect(held).to_be_hidden()
    assert ReviewItem.objects.get(pk=review_data.items[1].pk).leased_by == review_data.reviewer


def test_nothing_held_says_nothing_more(page, review_data):
    ReviewItem.objects.all().update(state=ReviewItem.State.DECIDED)
    login(page, review_data.reviewer.username, REVIEWER_PASSWORD)
    page.goto(f"/review/?dataset={review_data.dataset.pk}")
    expect(page.locator("#review-status")).to_have_text("Queue empty.")
    expect(page.locator("#review-empty-held")).to_be_hidden()


def leases_of(user) -> dict[int, object]:
    return dict(ReviewItem.objects.filter(leased_by=user).values_list("pk", "lease_expires_at"))


def test_the_page_renews_its_leases_while_the_reviewer_works(page, review_data, django_user_model):
    first, second, third = review_data.items
    other = django_user_model.objects.create_user(username="otto", password="x")
    page.clock.install()
    login(page, review_data.reviewer.username, REVIEWER_PASSWORD)
    page.goto(f"/review/?dataset={review_data.dataset.pk}")
    page.wait_for_function(SHOWS_ITEM, arg=str(first.pk))
    app = page.locator("#review-app")
    reviewer = review_data.reviewer
    assert set(leases_of(reviewer)) == {first.pk, second.pk, third.pk}  # the lookahead

    # Leases about to run out; a minute later the heartbeat has renewed them all.
    soon = timezone.now() + timedelta(seconds=5)
    ReviewItem.objects.filter(leased_by=reviewer).update(lease_expires_at=soon)
    page.clock.fast_forward(HEARTBEAT_MS + 1000)
    expect(app).to_have_attribute("data-lease-renewals", "1")
    renewed = leases_of(reviewer)
    assert set(renewed) == {first.pk, second.pk, third.pk}
    assert all(until > timezone.now() + timedelta(seconds=60) for until in renewed.values())

    # The item on screen was lost meanwhile (its lease ran out, another reviewer took it):
    # the next beat is refused for it, and it leaves the screen; the next one shows, blurred.
    page.keyboard.press("v")  # the reviewer is looking at it
    expect(page.locator("#review-image")).not_to_have_class(re.compile(r"\bis-blurred\b"))
    ReviewItem.objects.filter(pk=first.pk).update(
        leased_by=other, lease_expires_at=timezone.now() + timedelta(minutes=2)
    )
    page.clock.fast_forward(HEARTBEAT_MS + 1000)
    expect(app).to_have_attribute("data-lease-renewals", "2")
    page.wait_for_function(SHOWS_ITEM, arg=str(second.pk))
    expect(page.locator("#review-image")).to_have_class(re.compile(r"\bis-blurred\b"))
    expect(page.locator("#review-status")).to_contain_text("no longer leased to you")
    assert ReviewItem.objects.get(pk=first.pk).leased_by == other
    assert not Decision.objects.exists()

    # The reviewer walked away: after five minutes without a key or the mouse the beat
    # renews nothing, so the leases run out and the items go back to the queue.
    marker = timezone.now() + timedelta(seconds=7)
    ReviewItem.objects.filter(leased_by=reviewer).update(lease_expires_at=marker)
    page.clock.fast_forward(6 * 60_000)
    expect(app).to_have_attribute("data-heartbeat", "idle")
    assert set(leases_of(reviewer).values()) == {marker}
    assert app.get_attribute("data-lease-renewals") == "2"

    # Back at the desk: the first move renews at once.
    page.mouse.move(200, 300)
    page.mouse.move(220, 320)
    expect(app).to_have_attribute("data-lease-renewals", "3")
    assert all(until > marker for until in leases_of(reviewer).values())
    expect(app).to_have_attribute("data-heartbeat", "renewed")
