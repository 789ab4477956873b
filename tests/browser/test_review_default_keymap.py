"""The review script takes its default keys from the page (the server's DEFAULT_KEYMAP): the
preferences' "Default keys" button restores what the server hands over, and those keys work."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from reviewer.models import DEFAULT_KEYMAP

from .conftest import REVIEWER_PASSWORD, login

pytestmark = pytest.mark.browser


def test_default_keys_button_restores_the_servers_keymap(page, review_data, monkeypatch):
    # A server whose default switches views with "t" (the reviewer's saved keys still say "g").
    monkeypatch.setattr("reviewer.views.DEFAULT_KEYMAP", {**DEFAULT_KEYMAP, "toggle_view": "t"})
    login(page, review_data.reviewer.username, REVIEWER_PASSWORD)
    page.goto(f"/review/?dataset={review_data.dataset.pk}")
    expect(page.locator("#review-stage")).to_have_attribute(
        "data-item-id", str(review_data.items[0].pk)
    )

    page.click("#review-prefs-open")
    expect(page.locator("#pref-key-toggle_view")).to_have_value("g")
    page.click("#review-prefs-reset")
    expect(page.locator("#pref-key-toggle_view")).to_have_value("t")
    expect(page.locator("#pref-key-confirm_near")).to_have_value("Shift+c")
    page.click("#review-prefs-save")
    expect(page.locator("#review-prefs")).to_be_hidden()
    expect(page.locator("#review-status")).to_have_text("Preferences saved.")

    page.keyboard.press("t")
    expect(page.locator("#review-grid-view")).to_be_visible()
    expect(page.locator("#review-grid .tile")).to_have_count(3)
