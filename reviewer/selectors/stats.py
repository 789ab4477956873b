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
from reviewer.estimates import (
    UNWEIGHTED,
    StratifiedEstimator,
    WeightedSample,
    active_review_rate,
    cohen_kappa_interval,
    fleiss_kappa_interval,
    learning_curve_forecast,
    proportion_interval,
)
from reviewer.models import Decision, ReviewItem
from reviewer.selectors.verdicts import latest_verdicts, live_verdicts, review_queue_counts

HISTOGRAM_BINS = 20
THRESHOLDS = [round(0.05 * step, 2) for step in range(1, 20)]
THROUGHPUT_DAYS = 14


def review_agreement(*, dataset_id: int) -> dict[str, Any]:
    """Cohen's kappa per reviewer pair on the items both gave a verdict on (their own
    latest live verdict, second looks at decided items included; copies onto duplicates and
    adjudications left out), overall the mean of the pairs' kappas, and Fleiss' kappa over
    the items with three or more reviewers' verdicts; bootstrap 95 % intervals over items."""
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
            kappa, low, high = cohen_kappa_interval([v[a] for v in shared], [v[b] for v in shared])
            pairs.append(
                {"a": a, "b": b, "kappa": kappa, "low": low, "high": high, "n": len(shared)}
            )
    defined = [float(pair["kappa"]) for pair in pairs if pair["kappa"] is not None]
    many = [verdicts for verdicts in by_item.values() if len(verdicts) > 2]
    categories = sorted({v for verdicts in many for v in verdicts.values()})
    table = np.array(
        [[list(verdicts.values()).count(c) for c in categories] for verdicts in many],
        dtype=np.float64,
    ).reshape(len(many), len(categories))
    fleiss, fleiss_low, fleiss_high = fleiss_kappa_interval(table)
    return {
        "overall": float(np.mean(defined)) if defined else None,
        "pairs": pairs,
        "fleiss": {"kappa": fleiss, "low": fleiss_low, "high": fleiss_high, "n": len(many)},
    }


def review_forecast(*, dataset: Dataset, pending: int) -> dict[str, Any]:
    """How long the pending queue takes at the reviewers' measured rate (verdicts per hour of
    active review over THROUGHPUT_DAYS), and how many more verdicts the learning curve of
    the dataset's trained versions (held-out F1 against verdicts) suggests before F1 stops
    improving."""
    since = timezone.now() - timedelta(days=THROUGHPUT_DAYS)
    times: dict[str, list[float]] = defaultdict(list)
    for name, created in (
        live_verdicts()
        .filter(item__dataset=dataset, created_at__gte=since, propagated_from__isnull=True)
        .values_list("reviewer__username", "created_at")
    ):
        times[name].append(created.timestamp())
    rates = active_review_rate(times)
    team = rates["team_per_hour"]
    points = [
        (
            float((m.get("n_train") or 0) + (m.get("n_heldout") or 0)),
            float(m["heldout"]["f1"]),
        )
        for m in PromptVersion.objects.filter(
            source=PromptVersion.Source.TRAINED, metrics__dataset_id=dataset.pk
        ).values_list("metrics", flat=True)
        if m and (m.get("heldout") or {}).get("f1") is not None
    ]
    verdicts = len(latest_verdicts(dataset_id=dataset.pk))
    curve = learning_curve_forecast(
        [n for n, _ in points], [f for _, f in points], current=verdicts
    )
    return {
        "verdicts_per_hour": team,
        "pending": pending,
        "queue_hours": pending / team if team else None,
        "learning_curve": {
            "points": curve.points,
            "ceiling_f1": curve.ceiling,
            "flat_at_verdicts": curve.flat_at,
            "more_verdicts": curve.more_verdicts,
            "note": curve.reason,
        },
    }


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
) -> tuple[dict[str, Any], list[int], list[tuple[int, float, bool]], int, int]:
    """Scores of the run in HISTOGRAM_BINS bins by verdict; also every bin's total, the
    (image, score, confirmed) triples of reviewed images, and the scored and flagged counts."""
    totals = [0] * HISTOGRAM_BINS
    confirmed_hist = [0] * HISTOGRAM_BINS
    rejected_hist = [0] * HISTOGRAM_BINS
    scored = flagged = 0
    reviewed_scores: list[tuple[int, float, bool]] = []
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
            .annotate(n=Count("image_id"))
            .order_by()
        ):
            totals[max(0, int(row["bin"]))] += row["n"]
        for image_id, p in scores.filter(image_id__in=list(latest)).values_list(
            "image_id", "p_inappropriate"
        ):
            is_confirmed = latest[image_id][0] == Decision.Verdict.INAPPROPRIATE
            reviewed_scores.append((image_id, p, is_confirmed))
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


def _flagged_bin_population(run: ScoringRun | None) -> list[int]:
    """Flagged images of the run (score >= threshold) in each of the HISTOGRAM_BINS bins."""
    population = [0] * HISTOGRAM_BINS
    if run is None:
        return population
    for row in (
        Score.objects.filter(run=run, p_inappropriate__gte=run.threshold)
        .annotate(
            bin=Least(
                Cast(Floor(F("p_inappropriate") * HISTOGRAM_BINS), IntegerField()),
                Value(HISTOGRAM_BINS - 1),
                output_field=IntegerField(),
            )
        )
        .values("bin")
        .annotate(n=Count("image_id"))
        .order_by()
    ):
        population[max(0, int(row["bin"]))] += row["n"]
    return population


