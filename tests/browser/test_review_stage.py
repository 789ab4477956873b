"""The single view shows the whole image (issue 11): fitted inside the stage at any aspect
ratio and window size, the stage inside the window without scrolling, small images enlarged
at most MAX_UPSCALE (4) times; zoom, pan and the full-window view by key, none of which
reveals a blurred image. Grid tiles and duplicate thumbnails show the whole image too."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pytest
from playwright.sync_api import expect

from curation.models import Dataset, Image, PromptVersion, ScoringRun
from reviewer.models import Decision, ReviewItem
from worker.engine.store import prompts_to_bytes

from .conftest import REVIEWER_PASSWORD, login, write_image

pytestmark = pytest.mark.browser

MAX_UPSCALE = 4  # static/js/review/stage.js
BLURRED = re.compile(r"\bis-blurred\b")
WINDOWS = [(1366, 900), (1280, 720), (1024, 640)]
# (name, size, score): highest score first, so the queue serves them in this order.
PICTURES = [
    ("landscape-4x3.png", (1600, 1200), 0.95),
    ("portrait.png", (81, 364), 0.9),
    ("tiny.png", (16, 16), 0.85),
    ("panorama.png", (1500, 220), 0.8),
]
SHOWS_ITEM = (
    "id => { const img = document.getElementById('review-image');"
    " const stage = document.getElementById('review-stage');"
    " return stage.dataset.itemId === id && !stage.classList.contains('is-loading')"
    " && img.complete && img.naturalWidth > 0; }"
)
MEASURE = """() => {
  const box = (node) => { const r = node.getBoundingClientRect();
    return { left: r.left, top: r.top, right: r.right, bottom: r.bottom, width: r.width, height: r.height }; };
  const img = document.getElementById('review-image');
  const stage = document.getElementById('review-stage');
  return { img: box(img), stage: box(stage), inner: { width: stage.clientWidth, height: stage.clientHeight },
           natural: { width: img.naturalWidth, height: img.naturalHeight },
           window: { width: window.innerWidth, height: window.innerHeight }, scrollY: window.scrollY,
           zoom: stage.dataset.zoom, filter: getComputedStyle(img).filter };
}"""


@dataclass
class Pictures:
    reviewer: object
    dataset: object
    items: list  # in queue order: landscape, portrait, tiny, panorama


@pytest.fixture
def pictures(transactional_db, django_user_model, tmp_path) -> Pictures:
    reviewer = django_user_model.objects.create_user(username="rita", password=REVIEWER_PASSWORD)
    folder = tmp_path / "shapes"
    folder.mkdir()
    dataset = Dataset.objects.create(
        name="shapes", source_kind=Dataset.SourceKind.FOLDER, source=str(folder),
        root_path=str(folder), state=Dataset.State.READY, total=4, processed=4,
    )  # fmt: skip
    version = PromptVersion.objects.create(
        name="tiny zero-shot", model_key="q16-tiny/test", dim=2,
        vectors=prompts_to_bytes(np.zeros((2, 2), np.float32)),
        source=PromptVersion.Source.ZERO_SHOT,
    )  # fmt: skip
    run = ScoringRun.objects.create(
        dataset=dataset, prompt_version=version, model_key="q16-tiny/test", threshold=0.5,
        state=ScoringRun.State.SUCCEEDED, total=4, processed=4, flagged=4,
    )  # fmt: skip
    items = []
    for index, (name, size, score) in enumerate(PICTURES):
        path = folder / name
        colour = (200 - 40 * index, 80 + 30 * index, 120)
        sha = write_image(path, size=size, colour=colour, fmt="PNG")
        image = Image.objects.create(
            dataset=dataset, relative_path=name, sha256=sha, format="PNG", width=size[0],
            height=size[1], bytes=path.stat().st_size, status=Image.Status.OK,
        )  # fmt: skip
        items.append(ReviewItem.objects.create(dataset=dataset, image=image, score=score, run=run))
    return Pictures(reviewer=reviewer, dataset=dataset, items=items)


# Resize observers report at the next frame: measure after two, when every one has run.
NEXT_FRAMES = (
    "() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))"
)


def show(page, item) -> dict:
    page.wait_for_function(SHOWS_ITEM, arg=str(item.pk))
    page.evaluate(NEXT_FRAMES)
    return page.evaluate(MEASURE)


def assert_whole_image_in_view(m: dict, name: str, size: tuple[int, int]) -> None:
    img, stage, window = m["img"], m["stage"], m["window"]
    where = f"{name} at {window['width']}x{window['height']}: {m}"
    slack = 1.0  # sub-pixel rounding of borders and centring
    # The whole image is inside the stage...
    assert img["left"] >= stage["left"] - slack and img["right"] <= stage["right"] + slack, where
    assert img["top"] >= stage["top"] - slack and img["bottom"] <= stage["bottom"] + slack, where
    # ...and the stage inside the window, without scrolling.
    assert m["scrollY"] == 0, where
    assert stage["top"] >= 0 and stage["bottom"] <= window["height"], where
    assert stage["left"] >= 0 and stage["right"] <= window["width"], where
    # Not distorted: the picture's own aspect ratio.
    width, height = size
    assert (m["natural"]["width"], m["natural"]["height"]) == size, where
    assert abs(img["width"] / img["height"] - width / height) <= 0.02 * width / height + 1.5 / min(
        img["width"], img["height"]
    ), where
    # As large as fits, but a small picture at most MAX_UPSCALE times its pixel size.
    scale = img["width"] / width
    assert scale <= MAX_UPSCALE + 0.01, where
    fills_width = img["width"] >= m["inner"]["width"] - 2
    fills_height = img["height"] >= m["inner"]["height"] - 2
    assert fills_width or fills_height or scale >= MAX_UPSCALE - 0.01, where


def test_the_whole_image_is_shown_at_every_aspect_ratio_and_window_size(page, pictures, screenshot):
    login(page, pictures.reviewer.username, REVIEWER_PASSWORD)
    for number, (width, height) in enumerate(WINDOWS):
        page.set_viewport_size({"width": width, "height": height})
        if number == 0:
            page.goto(f"/review/?dataset={pictures.dataset.pk}")
        else:  # the same page, resized under the reviewer: back to the first leased image
            for _ in range(2):
                page.keyboard.press("k")
        # The single view leases three ahead: the panorama comes once one of them is decided.
        shown = list(zip(pictures.items, PICTURES, strict=True))[:3]
        for index, (item, (name, size, _)) in enumerate(shown):
            if index:
                page.keyboard.press("j")
            measured = show(page, item)
            assert_whole_image_in_view(measured, name, size)
            assert BLURRED.search(page.get_attribute("#review-image", "class") or "")
            if name == "tiny.png":
                assert measured["img"]["width"] == pytest.approx(16 * MAX_UPSCALE, abs=1)
            if width != 1024 or name == "portrait.png":
                screenshot(f"stage-{width}x{height}-{name.removesuffix('.png')}")
            # Revealed: the same box (nothing but the blur changes).
            page.keyboard.press("v")
            expect(page.locator("#review-image")).not_to_have_class(BLURRED)
            assert page.evaluate(MEASURE)["img"] == measured["img"]
            if width != 1024 and name != "tiny.png":
                page.wait_for_function(  # revealing fades in over 150 ms
                    "() => getComputedStyle(document.getElementById('review-image')).filter"
                    " === 'none'"
                )
                screenshot(f"stage-{width}x{height}-{name.removesuffix('.png')}-revealed")
            page.keyboard.press("v")
            expect(page.locator("#review-image")).to_have_class(BLURRED)
        # Skipping the first brings the panorama in at the end of what is leased.
        for _ in range(2):
            page.keyboard.press("k")
        show(page, pictures.items[0])
        page.keyboard.press("s")
        show(page, pictures.items[1])
        page.keyboard.press("j")
        show(page, pictures.items[2])
        expect(page.locator("#review-position")).to_contain_text("/ 3")
        page.keyboard.press("j")
        measured = show(page, pictures.items[3])
        assert_whole_image_in_view(measured, "panorama.png", PICTURES[3][1])
        if width != 1024:
            screenshot(f"stage-{width}x{height}-panorama")
        # Undo brings the skipped one back (first), for the next window size.
        page.keyboard.press("u")
        show(page, pictures.items[0])
        expect(page.locator("#review-status")).to_contain_text("Undone")
    assert not Decision.objects.filter(retraction__isnull=True).exists()


def blur_px(filter_text: str) -> float:
    match = re.search(r"blur\(([\d.]+)px\)", filter_text)
    assert match, filter_text
    return float(match.group(1))


def test_zoom_pan_and_full_view_keep_the_blur(page, pictures, screenshot):
    landscape, portrait, _, _ = pictures.items
    login(page, pictures.reviewer.username, REVIEWER_PASSWORD)
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(f"/review/?dataset={pictures.dataset.pk}")
    fit = show(page, landscape)
    assert fit["zoom"] == "1.00"
    level = page.text_content("#review-zoom-level") or ""
    assert re.fullmatch(r"\d+ %", level), level
    assert int(level.split()[0]) == pytest.approx(fit["img"]["width"] / 1600 * 100, abs=1)
    expect(page.locator("#review-zoom-out")).to_be_disabled()

    # + zooms in: a larger, still blurred image, its blur enlarged with it.
    page.keyboard.press("+")
    expect(page.locator("#review-stage")).to_have_attribute("data-zoom", "1.50")
    zoomed = page.evaluate(MEASURE)
    assert zoomed["img"]["width"] == pytest.approx(fit["img"]["width"] * 1.5, rel=0.01)
    expect(page.locator("#review-image")).to_have_class(BLURRED)
    expect(page.locator("#review-stage")).to_have_class(BLURRED)
    assert blur_px(zoomed["filter"]) == blur_px(fit["filter"])  # scaled by the transform
    screenshot("stage-zoomed-blurred")

    # Shift + ← pans (the image moves right), it does not go to the previous item.
    page.keyboard.press("Shift+ArrowLeft")
    page.wait_for_function(
        "left => document.getElementById('review-image').getBoundingClientRect().left > left + 1",
        arg=zoomed["img"]["left"],
    )
    expect(page.locator("#review-stage")).to_have_attribute("data-item-id", str(landscape.pk))
    # Dragging pans too, and the pan stops where the image's edge meets the stage's.
    stage = page.locator("#review-stage").bounding_box()
    assert stage is not None
    page.mouse.move(stage["x"] + stage["width"] / 2, stage["y"] + stage["height"] / 2)
    page.mouse.down()
    page.mouse.move(stage["x"] + stage["width"] - 5, stage["y"] + stage["height"] - 5, steps=4)
    page.mouse.up()
    dragged = page.evaluate(MEASURE)
    assert dragged["img"]["left"] == pytest.approx(dragged["stage"]["left"] + 1, abs=2)
    assert dragged["img"]["top"] <= dragged["stage"]["top"] + 2
    expect(page.locator("#review-image")).to_have_class(BLURRED)

    # 0: the whole image again.
    page.keyboard.press("0")
    expect(page.locator("#review-stage")).to_have_attribute("data-zoom", "1.00")
    assert page.evaluate(MEASURE)["img"] == fit["img"]

    # f: the full-window view, the image fitted to the window, still blurred, and no less so.
    page.keyboard.press("f")
    expect(page.locator("#review-stage")).to_have_class(re.compile(r"\bis-full\b"))
    expect(page.locator("#review-full-view")).to_have_attribute("aria-pressed", "true")
    full = page.evaluate(MEASURE)
    assert full["stage"] == {
        "left": 0, "top": 0, "right": 1366, "bottom": 900, "width": 1366, "height": 900,
    }  # fmt: skip
    assert full["img"]["width"] > fit["img"]["width"]
    assert full["img"]["top"] >= 0 and full["img"]["bottom"] <= 900
    expect(page.locator("#review-image")).to_have_class(BLURRED)
    assert (
        blur_px(full["filter"])
        >= blur_px(fit["filter"]) * full["img"]["width"] / fit["img"]["width"] - 0.5
    )
    screenshot("stage-full-view-blurred")
    # A verdict in the full view: the next image arrives blurred, whole, still full-window.
    page.keyboard.press("+")
    page.keyboard.press("r")
    after = show(page, portrait)
    assert after["zoom"] == "1.00"
    expect(page.locator("#review-image")).to_have_class(BLURRED)
    expect(page.locator("#review-stage")).to_have_class(re.compile(r"\bis-full\b"))
    assert after["img"]["bottom"] <= 900 and after["img"]["top"] >= 0
    assert Decision.objects.get(item=landscape).verdict == "appropriate"
    # Esc leaves the full view; nothing else happens.
    page.keyboard.press("Escape")
    expect(page.locator("#review-stage")).not_to_have_class(re.compile(r"\bis-full\b"))
    assert_whole_image_in_view(page.evaluate(MEASURE), "portrait.png", PICTURES[1][1])

    # Revealed on request only; zooming a revealed image keeps it revealed.
    page.keyboard.press("v")
    expect(page.locator("#review-image")).not_to_have_class(BLURRED)
    page.click("#review-zoom-in")
    expect(page.locator("#review-stage")).to_have_attribute("data-zoom", "1.50")
    expect(page.locator("#review-image")).not_to_have_class(BLURRED)
    page.click("#review-zoom-fit")
    expect(page.locator("#review-stage")).to_have_attribute("data-zoom", "1.00")
    # Not zoomed, Shift + → is the plain arrow again: the next leased item, blurred.
    page.keyboard.press("Shift+ArrowRight")
    show(page, pictures.items[2])
    expect(page.locator("#review-image")).to_have_class(BLURRED)

    # The help lists the new keys.
    page.keyboard.press("?")
    keys = page.locator("#review-help-keys")
    expect(keys.locator("tr[data-action=zoom_in] kbd")).to_have_text("+")
    expect(keys.locator("tr[data-action=zoom_out] kbd")).to_have_text("-")
    expect(keys.locator("tr[data-action=zoom_fit] kbd")).to_have_text("0")
    expect(keys.locator("tr[data-action=full_view] kbd")).to_have_text("F")
    expect(keys.locator("tr[data-action=pan_left] kbd")).to_have_text("Shift+←")
    page.keyboard.press("Escape")


def test_grid_tiles_and_thumbnails_show_the_whole_image(page, pictures, screenshot):
    login(page, pictures.reviewer.username, REVIEWER_PASSWORD)
    page.goto(f"/review/?dataset={pictures.dataset.pk}&view=grid")
    expect(page.locator("#review-grid .tile")).to_have_count(len(PICTURES))
    page.wait_for_function(
        "() => Array.from(document.querySelectorAll('#review-grid .tile-img'))"
        ".every((img) => img.complete && img.naturalWidth > 0)"
    )
    fits = page.eval_on_selector_all(
        "#review-grid .tile-img", "imgs => imgs.map((img) => getComputedStyle(img).objectFit)"
    )
    assert fits == ["contain"] * len(PICTURES)
    # The image box is the tile's frame (a blurred tile is enlarged a little by a transform,
    # which layout boxes do not count); "contain" draws the whole picture inside it.
    inside = page.eval_on_selector_all(
        "#review-grid .tile-img",
        """imgs => imgs.map((img) => { const frame = img.parentElement;
          return img.offsetLeft >= 0 && img.offsetTop >= 0
            && img.offsetLeft + img.offsetWidth <= frame.clientWidth
            && img.offsetTop + img.offsetHeight <= frame.clientHeight; })""",
    )
    assert inside == [True] * len(PICTURES)
    # Shift + an arrow still moves in the grid (the pan keys are the single view's).
    page.keyboard.press("Shift+ArrowRight")
    expect(page.locator("#review-grid .tile").nth(1)).to_have_class(re.compile(r"\bis-current\b"))
    page.keyboard.press("f")  # the full view is the single view's
    expect(page.locator("#review-stage")).not_to_have_class(re.compile(r"\bis-full\b"))
    screenshot("grid-contain")
    thumb_fit = page.evaluate(
        "() => { const img = document.createElement('img'); img.className = 'thumb-img';"
        " document.body.appendChild(img); const fit = getComputedStyle(img).objectFit;"
        " img.remove(); return fit; }"
    )
    assert thumb_fit == "contain"
