"""The review settings page in a real browser: an admin changes every setting (categories
renamed, reordered with the move buttons, removed and added), sees them saved; bad input
comes back with the errors next to the fields."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from audit.models import AuditEvent
from curation.models import PromptPolicy
from reviewer.models import Decision, ReviewSettings

from .conftest import ADMIN_PASSWORD, login
from .screens import shots

pytestmark = pytest.mark.browser


@pytest.fixture
def admin(transactional_db, django_user_model):
    return django_user_model.objects.create_user(
        username="ada", password=ADMIN_PASSWORD, is_staff=True
    )


def category_names(page) -> list[str]:
    return page.locator("#category-rows tbody tr [name$='-name']").evaluate_all(
        "inputs => inputs.map(input => input.value)"
    )


def keys(page) -> list[str]:
    return page.locator("#category-rows [data-category-key]").all_inner_texts()


def row(page, name: str):
    return page.locator("#category-rows tbody tr").filter(
        has=page.locator(f"input[name$='-original'][value='{name}']")
    )


def test_an_admin_edits_every_review_setting(page, admin, review_data):
    dataset, reviewer = review_data.dataset, review_data.reviewer
    ReviewSettings.objects.create(dataset=dataset, categories=["weapons", "gore", "other"])
    Decision.objects.create(
        item=review_data.items[0], image=review_data.items[0].image, reviewer=reviewer,
        verdict="inappropriate", category="weapons",
    )  # fmt: skip
    login(page, "ada", ADMIN_PASSWORD)
    page.goto(f"/datasets/{dataset.pk}/")
    page.click("#dataset-settings-link")
    expect(page.locator("h1")).to_have_text("Review settings")
    assert category_names(page)[:3] == ["weapons", "gore", "other"]
    assert keys(page)[:3] == ["1", "2", "3"]
    shots(page, "settings-page")

    page.fill("#id_required_verdicts", "2")
    page.fill("#id_near_duplicate_distance", "9")
    page.fill("#id_audit_share_percent", "10")
    page.check("#id_auto_retrain")
    page.fill("#id_auto_retrain_every", "30")
    page.select_option("#id_pinned_version", str(review_data.run.prompt_version_id))
    # Rename "weapons", move "other" to the top, remove "gore", add "hate".
    row(page, "weapons").locator("input[name$='-name']").fill("arms")
    row(page, "other").locator("[data-move=up]").click()
    row(page, "other").locator("[data-move=up]").click()
    row(page, "gore").locator("input[name$='-DELETE']").check()
    page.click("#category-add")
    page.locator("#category-rows tbody tr").last.locator("input[name$='-name']").fill("hate")
    assert category_names(page)[:3] == ["other", "arms", "gore"]
    # Keys follow the order and skip the removed row.
    assert keys(page)[:3] == ["1", "2", "—"]
    shots(page, "settings-edited")
    page.click("#save-settings")

    expect(page.locator(".message-success")).to_have_text("Review settings saved.")
    rules = ReviewSettings.objects.get(dataset=dataset)
    assert rules.required_verdicts == 2 and rules.near_duplicate_distance == 9
    assert rules.audit_share == pytest.approx(0.1)
    assert rules.categories == ["other", "arms", "hate"]
    policy = PromptPolicy.objects.get(dataset=dataset)
    assert policy.auto_retrain_every == 30
    assert policy.pinned_version_id == review_data.run.prompt_version_id
    assert Decision.objects.get(item=review_data.items[0]).category == "arms"
    assert AuditEvent.objects.filter(action="review_settings.update").count() == 1
    # The page shows what was saved.
    expect(page.locator("#id_required_verdicts")).to_have_value("2")
    expect(page.locator("#id_audit_share_percent")).to_have_value("10.0")
    expect(page.locator("#id_auto_retrain")).to_be_checked()
    assert category_names(page)[:3] == ["other", "arms", "hate"]
    assert keys(page)[:3] == ["1", "2", "3"]
    shots(page, "settings-saved")

    # Retraining off, unpinned.
    page.uncheck("#id_auto_retrain")
    page.select_option("#id_pinned_version", "")
    page.click("#save-settings")
    expect(page.locator(".message-success")).to_be_visible()
    policy.refresh_from_db()
    assert policy.auto_retrain_every is None and policy.pinned_version_id is None
    # Reachable from the statistics page too.
    page.goto(f"/datasets/{dataset.pk}/stats/")
    page.click("#stats-settings-link")
    expect(page.locator("h1")).to_have_text("Review settings")


def test_bad_input_shows_inline_errors_and_keeps_what_was_typed(page, admin, review_data):
    dataset = review_data.dataset
    login(page, "ada", ADMIN_PASSWORD)
    page.goto(f"/review/datasets/{dataset.pk}/settings/")
    page.fill("#id_required_verdicts", "0")
    page.fill("#id_near_duplicate_distance", "12")
    page.fill("#id_audit_share_percent", "80")
    page.check("#id_auto_retrain")
    page.fill("#id_auto_retrain_every", "")  # pre-filled with the default: clear it
    first = page.locator("#category-rows tbody tr").first.locator("input[name$='-name']")
    second = page.locator("#category-rows tbody tr").nth(1).locator("input[name$='-name']")
    second.fill(first.input_value())
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.click("#save-settings")
    assert posted.value.status == 400
    expect(page.locator(".has-error .field-error")).to_have_count(3)
    expect(page.locator(".field-error").first).to_contain_text("greater than or equal to 1")
    expect(page.get_by_text("less than or equal to 50")).to_be_visible()
    expect(page.get_by_text("after how many verdicts")).to_be_visible()
    expect(page.locator("#categories .form-errors")).to_contain_text("Each name once")
    expect(page.locator("#id_near_duplicate_distance")).to_have_value("12")
    shots(page, "settings-errors")
    rules = ReviewSettings.objects.filter(dataset=dataset).first()
    assert rules is None or rules.required_verdicts == 1
    # Fixing the mistakes saves.
    page.fill("#id_required_verdicts", "1")
    page.fill("#id_audit_share_percent", "5")
    page.uncheck("#id_auto_retrain")
    page.locator("#category-rows tbody tr").nth(1).locator("input[name$='-name']").fill("other2")
    page.click("#save-settings")
    expect(page.locator(".message-success")).to_have_text("Review settings saved.")
    assert ReviewSettings.objects.get(dataset=dataset).audit_share == pytest.approx(0.05)
