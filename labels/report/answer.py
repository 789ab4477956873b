"""The generated answer to Question 16 of "Datasheets for Datasets", built from the report's
figures: estimates with their intervals, worded as estimates, never as claims."""

from __future__ import annotations

from typing import Any

QUESTION_16 = (
    "Does the dataset contain data that, if viewed directly, might be offensive, insulting, "
    "threatening, or might otherwise cause anxiety?"
)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _method(figures: dict[str, Any]) -> str:
    version = figures["prompt_version"]
    if version is None:
        return "The images have not been scored yet, so the Q16 method gives no answer so far."
    counts = figures["counts"]
    share = counts["flagged"] / counts["scored"] if counts["scored"] else None
    return (
        f"{counts['scored']:,} images were scored with the Q16 method (CLIP model "
        f"{version['model_key']}, prompt version \u201c{version['name']}\u201d); "
        f"{counts['flagged']:,} ({_pct(share)}) scored at or above the threshold of "
        f"{figures['threshold']:g} and were flagged for review."
    )


def _review(figures: dict[str, Any]) -> str:
    counts = figures["counts"]
    precision = figures["precision"]
    parts = [
        f"Reviewers gave a settled verdict on {counts['reviewed']:,} images and confirmed "
        f"{counts['confirmed']:,} of them as possibly offensive."
    ]
    if precision["n"]:
        parts.append(
            f"Weighting the {precision['n']} reviewed flagged images by score bin, an "
            f"estimated {_pct(precision['estimate'])} of the flagged images are offensive "
            f"(95 % interval {_pct(precision['low'])}\u2013{_pct(precision['high'])})."
        )
    else:
        parts.append(
            "No flagged image has been reviewed yet, so the flagged set's precision is unknown."
        )
    return " ".join(parts)


def _missed(figures: dict[str, Any]) -> str:
    missed = figures["missed"]
    if not missed["n_audited"]:
        return (
            "No audit sample below the threshold has been reviewed, so how many offensive "
            "images the threshold misses is not estimated."
        )
    return (
        f"A reviewed audit sample of {missed['n_audited']} images below the threshold suggests "
        f"that about {_pct(missed['rate'])} (95 % interval {_pct(missed['low'])}\u2013"
        f"{_pct(missed['high'])}) of the {missed['unflagged']:,} unflagged images may also be "
        f"offensive, roughly {missed['estimated_missed']:,} images "
        f"({missed['estimated_missed_low']:,}\u2013{missed['estimated_missed_high']:,})."
        + _recall(figures)
    )


def _recall(figures: dict[str, Any]) -> str:
    recall = figures.get("recall") or {}
    if recall.get("estimate") is None:
        return ""
    return (
        f" Together with the flagged part, the threshold finds an estimated "
        f"{_pct(recall['estimate'])} of all offensive images (recall; 95 % interval "
        f"{_pct(recall['low'])}\u2013{_pct(recall['high'])})."
    )


def _where(figures: dict[str, Any]) -> str:
    parts = []
    categories = figures["categories"][:3]
    if categories:
        listed = ", ".join(f"{row['category']} ({row['confirmed']})" for row in categories)
        parts.append(f"Confirmed images fall mostly under {listed}.")
    top = figures["classes"]["top"][:5]
    if top:
        listed = ", ".join(f"{row['name']} ({row['confirmed']} of {row['images']})" for row in top)
        parts.append(
            f"The {figures['classes']['source']} with the highest share of confirmed images "
            f"are {listed}."
        )
    return " ".join(parts)


def generated_answer(figures: dict[str, Any]) -> str:
    """One paragraph; an admin edits it before publishing."""
    counts = figures["counts"]
    if counts["confirmed"]:
        opening = "Yes, likely."
    elif counts["reviewed"]:
        opening = "Possibly; reviewers have not confirmed any image so far."
    else:
        opening = "Not yet known."
    banks = (
        f"{counts['bank_matched']:,} images matched hash banks of known content."
        if figures["banks"]["available"]
        else "No hash banks of known content were checked."
    )
    closing = (
        "These figures are estimates from the model's scores and a sample of human review, "
        "not a complete inventory of the dataset."
    )
    sentences = [opening, _method(figures)]
    if figures["prompt_version"] is not None:
        sentences += [_review(figures), _missed(figures), _where(figures)]
    sentences += [banks, closing]
    return " ".join(s for s in sentences if s)
