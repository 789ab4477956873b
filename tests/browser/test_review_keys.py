"""Rebinding the grid and near-duplicate keys through the preferences, driving the page with the
new keys; the queue counter, lease release and undo following the screen's queue."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import expect

from curation.models import Image
from reviewer.models import Decision, ReviewerPreferences, ReviewItem

from .conftest import REVIEWER_PASSWORD
from .test_review_flow import build_queue, expect_item, open_review

pytestmark = pytest.mark.browser

CURRENT = re.compile(r"\bis-current\b")
GRID_COLUMNS = (
    "() => { const tiles = document.getElementById('review-grid').children;"
    " for (let i = 1; i < tiles.length; i++) {"
    " if (tiles[i].offsetTop !== tiles[0].offsetTop) return i; } return tiles.length; }"
)


@pytest.fixture
def reviewer(transactional_db, django_user_model):
    return django_user_model.objects.create_user(username="rita", password=REVIEWER_PASSWORD)


def rebind(page, action: str, key: str, expected: str) -> None:
    page.focus(f"#pref-key-{action}")
    page.keyboard.press(key)
    expect(page.locator(f"#pref-key-{action}")).to_have_value(expected)


def test_rebound_grid_and_near_duplicate_keys_drive_the_page(
    page, reviewer, transactional_db, tmp_path, screenshot
):
    queue = build_queue(tmp_path, n=20)
    images = queue.images
    # Item 0 has a near-duplicate in item 1; item 2 has one in item 3 (1 bit apart each).
    for image, phash in zip(
        images[:4],
        ["f0f0f0f0f0f0f0f0", "f0f0f0f0f0f0f0f1", "0f0f0f0f0f0f0f0f", "0f0f0f0f0f0f0f0e"],
        strict=True,
    ):
        Image.objects.filter(pk=image.pk).update(phash=phash)
    items = queue.items
    open_review(page, reviewer.username)
    expect_item(page, items[0])
    expect(page.locator("#review-near .thumb")).to_have_count(1)

    # Rebind through the preferences dialog: "y" gives a verdict to the near-duplicates too,
    # "n" moves down in the grid; Shift + a letter is recorded as such.
    page.click("#review-prefs-open")
    expect(page.locator("#review-prefs")).to_be_visible()
    expect(page.locator("#pref-key-confirm_near")).to_have_value("Shift+c")
    expect(page.locator("#pref-key-grid_down")).to_have_value("ArrowDown")
    rebind(page, "confirm_near", "y", "y")
    rebind(page, "grid_down", "n", "n")
    rebind(page, "grid_up", "Shift+N", "Shift+n")
    page.click("#review-prefs-save")
    expect(page.locator("#review-status")).to_have_text("Preferences saved.")
    keymap = ReviewerPreferences.objects.get(user=reviewer).keymap
    assert (keymap["confirm_near"], keymap["grid_down"], keymap["grid_up"]) == ("y", "n", "Shift+n")
    assert keymap["reject_near"] == "Shift+r"

    # The help and the hints show the configured keys.
    page.keyboard.press("?")
    help_keys = page.locator("#review-help-keys")
    expect(help_keys.locator("tr[data-action=confirm_near] kbd")).to_have_text("Y")
    expect(help_keys.locator("tr[data-action=grid_down] kbd")).to_have_text("N")
    expect(help_keys.locator("tr[data-action=grid_up] kbd")).to_have_text("Shift+N")
    expect(help_keys.locator("tr[data-action=reject_near] kbd")).to_have_text("Shift+R")
    expect(help_keys.locator("tr[data-action=grid_select_alt] kbd")).to_have_text("Space")
    screenshot("review-help-rebound")
    page.keyboard.press("Escape")
    expect(page.locator("#review-near-wrap kbd[data-key-for=confirm_near]")).to_have_text("Y")

    # y: confirmed, and the near-duplicate got the verdict too.
    page.keyboard.press("y")
    expect(page.locator("#review-status")).to_contain_text("Also applied to 1 other image")
    expect_item(page, items[2])
    verdicts = dict(Decision.objects.values_list("image_id", "verdict"))
    assert verdicts == {images[0].pk: "inappropriate", images[1].pk: "inappropriate"}

    # Shift + C is no longer the near-duplicate key: a plain confirm of this item only.
    expect(page.locator("#review-near .thumb")).to_have_count(1)
    page.keyboard.press("Shift+C")
    expect(page.locator("#review-status")).to_contain_text("Confirmed")
    expect(page.locator("#review-status")).not_to_contain_text("Also applied")
    expect_item(page, items[3])
    assert Decision.objects.filter(image=images[2]).count() == 1
    assert not Decision.objects.filter(image=images[3]).exists()

    # The grid: n moves a row down, the arrow no longer does, Shift + N moves back up.
    page.keyboard.press("g")
    tiles = page.locator("#review-grid .tile")
    expect(tiles).to_have_count(17)
    columns = page.evaluate(GRID_COLUMNS)
    assert 1 < columns < 17, columns
    expect(tiles.first).to_have_class(CURRENT)
    page.keyboard.press("n")
    expect(tiles.nth(columns)).to_have_class(CURRENT)
    page.keyboard.press("ArrowDown")
    expect(tiles.nth(columns)).to_have_class(CURRENT)
    page.keyboard.press("Shift+N")
    expect(tiles.first).to_have_class(CURRENT)
    page.keyboard.press("n")
    page.keyboard.press("ArrowRight")  # the other moves keep their defaults
    target = columns + 1
    expect(tiles.nth(target)).to_have_class(CURRENT)
    page.keyboard.press("x")
    expect(page.locator("#review-selected-count")).to_have_text("1")
    chosen = int(tiles.nth(target).get_attribute("data-item-id"))
    page.keyboard.press("r")
    expect(tiles).to_have_count(16)
    assert Decision.objects.get(item_id=chosen).verdict == "appropriate"

    # Back to the single view: the rest of the grid's batch goes back to the queue at once.
    page.keyboard.press("g")
    expect(page.locator("#review-single")).to_be_visible()
    page.wait_for_function(
        "() => document.getElementById('review-stage').dataset.itemId !== ''", polling="raf"
    )
    page.wait_for_timeout(300)
    assert ReviewItem.objects.filter(leased_by=reviewer).count() <= 4


def test_counter_and_undo_follow_the_queue(page, reviewer, transactional_db, tmp_path):
    queue = build_queue(tmp_path, n=20)
    in_folder = [item for item in queue.items if item.image.relative_path.startswith("batch1/")]
    open_review(page, reviewer.username)
    expect(page.locator("#review-remaining")).to_have_text("20")

    page.fill("#review-folder", "batch1")
    page.select_option("#review-mode", "uncertain")
    with page.expect_request("**/api/review/release/") as release:
        page.click("#review-filters button[type=submit]")
    assert release.value.headers.get("x-csrftoken")
    closest = min(in_folder, key=lambda item: (abs(item.score - 0.5), item.pk))
    expect_item(page, closest)
    expect(page.locator("#review-remaining")).to_have_text(str(len(in_folder)))
    # The leases of the old queue went back in one request.
    leased = set(ReviewItem.objects.filter(leased_by=reviewer).values_list("pk", flat=True))
    assert leased <= {item.pk for item in in_folder}

    page.keyboard.press("c")
    expect(page.locator("#review-remaining")).to_have_text(str(len(in_folder) - 1))

    with page.expect_request("**/api/review/undo/") as undo:
        page.keyboard.press("u")
    assert json.loads(undo.value.post_data) == {"mode": "uncertain"}
    expect_item(page, closest)
    expect(page.locator("#review-remaining")).to_have_text(str(len(in_folder)))

    # Leaving the page gives the leases back (a keepalive request with the CSRF header).
    page.goto("/accounts/login/")
    page.wait_for_timeout(300)
    assert not ReviewItem.objects.filter(leased_by=reviewer).exists()
