"""The review experience end to end in Chromium: keyboard-only triage, blur until revealed,
undo, grid bulk verdicts, near-duplicates, preferences and two reviewers side by side."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pytest
from playwright.sync_api import expect

from curation.models import Dataset, Image, PromptVersion, ScoringRun
from reviewer.models import Decision, ReviewerPreferences, ReviewItem
from reviewer.selectors.verdicts import images_with_latest_verdict
from reviewer.services.items import review_items_sync
from worker.engine.store import prompts_to_bytes

from .conftest import REVIEWER_PASSWORD, login, write_image

pytestmark = pytest.mark.browser

BLURRED = re.compile(r"\bis-blurred\b")
SHOWS_ITEM = (
    "id => { const img = document.getElementById('review-image');"
    " const stage = document.getElementById('review-stage');"
    " return stage.dataset.itemId === id && !stage.classList.contains('is-loading')"
    " && img.complete && img.naturalWidth > 0; }"
)


@dataclass
class Queue:
    reviewer: object
    dataset: object
    run: object
    items: list  # pending items, highest score first
    images: list


def build_queue(tmp_path, *, n: int, name: str = "street photos", extra=()) -> Queue:
    """n real images flagged by a scoring run, through the backend's review_items_sync."""
    folder = tmp_path / name.replace(" ", "-")
    folder.mkdir()
    dataset = Dataset.objects.create(
        name=name, source_kind=Dataset.SourceKind.FOLDER, source=str(folder),
        root_path=str(folder), state=Dataset.State.READY, total=n, processed=n,
    )  # fmt: skip
    version = PromptVersion.objects.create(
        name=f"tiny {name}", model_key="q16-tiny/test", dim=2,
        vectors=prompts_to_bytes(np.zeros((2, 2), np.float32)),
        source=PromptVersion.Source.ZERO_SHOT,
    )  # fmt: skip
    run = ScoringRun.objects.create(
        dataset=dataset, prompt_version=version, model_key="q16-tiny/test", threshold=0.5,
        state=ScoringRun.State.SUCCEEDED, total=n, processed=n, flagged=n,
    )  # fmt: skip
    images = []
    for index in range(n):
        relative = f"batch{index % 3}/img{index:02d}.png"
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        colour = (40 + (index * 37) % 200, 60 + (index * 53) % 180, 90 + (index * 71) % 160)
        sha = write_image(path, size=(96, 72), colour=colour, fmt="PNG")
        images.append(
            Image.objects.create(
                dataset=dataset,
                relative_path=relative,
                sha256=sha,
                format="PNG",
                width=96,
                height=72,
                bytes=path.stat().st_size,
                status=Image.Status.OK,
            )  # fmt: skip
        )
    review_items_sync(run=run, scores={image.pk: 0.99 - 0.01 * i for i, image in enumerate(images)})
    items = list(ReviewItem.objects.filter(dataset=dataset).order_by("-score", "id"))
    return Queue(reviewer=None, dataset=dataset, run=run, items=items, images=images)


@pytest.fixture
def reviewer(transactional_db, django_user_model):
    return django_user_model.objects.create_user(username="rita", password=REVIEWER_PASSWORD)


@pytest.fixture
def queue20(transactional_db, reviewer, tmp_path) -> Queue:
    queue = build_queue(tmp_path, n=20)
    queue.reviewer = reviewer
    return queue


def stage_id(page) -> str:
    return page.get_attribute("#review-stage", "data-item-id")


def expect_item(page, item) -> None:
    """The stage shows this item, blurred, with its image loaded (polled every frame, not
    with expect()'s back-off, so twenty items take seconds)."""
    try:
        page.wait_for_function(SHOWS_ITEM, arg=str(item.pk), polling="raf", timeout=5_000)
    except Exception as exc:
        status = page.text_content("#review-status")
        raise AssertionError(
            f"item {item.pk} not shown: stage {stage_id(page)!r}, status {status!r}"
        ) from exc
    expect(page.locator("#review-stage")).to_have_class(BLURRED)
    expect(page.locator("#review-image")).to_have_class(BLURRED)