def _weighted_sample(
    dataset: Dataset,
    run: ScoringRun | None,
    reviewed: list[tuple[int, float, bool]],
    *,
    unflagged: int,
) -> WeightedSample:
    """The reviewed images as a stratified sample (see reviewer.estimates): flagged images by
    score bin; below the threshold, the images reviewed for another reason (uncertain-queue
    items, items a rescore moved below) stand for themselves only (weight 1), and the audit
    sample stands for the rest of the unflagged part (the audit draws only images without
    an item)."""
    threshold = run.threshold if run is not None else 1.0
    audited = set(
        ReviewItem.objects.filter(dataset=dataset, is_audit=True).values_list("image_id", flat=True)
    )
    strata = []
    for image_id, p, _ in reviewed:
        if p >= threshold:
            strata.append(min(HISTOGRAM_BINS - 1, max(0, math.floor(p * HISTOGRAM_BINS))))
        else:
            strata.append(HISTOGRAM_BINS if image_id in audited else HISTOGRAM_BINS + 1)
    known_below = strata.count(HISTOGRAM_BINS + 1)
    return WeightedSample(
        scores=np.array([p for _, p, _ in reviewed], dtype=np.float64),
        labels=np.array([c for _, _, c in reviewed], dtype=np.int64),
        strata=np.array(strata, dtype=np.int64),
        population=np.array(
            [*_flagged_bin_population(run), max(0, unflagged - known_below), known_below],
            dtype=np.int64,
        ),
        unflagged_stratum=HISTOGRAM_BINS,
        score_bins=HISTOGRAM_BINS,
    )


def _estimates(
    sample: WeightedSample, threshold: float | None, totals: list[int]
) -> dict[str, Any]:
    """Precision of the flagged set, recall, the offensive share below the threshold and the
    precision / recall / queue size table, all from one inverse-probability-weighted
    estimator (reviewer.estimates), with 95 % intervals."""
    flagged_strata = sample.strata[(sample.strata >= 0) & (sample.strata < HISTOGRAM_BINS)]
    observed_bins = set(flagged_strata.tolist())
    flagged_total = int(sample.population[:HISTOGRAM_BINS].sum())
    covered = int(sum(sample.population[b] for b in observed_bins))
    audit = sample.strata == sample.unflagged_stratum
    n_audited = int(audit.sum())
    hits_audited = int(sample.labels[audit].sum())
    unflagged = int(sample.population[sample.unflagged_stratum :].sum())
    thresholds = [*THRESHOLDS, *([threshold] if threshold is not None else [])]
    rows = StratifiedEstimator(sample, thresholds).precision_recall()
    current = rows.pop() if threshold is not None else None
    # Below the threshold: the audit share of the audit stratum, plus the confirmed images
    # reviewed there for another reason (known exactly), over every unflagged image.
    audit_population = int(sample.population[sample.unflagged_stratum])
    known_hits = int(sample.labels[sample.strata == sample.unflagged_stratum + 1].sum())
    share, share_low, share_high = (
        None if bound is None else (bound * audit_population + known_hits) / unflagged
        for bound in (
            hits_audited / n_audited if n_audited else None,
            *proportion_interval(hits_audited, n_audited),
        )
    )
    n_flagged_reviewed = int(flagged_strata.size)
    precision = {
        "estimate": current["precision"] if current and n_flagged_reviewed else None,
        "low": current["precision_low"] if current and n_flagged_reviewed else None,
        "high": current["precision_high"] if current and n_flagged_reviewed else None,
        "n": n_flagged_reviewed,
        # Flagged images in score bins with at least one verdict: what the estimate covers.
        "flagged_covered": covered,
        "flagged": flagged_total,
    }
    recall = {
        "estimate": current["recall"] if current else None,
        "low": current["recall_low"] if current else None,
        "high": current["recall_high"] if current else None,
        "n_reviewed": int((sample.strata != UNWEIGHTED).sum()),
        "n_audited": n_audited,
    }
    missed = {
        "rate": share,
        "low": share_low,
        "high": share_high,
        "n_audited": n_audited,
        "unflagged": unflagged,
        "estimated_missed": round(share * unflagged) if share is not None else None,
        "estimated_missed_low": round(share_low * unflagged) if share_low is not None else None,
        "estimated_missed_high": round(share_high * unflagged) if share_high is not None else None,
    }
    table = [
        {**row, "queue_size": sum(totals[round(float(row["threshold"] or 0) * HISTOGRAM_BINS) :])}
        for row in rows
    ]
    return {
        "precision": precision,
        "recall": recall,
        "missed": missed,
        "thresholds": table,
        "estimator": {
            "n_audited": n_audited,
            "n_weighted": int((sample.strata != UNWEIGHTED).sum()),
            "n_below_reviewed": int((sample.strata == HISTOGRAM_BINS + 1).sum()),
            "method": (
                "inverse-probability weights: flagged images by score bin, the audit sample "
                "for the unflagged part; stratified bootstrap 95 % intervals"
            ),
        },
    }


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
    sample = _weighted_sample(dataset, run, reviewed_scores, unflagged=scored - flagged)
    estimates = _estimates(sample, run.threshold if run else None, totals)
    missed = estimates["missed"]
    queue_counts = review_queue_counts(dataset_id=dataset.pk)
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
            **queue_counts,
            **bank_matched_counts(dataset=dataset),
        },
        "precision": estimates["precision"],
        "recall": estimates["recall"],
        "missed": missed,
        "estimator": estimates["estimator"],
        "histogram": histogram,
        "thresholds": estimates["thresholds"],
        "throughput": _throughput(dataset),
        "agreement": review_agreement(dataset_id=dataset.pk),
        "policy": review_policy_summary(dataset_id=dataset.pk),
        "forecast": review_forecast(dataset=dataset, pending=queue_counts["pending"]),
    }
