"""Hash banks in Chromium: upload a bank through the page, see its matches and the dataset's
matched images (blurred until revealed, whole inside their boxes) at two window sizes."""

from __future__ import annotations

import pytest

from curation.services.banks import bank_match_all_datasets
from tests.banks.conftest import export_csv, image, import_folder, reencoded, textured_image
from tests.browser.conftest import ADMIN_PASSWORD, login

SIZES = [(1366, 900), (1280, 720)]


@pytest.fixture
def datasets(transactional_db, admin_user, tmp_path):
    source_dir, other_dir = tmp_path / "source", tmp_path / "other"
    source_dir.mkdir()
    other_dir.mkdir()
    for seed in range(4):
        img = textured_image(seed)
        img.save(source_dir / f"original-{seed}.png")
        if seed < 3:
            reencoded(img, scale=0.6 + 0.1 * seed).save(other_dir / f"copy-{seed}.jpg")
    textured_image(50).resize((320, 180)).save(other_dir / "unrelated-wide.png")
    return import_folder("source", source_dir), import_folder("other", other_dir)


def no_horizontal_overflow(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def thumbs_whole_and_blurred(page, blurred: bool) -> int:
    # Thumbnails are made on first request: wait until each has loaded (or failed).
    page.wait_for_function(
        "() => [...document.querySelectorAll('.bank-match-thumb img')].every(i => i.complete)",
        timeout=30_000,
    )
    boxes = page.evaluate(
        """() => [...document.querySelectorAll('.bank-match-thumb img')].map(img => {
            const box = img.parentElement.getBoundingClientRect();
            const r = img.getBoundingClientRect();
            return {inside: r.left >= box.left - 0.5 && r.right <= box.right + 0.5 &&
                            r.top >= box.top - 0.5 && r.bottom <= box.bottom + 0.5,
                    loaded: img.complete && img.naturalWidth > 0,
                    filter: getComputedStyle(img).filter};
        })"""
    )
    assert boxes and all(b["inside"] and b["loaded"] for b in boxes), boxes
    assert all(("blur" in b["filter"]) == blurred for b in boxes), boxes
    return len(boxes)


def test_bank_pages_and_matched_images(page, datasets, admin_user, screenshot, tmp_path):
    source, other = datasets
    login(page, "admin", ADMIN_PASSWORD)
    bank_file = tmp_path / "blocklist.csv"
    bank_file.write_bytes(export_csv([image(source, f"original-{i}.png") for i in range(3)]))

    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto("/banks/")
    page.fill("#id_name", "Known bad (shared)")
    page.fill("#id_description", "Confirmed images of the source dataset, exported as CSV.")
    page.set_input_files("#id_file", str(bank_file))
    page.click("#bank-create-form button[type=submit]")
    page.wait_for_load_state()
    assert "/banks/" in page.url and "Hash bank “Known bad (shared)” created" in page.content()
    bank_id = int(page.url.rstrip("/").rsplit("/", 1)[1])
    bank_match_all_datasets(bank_id=bank_id)  # the match_hash_bank task's work

    for width, height in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        page.goto("/banks/")
        assert (
            page.locator("#bank-table tr[id^=bank-] [data-field=matched_images]").inner_text()
            == "6"
        )
        no_horizontal_overflow(page)
        screenshot(f"banks-{width}x{height}")

        page.goto(f"/banks/{bank_id}/")
        assert page.locator("#bank-matched-images").inner_text() == "6"
        assert thumbs_whole_and_blurred(page, blurred=True) == 6
        no_horizontal_overflow(page)
        screenshot(f"bank-detail-{width}x{height}")

        page.goto(f"/datasets/{other.pk}/")
        assert page.locator("#dataset-bank-matched").inner_text() == "3"
        card = page.locator("#bank-matches")
        card.scroll_into_view_if_needed()
        assert card.locator("text=Known bad (shared)").count() == 3
        assert thumbs_whole_and_blurred(page, blurred=True) == 3
        no_horizontal_overflow(page)
        screenshot(f"dataset-matched-{width}x{height}")
        card.locator("label[for^=reveal-matches]").click()
        assert thumbs_whole_and_blurred(page, blurred=False) == 3
        screenshot(f"dataset-matched-revealed-{width}x{height}")