QUEUE_SETTLED = (
    "() => { const s = document.getElementById('review-stage');"
    " const e = document.getElementById('review-empty');"
    " return (s.dataset.itemId && !s.classList.contains('is-loading')) || !e.hidden; }"
)


def open_review(page, username: str, query: str = "") -> None:
    """Log in; reviewers land on the review page. Wait for its first lease before going
    elsewhere: a lease still in flight would hold the queue head while the next page loads."""
    login(page, username, REVIEWER_PASSWORD)
    assert "/review/" in page.url
    page.wait_for_function(QUEUE_SETTLED, polling="raf")
    if query:
        page.goto(f"/review/{query}")


def test_triage_twenty_items_with_the_keyboard_alone(page, queue20, screenshot):
    open_review(page, queue20.reviewer.username)
    keys = ["c", "r", "3", "r", "c"]  # confirm, reject, confirm as category 3, ...
    for index, item in enumerate(queue20.items):
        expect_item(page, item)
        if index == 0:
            expect(page.locator("#review-path")).to_have_text(item.image.relative_path)
            expect(page.locator("#review-folder-value")).to_have_text("batch0")
            expect(page.locator("#review-categories button")).to_have_count(7)
            screenshot("review-single")
        page.keyboard.press(keys[index % len(keys)])
    expect(page.locator("#review-empty")).to_be_visible()
    expect(page.locator("#review-status")).to_contain_text("Queue empty")
    expect(page.locator("#review-count")).to_have_text("20")
    expect(page.locator("#review-seen")).to_have_text("20")

    decisions = {d.item_id: d for d in Decision.objects.filter(reviewer=queue20.reviewer)}
    assert len(decisions) == 20
    for index, item in enumerate(queue20.items):
        key = keys[index % len(keys)]
        decision = decisions[item.pk]
        expected = "appropriate" if key == "r" else "inappropriate"
        assert decision.verdict == expected
        assert decision.category == ("dead or harmed animals" if key == "3" else "")
    assert not ReviewItem.objects.filter(dataset=queue20.dataset, state="pending").exists()


def test_images_stay_blurred_until_revealed(page, queue20):
    first, second = queue20.items[:2]
    open_review(page, queue20.reviewer.username)
    expect_item(page, first)
    image_filter = page.eval_on_selector("#review-image", "img => getComputedStyle(img).filter")
    assert "blur(24px)" in image_filter and "grayscale(1)" in image_filter
    page.keyboard.press("v")
    expect(page.locator("#review-image")).not_to_have_class(BLURRED)
    page.wait_for_function(
        "() => getComputedStyle(document.getElementById('review-image')).filter === 'none'"
    )
    page.keyboard.press("r")
    # The next image arrives blurred again, whatever the previous one was.
    expect_item(page, second)
    expect(page.locator("#review-reveal")).to_have_attribute("aria-pressed", "false")


def test_undo_restores_the_previous_item_and_retracts_its_verdict(page, queue20):
    first, second = queue20.items[:2]
    open_review(page, queue20.reviewer.username)
    expect_item(page, first)
    page.keyboard.press("c")
    expect_item(page, second)
    expect(page.locator("#review-count")).to_have_text("1")

    page.keyboard.press("u")
    expect_item(page, first)  # back, blurred, leased to this reviewer again
    expect(page.locator("#review-status")).to_contain_text("Undone")
    expect(page.locator("#review-count")).to_have_text("0")
    expect(page.locator("#review-history .is-retracted")).to_have_count(1)
    decision = Decision.objects.get(item=first)
    assert hasattr(decision, "retraction")
    latest = images_with_latest_verdict(dataset_id=queue20.dataset.pk).get(pk=first.image_id)
    assert latest.verdict is None  # the retracted verdict no longer counts
    assert ReviewItem.objects.get(pk=first.pk).state == ReviewItem.State.PENDING

    # A new verdict on the restored item; then the queue carries on with the second one.
    page.keyboard.press("r")
    expect_item(page, second)
    latest = images_with_latest_verdict(dataset_id=queue20.dataset.pk).get(pk=first.image_id)
    assert latest.verdict == "appropriate"


