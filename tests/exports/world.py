"""A dataset in every review state an export must tell apart, built by hand: confirmed (with
categories), rejected, flagged and waiting, a below-threshold audit sample, never flagged, and
one image that failed to index; class labels, sample keys and PDQ hashes on each."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from curation.models import Dataset, Image, Score, ScoringRun
from reviewer.models import Decision, ReviewItem
from reviewer.selectors.verdicts import latest_verdicts, live_verdicts
from reviewer.services.decisions import review_decision_record
from tests.reviewer.factories import item_of, make_dataset

SCORES = [0.9, 0.8, 0.7, 0.6, 0.2, 0.1, 0.3]
CLASSES = ["revolver", "guillotine", "revolver", "cat", "cat", "dog", "dog"]


@dataclass
class World:
    dataset: Dataset
    run: ScoringRun
    images: list[Image]
    failed: Image

    @property
    def confirmed(self) -> set[int]:
        return {self.images[0].pk, self.images[1].pk}

    @property
    def flagged_waiting(self) -> set[int]:
        return {self.images[3].pk}

    @property
    def indexed(self) -> set[int]:
        return {image.pk for image in self.images}


def pdq_of(index: int) -> str:
    return f"{index:02x}" * 32


def make_world(admin_user, other_user, *, name: str | None = None) -> World:
    dataset, run, images = make_dataset(SCORES)
    if name:
        Dataset.objects.filter(pk=dataset.pk).update(name=name)
        dataset.refresh_from_db()
    for index, image in enumerate(images):
        image.class_label = CLASSES[index]
        image.sample_key = f"key-{index:03d}"
        image.pdq = pdq_of(index) if index != 5 else ""  # one image without a PDQ hash
        image.pdq_quality = 90 if index != 5 else None
        image.save(update_fields=["class_label", "sample_key", "pdq", "pdq_quality"])
    record = review_decision_record
    record(item_id=item_of(images[0]).pk, reviewer=admin_user, verdict="inappropriate",
           category="weapons")  # fmt: skip
    record(item_id=item_of(images[1]).pk, reviewer=admin_user, verdict="inappropriate",
           category="violence and gore")  # fmt: skip
    record(item_id=item_of(images[2]).pk, reviewer=admin_user, verdict="appropriate")
    # A second look that disagreed with the first confirmation: two verdicts, agreement 1/2.
    Decision.objects.create(
        item=item_of(images[1]), image=images[1], reviewer=other_user,
        verdict="appropriate", is_second_look=True,
    )  # fmt: skip
    # images[3]: flagged, waiting. images[4]: a below-threshold audit sample, waiting.
    ReviewItem.objects.create(dataset=dataset, image=images[4], score=0.2, run=run, is_audit=True)
    failed = Image.objects.create(
        dataset=dataset, relative_path="img/broken.png", status=Image.Status.FAILED,
        error="not an image", class_label="dog",
    )  # fmt: skip
    return World(dataset=dataset, run=run, images=images, failed=failed)


def expected_row(image: Image, run: ScoringRun, banks: dict[int, list[str]] | None = None) -> dict:
    """What an export row should say about the image, read from the database another way."""
    banks = banks or {}
    verdict, category = latest_verdicts(dataset_id=image.dataset_id).get(image.pk, (None, ""))
    tally = Counter(live_verdicts().filter(image=image).values_list("verdict", flat=True))
    total = sum(tally.values())
    score = Score.objects.get(run=run, image=image).p_inappropriate
    item = ReviewItem.objects.filter(image=image).first()
    shown: Any = verdict
    if verdict != "inappropriate" and banks.get(image.pk):
        shown = "matched"
    elif verdict is None:
        shown = "disputed" if item and item.state == "disputed" else "unreviewed"
    return {
        "image_id": image.pk,
        "sha256": image.sha256,
        "phash": image.phash,
        "pdq": image.pdq,
        "pdq_quality": image.pdq_quality,
        "path": image.source_url or image.relative_path,
        "sample_key": image.sample_key,
        "class_label": image.class_label,
        "score": round(score, 6),
        "verdict": shown,
        "category": category if verdict == "inappropriate" else "",
        "verdicts": total,
        "agreement": round(tally[verdict] / total, 4) if total and verdict else None,
        "banks": sorted(banks.get(image.pk, [])),
        "prompt_version": run.prompt_version.name,
        "run": run.pk,
    }
