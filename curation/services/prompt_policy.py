"""The automatic-retrain policy: after every N verdicts, train a candidate; keep it if better.

A candidate goes live unless the same held-out verdicts show it worse than the active
version, and never for a dataset pinned to a version. "As good" is measured by the
average precision of the inappropriate class where both have it (threshold-free, so steadier
than F1 on the few offensive held-out images early on; with a few per cent offensive,
accuracy says little), else F1, else accuracy (metrics that predate them).

A lower held-out AP counts as worse only when the held-out verdicts are sure of it: on a few
dozen verdicts the higher AP is often luck, and a lucky version would lock out every better
successor (make bench-labels showed the curves stall). Training records the share of paired
bootstrap resamples on which the candidate's AP is below the active one's; a candidate is
refused when that share is at least WORSE_CONFIDENCE.
"""

from __future__ import annotations

import logging

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from audit.services import audit_context, audit_record
from curation.errors import StateConflict, full_clean_or_fail
from curation.models import Dataset, PromptJob, PromptPolicy
from curation.selectors import active_prompt_version, dataset_latest_run
from curation.services.prompt_jobs import prompt_job_create_training
from curation.services.prompt_versions import prompt_version_activate

logger = logging.getLogger(__name__)

# What the settings page offers when auto-retrain is turned on: training takes seconds on
# cached embeddings, and 50 verdicts move held-out F1 measurably (make bench-labels).
DEFAULT_RETRAIN_EVERY = 50

# The held-out figures a candidate is compared on, the first both versions have.
COMPARED_MEASURES = ("average_precision", "f1", "accuracy")

# Refuse a candidate with a lower held-out AP when at least this share of paired bootstrap
# resamples of the held-out verdicts agree that it is lower.
WORSE_CONFIDENCE = 0.9


def _worse_share(metrics: dict, *, measure: str) -> float | None:
    """The recorded bootstrap share of resamples with the candidate below the active
    version on this measure (None when training recorded none for it)."""
    comparison = metrics.get("active_comparison") or {}
    return comparison.get("worse_share") if comparison.get("measure") == measure else None


def _refusal(
    metrics: dict, measure: str, candidate: float | None, active: float | None
) -> str | None:
    """Why the candidate stays inactive, or None: it has no figure to compare, or a lower
    one that the held-out verdicts confirm (any lower one, without a recorded comparison)."""
    if active is None:
        return None
    worse = "the candidate is worse than the active version on held-out verdicts"
    if candidate is None:
        return worse
    if candidate >= active:
        return None
    share = _worse_share(metrics, measure=measure)
    if share is None:
        return worse
    return f"{worse} (in {share:.0%} of resamples)" if share >= WORSE_CONFIDENCE else None


def _acceptance(metrics: dict, measure: str, candidate: float | None, active: float | None) -> str:
    """Why an activated candidate went live."""
    if active is None:
        return "no active version to compare with"
    if candidate is not None and candidate < active:
        share = _worse_share(metrics, measure=measure) or 0.0
        return (
            f"lower held-out {measure} ({candidate:.3f} vs {active:.3f}), but the held-out "
            f"verdicts cannot tell them apart (worse in {share:.0%} of resamples)"
        )
    return "at least as good as the active version on held-out verdicts"


def prompt_policy_update(
    *, dataset: Dataset, auto_retrain_every: int | None, actor: User | None = None
) -> PromptPolicy:
    """Turn the auto-retrain policy on (every N >= 1 new verdicts) or off (None)."""
    with transaction.atomic():
        policy, _ = PromptPolicy.objects.select_for_update().get_or_create(dataset=dataset)
        was = policy.auto_retrain_every
        policy.auto_retrain_every = auto_retrain_every
        full_clean_or_fail(policy)
        policy.save(update_fields=["auto_retrain_every", "updated_at"])
        if was != policy.auto_retrain_every:
            audit_record(
                actor=actor,
                action="prompt_policy.update",
                target=dataset,
                before={"auto_retrain_every": was},
                after={"auto_retrain_every": policy.auto_retrain_every},
            )
    return policy


