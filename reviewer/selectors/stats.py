"""The numbers admins read about a dataset's review: counts, precision of the flagged set,
the audit sample's estimate of what was missed, histograms, thresholds, throughput,
agreement and the prompt policy."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import timedelta
from typing import Any

import numpy as np
from django.db.models import Count, F, IntegerField, Value
from django.db.models.functions import Cast, Floor, Least, TruncDate
from django.utils import timezone

from curation.bank_selectors import dataset_bank_matched_count
from curation.models import Dataset, PromptVersion, Score, ScoringRun
from curation.selectors import prompt_policy_get
from reviewer.measures import cohen_kappa, wilson_interval
from reviewer.models import Decision, ReviewItem
from reviewer.selectors.verdicts import latest_verdicts, live_verdicts, review_queue_counts

HISTOGRAM_BINS = 20
THRESHOLDS = [round(0.05 * step, 2) for step in range(1, 20)]
THROUGHPUT_DAYS = 14


def review_agreement(*, dataset_id: int) -> dict[str, Any]:
    """Cohen's kappa per reviewer pair on the items both gave a verdict on (their own
    latest live verdict, second looks at decided items included; copies onto duplicates and
    adjudications left out), and overall the mean of the pairs' kappas."""
    by_item: dict[int, dict[str, str]] = defaultdict(dict)
    for item_id, username, verdict in (
        live_verdicts()
        .filter(item__dataset_id=dataset_id, propagated_from__isnull=True, is_adjudication=False)
        .order_by("created_at", "id")
        .values_list("item_id", "reviewer__username", "verdict")
    ):
        by_item[item_id][username] = verdict
    reviewers = sorted({name for verdicts in by_item.values() for name in verdicts})
    pairs = []
    for i, a in enumerate(reviewers):
        for b in reviewers[i + 1 :]:
            shared = [v for v in by_item.values() if a in v and b in v]
            if not shared:
                continue
            kappa = cohen_kappa([v[a] for v in shared], [v[b] for v in shared])
            pairs.append({"a": a, "b": b, "kappa": kappa, "n": len(shared)})
    defined = [float(pair["kappa"]) for pair in pairs if pair["kappa"] is not None]
    return {"overall": float(np.mean(defined)) if defined else None, "pairs": pairs}


def _stats_run(*, dataset: Dataset, version: PromptVersion | None) -> ScoringRun | None:
    runs = dataset.runs.filter(state=ScoringRun.State.SUCCEEDED)
    if version is not None:
        runs = runs.filter(prompt_version=version)
    return runs.select_related("prompt_version").order_by("-created_at", "-id").first()


def review_policy_summary(*, dataset_id: int) -> dict[str, Any]:
    """The auto-retrain policy's settings and its last decision, for the stats page."""
    rules = prompt_policy_get(dataset_id=dataset_id)
    job = rules.last_retrain_job
    return {
        "auto_retrain_every": rules.auto_retrain_every,
        "verdicts_since_retrain": rules.verdicts_since_retrain,
        "pinned_version": rules.pinned_version_id,
        "pinned_version_name": rules.pinned_version.name if rules.pinned_version else None,
        "last_job": (
            {
                "id": job.pk,
                "state": job.state,
                "error": job.error,
                "created_at": job.created_at,
                "finished_at": job.finished_at,
                "result": job.result_id,
                "decision": (job.options or {}).get("policy"),
            }
            if job is not None
            else None
        ),
    }


def _score_histogram(
    run: ScoringRun | None, latest: dict[int, tuple[str, str]]
) -> tuple[dict[str, Any], list[int], list[tuple[float, bool]], int, int]:
    """Scores of the run in HISTOGRAM_BINS bins by verdict; also every bin's total, the
    (score, confirmed) pairs of reviewed images, and the scored and flagged counts."""
    totals = [0] * HISTOGRAM_BINS
    confirmed_hist = [0] * HISTOGRAM_BINS
    rejected_hist = [0] * HISTOGRAM_BINS
    scored = flagged = 0
    reviewed_scores: list[tuple[float, bool]] = []
    if run is not None:
        scores = Score.objects.filter(run=run)
        scored = scores.count()
        flagged = scores.filter(p_inappropriate__gte=run.threshold).count()
        for row in (
            scores.annotate(
                bin=Least(
                    Cast(Floor(F("p_inappropriate") * HISTOGRAM_BINS), IntegerField()),
                    Value(HISTOGRAM_BINS - 1),
                    output_field=IntegerField(),
                )
            )
            .values("bin")
            .annotate(n=Count("id"))
            .order_by()
        ):
            totals[max(0, int(row["bin"]))] += row["n"]
        for image_id, p in scores.filter(image_id__in=list(latest)).values_list(
            "image_id", "p_inappropriate"
        ):
            is_confirmed = latest[image_id][0] == Decision.Verdict.INAPPROPRIATE
            reviewed_scores.append((p, is_confirmed))
            b = min(HISTOGRAM_BINS - 1, max(0, math.floor(p * HISTOGRAM_BINS)))
            (confirmed_hist if is_confirmed else rejected_hist)[b] += 1
    unreviewed = [t - c - r for t, c, r in zip(totals, confirmed_hist, rejected_hist, strict=True)]
    histogram = {
        "bins": [round(i / HISTOGRAM_BINS, 4) for i in range(HISTOGRAM_BINS + 1)],
        "confirmed": confirmed_hist,
        "rejected": rejected_hist,
        "unreviewed": unreviewed,
    }
    return histogram, totals, reviewed_scores, scored, flagged


