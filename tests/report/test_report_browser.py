"""The report page in Chromium: plots drawn, data tables present, examples blurred until
revealed (no script), the answer form; screenshots at two desktop sizes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.browser.conftest import login
from tests.report.conftest import ADMIN_PASSWORD

SHOTS = Path(os.environ.get("Q16_SCREENSHOT_DIR", "/tmp/shots_report"))
VIEWPORTS = [(1366, 900), (1280, 720)]


@pytest.mark.parametrize("width, height", VIEWPORTS)
def test_report_page_in_chromium(
    browser, live_server, transactional_db, report_data, staff_user, width, height
):
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": width, "height": height}, color_scheme="dark"
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        login(page, staff_user.username, ADMIN_PASSWORD)
        page.goto(f"/datasets/{report_data.dataset.pk}/")
        page.click("#dataset-report-link")
        page.wait_for_load_state()
        assert page.url.endswith(f"/datasets/{report_data.dataset.pk}/report/")

        for plot in ("estimates", "histogram", "categories", "classes"):
            svg = page.locator(f"#plot-{plot} svg")
            assert svg.count() == 1
            box = svg.bounding_box()
            assert box is not None and box["width"] > 300 and box["height"] > 80
            assert page.locator(f"#plot-{plot} svg path").count() > 5
        assert page.locator("#plot-classes svg text", has_text="guillotine").count() == 1
        for table in ("#estimates-table", "#categories-table", "#classes-table"):
            assert page.locator(f"{table} tbody tr").count() >= 2
        assert page.locator("#histogram-table tbody tr").count() == 20
        assert page.locator("[data-count=confirmed]").inner_text() == "6"
        assert "no hash banks" in page.locator("[data-count=bank_matched]").inner_text()

        # Thumbnails load, blurred; a category's switch reveals its images only.
        thumbs = page.locator(".report-thumb")
        assert thumbs.count() == 6
        page.wait_for_function(
            "() => [...document.querySelectorAll('.report-thumb')]"
            ".every(img => img.complete && img.naturalWidth > 0)"
        )
        filters = thumbs.evaluate_all("els => els.map(el => getComputedStyle(el).filter)")
        assert all(f.startswith("blur(") for f in filters)
        page.screenshot(path=str(SHOTS / f"report-{width}x{height}.png"))
        page.screenshot(path=str(SHOTS / f"report-{width}x{height}-full.png"), full_page=True)
        page.locator("label[for=reveal-1]").click()
        first = page.locator(".report-example-group").nth(0).locator(".report-thumb")
        second = page.locator(".report-example-group").nth(1).locator(".report-thumb")
        assert (
            first.evaluate_all("els => els.map(el => getComputedStyle(el).filter)")
            == ["none"] * first.count()
        )
        assert second.first.evaluate("el => getComputedStyle(el).filter").startswith("blur(")
        page.locator("#report-examples").scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / f"report-{width}x{height}-revealed.png"))

        # Nothing overflows the viewport sideways.
        overflow = page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0

        # Publish through the form.
        page.fill("#id_answer_text", "Yes: an estimated share of the images may offend.")
        page.click("button[name=action][value=publish]")
        page.wait_for_load_state()
        assert "Answer published." in page.locator(".messages").inner_text()
        assert "Published by ada" in page.locator("#report-answer-section").inner_text()
        page.locator("#answer").scroll_into_view_if_needed()
        page.screenshot(path=str(SHOTS / f"report-{width}x{height}-published.png"))
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
