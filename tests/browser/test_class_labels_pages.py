"""Class labels in a real browser: the review toolbar's class select narrows the queue, and
the statistics page shows the numbers by class (both from the real APIs)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from curation.models import Dataset, Image, Score

from .conftest import REVIEWER_PASSWORD, login

pytestmark = pytest.mark.browser

SHOTS = Path("/tmp/shots/h2")
SIZES = ((1366, 900), (1280, 720))


@pytest.fixture
def classed(review_data):
    """The review data's images labelled by their folder (night, day), with their scores."""
    for item in review_data.items:
        image = item.image
        Image.objects.filter(pk=image.pk).update(class_label=image.relative_path.split("/")[0])
        Score.objects.create(run=review_data.run, image=image, p_inappropriate=item.score)
    Dataset.objects.create(
        name="unlabelled", source_kind=Dataset.SourceKind.FOLDER, source="/x", root_path="/x",
        state=Dataset.State.READY,
    )  # fmt: skip
    review_data.reviewer.is_staff = True  # the stats page is the admins'
    review_data.reviewer.save()
    return review_data


def _shots(page, name: str) -> None:
    if not SHOTS.parent.exists():
        return
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width, height in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(200)
        page.screenshot(path=str(SHOTS / f"{name}-{width}x{height}.png"))


def test_class_select_narrows_the_queue(page, classed):
    login(page, classed.reviewer.username, REVIEWER_PASSWORD)
    page.goto(f"/review/?dataset={classed.dataset.pk}")
    options = page.eval_on_selector_all("#review-class option", "os => os.map(o => o.textContent)")
    assert options == ["Any class", "day (2)", "night (1)"]
    expect(page.locator("#review-path")).to_have_text("night/alley.png")
    page.select_option("#review-class", "day")
    page.click("#review-filters button[type=submit]")
    expect(page.locator("#review-path")).to_have_text("day/market.jpg")
    assert "class_label=day" in page.url
    _shots(page, "review-class-filter")

    # Another dataset: its classes are not these, so the select goes.
    page.set_viewport_size({"width": 1366, "height": 900})
    other = Dataset.objects.get(name="unlabelled")
    page.select_option("#review-filters select[name=dataset]", str(other.pk))
    expect(page.locator("#review-class-field")).to_be_hidden()
    page.select_option("#review-filters select[name=dataset]", str(classed.dataset.pk))
    expect(page.locator("#review-class-field")).to_be_visible()


def test_stats_page_shows_numbers_by_class(page, classed):
    login(page, classed.reviewer.username, REVIEWER_PASSWORD)
    page.goto(f"/datasets/{classed.dataset.pk}/stats/")
    expect(page.locator("#stats-classes")).to_have_attribute("data-state", "ready")
    expect(page.locator("#stats-classes")).to_be_visible()
    rows = page.eval_on_selector_all(
        "#classes-table tbody tr",
        "rows => rows.map(r => Array.from(r.cells).map(c => c.textContent.trim()))",
    )
    assert [row[:5] for row in rows] == [["day", "2", "2", "2", "0"], ["night", "1", "1", "1", "0"]]
    page.locator("#stats-classes").scroll_into_view_if_needed()
    _shots(page, "stats-by-class")
    other = Dataset.objects.get(name="unlabelled")
    page.goto(f"/datasets/{other.pk}/stats/")
    expect(page.locator("#stats-classes")).to_have_attribute("data-state", "ready")
    expect(page.locator("#stats-classes")).to_be_hidden()


def test_dataset_page_shows_import_chunks_per_worker(page, classed, tmp_path, settings):
    from curation.services import indexing
    from curation.services.datasets import dataset_create_from_folder, dataset_import

    from .conftest import write_image

    folder = tmp_path / "chunked"
    for i in range(6):
        (folder / ("cats" if i % 2 else "dogs")).mkdir(parents=True, exist_ok=True)
        write_image(
            folder / ("cats" if i % 2 else "dogs") / f"{i}.png",
            size=(40, 30), colour=(40 * i, 90, 120), fmt="PNG",
        )  # fmt: skip
    settings.Q16_INDEX_CHUNK_SIZE = 2
    dataset = dataset_create_from_folder(
        name="chunked", folder=str(folder), queue=False, class_folders=True
    )
    dataset = dataset_import(dataset_id=dataset.pk, queue_chunks=True)  # planned, not run
    for chunk, worker in zip(
        dataset.import_chunks.order_by("index"), ("cpu-1@a", "cpu-2@b", "cpu-1@a"), strict=True
    ):
        indexing.index_chunk_process(chunk_id=chunk.pk, worker=worker)
    login(page, classed.reviewer.username, REVIEWER_PASSWORD)
    page.goto(f"/datasets/{dataset.pk}/")
    box = page.locator("[data-import-chunks]")
    expect(box).to_contain_text("3 of 3 done")
    expect(box.locator("[data-worker='cpu-1@a']")).to_contain_text("2 chunks done")
    expect(box.locator("[data-worker='cpu-2@b']")).to_contain_text("2 files")
    box.scroll_into_view_if_needed()
    _shots(page, "dataset-import-chunks")
