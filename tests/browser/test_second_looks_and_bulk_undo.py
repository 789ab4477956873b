"""Second looks and the undo of a bulk verdict in Chromium: a second look from the "Decided
(second look)" queue is accepted and shows up in the agreement table; a disagreeing one
disputes the item, which an admin then adjudicates; undo after a bulk confirm of three tiles
brings all three back."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from reviewer.models import Decision, DecisionRetraction, ReviewItem
from reviewer.selectors.verdicts import images_with_latest_verdict
from reviewer.services.decisions import review_decision_record

from .conftest import ADMIN_PASSWORD, REVIEWER_PASSWORD, login
from .test_review_flow import build_queue, expect_item, open_review

pytestmark = pytest.mark.browser

# The sizes the screenshots are taken at (Q16_SCREENSHOT_DIR set), full page.
SHOT_SIZES = [(1366, 900), (1280, 720)]


def shoot(page, name: str, *, panel: bool = False) -> None:
    """Full-page screenshots; `panel`: also the review panel with its history open."""
    folder = os.environ.get("Q16_SCREENSHOT_DIR")
    if not folder:
        return
    before = page.viewport_size
    if panel:
        page.evaluate("document.getElementById('review-history-wrap').open = true")
    for width, height in SHOT_SIZES:
        page.set_viewport_size({"width": width, "height": height})
        path = Path(folder) / f"{name}-{width}x{height}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(path), full_page=True)
        if panel:
            page.locator("#review-history-wrap").scroll_into_view_if_needed()
            page.locator(".review-panel").screenshot(
                path=str(path.with_name(f"{name}-panel-{width}x{height}.png"))
            )
    page.set_viewport_size(before)


@pytest.fixture
def rita(transactional_db, django_user_model):
    return django_user_model.objects.create_user(username="rita", password=REVIEWER_PASSWORD)


@pytest.fixture
def sam(transactional_db, django_user_model):
    return django_user_model.objects.create_user(username="sam", password=REVIEWER_PASSWORD)


@pytest.fixture
def admin(transactional_db, django_user_model):
    return django_user_model.objects.create_user(
        username="ada", password=ADMIN_PASSWORD, is_staff=True
    )


def admin_page(browser, live_server, admin):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1360, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login(page, admin.username, ADMIN_PASSWORD)
    return page, errors


def test_a_second_look_is_accepted_and_counts_for_agreement(
    page, browser, live_server, rita, sam, admin, tmp_path
):
    queue = build_queue(tmp_path, n=3)
    verdicts = ["inappropriate", "inappropriate", "appropriate"]
    for item, verdict in zip(queue.items, verdicts, strict=True):
        review_decision_record(item_id=item.pk, reviewer=sam, verdict=verdict)
    assert set(ReviewItem.objects.values_list("state", flat=True)) == {"decided"}

    open_review(page, rita.username, f"?dataset={queue.dataset.pk}&state=decided")
    expect(page.locator("#review-state")).to_have_value("decided")
    expect_item(page, queue.items[0])
    # Sam's verdict is counted, neither shown nor attributed: Rita's look stays independent.
    expect(page.locator("#review-verdicts")).to_have_text("decided · 1 by another reviewer")
    expect(page.locator("#review-history-count")).to_have_text("(yours: 0)")
    expect(page.locator("#review-history li")).to_have_count(0)
    assert "sam" not in page.text_content(".review-panel")
    shoot(page, "second-look", panel=True)

    for item, key in zip(queue.items, ["c", "c", "r"], strict=True):
        expect_item(page, item)
        page.keyboard.press(key)
        expect(page.locator("#review-status")).to_contain_text("Your second look is recorded.")
    expect(page.locator("#review-empty")).to_be_visible()
    looks = Decision.objects.filter(reviewer=rita)
    assert looks.count() == 3 and all(d.is_second_look for d in looks)
    assert set(ReviewItem.objects.values_list("state", flat=True)) == {"decided"}

    stats, errors = admin_page(browser, live_server, admin)
    try:
        stats.goto(f"/datasets/{queue.dataset.pk}/stats/")
        expect(stats.locator("#stats-app")).to_have_attribute("data-state", "ready")
        expect(stats.locator("#agreement-overall")).to_have_text("1.00")
        rows = stats.eval_on_selector_all(
            "#agreement-table tbody tr",
            "rows => rows.map(r => Array.from(r.cells).map(c => c.textContent.trim()))",
        )
        assert rows == [["rita", "sam", "1.00", "1.000 – 1.000", "3"]]
        shoot(stats, "second-look-agreement")
    finally:
        stats.context.close()
    assert not errors, errors


def test_a_disagreeing_second_look_disputes_the_item_for_an_admin(
    page, browser, live_server, rita, sam, admin, tmp_path
):
    queue = build_queue(tmp_path, n=2)
    first = queue.items[0]
    review_decision_record(item_id=first.pk, reviewer=sam, verdict="inappropriate")
    open_review(page, rita.username, f"?dataset={queue.dataset.pk}&state=decided")
    expect_item(page, first)
    page.keyboard.press("r")
    expect(page.locator("#review-status")).to_contain_text("Your second look is recorded.")
    assert ReviewItem.objects.get(pk=first.pk).state == ReviewItem.State.DISPUTED
    latest = images_with_latest_verdict(dataset_id=queue.dataset.pk).get(pk=first.image_id)
    assert latest.verdict is None  # out of training and exports until adjudicated

    # The admin finds it in the Disagreements queue, with both verdicts, and settles it.
    adjudicator, errors = admin_page(browser, live_server, admin)
    try:
        adjudicator.goto(f"/review/?dataset={queue.dataset.pk}&mode=disagreement")
        expect_item(adjudicator, first)
        expect(adjudicator.locator("#review-verdicts")).to_have_text("2 so far")
        expect(adjudicator.locator("#review-history-count")).to_have_text("(2)")
        history = adjudicator.locator("#review-history li")
        expect(history).to_have_count(2)
        expect(history.nth(0)).to_contain_text("sam")
        expect(history.nth(1)).to_contain_text("rita")
        expect(history.nth(1)).to_contain_text("second look")
        shoot(adjudicator, "second-look-disputed-admin", panel=True)
        adjudicator.keyboard.press("r")
        expect(adjudicator.locator("#review-status")).to_contain_text("Recorded as an adjudication")
    finally:
        adjudicator.context.close()
    assert not errors, errors
    assert ReviewItem.objects.get(pk=first.pk).state == ReviewItem.State.DECIDED
    latest = images_with_latest_verdict(dataset_id=queue.dataset.pk).get(pk=first.image_id)
    assert latest.verdict == "appropriate"


def test_undo_after_a_bulk_confirm_brings_all_three_tiles_back(page, rita, tmp_path):
    queue = build_queue(tmp_path, n=20)
    open_review(page, rita.username)
    expect_item(page, queue.items[0])
    page.keyboard.press("g")
    tiles = page.locator("#review-grid .tile")
    expect(tiles).to_have_count(20)
    page.keyboard.press("x")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("x")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("x")
    chosen = [queue.items[i].pk for i in (0, 1, 3)]
    expect(page.locator("#review-selected-count")).to_have_text("3")

    page.keyboard.press("c")
    expect(tiles).to_have_count(17)
    expect(page.locator("#review-status")).to_contain_text("Confirmed 3 images")
    expect(page.locator("#review-count")).to_have_text("3")
    for pk in chosen:
        expect(page.locator(f"#tile-{pk}")).to_have_count(0)

    page.keyboard.press("u")
    expect(page.locator("#review-status")).to_contain_text("Undone: your 3 verdicts were retracted")
    expect(tiles).to_have_count(20)
    for pk in chosen:
        expect(page.locator(f"#tile-{pk}")).to_have_class(re.compile(r"\bis-blurred\b"))
    # Back first, in the order they were decided.
    shown = page.eval_on_selector_all("#review-grid .tile", "ts => ts.map(t => t.dataset.itemId)")
    assert shown[:3] == [str(pk) for pk in chosen]
    expect(page.locator("#review-count")).to_have_text("0")
    shoot(page, "bulk-undo-grid")
    assert DecisionRetraction.objects.count() == 3
    for item in ReviewItem.objects.filter(pk__in=chosen):
        assert item.state == ReviewItem.State.PENDING and item.leased_by_id == rita.pk

    # The tiles can be decided again: one undo was one action.
    page.keyboard.press("x")
    page.keyboard.press("r")
    expect(tiles).to_have_count(19)
    assert Decision.objects.filter(retraction__isnull=True).count() == 1
