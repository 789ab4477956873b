"""The paper's SMID protocol as pure functions: labels, splits, the protocol run, outputs."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from worker.engine.evaluation import (
    DROPPED,
    ProtocolConfig,
    SmidFormatError,
    approximate_mode,
    embed_files_cached,
    format_table,
    load_smid,
    protocol_steps,
    run_protocol,
    smid_labels,
    smid_strata,
    stratified_shuffle_split,
    stratified_subsample,
    write_protocol_csvs,
)
from worker.engine.tuning import TuningConfig

# Strata of 40 items and the first three splits scikit-learn 1.9.1 gives for them with
# StratifiedShuffleSplit(n_splits=3, test_size=0.1, random_state=42): test indices and
# the first 8 training indices, in scikit-learn's order.
SKLEARN_STRATA = [1, 2, 4, 5, 2, 4, 4, 1, 5, 2, 4, 4, 2, 1, 5, 4, 2, 4, 5, 1]
SKLEARN_STRATA += [2, 4, 4, 5, 2, 1, 4, 2, 5, 4, 2, 4, 1, 5, 4, 2, 4, 4, 2, 5]
SKLEARN_SPLITS = [
    ([19, 14, 16, 11], [29, 6, 25, 38, 5, 10, 27, 1]),
    ([27, 19, 14, 26], [20, 15, 22, 25, 12, 18, 37, 34]),
    ([19, 28, 24, 34], [36, 5, 22, 21, 12, 3, 32, 26]),
]


def test_label_rule_uses_the_papers_thresholds_and_drops_the_middle() -> None:
    means = np.array([1.0, 2.49, 2.5, 3.0, 3.5, 3.51, 5.0, np.nan])
    np.testing.assert_array_equal(
        smid_labels(means), [1, 1, DROPPED, DROPPED, DROPPED, 0, 0, DROPPED]
    )
    # Strata: the rounded moral mean (half to even, like numpy and Python).
    np.testing.assert_array_equal(
        smid_strata(np.array([1.2, 1.5, 2.4, 3.6, 4.5, 4.51])), [1, 2, 2, 4, 4, 5]
    )


def test_approximate_mode_matches_scikit_learns_documented_examples() -> None:
    def mode(counts: list[int], draws: int, seed: int) -> list[int]:
        return approximate_mode(np.array(counts), draws, np.random.RandomState(seed)).tolist()

    assert mode([4, 2], 3, 0) == [2, 1]
    assert mode([5, 2], 4, 0) == [3, 1]
    assert mode([2, 2, 2, 1], 2, 0) == [0, 1, 1, 0]
    assert mode([2, 2, 2, 1], 2, 42) == [1, 1, 0, 0]


def test_split_reproduces_scikit_learns_stratified_shuffle_split() -> None:
    splits = stratified_shuffle_split(np.array(SKLEARN_STRATA), n_splits=3, test_size=0.1, seed=42)
    for (train, test), (expected_test, expected_train_head) in zip(
        splits, SKLEARN_SPLITS, strict=True
    ):
        assert test.tolist() == expected_test
        assert train[:8].tolist() == expected_train_head


def test_split_is_stratified_deterministic_and_sized_like_the_paper() -> None:
    # SMID-like: 1,674 labelled images in four strata (rounded moral means 1, 2, 4, 5).
    strata = np.repeat([1, 2, 4, 5], [180, 520, 790, 184])
    rng = np.random.default_rng(0)
    rng.shuffle(strata)
    splits = stratified_shuffle_split(strata, n_splits=10, test_size=0.1, seed=42)
    assert len(splits) == 10
    for train, test in splits:
        assert test.shape[0] == math.ceil(0.1 * 1674) == 168
        assert train.shape[0] == 1674 - 168
        assert np.intersect1d(train, test).size == 0
        assert np.union1d(train, test).size == 1674
        for stratum in (1, 2, 4, 5):
            share = np.count_nonzero(strata == stratum) / 1674
            in_test = np.count_nonzero(strata[test] == stratum)
            assert math.floor(share * 168) <= in_test <= math.ceil(share * 168)
    again = stratified_shuffle_split(strata, n_splits=10, test_size=0.1, seed=42)
    for (a, b), (c, d) in zip(splits, again, strict=True):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
    other = stratified_shuffle_split(strata, n_splits=1, test_size=0.1, seed=7)
    assert not np.array_equal(np.sort(other[0][1]), np.sort(splits[0][1]))
    # The ten test parts differ from one another (shuffle splits, not folds).
    assert len({tuple(np.sort(test)) for _, test in splits}) == 10


def test_split_refuses_strata_it_cannot_honour() -> None:
    with pytest.raises(ValueError, match="single item"):
        stratified_shuffle_split(np.array([0, 0, 0, 1]), n_splits=1, test_size=0.5, seed=0)
    with pytest.raises(ValueError, match="test_size"):
        stratified_shuffle_split(np.array([0, 1] * 5), n_splits=1, test_size=1.0, seed=0)


def test_stratified_subsample_keeps_proportions_and_every_stratum() -> None:
    strata = np.repeat([1, 2, 4, 5], [160, 470, 710, 166])
    subset = stratified_subsample(strata, 0.1, seed=42)
    assert subset.shape[0] == 150 and np.unique(subset).size == 150
    for stratum, count in zip((1, 2, 4, 5), (160, 470, 710, 166), strict=True):
        assert abs(np.count_nonzero(strata[subset] == stratum) - count * 0.1) <= 1
    np.testing.assert_array_equal(subset, stratified_subsample(strata, 0.1, seed=42))
    assert not np.array_equal(subset, stratified_subsample(strata, 0.1, seed=43))
    tiny = stratified_subsample(strata, 0.001, seed=0)  # floor(1.5) = 1 item, but 4 strata
    assert sorted(np.unique(strata[tiny]).tolist()) == [1, 2, 4, 5]
    assert stratified_subsample(strata, 1.0, seed=0).shape[0] == strata.shape[0]


def _separable(n: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.4).astype(np.int64)
    direction = rng.normal(size=dim)
    direction /= np.linalg.norm(direction)
    e = rng.normal(size=(n, dim)) + np.where(labels[:, None] == 1, 2.5, -2.5) * direction
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    return e.astype(np.float32), labels, direction.astype(np.float32)


def test_protocol_on_separable_embeddings_tunes_far_above_zero_shot() -> None:
    e, labels, direction = _separable(300, 32, seed=1)
    rng = np.random.default_rng(2)
    zero_shot = rng.normal(size=(2, 32)).astype(np.float32)  # an uninformed start
    oracle = np.stack([-direction, direction])
    config = ProtocolConfig(fractions=(10, 100), tuning=TuningConfig(epochs=40))
    steps: list[str] = []
    result = run_protocol(
        e,
        labels,
        labels,
        zero_shot=zero_shot,
        published={"oracle": oracle},
        config=config,
        on_step=steps.append,
    )
    assert len(steps) == protocol_steps(config) == 20
    methods = [s.method for s in result.summary]
    assert methods == [
        "zero-shot",
        "tuned (all training data)",
        "tuned, 10 % of training data",
        "tuned, 100 % of training data",
        "oracle",
    ]
    summary = {s.method: s for s in result.summary}
    assert all(s.n_splits == 10 for s in result.summary)
    assert summary["tuned (all training data)"].mean["accuracy"] >= 0.95
    assert (
        summary["tuned (all training data)"].mean["accuracy"]
        > summary["zero-shot"].mean["accuracy"] + 0.2
    )
    assert summary["tuned, 10 % of training data"].mean["accuracy"] > 0.8
    assert summary["oracle"].mean["f1"] > 0.95
    # 100 % reuses the all-data tuning; std is numpy's population std over the splits.
    assert (
        summary["tuned, 100 % of training data"].mean == summary["tuned (all training data)"].mean
    )
    per_split = [r.metrics["accuracy"] for r in result.splits if r.method == "zero-shot"]
    assert summary["zero-shot"].std["accuracy"] == pytest.approx(float(np.std(per_split)))
    rows = [r for r in result.splits if r.method == "tuned, 10 % of training data"]
    assert {r.n_test for r in rows} == {30} and {r.n_train for r in rows} == {27}
    assert result.n_items == 300 and result.n_positive == int(labels.sum())

    table = format_table(result.summary)
    lines = table.splitlines()
    assert lines[0].split()[:2] == ["method", "accuracy"] and "F1 (%)" in lines[0]
    assert lines[2].startswith("zero-shot") and "±" in lines[2]
    assert len(lines) == 2 + len(result.summary)


def test_protocol_is_deterministic_and_checks_shapes() -> None:
    e, labels, _ = _separable(120, 16, seed=3)
    init = np.random.default_rng(4).normal(size=(2, 16)).astype(np.float32)
    config = ProtocolConfig(n_splits=3, tuning=TuningConfig(epochs=5))
    first = run_protocol(e, labels, labels, zero_shot=init, config=config)
    second = run_protocol(e, labels, labels, zero_shot=init, config=config)
    assert [r.metrics for r in first.splits] == [r.metrics for r in second.splits]
    with pytest.raises(ValueError, match="expected"):
        run_protocol(e, labels, labels, zero_shot=init, published={"x": init[:, :8]}, config=config)
    with pytest.raises(ValueError, match="percentages"):
        run_protocol(e, labels, labels, zero_shot=init, config=ProtocolConfig(fractions=(0,)))


def test_csvs_hold_every_split_and_the_summary(tmp_path: Path) -> None:
    e, labels, _ = _separable(100, 16, seed=5)
    init = np.random.default_rng(6).normal(size=(2, 16)).astype(np.float32)
    result = run_protocol(
        e, labels, labels, zero_shot=init, config=ProtocolConfig(tuning=TuningConfig(epochs=5))
    )
    splits_csv, summary_csv = write_protocol_csvs(result, tmp_path / "out")
    split_rows = list(csv.DictReader(splits_csv.open()))
    assert len(split_rows) == 20 and {r["split"] for r in split_rows} == {str(i) for i in range(10)}
    assert {"accuracy", "precision", "recall", "f1", "tp", "fn"} <= set(split_rows[0])
    summary_rows = list(csv.DictReader(summary_csv.open()))
    assert [r["method"] for r in summary_rows] == ["zero-shot", "tuned (all training data)"]
    assert float(summary_rows[1]["accuracy_mean"]) == pytest.approx(
        result.summary[1].mean["accuracy"], abs=1e-6
    )


def _write_smid(root: Path, rows: list[tuple[str, str]], files: dict[str, str]) -> None:
    (root / "img").mkdir(parents=True)
    with (root / "SMID_norms.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["img_name", "valence_mean", "moral_mean", "harm_mean"])
        for name, moral in rows:
            writer.writerow([name, "3.0", moral, "2.0"])
    for name, ext in files.items():
        Image.new("RGB", (8, 8), (200, 20, 20)).save(root / "img" / f"{name}.{ext}")


def test_load_smid_reads_the_layout_and_counts_what_it_drops(tmp_path: Path) -> None:
    rows = [("a1", "1.5"), ("a2", "2.2"), ("mid", "3.0"), ("b1", "4.5"), ("b.2", "3.9")]
    rows += [("gone", "1.1"), ("bad", "NA")]
    _write_smid(
        tmp_path, rows, {"a1": "jpg", "a2": "png", "mid": "jpg", "b1": "jpeg", "b.2": "png"}
    )
    data = load_smid(tmp_path)
    assert data.names == ["a1", "a2", "b1", "b.2"]
    assert [p.name for p in data.paths] == ["a1.jpg", "a2.png", "b1.jpeg", "b.2.png"]
    assert data.labels.tolist() == [1, 1, 0, 0] and data.strata.tolist() == [2, 2, 4, 4]
    assert data.rows == 7 and data.dropped_middle == 1
    assert data.missing == ["gone"] and data.invalid == ["bad"]
    assert data.without([1]).names == ["a1", "b1", "b.2"]

    (tmp_path / "SMID_norms.csv").write_text("img_name,valence_mean\nx,1\n")
    with pytest.raises(SmidFormatError, match="moral_mean"):
        load_smid(tmp_path)
    with pytest.raises(SmidFormatError, match="SMID_norms.csv"):
        load_smid(tmp_path / "img")


def test_embeddings_are_cached_per_model(tiny_clip, tmp_path: Path) -> None:
    paths = []
    for i in range(5):
        path = tmp_path / f"{i}.png"
        Image.new("RGB", (40, 30), (40 * i, 100, 200)).save(path)
        paths.append(path)
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    paths.insert(2, tmp_path / "broken.jpg")
    cache = tmp_path / "cache.npz"
    progress: list[int] = []
    first = embed_files_cached(
        tiny_clip, paths, cache_path=cache, batch_size=2, on_batch=progress.append
    )
    assert first.encoded == 5 and first.ok_indices == [0, 1, 3, 4, 5]
    assert list(first.failures) == [2] and progress[-1] == 6
    assert first.embeddings.shape == (5, tiny_clip.dim)

    progress.clear()
    second = embed_files_cached(tiny_clip, paths, cache_path=cache, on_batch=progress.append)
    # The broken file is tried again (failures are not cached); the rest comes from the cache.
    assert second.encoded == 0 and second.ok_indices == first.ok_indices
    np.testing.assert_array_equal(second.embeddings, first.embeddings)
    assert progress[-1] == 6

    with np.load(cache) as data:
        assert any(name.endswith(".model_key") for name in data.files)
