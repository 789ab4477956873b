"""Browser fixtures: Debian's Chromium driven by Playwright's sync API against live_server.

Playwright's sync API keeps an asyncio event loop running in the test thread, so
Django refuses ORM calls there unless DJANGO_ALLOW_ASYNC_UNSAFE is set; the
`browser` fixture sets it only while the browser is alive (one per module).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from PIL import ImageDraw

from tests.conftest import IN_CI

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REVIEWER_PASSWORD = "review-pass-123"
ADMIN_PASSWORD = "admin-pass-123"


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        message = (
            f"{CHROMIUM} is missing: `apt-get install -y chromium` (never `playwright install`)"
        )
        if IN_CI:
            pytest.fail(f"browser tests must run in CI: {message}")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": 1360, "height": 900}, color_scheme="dark"
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture
def screenshot(page):
    """Save screenshots (viewport and full page) when Q16_SCREENSHOT_DIR is set."""
    folder = os.environ.get("Q16_SCREENSHOT_DIR")

    def take(name: str) -> Path | None:
        if not folder:
            return None
        path = Path(folder) / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(path))
        page.screenshot(path=str(path.with_name(f"{name}-full.png")), full_page=True)
        return path

    return take


def login(page, username: str, password: str) -> None:
    """Log in through the real login form."""
    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert "/accounts/login/" not in page.url, "login failed"


def write_image(
    path: Path, *, size: tuple[int, int], colour: tuple[int, int, int], fmt: str
) -> str:
    """A small real picture (gradient and shapes); returns its SHA-256."""
    width, height = size
    ramp = np.linspace(0.35, 1.0, width, dtype=np.float32)[None, :, None]
    pixels = (np.ones((height, width, 3), np.float32) * np.array(colour) * ramp).astype(np.uint8)
    picture = PILImage.fromarray(pixels)
    draw = ImageDraw.Draw(picture)
    draw.ellipse((width * 0.2, height * 0.2, width * 0.55, height * 0.75), fill=(240, 240, 240))
    draw.rectangle((width * 0.6, height * 0.3, width * 0.85, height * 0.8), fill=(30, 30, 30))
    picture.save(path, format=fmt)
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class ReviewData:
    reviewer: object
    dataset: object
    run: object
    items: list  # pending review items, highest score first


@pytest.fixture
def review_data(transactional_db, django_user_model, tmp_path) -> ReviewData:
    """A reviewer and a scored dataset with three real images flagged for review."""
    from curation.models import Dataset, Image, PromptVersion, ScoringRun
    from reviewer.models import ReviewItem
    from worker.engine.store import prompts_to_bytes

    reviewer = django_user_model.objects.create_user(username="rita", password=REVIEWER_PASSWORD)
    folder = tmp_path / "flagged"
    folder.mkdir()
    dataset = Dataset.objects.create(
        name="street photos",
        source_kind=Dataset.SourceKind.FOLDER,
        source=str(folder),
        root_path=str(folder),
        state=Dataset.State.READY,
        total=3,
        processed=3,
    )
    version = PromptVersion.objects.create(
        name="tiny zero-shot",
        model_key="q16-tiny/test",
        dim=2,
        vectors=prompts_to_bytes(np.zeros((2, 2), np.float32)),
        source=PromptVersion.Source.ZERO_SHOT,
    )
    run = ScoringRun.objects.create(
        dataset=dataset,
        prompt_version=version,
        model_key="q16-tiny/test",
        threshold=0.5,
        state=ScoringRun.State.SUCCEEDED,
        total=3,
        processed=3,
        flagged=3,
    )
    specs = [
        ("night/alley.png", "PNG", (360, 240), (200, 60, 60), 0.9),
        ("day/market.jpg", "JPEG", (300, 300), (60, 140, 200), 0.8),
        ("day/park.png", "PNG", (240, 320), (70, 170, 90), 0.7),
    ]
    items = []
    for relative, fmt, size, colour, score in specs:
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        sha = write_image(path, size=size, colour=colour, fmt=fmt)
        image = Image.objects.create(
            dataset=dataset,
            relative_path=relative,
            sha256=sha,
            format=fmt,
            width=size[0],
            height=size[1],
            bytes=path.stat().st_size,
            status=Image.Status.OK,
        )
        items.append(ReviewItem.objects.create(dataset=dataset, image=image, score=score, run=run))
    return ReviewData(reviewer=reviewer, dataset=dataset, run=run, items=items)


@pytest.fixture(autouse=True)
def _reviewers_assigned(reviewers_assigned_everywhere):
    """The pages' behaviour is tested here, not access: reviewers created in a test are assigned
    to its datasets (access is tested in tests/security)."""
    return reviewers_assigned_everywhere
