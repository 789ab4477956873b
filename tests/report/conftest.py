"""A constructed dataset for the report: real picture files in class folders, a succeeded
run, flagged and audit-sample items, verdicts with categories."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.browser.conftest import (  # noqa: F401 (shared browser fixtures)
    _reviewers_assigned,
    browser,
    page,
    write_image,
)

ADMIN_PASSWORD = "admin-pass-123"
WEAPONS, GORE = "weapons", "violence and gore"
# (relative path, score, verdict or None, category, audit sample)
SPECS = [
    ("gas_mask/0.png", 0.95, "inappropriate", WEAPONS, False),
    ("gas_mask/1.png", 0.90, "inappropriate", WEAPONS, False),
    ("gas_mask/2.png", 0.85, "inappropriate", GORE, False),
    ("gas_mask/3.png", 0.30, None, "", False),
    ("revolver/0.png", 0.80, "inappropriate", WEAPONS, False),
    ("revolver/1.png", 0.70, "appropriate", "", False),
    ("revolver/2.png", 0.20, None, "", False),
    ("guillotine/0.png", 0.75, "inappropriate", GORE, False),
    ("guillotine/1.png", 0.40, "inappropriate", GORE, True),
    ("cat/0.png", 0.60, "appropriate", "", False),
    ("cat/1.png", 0.10, None, "", False),
    ("cat/2.png", 0.15, None, "", False),
    ("cat/3.png", 0.05, "appropriate", "", True),
    ("cat/4.png", 0.25, "appropriate", "", True),
    ("top.png", 0.02, None, "", False),
]
COLOURS = [(200, 60, 60), (60, 140, 200), (70, 170, 90), (220, 180, 40), (150, 80, 200)]


@dataclass
class ReportData:
    dataset: object
    run: object
    images: dict  # relative path -> Image
    reviewer: object
    files: dict  # relative path -> Path


@pytest.fixture
def report_data(django_user_model, tmp_path, settings) -> ReportData:
    from reviewer.models import ReviewItem
    from reviewer.services.decisions import review_decision_record
    from tests.reviewer.factories import make_dataset

    settings.MEDIA_ROOT = str(tmp_path / "media")
    root = tmp_path / "photos"
    files, hashes = {}, []
    for i, (relative, *_rest) in enumerate(SPECS):
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        hashes.append(
            write_image(path, size=(240 + i, 180), colour=COLOURS[i % len(COLOURS)], fmt="PNG")
        )
        files[relative] = path
    dataset, run, images = make_dataset(
        [spec[1] for spec in SPECS],
        threshold=0.5,
        paths=[spec[0] for spec in SPECS],
        hashes=hashes,
        root=str(root),
    )
    reviewer = django_user_model.objects.create_user(username="rita", password="review-pass-123")
    by_path = {image.relative_path: image for image in images}
    for relative, score, verdict, category, audit in SPECS:
        if verdict is None:
            continue
        image = by_path[relative]
        if audit:
            item = ReviewItem.objects.create(
                dataset=dataset, image=image, score=score, run=run, is_audit=True
            )
        else:
            item = ReviewItem.objects.get(image=image)
        review_decision_record(
            item_id=item.pk, reviewer=reviewer, verdict=verdict, category=category
        )
    return ReportData(dataset=dataset, run=run, images=by_path, reviewer=reviewer, files=files)


@pytest.fixture
def staff_user(django_user_model):
    return django_user_model.objects.create_user(
        username="ada", password=ADMIN_PASSWORD, is_staff=True
    )
