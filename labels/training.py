"""What a worker does for a prompt job: encode zero-shot texts, or train on verdicts.

Worker-side: training and text encoding load the engine (torch).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from sklearn.metrics import average_precision_score

from curation.errors import ValidationFailed
from curation.models import Dataset, PromptJob, PromptVersion
from curation.selectors import active_prompt_version
from curation.services.prompt_jobs import JOB_ACTIVE_STATES
from curation.services.prompt_policy import prompt_policy_apply
from curation.services.prompt_versions import prompt_vectors
from curation.services.prompt_zero_shot import prompt_version_create_zero_shot
from labels.selectors import labelled_embeddings
from worker.engine.evaluation.splits import content_hash_split
from worker.engine.metrics import classification_metrics, paired_worse_share
from worker.engine.scoring import inappropriate_probability
from worker.engine.store import prompts_to_bytes
from worker.engine.tuning import train_prompts
from worker.engine.tuning_config import DEFAULT_HELDOUT_FRACTION, TuningConfig, tuning_config_from

logger = logging.getLogger(__name__)

MIN_PER_CLASS = 2


def prompt_job_run(*, job_id: int, clip_provider=None) -> PromptJob:
    """Run a queued prompt job once; a finished job is left alone (safe to run twice).

    A job cancelled while it runs drops its result: the version it made is deleted.
    """
    with transaction.atomic():
        job = PromptJob.objects.select_for_update().get(pk=job_id)
        if job.state not in JOB_ACTIVE_STATES:
            return job  # finished, failed or cancelled
        job.state = PromptJob.State.RUNNING
        job.heartbeat_at = timezone.now()
        job.save(update_fields=["state", "heartbeat_at"])
    try:
        if job.kind == PromptJob.Kind.ZERO_SHOT:
            if clip_provider is None:
                raise ValidationFailed("Zero-shot prompts need the CLIP text encoder.")
            version = prompt_version_create_zero_shot(
                clip=clip_provider(job.model_key),
                appropriate=job.options["appropriate"],
                inappropriate=job.options["inappropriate"],
                name=job.options.get("name", ""),
                created_by=job.created_by,
            )
        else:
            if job.dataset is None or job.parent is None:
                raise ValidationFailed("A training job needs a dataset and a parent version.")
            version = prompt_version_train(
                dataset=job.dataset,
                parent=job.parent,
                config=tuning_config_from(job.options),
                heldout_fraction=float(job.options["heldout_fraction"]),
                name=job.options.get("name", ""),
                created_by=job.created_by,
            )
    except ValidationFailed as exc:
        PromptJob.objects.filter(pk=job.pk, state=PromptJob.State.RUNNING).update(
            state=PromptJob.State.FAILED, error=exc.message, finished_at=timezone.now()
        )
        job.refresh_from_db()
        if "policy" in (job.options or {}) and job.state == PromptJob.State.FAILED:
            job = prompt_policy_apply(job_id=job.pk)
        return job
    with transaction.atomic():
        locked = PromptJob.objects.select_for_update().get(pk=job.pk)
        if locked.state != PromptJob.State.RUNNING:
            # Cancelled while it ran: nobody wants the version any more.
            version.delete()
            logger.info("prompt job %s was %s: its result is dropped", job.pk, locked.state)
            return locked
        locked.state = PromptJob.State.SUCCEEDED
        locked.result = version
        locked.finished_at = timezone.now()
        locked.save(update_fields=["state", "result", "finished_at"])
    job.refresh_from_db()
    if "policy" in (job.options or {}):
        job = prompt_policy_apply(job_id=job.pk)
    return job


def _evaluate(vectors: np.ndarray, embeddings: np.ndarray, labels: np.ndarray) -> dict:
    """classification_metrics, plus the average precision of the inappropriate class (None
    without both classes): with a few per cent offensive, accuracy says little."""
    probabilities = inappropriate_probability(embeddings, vectors)
    metrics: dict[str, Any] = classification_metrics(labels, probabilities)
    both = labels.size and 0 < int(labels.sum()) < labels.size
    metrics["average_precision"] = (
        float(average_precision_score(labels, probabilities)) if both else None
    )
    return metrics


def prompt_version_train(
    *,
    dataset: Dataset,
    parent: PromptVersion,
    config: TuningConfig | None = None,
    heldout_fraction: float = DEFAULT_HELDOUT_FRACTION,
    name: str = "",
    created_by: User | None = None,
) -> PromptVersion:
    """Tune new prompts on the dataset's verdicts (cached embeddings only), starting from parent.

    The verdicts are split by content hash into train and held-out parts (see
    content_hash_split); the new version's metrics record its held-out scores (F1 of the
    inappropriate class and average precision among them) next to the parent's and the
    active version's on the same held-out verdicts.
    """
    config = config or TuningConfig()
    data = labelled_embeddings(dataset_id=dataset.pk, model_key=parent.model_key, dim=parent.dim)
    labels = data.labels
    counts = {int(c): int((labels == c).sum()) for c in (0, 1)}
    if min(counts.values()) < MIN_PER_CLASS:
        raise ValidationFailed(
            f"Training needs at least {MIN_PER_CLASS} confirmed and {MIN_PER_CLASS} rejected "
            f"images with cached embeddings; this dataset has {counts[1]} confirmed and "
            f"{counts[0]} rejected."
        )
    # By content hash: identical files never sit on both sides, and the held-out part stays
    # put as verdicts accumulate (each retrain is compared on files no predecessor saw).
    train_idx, test_idx = content_hash_split(data.hashes, labels, test_fraction=heldout_fraction)
    init = prompt_vectors(parent)
    result = train_prompts(
        data.embeddings[train_idx], labels[train_idx], init_prompts=init, config=config
    )
    held_x, held_y = data.embeddings[test_idx], labels[test_idx]
    metrics: dict[str, Any] = {
        "dataset_id": dataset.pk,
        "n_train": int(len(train_idx)),
        "n_heldout": int(len(test_idx)),
        "class_counts": {"appropriate": counts[0], "inappropriate": counts[1]},
        "config": {**config.__dict__, "heldout_fraction": heldout_fraction},
        "seconds": round(result.seconds, 3),
        "train": _evaluate(result.prompts, data.embeddings[train_idx], labels[train_idx]),
        "heldout": _evaluate(result.prompts, held_x, held_y),
        "parent_heldout": _evaluate(init, held_x, held_y),
    }
    active = active_prompt_version(model_key=parent.model_key)
    if active is not None:
        metrics["active_id"] = active.pk
        active_vectors = prompt_vectors(active)
        metrics["active_heldout"] = _evaluate(active_vectors, held_x, held_y)
        # How sure the held-out verdicts are that the candidate is worse (the policy
        # activates a candidate the set cannot tell from the active version).
        metrics["active_comparison"] = {
            "measure": "average_precision",
            "worse_share": paired_worse_share(
                held_y,
                inappropriate_probability(held_x, result.prompts),
                inappropriate_probability(held_x, active_vectors),
            ),
        }
    version = PromptVersion(
        name=name.strip() or f"trained on {dataset.name}",
        model_key=parent.model_key,
        dim=parent.dim,
        vectors=prompts_to_bytes(result.prompts),
        source=PromptVersion.Source.TRAINED,
        parent=parent,
        metrics=metrics,
        created_by=created_by,
    )
    version.full_clean()
    version.save()
    logger.info(
        "trained prompt version %s on %s verdicts: held-out accuracy %.3f (parent %.3f)",
        version.pk,
        len(labels),
        metrics["heldout"]["accuracy"],
        metrics["parent_heldout"]["accuracy"],
    )
    return version
