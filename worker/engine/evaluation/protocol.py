"""The protocol run: every split's zero-shot, tuned, few-shot and published prompts.

The one module of the evaluation that needs torch (through prompt tuning).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from ..metrics import classification_metrics
from ..scoring import APPROPRIATE, INAPPROPRIATE, inappropriate_probability
from ..tuning import train_prompts
from .config import TUNED_ALL, ZERO_SHOT, ProtocolConfig, checked_fractions, fraction_label
from .results import MethodSplitResult, ProtocolResult, summarize_rows
from .splits import stratified_shuffle_split, stratified_subsample

__all__ = ["run_protocol"]


def _evaluate(
    embeddings: np.ndarray, labels: np.ndarray, prompts: np.ndarray, threshold: float
) -> dict[str, float]:
    return classification_metrics(
        labels, inappropriate_probability(embeddings, prompts), threshold=threshold
    )


def run_protocol(
    embeddings: np.ndarray,
    labels: np.ndarray,
    strata: np.ndarray,
    *,
    zero_shot: np.ndarray,
    published: Mapping[str, np.ndarray] | None = None,
    config: ProtocolConfig = ProtocolConfig(),  # noqa: B008 (a frozen dataclass)
    on_step: Callable[[str], None] | None = None,
) -> ProtocolResult:
    """Run the paper's protocol on precomputed image embeddings.

    For each of ``config.n_splits`` stratified shuffle splits (stratified on
    ``strata``): evaluate the zero-shot prompts and each published prompt matrix
    on the test part; tune prompts on the whole training part, starting from the
    zero-shot prompts, and evaluate them; for each few-shot fraction below 100 %,
    tune on a stratified subsample of the training part (seed ``config.seed +
    split``) and evaluate.

    Args:
        embeddings: (N, D) image embeddings, computed once.
        labels: (N,) 1 inappropriate, 0 appropriate.
        strata: (N,) strata of the split (for SMID the rounded moral mean; pass
            ``labels`` to stratify on the label alone).
        zero_shot: (2, D) zero-shot prompt matrix, also the start of tuning.
        published: row label -> (2, D) prompt matrix, evaluated as given.
        config: protocol settings.
        on_step: called with a description after each split's evaluation and
            after each training (:func:`~.config.protocol_steps` calls in all).

    Returns:
        Per-split metrics and their mean ± std, rows in the order of the paper's table.
    """
    e = np.asarray(embeddings, dtype=np.float32)
    y = np.asarray(labels).astype(np.int64)
    s = np.asarray(strata)
    if e.ndim != 2 or y.shape != (e.shape[0],) or s.shape != y.shape:
        raise ValueError(
            f"embeddings {e.shape}, labels {y.shape} and strata {s.shape} do not fit together"
        )
    if not np.isin(y, (APPROPRIATE, INAPPROPRIATE)).all():
        raise ValueError("labels must be 0 (appropriate) or 1 (inappropriate)")
    dim = e.shape[1]
    prompts_by_name = dict(published or {})
    for name, matrix in [(ZERO_SHOT, zero_shot), *prompts_by_name.items()]:
        if np.asarray(matrix).shape != (2, dim):
            raise ValueError(
                f"prompts {name!r} have shape {np.asarray(matrix).shape}; expected (2, {dim})"
            )
    fractions = checked_fractions(config.fractions)
    splits = stratified_shuffle_split(
        s, n_splits=config.n_splits, test_size=config.test_size, seed=config.seed
    )

    rows: list[MethodSplitResult] = []
    for split, (train, test) in enumerate(splits):
        e_train, y_train, s_train = e[train], y[train], s[train]
        e_test, y_test = e[test], y[test]

        # (method, kind, fraction, n_train, prompts), evaluated on this split's test part.
        methods: list[tuple[str, str, float | None, int, np.ndarray]] = [
            (ZERO_SHOT, "zero_shot", None, 0, zero_shot)
        ]
        tuned = train_prompts(e_train, y_train, init_prompts=zero_shot, config=config.tuning)
        methods.append((TUNED_ALL, "tuned", 100.0, int(train.shape[0]), tuned.prompts))
        if on_step is not None:
            on_step(f"split {split + 1}: tuned on all {train.shape[0]} training images")
        for percent in fractions:
            label = fraction_label(percent)
            if percent >= 100.0:
                methods.append((label, "few_shot", 100.0, int(train.shape[0]), tuned.prompts))
                continue
            subset = stratified_subsample(s_train, percent / 100.0, seed=config.seed + split)
            few = train_prompts(
                e_train[subset], y_train[subset], init_prompts=zero_shot, config=config.tuning
            )
            methods.append((label, "few_shot", percent, int(subset.shape[0]), few.prompts))
            if on_step is not None:
                on_step(f"split {split + 1}: tuned on {percent:g} % ({subset.shape[0]} images)")
        for name, matrix in prompts_by_name.items():
            methods.append((name, "published", None, 0, np.asarray(matrix, dtype=np.float32)))

        for method, kind, fraction, n_train, prompts in methods:
            rows.append(
                MethodSplitResult(
                    method=method,
                    kind=kind,
                    fraction=fraction,
                    split=split,
                    n_train=n_train,
                    n_test=int(test.shape[0]),
                    metrics=_evaluate(e_test, y_test, prompts, config.threshold),
                )
            )

    return ProtocolResult(
        splits=rows,
        summary=summarize_rows(rows),
        n_items=int(y.shape[0]),
        n_positive=int(y.sum()),
    )
