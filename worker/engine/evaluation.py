"""The Q16 paper's evaluation protocol on SMID, as pure functions (no Django).

The protocol (Schramowski & Kersting, 2021; DESIGN.md section 1):

- Labels from SMID's moral ratings: an image whose mean moral rating is below
  2.5 is *inappropriate* (1), above 3.5 *appropriate* (0); the rest are dropped
  (:func:`smid_labels`).
- Ten stratified shuffle splits, 10 % test, seed 42, stratified on the ROUNDED
  moral mean (:func:`stratified_shuffle_split`, which reproduces
  ``sklearn.model_selection.StratifiedShuffleSplit`` index for index, in NumPy).
- On each split: the zero-shot prompts, prompts tuned on the training part
  (initialised from the zero-shot ones, the paper's tuning settings) and any
  published prompt matrices, all scored on the test part; optionally the
  few-shot curve, tuning on a stratified fraction of the training part.
- Accuracy, precision, recall and F1 with *inappropriate* as the positive
  class, reported as mean ± std over the splits (:func:`run_protocol`).

Images are embedded once (:func:`embed_files_cached`, optionally backed by an
``.npz`` cache keyed by model) and the embeddings are reused by every split.
"""

from __future__ import annotations

import csv
import logging
import math
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .scoring import APPROPRIATE, INAPPROPRIATE, inappropriate_probability
from .tuning import TuningConfig, classification_metrics, train_prompts

if TYPE_CHECKING:
    from .clip import ClipModel

__all__ = [
    "DROPPED",
    "CachedEncodeResult",
    "METRICS",
    "MORAL_APPROPRIATE_ABOVE",
    "MORAL_INAPPROPRIATE_BELOW",
    "MethodSplitResult",
    "MethodSummary",
    "ProtocolConfig",
    "ProtocolResult",
    "SmidDataset",
    "SmidFormatError",
    "approximate_mode",
    "embed_files_cached",
    "format_table",
    "load_smid",
    "protocol_steps",
    "run_protocol",
    "smid_labels",
    "smid_strata",
    "stratified_shuffle_split",
    "stratified_subsample",
    "summarize_rows",
    "write_protocol_csvs",
]

logger = logging.getLogger(__name__)

MORAL_INAPPROPRIATE_BELOW = 2.5
"""Mean moral rating below which a SMID image is *inappropriate* (label 1)."""
MORAL_APPROPRIATE_ABOVE = 3.5
"""Mean moral rating above which a SMID image is *appropriate* (label 0)."""
DROPPED = -1
"""Label of images between the two thresholds (dropped by the protocol)."""

METRICS: tuple[str, ...] = ("accuracy", "precision", "recall", "f1")
"""The reported metrics, *inappropriate* being the positive class."""

NORMS_FILE = "SMID_norms.csv"
IMAGE_FOLDER = "img"
_REQUIRED_COLUMNS = ("img_name", "moral_mean")
_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


class SmidFormatError(ValueError):
    """A folder is not in SMID's layout (no norms file, missing columns, no image folder)."""


# --------------------------------------------------------------------------- labels


def smid_labels(moral_means: np.ndarray) -> np.ndarray:
    """The paper's label rule for SMID's mean moral ratings.

    Args:
        moral_means: (N,) mean moral ratings (1 = immoral ... 5 = moral).

    Returns:
        int64 (N,): 1 (inappropriate) where the mean is < 2.5, 0 (appropriate)
        where it is > 3.5, :data:`DROPPED` (-1) otherwise, including NaN.
    """
    means = np.asarray(moral_means, dtype=np.float64)
    labels = np.full(means.shape, DROPPED, dtype=np.int64)
    labels[means < MORAL_INAPPROPRIATE_BELOW] = INAPPROPRIATE
    labels[means > MORAL_APPROPRIATE_ABOVE] = APPROPRIATE
    return labels


