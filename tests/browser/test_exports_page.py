"""The dataset page's export form and list in a real browser: every option posts, the new
export's progress (rows / total) follows the API, and Download / Provenance appear when it is
built; a bad option answers on the page with its reason."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from curation.models import Export
from labels.exports import export_build
from tests.browser.screens import SHOT_SIZES, shots
from tests.exports.world import make_world

from .conftest import ADMIN_PASSWORD, login

pytestmark = pytest.mark.browser


@pytest.fixture
def admin(transactional_db, django_user_model):
    return django_user_model.objects.create_user(
        username="ada", password=ADMIN_PASSWORD, is_staff=True
    )


def card_shots(page, name: str) -> None:
    """The export card alone, at both sizes (the full page is long)."""
    folder = os.environ.get("Q16_SCREENSHOT_DIR")
    if not folder:
        return
    size = page.viewport_size
    for width, height in SHOT_SIZES:
        page.set_viewport_size({"width": width, "height": height})
        card = page.locator("#exports")
        card.scroll_into_view_if_needed()
        card.screenshot(path=str(Path(folder) / f"{name}-{width}x{height}.png"))
    page.set_viewport_size(size)


def test_export_form_and_list(page, admin, django_user_model, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    other = django_user_model.objects.create_user("bo", password="pw-bo-123456")
    world = make_world(admin, other, name="imagenet-val-sample")
    login(page, "ada", ADMIN_PASSWORD)
    page.goto(f"/datasets/{world.dataset.pk}/#exports")

    form = page.locator("#exports form")
    form.locator("select[name=format]").select_option("parquet")
    form.locator("select[name=scope]").select_option("flagged")
    form.locator("input[name=classes]").fill("revolver, guillotine")
    form.locator("input[name=min_score]").fill("0.5")
    form.get_by_role("button", name="Export").click()
    expect(page.get_by_text("queued")).to_be_visible()
    export = Export.objects.get()
    assert (export.format, export.scope) == ("parquet", "flagged")
    assert export.filters == {"classes": ["guillotine", "revolver"], "min_score": 0.5}
    row = page.locator(f"#export-{export.pk}")
    expect(row).to_contain_text("classes: guillotine, revolver")
    expect(row).to_contain_text("score ≥ 0.5")
    expect(row.get_by_role("link", name="Download")).to_be_hidden()

    # Progress follows the API while the worker writes; the links appear once it is done.
    Export.objects.filter(pk=export.pk).update(total=2, rows=1)
    expect(row.locator("[data-field=total]")).to_have_text("2")
    expect(row.locator("[data-field=rows]")).to_have_text("1")
    export_build(export_id=export.pk)
    expect(row.get_by_role("link", name="Download")).to_be_visible()
    expect(row.get_by_role("link", name="Provenance")).to_be_visible()
    expect(row.locator("[data-field=rows]")).to_have_text("2")

    # A second, finished keep-list export for the list, then a refused option.
    keep = Export.objects.create(dataset=world.dataset, format="csv", scope="keep", rows=5,
                                 total=5, state="succeeded", file_path="/nonexistent")  # fmt: skip
    assert keep.pk
    page.goto(f"/datasets/{world.dataset.pk}/")
    expect(page.locator(f"#export-{keep.pk}")).to_contain_text("Keep-list")
    shots(page, "exports-page")
    card_shots(page, "exports-card")
    form = page.locator("#exports form")
    form.locator("select[name=scope]").select_option("confirmed")
    form.locator("select[name=copy_kind]").select_option("imagefolder")
    form.locator("input[name=copy_target]").fill("/etc/cleaned")
    form.get_by_role("button", name="Export").click()
    expect(page.locator("#exports")).to_contain_text("choose the keep-list scope")
    card_shots(page, "exports-card-error")
    assert Export.objects.count() == 2