def _flagged_precision(
    dataset: Dataset, latest: dict[int, tuple[str, str]]
) -> dict[str, float | int | None]:
    """Precision of the flagged set: verdicts on flagged (non-audit) items, with its interval."""
    flagged_ids = set(
        ReviewItem.objects.filter(dataset=dataset, is_audit=False)
        .exclude(state=ReviewItem.State.WITHDRAWN)
        .values_list("image_id", flat=True)
    )
    verdicts = [latest[i][0] for i in flagged_ids if i in latest]
    n = len(verdicts)
    hits = sum(1 for v in verdicts if v == Decision.Verdict.INAPPROPRIATE)
    low, high = wilson_interval(hits, n)
    return {
        "estimate": hits / n if n else None,
        "low": low if n else None,
        "high": high if n else None,
        "n": n,
    }


def _missed_estimate(
    dataset: Dataset, latest: dict[int, tuple[str, str]], *, unflagged: int
) -> dict[str, float | int | None]:
    """What the model misses: the confirmed share of audited (below-threshold) images, and
    that share of the unflagged images, with intervals."""
    audit_ids = ReviewItem.objects.filter(dataset=dataset, is_audit=True).values_list(
        "image_id", flat=True
    )
    verdicts = [latest[i][0] for i in audit_ids if i in latest]
    n = len(verdicts)
    hits = sum(1 for v in verdicts if v == Decision.Verdict.INAPPROPRIATE)
    low, high = wilson_interval(hits, n)
    rate = hits / n if n else None
    return {
        "rate": rate,
        "low": low if n else None,
        "high": high if n else None,
        "n_audited": n,
        "unflagged": unflagged,
        "estimated_missed": round(rate * unflagged) if rate is not None else None,
        "estimated_missed_low": round(low * unflagged) if n else None,
        "estimated_missed_high": round(high * unflagged) if n else None,
    }


def _threshold_table(
    totals: list[int], reviewed_scores: list[tuple[float, bool]]
) -> list[dict[str, float | int | None]]:
    """Precision and recall on reviewed images, and the queue size, at each of THRESHOLDS."""
    total_confirmed = sum(1 for _, c in reviewed_scores if c)
    rows = []
    for t in THRESHOLDS:
        above = [c for p, c in reviewed_scores if p >= t]
        tp = sum(above)
        rows.append(
            {
                "threshold": t,
                "precision": tp / len(above) if above else None,
                "recall": tp / total_confirmed if total_confirmed else None,
                "queue_size": sum(totals[round(t * HISTOGRAM_BINS) :]),
            }
        )
    return rows


def _throughput(dataset: Dataset) -> list[dict[str, Any]]:
    """Own (not propagated) live verdicts per reviewer per day over THROUGHPUT_DAYS."""
    since = timezone.now() - timedelta(days=THROUGHPUT_DAYS)
    return [
        {"reviewer": row["reviewer__username"], "day": row["day"], "verdicts": row["n"]}
        for row in live_verdicts()
        .filter(item__dataset=dataset, created_at__gte=since, propagated_from__isnull=True)
        .annotate(day=TruncDate("created_at"))
        .values("reviewer__username", "day")
        .annotate(n=Count("id"))
        .order_by("day", "reviewer__username")
    ]


def bank_matched_counts(*, dataset: Dataset) -> dict[str, int]:
    """Images known-bad from a hash bank: matched, so never in the queue or the counts above."""
    return {"matched_to_banks": dataset_bank_matched_count(dataset=dataset)}


def dataset_review_stats(
    *, dataset: Dataset, version: PromptVersion | None = None
) -> dict[str, Any]:
    """The numbers of a dataset under one prompt version (the dataset's latest succeeded run of
    that version; the latest run of any version by default): counts, precision of the flagged
    set and the audit sample's estimate of what was missed (Wilson 95 % intervals), score
    histogram by verdict, precision / recall / queue size against threshold, throughput and
    agreement."""
    run = _stats_run(dataset=dataset, version=version)
    latest = latest_verdicts(dataset_id=dataset.pk)
    histogram, totals, reviewed_scores, scored, flagged = _score_histogram(run, latest)
    missed = _missed_estimate(dataset, latest, unflagged=scored - flagged)
    return {
        "run": run.pk if run else None,
        "prompt_version": run.prompt_version_id if run else None,
        "threshold": run.threshold if run else None,
        "counts": {
            "scored": scored,
            "flagged": flagged,
            "reviewed": len(latest),
            "confirmed": sum(1 for v, _ in latest.values() if v == Decision.Verdict.INAPPROPRIATE),
            "rejected": sum(1 for v, _ in latest.values() if v == Decision.Verdict.APPROPRIATE),
            "audited": missed["n_audited"],
            **review_queue_counts(dataset_id=dataset.pk),
            **bank_matched_counts(dataset=dataset),
        },
        "precision": _flagged_precision(dataset, latest),
        "missed": missed,
        "histogram": histogram,
        "thresholds": _threshold_table(totals, reviewed_scores),
        "throughput": _throughput(dataset),
        "agreement": review_agreement(dataset_id=dataset.pk),
        "policy": review_policy_summary(dataset_id=dataset.pk),
    }