def smid_strata(moral_means: np.ndarray) -> np.ndarray:
    """The split's strata: the moral mean rounded to an integer (half to even, like NumPy)."""
    return np.round(np.asarray(moral_means, dtype=np.float64)).astype(np.int64)


@dataclass(frozen=True)
class SmidDataset:
    """The labelled part of a SMID folder.

    Attributes:
        names: ``img_name`` of each kept image (labelled and present on disk).
        paths: the image file of each kept image.
        moral_means: (N,) their mean moral ratings.
        labels: (N,) 1 inappropriate, 0 appropriate.
        strata: (N,) rounded moral means, the split's strata.
        rows: rows in the norms file.
        dropped_middle: rows dropped because 2.5 <= moral mean <= 3.5.
        invalid: ``img_name`` of rows without a usable moral mean (dropped).
        missing: ``img_name`` of labelled rows whose image file is missing (dropped).
    """

    names: list[str]
    paths: list[Path]
    moral_means: np.ndarray
    labels: np.ndarray
    strata: np.ndarray
    rows: int
    dropped_middle: int
    invalid: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def without(self, positions: Sequence[int]) -> SmidDataset:
        """A copy without the images at ``positions`` (e.g. files that failed to decode)."""
        drop = set(positions)
        keep = [i for i in range(len(self.names)) if i not in drop]
        return SmidDataset(
            names=[self.names[i] for i in keep],
            paths=[self.paths[i] for i in keep],
            moral_means=self.moral_means[keep],
            labels=self.labels[keep],
            strata=self.strata[keep],
            rows=self.rows,
            dropped_middle=self.dropped_middle,
            invalid=list(self.invalid),
            missing=list(self.missing),
        )


def _image_index(folder: Path) -> dict[str, Path]:
    """Map each image file's name without its last suffix (and its full name) to its path."""
    index: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        index.setdefault(path.name, path)
        if path.suffix.lower() in _IMAGE_SUFFIXES:
            index.setdefault(path.stem, path)
    return index


def _parse_float(value: str | None) -> float:
    try:
        number = float((value or "").strip())
    except ValueError:
        return math.nan
    return number


def load_smid(smid_dir: str | Path) -> SmidDataset:
    """Read a SMID folder: ``SMID_norms.csv`` plus ``img/<img_name>.<ext>``.

    Labels follow :func:`smid_labels`. Rows in the middle band, rows without a
    numeric moral mean, and labelled rows whose image file is missing are
    dropped and counted, never an error.

    Raises:
        SmidFormatError: no norms file, no ``img`` folder, or missing columns.
    """
    root = Path(smid_dir)
    norms = root / NORMS_FILE
    images = root / IMAGE_FOLDER
    if not norms.is_file():
        raise SmidFormatError(
            f"{norms} not found: point at the SMID folder (e.g. SMID_images_400px/) "
            f"holding {NORMS_FILE} and {IMAGE_FOLDER}/"
        )
    if not images.is_dir():
        raise SmidFormatError(f"{images} is not a folder")
    with norms.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        columns = [c.strip() for c in reader.fieldnames or []]
        absent = [c for c in _REQUIRED_COLUMNS if c not in columns]
        if absent:
            raise SmidFormatError(f"{norms} lacks column(s) {', '.join(absent)}")
        reader.fieldnames = columns
        records = [
            ((row.get("img_name") or "").strip(), _parse_float(row.get("moral_mean")))
            for row in reader
        ]

    index = _image_index(images)
    names: list[str] = []
    paths: list[Path] = []
    means: list[float] = []
    invalid: list[str] = []
    missing: list[str] = []
    dropped_middle = 0
    for name, moral_mean in records:
        if not name or not math.isfinite(moral_mean):
            invalid.append(name)
            continue
        if smid_labels(np.array([moral_mean]))[0] == DROPPED:
            dropped_middle += 1
            continue
        path = index.get(name)
        if path is None:
            missing.append(name)
            continue
        names.append(name)
        paths.append(path)
        means.append(moral_mean)
    moral = np.array(means, dtype=np.float64)
    dataset = SmidDataset(
        names=names,
        paths=paths,
        moral_means=moral,
        labels=smid_labels(moral),
        strata=smid_strata(moral),
        rows=len(records),
        dropped_middle=dropped_middle,
        invalid=invalid,
        missing=missing,
    )
    logger.info(
        "SMID %s: %d rows, %d labelled images (%d inappropriate), %d in the middle band, "
        "%d without a moral mean, %d images missing",
        root,
        dataset.rows,
        len(names),
        int(dataset.labels.sum()),
        dropped_middle,
        len(invalid),
        len(missing),
    )
    return dataset