def test_bulk_reject_in_grid_view(page, queue20, screenshot):
    open_review(page, queue20.reviewer.username)
    expect_item(page, queue20.items[0])
    page.keyboard.press("g")  # switch to the grid
    tiles = page.locator("#review-grid .tile")
    expect(tiles).to_have_count(20)
    assert "view=grid" in page.url
    expect(tiles.first).to_have_class(re.compile(r"\bis-current\b"))
    assert page.locator("#review-grid .tile.is-blurred").count() == 20
    blur = page.eval_on_selector("#review-grid .tile-img", "img => getComputedStyle(img).filter")
    assert "blur" in blur

    # x selects the focused tile, arrows / j move: tiles 0, 1 and 3.
    page.keyboard.press("x")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("x")
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press(" ")
    page.keyboard.press("v")  # reveals the focused tile only
    expect(tiles.nth(3)).not_to_have_class(BLURRED)
    assert page.locator("#review-grid .tile.is-blurred").count() == 19
    expect(page.locator("#review-selected-count")).to_have_text("3")
    chosen = [queue20.items[i].pk for i in (0, 1, 3)]
    for pk in chosen:
        expect(page.locator(f"#tile-{pk}")).to_have_attribute("aria-selected", "true")
    screenshot("review-grid")

    page.keyboard.press("r")
    expect(tiles).to_have_count(17)
    expect(page.locator("#review-selected-count")).to_have_text("0")
    expect(page.locator("#review-status")).to_contain_text("Rejected 3 images")
    decisions = Decision.objects.filter(reviewer=queue20.reviewer)
    assert sorted(d.item_id for d in decisions) == sorted(chosen)
    assert {d.verdict for d in decisions} == {"appropriate"}
    expect(page.locator("#review-count")).to_have_text("3")


def test_two_reviewers_never_receive_the_same_item(
    browser, live_server, queue20, django_user_model
):
    django_user_model.objects.create_user(username="sam", password=REVIEWER_PASSWORD)
    pages, errors = [], []
    for username in ("rita", "sam"):
        context = browser.new_context(
            base_url=live_server.url, viewport={"width": 1200, "height": 800}
        )
        context.set_default_timeout(10_000)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        open_review(page, username)
        pages.append(page)
    seen: dict[int, list[str]] = {0: [], 1: []}
    try:
        done = [False, False]
        while not all(done):
            for who, page in enumerate(pages):
                if done[who]:
                    continue
                page.wait_for_function(QUEUE_SETTLED, polling="raf")
                item_id = stage_id(page)
                if not item_id:
                    done[who] = True
                    continue
                seen[who].append(item_id)
                page.keyboard.press("c")
                page.wait_for_function(
                    "id => document.getElementById('review-stage').dataset.itemId !== id",
                    arg=item_id,
                    polling="raf",
                )
    finally:
        for page in pages:
            page.context.close()
    assert not errors, errors
    assert seen[0] and seen[1], seen
    assert not set(seen[0]) & set(seen[1]), "two reviewers received the same item"
    assert sorted(map(int, seen[0] + seen[1])) == sorted(item.pk for item in queue20.items)
    assert Decision.objects.count() == 20


def test_near_duplicates_take_the_verdict_in_one_key_press(
    page, reviewer, transactional_db, tmp_path, screenshot
):
    queue = build_queue(tmp_path, n=3, name="dupes")
    original, near, copy = queue.images
    Image.objects.filter(pk=original.pk).update(phash="f0f0f0f0f0f0f0f0")
    Image.objects.filter(pk=near.pk).update(phash="f0f0f0f0f0f0f0f1")  # 1 bit away
    Image.objects.filter(pk=copy.pk).update(phash="0f0f0f0f0f0f0f0f", sha256=original.sha256)
    ReviewItem.objects.exclude(image=original).delete()
    item = ReviewItem.objects.get(image=original)
    open_review(page, reviewer.username)
    expect_item(page, item)
    expect(page.locator("#review-identical .thumb")).to_have_count(1)
    expect(page.locator("#review-near .thumb")).to_have_count(1)
    assert page.locator("#review-related .thumb-button.is-blurred").count() == 2
    screenshot("review-duplicates-before")
    page.keyboard.press("Shift+C")
    expect(page.locator("#review-status")).to_contain_text("Also applied to 2 other images")
    screenshot("review-duplicates")
    verdicts = dict(Decision.objects.values_list("image_id", "verdict"))
    assert verdicts == {image.pk: "inappropriate" for image in (original, near, copy)}


