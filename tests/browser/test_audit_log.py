"""The Audit log in a real browser: an admin does a few things, finds them in the log, filters
by action and downloads the CSV. With Q16_SCREENSHOT_DIR set, the page is photographed at
1366x900 and 1280x720 (full page too)."""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import expect

from audit.services import audit_context, audit_record
from curation.models import Dataset, PromptVersion
from curation.services.clip_config import configured_model_spec
from worker.engine.store import prompts_to_bytes

from .conftest import ADMIN_PASSWORD, login

pytestmark = pytest.mark.browser

SIZES = ((1366, 900), (1280, 720))


@pytest.fixture
def _reviewers_assigned():
    """Assignments are what this module records: nobody is assigned behind its back."""


@pytest.fixture
def admin(transactional_db, django_user_model):
    return django_user_model.objects.create_user(
        username="ada", password=ADMIN_PASSWORD, is_staff=True
    )


@pytest.fixture
def reviewer(transactional_db, django_user_model):
    return django_user_model.objects.create_user(username="rita", password="review-pass-123")


@pytest.fixture
def importing(transactional_db, tmp_path):
    return Dataset.objects.create(
        name="street photos", source_kind=Dataset.SourceKind.FOLDER, source=str(tmp_path),
        root_path=str(tmp_path), state=Dataset.State.PENDING,
    )  # fmt: skip


def _version(name: str, *, active: bool = False) -> PromptVersion:
    return PromptVersion.objects.create(
        name=name, model_key=configured_model_spec().key, dim=512,
        vectors=prompts_to_bytes(np.zeros((2, 512), np.float32)),
        source=PromptVersion.Source.IMPORTED, is_active=active,
    )  # fmt: skip


def _shoot(page, name: str) -> None:
    folder = os.environ.get("Q16_SCREENSHOT_DIR")
    for width, height in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        # Nothing cut off sideways: the page never scrolls horizontally.
        assert page.evaluate("document.documentElement.scrollWidth") <= width, (name, width)
        if folder:
            path = Path(folder) / f"{name}-{width}x{height}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(path))
            page.screenshot(path=str(path.with_name(f"{path.stem}-full.png")), full_page=True)


def test_an_admin_finds_their_actions_in_the_log_and_downloads_them(
    page, admin, reviewer, importing
):
    _version("paper zero-shot", active=True)
    imported = _version("Q16 paper prompts")
    page.on("dialog", lambda dialog: dialog.accept())
    login(page, "ada", ADMIN_PASSWORD)

    page.goto(f"/datasets/{importing.pk}/")
    page.click("#cancel-import")
    expect(page.locator(".message-success")).to_contain_text("Import cancelled")
    page.check(f"input[name=reviewers][value='{reviewer.pk}']")
    page.click("button:has-text('Save reviewers')")
    expect(page.locator(".message-success")).to_contain_text("1 reviewer(s) assigned")
    page.goto("/prompts/")
    page.click(f"#activate-{imported.pk}")
    expect(page.locator(".message-success")).to_contain_text("Activated")

    page.click("nav >> text=Audit log")
    expect(page).to_have_url(re.compile(r"/audit/$"))
    rows = page.locator(".audit-table tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text("prompt_version.activate")
    expect(rows.nth(0)).to_contain_text("Q16 paper prompts")
    expect(rows.nth(1)).to_contain_text("assignment.update")
    expect(rows.nth(1)).to_contain_text("+ rita")
    expect(rows.nth(2)).to_contain_text("dataset.import_cancel")
    expect(rows.nth(2).locator("del")).to_have_text("pending")
    expect(rows.nth(2).locator("ins")).to_have_text("cancelled")
    for index in range(3):
        expect(rows.nth(index)).to_contain_text("ada")
    expect(rows.nth(2).locator("a")).to_have_attribute("href", f"/datasets/{importing.pk}/")

    page.fill("#id_action", "assignment")
    page.click("button:has-text('Filter')")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("assignment.update")
    assert "action=assignment" in page.url

    with page.expect_download() as download:
        page.click("text=Download CSV")
    path = download.value.path()
    assert download.value.suggested_filename.startswith("q16-audit-log-")
    with open(path, encoding="utf-8", newline="") as handle:
        lines = list(csv.DictReader(handle))
    assert [(row["actor"], row["action"]) for row in lines] == [("ada", "assignment.update")]
    assert lines[0]["object_id"] == str(importing.pk)


def test_the_log_page_looks_right(page, admin, importing):
    """A log with every kind of row (links, gone objects, the system, commands, lists, long
    values), a second page and a filter error, photographed at both sizes."""
    version = _version("paper zero-shot", active=True)
    gone = Dataset.objects.create(name="old scrape", source_kind="urls", source="/x")
    for number in range(55):
        audit_record(actor=admin, action="run.start", target=importing, after={"n": number})
    audit_record(actor=admin, action="dataset.import", target=gone, after={
        "name": "old scrape", "source_kind": "urls", "urls": 25_000,
        "source": "/var/lib/q16/media/url-lists/" + "a" * 48 + ".txt",
    })  # fmt: skip
    gone.delete()
    audit_record(
        actor=admin, action="assignment.update", target=importing,
        before={"reviewers": ["rita", "sam"]}, after={"reviewers": ["sam", "tom", "uma"]},
    )  # fmt: skip
    with audit_context(source="command: manage_work"):
        audit_record(actor=None, action="run.cancel", before={"state": "running"},
                     after={"state": "cancelled", "chunks_done": 12})  # fmt: skip
    with audit_context(reason="auto-retrain policy: job 7's candidate (held-out accuracy 0.91; "
                       "active version 0.88)", prompt_job=7):  # fmt: skip
        audit_record(
            actor=None, action="prompt_version.activate", target=version,
            before={"active_version": 3}, after={"active_version": version.pk},
        )  # fmt: skip
    login(page, "ada", ADMIN_PASSWORD)
    page.goto("/audit/")
    expect(page.locator(".audit-table tbody tr")).to_have_count(50)
    expect(page.locator("text=(gone)")).to_have_count(1)
    _shoot(page, "audit-log")
    page.click("text=Older →")
    expect(page.locator(".audit-table tbody tr")).to_have_count(9)
    _shoot(page, "audit-log-page-2")
    page.goto("/audit/?date_from=2026-05-02&date_to=2026-05-01")
    expect(page.locator(".field-error")).to_contain_text("before the start date")
    _shoot(page, "audit-log-bad-filter")
