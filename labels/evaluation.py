"""Evaluating a prompt version on reviewed images (the latest non-skip verdict per image)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from curation.errors import ValidationFailed
from curation.models import Dataset, Image, PromptVersion
from curation.services.prompt_versions import prompt_vectors
from labels.selectors import labelled_embeddings
from reviewer.selectors.verdicts import latest_verdict_subquery
from worker.engine.metrics import classification_metrics
from worker.engine.scoring import inappropriate_probability, threshold_error


@dataclass(frozen=True)
class VerdictEvaluation:
    """Metrics of a prompt version on one dataset's verdicts (or on all of them).

    Attributes:
        label: the dataset's name, or "all" for the pooled row.
        verdicts: images with a verdict (latest non-skip one).
        used: of those, images with a cached embedding for the version's model.
        skipped: verdicts without a cached embedding (not evaluated).
        inappropriate: used images whose verdict is *inappropriate*.
        metrics: :func:`~worker.engine.tuning.classification_metrics`, None when nothing was used.
    """

    label: str
    verdicts: int
    used: int
    skipped: int
    inappropriate: int
    metrics: dict[str, float] | None


@dataclass(frozen=True)
class PromptVersionEvaluation:
    version: PromptVersion
    threshold: float
    datasets: list[VerdictEvaluation]
    total: VerdictEvaluation


def _evaluation(
    label: str, verdicts: int, labels: np.ndarray, probabilities: np.ndarray, threshold: float
) -> VerdictEvaluation:
    used = int(labels.shape[0])
    return VerdictEvaluation(
        label=label,
        verdicts=verdicts,
        used=used,
        skipped=verdicts - used,
        inappropriate=int(labels.sum()),
        metrics=classification_metrics(labels, probabilities, threshold=threshold)
        if used
        else None,
    )


def prompt_version_evaluate(
    *,
    version: PromptVersion,
    datasets: Sequence[Dataset] | None = None,
    threshold: float = 0.5,
) -> PromptVersionEvaluation:
    """Score reviewed images with a prompt version and compare with the reviewers' verdicts.

    Uses the cached embeddings of the version's model only (nothing is encoded);
    verdicts on images without one are counted as skipped.

    Args:
        version: the prompt version to evaluate.
        datasets: datasets whose verdicts to use (default: every dataset).
        threshold: an image counts as flagged when its probability is >= this.

    Raises:
        ValidationFailed: a threshold outside (0, 1].
    """
    if problem := threshold_error(threshold):
        raise ValidationFailed(problem)
    chosen = list(datasets) if datasets is not None else list(Dataset.objects.order_by("id"))
    prompts = prompt_vectors(version)
    rows: list[VerdictEvaluation] = []
    all_labels: list[np.ndarray] = []
    all_probabilities: list[np.ndarray] = []
    total_verdicts = 0
    for dataset in chosen:
        verdicts = (
            Image.objects.filter(dataset=dataset, status=Image.Status.OK)
            .annotate(verdict=latest_verdict_subquery())
            .filter(verdict__isnull=False)
            .count()
        )
        labelled = labelled_embeddings(
            dataset_id=dataset.pk, model_key=version.model_key, dim=version.dim
        )
        if labelled.labels.shape[0]:
            probabilities = inappropriate_probability(labelled.embeddings, prompts)
        else:
            probabilities = np.zeros(0, dtype=np.float32)
        rows.append(_evaluation(dataset.name, verdicts, labelled.labels, probabilities, threshold))
        all_labels.append(labelled.labels)
        all_probabilities.append(probabilities)
        total_verdicts += verdicts
    labels = np.concatenate(all_labels) if all_labels else np.zeros(0, dtype=np.int64)
    probabilities = (
        np.concatenate(all_probabilities) if all_probabilities else np.zeros(0, dtype=np.float32)
    )
    total = _evaluation("all", total_verdicts, labels, probabilities, threshold)
    return PromptVersionEvaluation(version=version, threshold=threshold, datasets=rows, total=total)