def test_rebound_key_shows_in_help_and_works(page, queue20, screenshot):
    ReviewerPreferences.objects.create(user=queue20.reviewer, break_every=2)
    first, second, third = queue20.items[:3]
    open_review(page, queue20.reviewer.username)
    expect_item(page, first)

    page.click("#review-prefs-open")
    expect(page.locator("#review-prefs")).to_be_visible()
    page.focus("#pref-key-reject")
    page.keyboard.press("q")
    expect(page.locator("#pref-key-reject")).to_have_value("q")
    screenshot("review-preferences")
    page.eval_on_selector(
        "#pref-blur", "el => { el.value = '10'; el.dispatchEvent(new Event('input')); }"
    )
    page.click("#review-prefs-save")
    expect(page.locator("#review-prefs")).to_be_hidden()
    expect(page.locator("#review-status")).to_have_text("Preferences saved.")
    prefs = ReviewerPreferences.objects.get(user=queue20.reviewer)
    assert (prefs.keymap["reject"], prefs.blur_strength) == ("q", 10)
    assert "blur(10px)" in page.eval_on_selector(
        "#review-image", "img => getComputedStyle(img).filter"
    )

    page.keyboard.press("?")
    row = page.locator("#review-help-keys tr[data-action=reject]")
    expect(row.locator("kbd")).to_have_text("Q")
    screenshot("review-help")
    page.keyboard.press("Escape")
    expect(page.locator("#review-help")).to_be_hidden()
    expect(page.locator("button[data-verdict=appropriate] kbd")).to_have_text("Q")

    page.keyboard.press("r")  # no longer bound
    page.keyboard.press("q")
    expect_item(page, second)
    assert Decision.objects.get(item=first).verdict == "appropriate"

    # break_every=2: the reminder comes after the second verdict and holds the keys.
    page.keyboard.press("c")
    expect(page.locator("#review-break")).to_be_visible()
    expect(page.locator("#review-break-count")).to_have_text("2")
    page.keyboard.press("c")
    assert Decision.objects.filter(item=third).count() == 0
    page.keyboard.press("Escape")
    expect(page.locator("#review-break")).to_be_hidden()
    expect_item(page, third)


def test_filters_narrow_the_queue_without_a_reload(page, queue20):
    open_review(page, queue20.reviewer.username)
    expect_item(page, queue20.items[0])
    page.evaluate("window.__marker = 1")
    held = set(ReviewItem.objects.filter(leased_by=queue20.reviewer).values_list("pk", flat=True))
    assert queue20.items[0].pk in held

    page.fill("#review-folder", "batch1")
    page.select_option("#review-mode", "uncertain")
    page.click("#review-filters button[type=submit]")
    in_folder = [item for item in queue20.items if item.image.relative_path.startswith("batch1/")]
    closest = min(in_folder, key=lambda item: (abs(item.score - 0.5), item.pk))
    expect_item(page, closest)  # most uncertain first: closest to the 0.5 threshold
    assert "folder=batch1" in page.url and "mode=uncertain" in page.url
    assert page.evaluate("window.__marker") == 1
    # The items leased under the old filters went back to the queue.
    leased = set(ReviewItem.objects.filter(leased_by=queue20.reviewer).values_list("pk", flat=True))
    assert leased <= {item.pk for item in in_folder}

    # Leaving the page gives the leases back.
    page.goto("/accounts/login/")
    page.wait_for_timeout(300)
    assert not ReviewItem.objects.filter(leased_by=queue20.reviewer).exists()
