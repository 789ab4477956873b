"""Class labels (ImageFolder imports: the first-level folder) in the review: the classes a
dataset has, for the queue's class filter, and the review's numbers grouped by class."""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.db.models import Count, Q

from curation.models import Dataset, Image, PromptVersion, Score, ScoringRun
from reviewer.measures import wilson_interval
from reviewer.models import Decision
from reviewer.selectors.verdicts import latest_verdicts


def dataset_class_counts(*, dataset_id: int) -> list[dict[str, Any]]:
    """The dataset's class labels with their valid images, by label; empty without classes."""
    return [
        {"class_label": row["class_label"], "images": row["images"]}
        for row in Image.objects.filter(dataset_id=dataset_id, status=Image.Status.OK)
        .exclude(class_label="")
        .values("class_label")
        .annotate(images=Count("id"))
        .order_by("class_label")
    ]


def _class_stats_run(*, dataset: Dataset, version: PromptVersion | None) -> ScoringRun | None:
    """The run the numbers are about: the latest succeeded one (of the version, if given)."""
    runs = dataset.runs.filter(state=ScoringRun.State.SUCCEEDED)
    if version is not None:
        runs = runs.filter(prompt_version=version)
    return runs.order_by("-created_at", "-id").first()


def dataset_class_stats(
    *, dataset: Dataset, version: PromptVersion | None = None
) -> dict[str, Any]:
    """Per class: images, scored and flagged (in the run the stats page shows), reviewed
    (a settled verdict), confirmed inappropriate, and the confirmed share of the reviewed
    with its Wilson 95 % interval. `classes` is empty for a dataset without class labels."""
    classes = dataset_class_counts(dataset_id=dataset.pk)
    run = _class_stats_run(dataset=dataset, version=version)
    scored: dict[str, tuple[int, int]] = {}
    if run is not None and classes:
        for row in (
            Score.objects.filter(run=run)
            .exclude(image__class_label="")
            .values("image__class_label")
            .annotate(
                scored=Count("image_id"),
                flagged=Count("image_id", filter=Q(p_inappropriate__gte=run.threshold)),
            )
            .order_by()
        ):
            scored[row["image__class_label"]] = (row["scored"], row["flagged"])
    latest = latest_verdicts(dataset_id=dataset.pk) if classes else {}
    reviewed: Counter[str] = Counter()
    confirmed: Counter[str] = Counter()
    image_ids = list(latest)
    for start in range(0, len(image_ids), 5000):
        for image_id, label in (
            Image.objects.filter(pk__in=image_ids[start : start + 5000])
            .exclude(class_label="")
            .values_list("id", "class_label")
        ):
            reviewed[label] += 1
            if latest[image_id][0] == Decision.Verdict.INAPPROPRIATE:
                confirmed[label] += 1
    rows = []
    for entry in classes:
        label = entry["class_label"]
        n, k = reviewed[label], confirmed[label]
        low, high = wilson_interval(k, n) if n else (None, None)
        rows.append(
            {
                "class_label": label,
                "images": entry["images"],
                "scored": scored.get(label, (0, 0))[0],
                "flagged": scored.get(label, (0, 0))[1],
                "reviewed": n,
                "confirmed": k,
                "share_confirmed": k / n if n else None,
                "share_low": low,
                "share_high": high,
            }
        )
    return {"run": run.pk if run else None, "classes": rows}