# --------------------------------------------------------------------------- splits


def approximate_mode(
    class_counts: np.ndarray, n_draws: int, rng: np.random.RandomState
) -> np.ndarray:
    """How many of ``n_draws`` to take from each class (scikit-learn's ``_approximate_mode``).

    Proportional shares, floored, then the left-over draws go to the classes with
    the largest remainders, ties broken at random with ``rng`` (consumed exactly
    like scikit-learn does, so seeded splits match it).
    """
    counts = np.asarray(class_counts)
    continuous = counts / counts.sum() * n_draws
    floored = np.floor(continuous)
    need_to_add = int(n_draws - floored.sum())
    if need_to_add > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (candidates,) = np.where(remainder == value)
            add_now = min(len(candidates), need_to_add)
            chosen = rng.choice(candidates, size=add_now, replace=False)
            floored[chosen] += 1
            need_to_add -= add_now
            if need_to_add == 0:
                break
    return floored.astype(np.int64)


def stratified_shuffle_split(
    strata: np.ndarray,
    *,
    n_splits: int = 10,
    test_size: float = 0.1,
    seed: int = 42,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified shuffle splits, index for index those of scikit-learn.

    Equivalent to ``StratifiedShuffleSplit(n_splits, test_size=test_size,
    random_state=seed).split(X, strata)`` (scikit-learn >= 0.22), without
    depending on scikit-learn: the test part has ``ceil(test_size * N)`` items,
    the training part the rest, each stratum represented in proportion.

    Args:
        strata: (N,) stratum of each item (for SMID: the rounded moral mean).
        n_splits: number of independent splits.
        test_size: share of items in each test part, in (0, 1).
        seed: seed of ``numpy.random.RandomState``, as scikit-learn's random_state.

    Returns:
        ``n_splits`` pairs ``(train_indices, test_indices)`` of int64 arrays, in
        scikit-learn's (shuffled) order.

    Raises:
        ValueError: bad sizes, a stratum with a single item, or fewer training or
            test items than strata (scikit-learn's conditions).
    """
    y = np.asarray(strata)
    if y.ndim != 1:
        raise ValueError(f"strata must be 1-D, got shape {y.shape}")
    if n_splits < 1:
        raise ValueError(f"n_splits must be >= 1, got {n_splits}")
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be in (0, 1), got {test_size}")
    n_samples = y.shape[0]
    n_test = math.ceil(test_size * n_samples)
    n_train = n_samples - n_test
    if n_train <= 0 or n_test <= 0:
        raise ValueError(f"{n_samples} items cannot be split with test_size={test_size}")
    classes, y_indices = np.unique(y, return_inverse=True)
    n_classes = classes.shape[0]
    class_counts = np.bincount(y_indices)
    if np.min(class_counts) < 2:
        lonely = classes[class_counts < 2].tolist()
        raise ValueError(f"stratum/strata {lonely} have a single item; each needs at least 2")
    if n_train < n_classes or n_test < n_classes:
        raise ValueError(
            f"train ({n_train}) and test ({n_test}) parts must each hold at least one item "
            f"of each of the {n_classes} strata"
        )
    class_indices = np.split(np.argsort(y_indices, kind="mergesort"), np.cumsum(class_counts)[:-1])
    rng = np.random.RandomState(seed)
    splits: list[tuple[np.ndarray, np.ndarray]] = []
    for _ in range(n_splits):
        n_i = approximate_mode(class_counts, n_train, rng)
        t_i = approximate_mode(class_counts - n_i, n_test, rng)
        train: list[int] = []
        test: list[int] = []
        for i in range(n_classes):
            permutation = rng.permutation(class_counts[i])
            members = class_indices[i].take(permutation, mode="clip")
            train.extend(members[: n_i[i]].tolist())
            test.extend(members[n_i[i] : n_i[i] + t_i[i]].tolist())
        splits.append(
            (
                rng.permutation(np.array(train, dtype=np.int64)),
                rng.permutation(np.array(test, dtype=np.int64)),
            )
        )
    return splits


def stratified_subsample(strata: np.ndarray, fraction: float, *, seed: int) -> np.ndarray:
    """A seeded, stratified subsample of ``floor(fraction * N)`` items, for few-shot curves.

    Each stratum contributes in proportion (scikit-learn's allocation); every
    stratum keeps at least one item, so the subsample may exceed the target by a
    few items when strata are tiny.

    Args:
        strata: (N,) stratum of each item.
        fraction: share to keep, in (0, 1]; 1 keeps everything.
        seed: seed of ``numpy.random.RandomState``.

    Returns:
        Sorted int64 positions into ``strata``.
    """
    y = np.asarray(strata)
    n = y.shape[0]
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    if fraction >= 1.0 or n == 0:
        return np.arange(n, dtype=np.int64)
    classes, y_indices = np.unique(y, return_inverse=True)
    counts = np.bincount(y_indices)
    rng = np.random.RandomState(seed)
    per_class = approximate_mode(counts, math.floor(fraction * n), rng)
    per_class = np.maximum(per_class, 1)
    chosen: list[np.ndarray] = []
    for i in range(classes.shape[0]):
        members = np.flatnonzero(y_indices == i)
        chosen.append(members[rng.permutation(members.shape[0])[: per_class[i]]])
    return np.sort(np.concatenate(chosen)).astype(np.int64)


# --------------------------------------------------------------------------- protocol


@dataclass(frozen=True)
class ProtocolConfig:
    """Settings of the evaluation protocol; the defaults are the paper's.

    Attributes:
        n_splits: number of stratified shuffle splits.
        test_size: share of each split held out for testing.
        seed: seed of the splits (and, offset by the split index, of few-shot subsamples).
        fractions: few-shot training shares in percent of the training part
            (e.g. ``(1, 2, 4, 10, 20, 40, 100)``); empty for no curve. 100 reuses
            the all-data tuning.
        tuning: prompt-tuning settings (seed included).
        threshold: an image is predicted inappropriate when its probability is >= this.
    """

    n_splits: int = 10
    test_size: float = 0.1
    seed: int = 42
    fractions: tuple[float, ...] = ()
    tuning: TuningConfig = TuningConfig()
    threshold: float = 0.5


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
        metrics: :func:`~worker.engine.tuning.classification_metrics` output.
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


ZERO_SHOT = "zero-shot"
TUNED_ALL = "tuned (all training data)"


def _fraction_label(percent: float) -> str:
    return f"tuned, {percent:g} % of training data"


def _checked_fractions(fractions: Sequence[float]) -> tuple[float, ...]:
    checked = []
    for percent in fractions:
        if not 0.0 < percent <= 100.0:
            raise ValueError(f"training fractions are percentages in (0, 100], got {percent}")
        if percent not in checked:
            checked.append(float(percent))
    return tuple(checked)


def protocol_steps(config: ProtocolConfig) -> int:
    """Number of progress steps :func:`run_protocol` reports (one per split and training)."""
    trainings = 1 + sum(1 for p in _checked_fractions(config.fractions) if p < 100.0)
    return config.n_splits * trainings


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
    config: ProtocolConfig = ProtocolConfig(),
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
            after each training (:func:`protocol_steps` calls in all).

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
    fractions = _checked_fractions(config.fractions)
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
            label = _fraction_label(percent)
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


# --------------------------------------------------------------------------- output

_HEADERS = {"accuracy": "accuracy", "precision": "precision", "recall": "recall", "f1": "F1"}


def format_table(summary: Sequence[MethodSummary], *, with_std: bool = True) -> str:
    """The paper-shaped table: one row per method, metrics as ``mean ± std`` in percent."""
    cells: list[list[str]] = []
    for row in summary:
        values = []
        for metric in METRICS:
            text = f"{100 * row.mean[metric]:.2f}"
            if with_std:
                text += f" ± {100 * row.std[metric]:.2f}"
            values.append(text)
        cells.append([row.method, *values])
    header = ["method", *(_HEADERS[m] + " (%)" for m in METRICS)]
    widths = [max(len(line[i]) for line in [header, *cells]) for i in range(len(header))]

    def line(parts: Sequence[str]) -> str:
        first = parts[0].ljust(widths[0])
        rest = "  ".join(p.rjust(w) for p, w in zip(parts[1:], widths[1:], strict=True))
        return f"{first}  {rest}"

    rule = "-" * len(line(header))
    return "\n".join([line(header), rule, *(line(c) for c in cells)])


def _fraction_cell(fraction: float | None) -> str:
    return "" if fraction is None else f"{fraction:g}"


def write_protocol_csvs(result: ProtocolResult, folder: str | Path) -> tuple[Path, Path]:
    """Write ``splits.csv`` (one row per method and split) and ``summary.csv`` into ``folder``.

    Metrics are fractions in [0, 1] (not percent), as computed.

    Returns:
        The two paths.
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    splits_path = out / "splits.csv"
    with splits_path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        counts = ("tp", "fp", "tn", "fn")
        writer.writerow(
            ["method", "kind", "fraction_percent", "split", "n_train", "n_test", *METRICS, *counts]
        )
        for r in result.splits:
            writer.writerow(
                [
                    r.method,
                    r.kind,
                    _fraction_cell(r.fraction),
                    r.split,
                    r.n_train,
                    r.n_test,
                    *(f"{r.metrics[m]:.6f}" for m in METRICS),
                    *(int(r.metrics[c]) for c in counts),
                ]
            )
    summary_path = out / "summary.csv"
    with summary_path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            [
                "method",
                "kind",
                "fraction_percent",
                "splits",
                *(f"{m}_{stat}" for m in METRICS for stat in ("mean", "std")),
            ]
        )
        for s in result.summary:
            writer.writerow(
                [
                    s.method,
                    s.kind,
                    _fraction_cell(s.fraction),
                    s.n_splits,
                    *(f"{v:.6f}" for m in METRICS for v in (s.mean[m], s.std[m])),
                ]
            )
    return splits_path, summary_path


# --------------------------------------------------------------------------- embeddings


def _cache_slot(model_key: str) -> str:
    # npz member names become zip file names: keep them to a safe alphabet.
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in model_key)


def _read_cache(path: Path, model_key: str) -> dict[str, np.ndarray]:
    if not path.is_file():
        return {}
    slot = _cache_slot(model_key)
    try:
        with np.load(path, allow_pickle=False) as data:
            if f"{slot}.embeddings" not in data.files:
                return {}
            keys = data[f"{slot}.keys"]
            vectors = data[f"{slot}.embeddings"]
            stored_key = str(data[f"{slot}.model_key"])
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        logger.warning("ignoring unreadable embedding cache %s: %s", path, exc)
        return {}
    if stored_key != model_key or vectors.ndim != 2 or keys.shape[0] != vectors.shape[0]:
        return {}
    return {str(k): vectors[i] for i, k in enumerate(keys)}


def _write_cache(path: Path, model_key: str, entries: Mapping[str, np.ndarray]) -> None:
    slot = _cache_slot(model_key)
    arrays: dict[str, np.ndarray] = {}
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {
                    name: data[name] for name in data.files if not name.startswith(f"{slot}.")
                }
        except (OSError, ValueError, zipfile.BadZipFile):
            arrays = {}
    keys = sorted(entries)
    arrays[f"{slot}.keys"] = np.array(keys, dtype=str)
    arrays[f"{slot}.embeddings"] = (
        np.stack([entries[k] for k in keys]).astype(np.float32)
        if keys
        else np.zeros((0, 0), dtype=np.float32)
    )
    arrays[f"{slot}.model_key"] = np.array(model_key)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.npz")
    np.savez(tmp, **arrays)  # type: ignore[arg-type]
    tmp.replace(path)


def _file_key(path: Path) -> str:
    # A rewritten file (other size or mtime) is embedded again.
    st = path.stat()
    return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"


@dataclass(frozen=True)
class CachedEncodeResult:
    """Output of :func:`embed_files_cached`.

    Attributes:
        embeddings: float32 (N_ok, D) in the order of ``ok_indices``.
        ok_indices: ascending positions of the files that have an embedding.
        failures: position -> reason for files that could not be encoded.
        encoded: files encoded now (the rest came from the cache).
    """

    embeddings: np.ndarray
    ok_indices: list[int]
    failures: dict[int, str]
    encoded: int


def embed_files_cached(
    clip: ClipModel,
    paths: Sequence[Path],
    *,
    cache_path: str | Path | None = None,
    batch_size: int = 64,
    decode_workers: int | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> CachedEncodeResult:
    """Embed image files once, through the engine's pipelined encoder, with an optional cache.

    The cache is an ``.npz`` holding, per model key, the embeddings of files
    identified by absolute path, size and modification time; only files it lacks
    are encoded, and the new ones are added to it. Other models' entries in the
    same file are kept.

    Args:
        clip: the loaded model (its ``key`` selects the cache entries).
        paths: image files.
        cache_path: the ``.npz`` cache, or None for no cache.
        batch_size: images per forward pass.
        decode_workers: decode threads (default: the pipeline's).
        on_batch: progress callback, called with the number of files handled so far
            (cache hits count as handled from the start).
    """
    from .pipeline import encode_files

    cache_file = Path(cache_path) if cache_path is not None else None
    cached = _read_cache(cache_file, clip.key) if cache_file is not None else {}
    keys = [_file_key(Path(p)) for p in paths]
    todo = [i for i, k in enumerate(keys) if k not in cached or cached[k].shape[0] != clip.dim]
    failures: dict[int, str] = {}
    fresh: dict[str, np.ndarray] = {}
    from_cache = len(paths) - len(todo)
    if todo:
        result = encode_files(
            clip,
            [paths[i] for i in todo],
            batch_size=batch_size,
            decode_workers=decode_workers,
            on_batch=None if on_batch is None else (lambda done: on_batch(from_cache + done)),
        )
        for row, local in enumerate(result.ok_indices):
            fresh[keys[todo[local]]] = result.embeddings[row]
        failures = {todo[local]: reason for local, reason in result.failures.items()}
    elif on_batch is not None:
        on_batch(len(paths))
    if cache_file is not None and fresh:
        _write_cache(cache_file, clip.key, {**cached, **fresh})
    vectors = {**cached, **fresh}
    ok = [i for i, k in enumerate(keys) if k in vectors and i not in failures]
    embeddings = (
        np.stack([vectors[keys[i]] for i in ok]).astype(np.float32)
        if ok
        else np.zeros((0, clip.dim), dtype=np.float32)
    )
    logger.info(
        "embeddings for %d/%d files (%d encoded now, %d from cache, %d failed)",
        len(ok),
        len(paths),
        len(fresh),
        len(ok) - len(fresh),
        len(failures),
    )
    return CachedEncodeResult(
        embeddings=embeddings, ok_indices=ok, failures=failures, encoded=len(fresh)
    )
