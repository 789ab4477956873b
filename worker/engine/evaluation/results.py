"""What the protocol reports: per-split rows, their mean ± std, the metric names. NumPy only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "METRICS",
    "MethodSplitResult",
    "MethodSummary",
    "ProtocolResult",
    "summarize_rows",
]


METRICS: tuple[str, ...] = ("accuracy", "precision", "recall", "f1")
"""The reported metrics, *inappropriate* being the positive class."""


@dataclass(frozen=True)
class MethodSplitResult:
    """One method's test metrics on one split.

    Attributes:
        method: row label (``"zero-shot"``, ``"tuned (all training data)"``, ...).
        kind: ``"zero_shot"``, ``"tuned"``, ``"few_shot"`` or ``"published"``.
        fraction: percent of the training part used for tuning (tuned rows only).
        split: split index, from 0.
        n_train: training items used (0 for untrained methods).
        n_test: test items.
        metrics: :func:`~worker.engine.metrics.classification_metrics` output.
    """

    method: str
    kind: str
    fraction: float | None
    split: int
    n_train: int
    n_test: int
    metrics: dict[str, float]


@dataclass(frozen=True)
class MethodSummary:
    """One method's metrics over all splits: mean and (population) standard deviation."""

    method: str
    kind: str
    fraction: float | None
    n_splits: int
    mean: dict[str, float]
    std: dict[str, float]


@dataclass(frozen=True)
class ProtocolResult:
    """Output of :func:`run_protocol`: per-split rows and their summary, in table order."""

    splits: list[MethodSplitResult]
    summary: list[MethodSummary]
    n_items: int
    n_positive: int


def summarize_rows(rows: Sequence[MethodSplitResult]) -> list[MethodSummary]:
    """Mean and population std (``numpy.std``) of each method's metrics over splits.

    Methods keep the order of their first appearance.
    """
    grouped: dict[str, list[MethodSplitResult]] = {}
    for row in rows:
        grouped.setdefault(row.method, []).append(row)
    summary = []
    for method, group in grouped.items():
        values = {m: np.array([r.metrics[m] for r in group], dtype=np.float64) for m in METRICS}
        summary.append(
            MethodSummary(
                method=method,
                kind=group[0].kind,
                fraction=group[0].fraction,
                n_splits=len(group),
                mean={m: float(v.mean()) for m, v in values.items()},
                std={m: float(v.std()) for m, v in values.items()},
            )
        )
    return summary
