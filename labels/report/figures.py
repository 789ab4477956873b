"""The numbers of a dataset's Question 16 report, read from curation and reviewer.

Precision of the flagged set, the audit sample's estimate of what the threshold missed and
the score histogram are dataset_review_stats' own (Wilson 95 % intervals, docs/figures.md),
never recomputed here; this module adds what the report needs on top: counts by category,
the classes (or source folders) with the highest share of confirmed images, the prompt
version and its training, and the hash-bank matches (no banks: 0, marked absent).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.db.models import Count

from curation.bank_selectors import dataset_bank_summary
from curation.models import Dataset, Image, PromptVersion
from reviewer.models import Decision
from reviewer.selectors.stats import dataset_review_stats
from reviewer.selectors.verdicts import latest_verdicts

TOP_CLASSES = 12
UNCATEGORISED = "(no category)"
TOP_LEVEL = "(top level)"


def class_field() -> str | None:
    """Image.class_label where the model has it (a labelled import), else None: the report
    falls back to the first folder of the relative path."""
    names = {field.name for field in Image._meta.get_fields()}
    return "class_label" if "class_label" in names else None


def image_class(relative_path: str, class_label: str = "") -> str:
    if class_label:
        return class_label
    head, sep, _ = relative_path.replace("\\", "/").lstrip("/").partition("/")
    return head if sep else TOP_LEVEL


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _categories(latest: dict[int, tuple[str, str]]) -> list[dict[str, Any]]:
    """Confirmed images per category, with the share of all confirmed images."""
    confirmed = [c for v, c in latest.values() if v == Decision.Verdict.INAPPROPRIATE]
    counts = Counter(c or UNCATEGORISED for c in confirmed)
    return [
        {"category": name, "confirmed": n, "share": _share(n, len(confirmed))}
        for name, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]


def _classes(dataset: Dataset, latest: dict[int, tuple[str, str]]) -> dict[str, Any]:
    """Images, reviewed and confirmed per class, the classes with the highest confirmed
    share first (then the most confirmed)."""
    field = class_field()
    columns = ["id", "relative_path"] + ([field] if field else [])
    images: Counter[str] = Counter()
    reviewed: Counter[str] = Counter()
    confirmed: Counter[str] = Counter()
    labelled = 0
    for row in (
        Image.objects.filter(dataset=dataset, status=Image.Status.OK).values(*columns).order_by()
    ):
        label = (row.get(field) or "") if field else ""
        labelled += bool(label)
        name = image_class(row["relative_path"], label)
        images[name] += 1
        verdict = latest.get(row["id"])
        if verdict is not None:
            reviewed[name] += 1
            if verdict[0] == Decision.Verdict.INAPPROPRIATE:
                confirmed[name] += 1
    rows: list[dict[str, Any]] = [
        {
            "name": name,
            "images": n,
            "reviewed": reviewed[name],
            "confirmed": confirmed[name],
            "share": _share(confirmed[name], n),
        }
        for name, n in images.items()
        if confirmed[name]
    ]
    rows.sort(key=lambda r: (-r["share"], -r["confirmed"], r["name"]))
    return {
        # Class labels where the import recorded them (ImageFolder), else source folders.
        "source": "classes" if labelled else "source folders",
        "unit": "class" if labelled else "source folder",
        "classes": len(images),
        "top": rows[:TOP_CLASSES],
    }


HELDOUT_SHOWN = ("accuracy", "precision", "recall", "f1", "n")


def _metric_summary(metrics: dict[str, Any] | None) -> dict[str, Any] | None:
    """The held-out metrics the report lists (labels/training.py records more)."""
    if not metrics:
        return None
    return {key: metrics[key] for key in HELDOUT_SHOWN if key in metrics}


def _prompt_version(version_id: int | None) -> dict[str, Any] | None:
    if version_id is None:
        return None
    version = PromptVersion.objects.select_related("parent").get(pk=version_id)
    metrics = version.metrics or {}
    return {
        "id": version.pk,
        "name": version.name,
        "source": version.get_source_display(),
        "model_key": version.model_key,
        "parent": version.parent.name if version.parent else None,
        "trained": version.source == PromptVersion.Source.TRAINED,
        "n_train": metrics.get("n_train"),
        "n_heldout": metrics.get("n_heldout"),
        "class_counts": metrics.get("class_counts"),
        "training_dataset_id": metrics.get("dataset_id"),
        "seconds": metrics.get("seconds"),
        "heldout": _metric_summary(metrics.get("heldout")),
        "parent_heldout": _metric_summary(metrics.get("parent_heldout")),
        "active_heldout": _metric_summary(metrics.get("active_heldout")),
    }


def hash_bank_matches(*, dataset: Dataset) -> dict[str, Any]:
    """Images matched to hash banks of known content (`matched`), every bank with its
    matches here (`banks`), and whether any bank was checked at all (`available`)."""
    return dataset_bank_summary(dataset=dataset)


def dataset_report_figures(*, dataset: Dataset) -> dict[str, Any]:
    """Every number of the report, JSON-serialisable."""
    stats = dataset_review_stats(dataset=dataset)
    latest = latest_verdicts(dataset_id=dataset.pk)
    counts = stats["counts"]
    banks = hash_bank_matches(dataset=dataset)
    images = Image.objects.filter(dataset=dataset, status=Image.Status.OK).aggregate(n=Count("id"))
    return {
        "dataset": {"id": dataset.pk, "name": dataset.name, "images": images["n"]},
        "threshold": stats["threshold"],
        "run": stats["run"],
        "counts": {
            "scored": counts["scored"],
            "flagged": counts["flagged"],
            "reviewed": counts["reviewed"],
            "confirmed": counts["confirmed"],
            "rejected": counts["rejected"],
            "audited": counts["audited"],
            "bank_matched": banks["matched"],
        },
        "banks": banks,
        "categories": _categories(latest),
        "classes": _classes(dataset, latest),
        "histogram": stats["histogram"],
        "precision": stats["precision"],
        "missed": stats["missed"],
        "recall": stats["recall"],
        "prompt_version": _prompt_version(stats["prompt_version"]),
    }
