"""The Preferences dialog's keys (issue 11): Space shows as "Space", not as an empty box, and
the category keys are listed only for the dataset's categories (1..9 in their order); the
keys of the categories it lacks are kept, and still count for clashes."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from reviewer.models import DEFAULT_KEYMAP, ReviewerPreferences, ReviewItem, ReviewSettings

from .conftest import REVIEWER_PASSWORD, login

pytestmark = pytest.mark.browser

TAXONOMY = ["weapons", "gore", "drugs"]


def open_prefs(page) -> None:
    page.click("#review-prefs-open")
    expect(page.locator("#review-prefs")).to_be_visible()


def rebind(page, action: str, key: str, shown: str) -> None:
    page.focus(f"#pref-key-{action}")
    page.keyboard.press(key)
    expect(page.locator(f"#pref-key-{action}")).to_have_value(shown)


def expect_category_keys(page, selector: str, count: int) -> None:
    """Category actions 1..count are listed (each with its near-duplicate twin), no others."""
    for number in range(1, 10):
        for suffix in ("", "_near"):
            expected = 1 if number <= count else 0
            action = f"category_{number}{suffix}"
            expect(page.locator(selector.format(action=action))).to_have_count(expected)


def test_space_is_spelt_out_and_only_the_datasets_categories_are_listed(
    page, review_data, screenshot
):
    ReviewSettings.objects.create(dataset=review_data.dataset, categories=TAXONOMY)
    login(page, review_data.reviewer.username, REVIEWER_PASSWORD)
    page.goto(f"/review/?dataset={review_data.dataset.pk}")
    expect(page.locator("#review-stage")).to_have_attribute(
        "data-item-id", str(review_data.items[0].pk)
    )
    expect(page.locator("#review-categories button")).to_have_count(len(TAXONOMY))

    open_prefs(page)
    expect(page.locator("#pref-key-grid_select_alt")).to_have_value("Space")
    expect_category_keys(page, "#pref-key-{action}", len(TAXONOMY))
    for number, name in enumerate(TAXONOMY, start=1):
        expect(page.locator(f"label[for=pref-key-category_{number}]")).to_contain_text(name)
        expect(page.locator(f"#pref-key-category_{number}")).to_have_value(str(number))
        expect(page.locator(f"label[for=pref-key-category_{number}_near]")).to_contain_text(name)
    expect(page.locator("#pref-key-zoom_in")).to_have_value("+")
    expect(page.locator("#pref-key-full_view")).to_have_value("f")
    screenshot("preferences-keys")
    page.set_viewport_size({"width": 1280, "height": 720})
    page.eval_on_selector("#review-prefs-form", "form => { form.scrollTop = form.scrollHeight; }")
    screenshot("preferences-keys-1280x720-bottom")
    page.set_viewport_size({"width": 1366, "height": 900})

    # Space moves from the second select key to the first; what is recorded reads "Space".
    rebind(page, "grid_select_alt", "b", "b")
    rebind(page, "grid_select", "Space", "Space")
    rebind(page, "full_view", "Shift+Space", "Shift+Space")
    page.click("#review-prefs-save")
    expect(page.locator("#review-status")).to_have_text("Preferences saved.")
    keymap = ReviewerPreferences.objects.get(user=review_data.reviewer).keymap
    assert (keymap["grid_select"], keymap["grid_select_alt"]) == (" ", "b")
    assert keymap["full_view"] == "Shift+ "
    # The categories the dataset lacks keep their keys.
    assert [keymap[f"category_{n}"] for n in range(1, 10)] == [str(n) for n in range(1, 10)]
    assert keymap["category_9_near"] == "Shift+9"

    open_prefs(page)
    expect(page.locator("#pref-key-grid_select")).to_have_value("Space")
    expect(page.locator("#pref-key-full_view")).to_have_value("Shift+Space")
    # "7" is category 7's key: a category this dataset lacks, but its key still counts.
    rebind(page, "grid_open", "7", "7")
    page.click("#review-prefs-save")
    expect(page.locator("#pref-error")).to_be_visible()
    expect(page.locator("#pref-error")).to_contain_text("category_7")
    assert ReviewerPreferences.objects.get(user=review_data.reviewer).keymap["grid_open"] == "Enter"
    # "Default keys" restores Space too.
    page.click("#review-prefs-reset")
    expect(page.locator("#pref-key-grid_select_alt")).to_have_value("Space")
    expect(page.locator("#pref-key-grid_select")).to_have_value("x")
    page.click("#review-prefs-save")
    expect(page.locator("#review-prefs")).to_be_hidden()  # closed once saved
    assert ReviewerPreferences.objects.get(user=review_data.reviewer).keymap == DEFAULT_KEYMAP

    # The help lists the same category keys, named.
    page.keyboard.press("?")
    expect_category_keys(page, "#review-help-keys tr[data-action={action}]", len(TAXONOMY))
    expect(page.locator("#review-help-keys tr[data-action=category_2]")).to_contain_text("gore")
    expect(page.locator("#review-help-keys tr[data-action=grid_select_alt] kbd")).to_have_text(
        "Space"
    )
    page.keyboard.press("Escape")


def test_with_the_queue_empty_the_keys_follow_the_datasets_taxonomy(page, review_data):
    ReviewSettings.objects.create(dataset=review_data.dataset, categories=TAXONOMY[:2])
    ReviewItem.objects.all().update(state=ReviewItem.State.DECIDED)
    login(page, review_data.reviewer.username, REVIEWER_PASSWORD)
    page.goto(f"/review/?dataset={review_data.dataset.pk}")
    expect(page.locator("#review-empty")).to_be_visible()
    open_prefs(page)
    expect_category_keys(page, "#pref-key-{action}", 2)
    expect(page.locator("label[for=pref-key-category_2]")).to_contain_text("gore")
