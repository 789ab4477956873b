"""The review page in a real browser: blurred by default, keyboard verdicts, no page reloads."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from reviewer.models import Decision, ReviewItem

from .conftest import REVIEWER_PASSWORD, login

pytestmark = pytest.mark.browser

BLURRED = re.compile(r"\bis-blurred\b")
IMAGE_LOADED = (
    "() => { const img = document.getElementById('review-image');"
    " return img.complete && img.naturalWidth > 0; }"
)


def computed_filter(page) -> str:
    return page.eval_on_selector("#review-image", "img => getComputedStyle(img).filter")


def expect_item(page, item) -> None:
    """The stage shows this item, blurred, with its image actually loaded."""
    stage = page.locator("#review-stage")
    expect(stage).to_have_attribute("data-item-id", str(item.pk))
    expect(stage).to_have_class(BLURRED)
    expect(page.locator("#review-image")).to_have_class(BLURRED)
    page.wait_for_function(IMAGE_LOADED)
    assert "blur" in computed_filter(page)


def test_keyboard_review_flow(page, review_data, screenshot):
    first, second, third = review_data.items
    login(page, review_data.reviewer.username, REVIEWER_PASSWORD)
    page.goto("/review/")

    # Highest score first, blurred and greyscale, loaded through the authorised image view.
    expect_item(page, first)
    assert "grayscale" in computed_filter(page)
    expect(page.locator("#review-score")).to_have_text("0.900")
    expect(page.locator("#review-path")).to_have_text("night/alley.png")
    expect(page.locator("#review-dataset")).to_have_text("street photos")
    expect(page.locator("#review-size")).to_have_text("360 × 240 · PNG")
    expect(page.locator("#review-empty")).to_be_hidden()
    screenshot("review-blurred")
    page.evaluate("window.__marker = 1")

    # v reveals, v blurs again, v reveals.
    page.keyboard.press("v")
    expect(page.locator("#review-image")).not_to_have_class(BLURRED)
    expect(page.locator("#review-stage")).not_to_have_class(BLURRED)
    page.wait_for_function(  # revealing fades in over 150 ms
        "() => getComputedStyle(document.getElementById('review-image')).filter === 'none'"
    )
    expect(page.locator("#review-reveal")).to_have_attribute("aria-pressed", "true")
    page.keyboard.press("v")
    expect(page.locator("#review-image")).to_have_class(BLURRED)
    page.keyboard.press("v")
    expect(page.locator("#review-image")).not_to_have_class(BLURRED)

    # c confirms: a decision by this reviewer, the next item arrives blurred, no reload.
    page.keyboard.press("c")
    expect_item(page, second)
    decision = Decision.objects.get(item=first)
    assert (decision.verdict, decision.reviewer_id) == ("inappropriate", review_data.reviewer.pk)
    expect(page.locator("#review-status")).to_contain_text("Confirmed")
    expect(page.locator("#review-count")).to_have_text("1")
    assert page.evaluate("window.__marker") == 1

    # r rejects.
    page.keyboard.press("r")
    expect_item(page, third)
    decision = Decision.objects.get(item=second)
    assert (decision.verdict, decision.reviewer_id) == ("appropriate", review_data.reviewer.pk)
    expect(page.locator("#review-count")).to_have_text("2")

    # s skips the last one: this reviewer's queue is now empty.
    page.keyboard.press("s")
    expect(page.locator("#review-empty")).to_be_visible()
    expect(page.locator("#review-status")).to_contain_text("Queue empty")
    expect(page.locator("#review-stage")).to_have_attribute("data-item-id", "")
    assert Decision.objects.get(item=third).verdict == "skip"
    assert ReviewItem.objects.get(pk=third.pk).state == ReviewItem.State.PENDING
    expect(page.locator("#review-count")).to_have_text("2")  # skips are not verdicts
    assert page.evaluate("window.__marker") == 1
    assert [item.state for item in ReviewItem.objects.filter(pk__in=[first.pk, second.pk])] == [
        ReviewItem.State.DECIDED
    ] * 2


def test_buttons_and_help_overlay(page, review_data):
    first, second, _ = review_data.items
    login(page, review_data.reviewer.username, REVIEWER_PASSWORD)
    page.goto("/review/")
    expect_item(page, first)

    page.keyboard.press("?")
    help_dialog = page.locator("#review-help")
    expect(help_dialog).to_be_visible()
    expect(help_dialog).to_contain_text("Confirm")
    page.keyboard.press("c")  # keys do nothing while the help is open
    page.keyboard.press("Escape")
    expect(help_dialog).to_be_hidden()
    assert not Decision.objects.exists()

    page.click("#review-reveal")
    expect(page.locator("#review-image")).not_to_have_class(BLURRED)
    page.click("button[data-verdict=appropriate]")
    expect_item(page, second)
    assert Decision.objects.get(item=first).verdict == "appropriate"


def test_conflict_moves_on_to_the_next_item(page, review_data):
    first, second, _ = review_data.items
    login(page, review_data.reviewer.username, REVIEWER_PASSWORD)
    page.goto("/review/")
    expect_item(page, first)
    page.evaluate("window.__marker = 1")
    # A rescore withdrew the item while it was on screen: the API answers 409.
    ReviewItem.objects.filter(pk=first.pk).update(state=ReviewItem.State.WITHDRAWN)
    page.keyboard.press("c")
    expect_item(page, second)
    expect(page.locator("#review-status")).to_contain_text("no longer in the queue")
    expect(page.locator("#review-count")).to_have_text("0")
    assert not Decision.objects.exists()
    assert page.evaluate("window.__marker") == 1


def test_empty_queue_is_shown(page, review_data):
    ReviewItem.objects.all().update(state=ReviewItem.State.DECIDED)
    login(page, review_data.reviewer.username, REVIEWER_PASSWORD)
    page.goto(f"/review/?dataset={review_data.dataset.pk}")
    expect(page.locator("#review-empty")).to_be_visible()
    expect(page.locator("#review-empty")).to_contain_text("street photos")
    expect(page.locator("#review-status")).to_have_text("Queue empty.")
    expect(page.locator("#review-stage")).to_be_hidden()
    expect(page.locator("button[data-verdict=inappropriate]")).to_be_disabled()