def prompt_policy_count_verdicts(*, dataset_id: int, count: int = 1) -> PromptJob | None:
    """Count new verdicts for the dataset's auto-retrain policy; after every N, queue training.

    Training starts from the pinned version, or the active version of the dataset's model.
    A training job still pending or running is not stacked: the count keeps growing and the
    next verdict after it ends queues the next job. Called inside the verdict's transaction.
    """
    rules = (
        PromptPolicy.objects.select_for_update(of=("self",))
        .select_related("dataset", "pinned_version", "last_retrain_job")
        .filter(dataset_id=dataset_id, auto_retrain_every__isnull=False)
        .first()
    )
    if rules is None:
        return None
    rules.verdicts_since_retrain += count
    job = None
    busy = rules.last_retrain_job is not None and rules.last_retrain_job.state in (
        PromptJob.State.PENDING,
        PromptJob.State.RUNNING,
    )
    every = rules.auto_retrain_every or 0  # the query above keeps only policies that are on
    if every and rules.verdicts_since_retrain >= every and not busy:
        parent = rules.pinned_version
        if parent is None:
            last = dataset_latest_run(dataset=rules.dataset)
            if last is not None:
                parent = active_prompt_version(model_key=last.model_key) or last.prompt_version
        if parent is not None:
            reason = f"auto-retrain policy: {rules.verdicts_since_retrain} new verdicts"
            with audit_context(reason=reason):
                job = prompt_job_create_training(
                    dataset=rules.dataset,
                    parent=parent,
                    name=f"auto-retrain of {rules.dataset.name}",
                    policy={"trigger_verdicts": rules.verdicts_since_retrain},
                )
            rules.verdicts_since_retrain = 0
            rules.last_retrain_job = job
    rules.save(update_fields=["verdicts_since_retrain", "last_retrain_job", "updated_at"])
    return job


def _compared(metrics: dict) -> tuple[str, float | None, float | None]:
    """(measure, candidate's, active's) held-out figure the decision compares."""
    candidate = metrics.get("heldout") or {}
    active = metrics.get("active_heldout") or {}
    for measure in COMPARED_MEASURES:
        if candidate.get(measure) is not None and (not active or active.get(measure) is not None):
            return measure, candidate[measure], active.get(measure) if active else None
    return "accuracy", candidate.get("accuracy"), active.get("accuracy") if active else None


def prompt_policy_apply(*, job_id: int) -> PromptJob:
    """Decide, once, whether the policy's finished training job's candidate goes live.

    The candidate is activated (rescoring from cached embeddings) only when its held-out
    accuracy is at least the active version's on the same held-out verdicts, and never for
    a dataset with a pinned version. The comparison and the decision are written to
    job.options["policy"].
    """
    with transaction.atomic():
        job = (
            PromptJob.objects.select_for_update(of=("self",))
            .select_related("result")
            .get(pk=job_id)
        )
        policy = dict((job.options or {}).get("policy") or {})
        if policy.get("decided"):
            return job
        version = job.result
        pinned = (
            None
            if job.dataset_id is None
            else (
                PromptPolicy.objects.filter(dataset_id=job.dataset_id)
                .values_list("pinned_version_id", flat=True)
                .first()
            )
        )
        decision: dict = {
            "decided": True,
            "activated": False,
            "decided_at": timezone.now().isoformat(),
        }
        if job.state != PromptJob.State.SUCCEEDED or version is None:
            decision["reason"] = f"training did not produce a candidate: {job.error}".strip()
        else:
            metrics = version.metrics or {}
            measure, candidate, active = _compared(metrics)
            decision.update(
                candidate_id=version.pk,
                candidate_accuracy=(metrics.get("heldout") or {}).get("accuracy"),
                active_id=metrics.get("active_id"),
                active_accuracy=(metrics.get("active_heldout") or {}).get("accuracy"),
                candidate_f1=(metrics.get("heldout") or {}).get("f1"),
                active_f1=(metrics.get("active_heldout") or {}).get("f1"),
                compared_on=measure,
                n_heldout=metrics.get("n_heldout"),
                worse_share=_worse_share(metrics, measure=measure),
            )
            if pinned is not None:
                decision["reason"] = f"the dataset is pinned to version {pinned}"
            elif (refusal := _refusal(metrics, measure, candidate, active)) is not None:
                decision["reason"] = refusal
            else:
                compared = "no active version" if active is None else f"active version {active}"
                reason = (
                    f"auto-retrain policy: job {job.pk}'s candidate (held-out {measure} "
                    f"{candidate}; {compared})"
                )
                try:
                    with audit_context(reason=reason, prompt_job=job.pk):
                        runs = prompt_version_activate(version=version, created_by=job.created_by)
                except StateConflict as exc:
                    decision["reason"] = f"not activated: {exc.message}"
                else:
                    decision["activated"] = True
                    decision["rescore_runs"] = [run.pk for run in runs]
                    decision["reason"] = _acceptance(metrics, measure, candidate, active)
        policy.update(decision)
        job.options = {**(job.options or {}), "policy": policy}
        job.save(update_fields=["options"])
    logger.info("auto-retrain job %s: %s", job.pk, policy.get("reason"))
    return job
