"""Soft-prompt tuning: matches PyTorch's optimiser, learns, is reproducible; metrics and splits."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from worker.engine.scoring import inappropriate_probability
from worker.engine.tuning import (
    TuningConfig,
    class_weights,
    classification_metrics,
    stratified_split,
    train_prompts,
)


def _clusters(
    n_per_class: tuple[int, int], dim: int = 64, seed: int = 0, spread: float = 0.8
) -> tuple[np.ndarray, np.ndarray]:
    """Two Gaussian clusters around random directions, labels 0 and 1."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(2, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    parts = [
        centres[c] + rng.normal(scale=spread / np.sqrt(dim), size=(n, dim))
        for c, n in enumerate(n_per_class)
    ]
    labels = np.concatenate([np.full(n, c) for c, n in enumerate(n_per_class)])
    e = np.concatenate(parts).astype(np.float32)
    return e / np.linalg.norm(e, axis=1, keepdims=True), labels


def _accuracy(e: np.ndarray, y: np.ndarray, prompts: np.ndarray) -> float:
    return classification_metrics(y, inappropriate_probability(e, prompts))["accuracy"]


def _torch_reference(
    e: np.ndarray, y: np.ndarray, init: np.ndarray, config: TuningConfig
) -> np.ndarray:
    """The textbook implementation: autograd + CrossEntropyLoss(weight) + optim.SGD."""
    prompts = torch.nn.Parameter(torch.from_numpy(init.copy()))
    optimizer = torch.optim.SGD([prompts], lr=config.lr, momentum=config.momentum)
    loss_fn = torch.nn.CrossEntropyLoss(weight=torch.from_numpy(class_weights(y)))
    emb = F.normalize(torch.from_numpy(e), dim=1)
    labels = torch.from_numpy(y).long()
    generator = torch.Generator().manual_seed(config.seed)
    for _ in range(config.epochs):
        order = torch.randperm(len(y), generator=generator)
        for begin in range(0, len(y), config.batch_size):
            idx = order[begin : begin + config.batch_size]
            logits = 100.0 * emb[idx] @ F.normalize(prompts, dim=1).T
            loss = loss_fn(logits, labels[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return prompts.detach().numpy()


def test_matches_torch_autograd_and_sgd_with_class_weights() -> None:
    e, y = _clusters((150, 50), dim=32, seed=1, spread=3.0)  # imbalanced and overlapping
    init = np.random.default_rng(2).normal(size=(2, 32)).astype(np.float32)
    config = TuningConfig(epochs=4, batch_size=16, seed=7)
    ours = train_prompts(e, y, init_prompts=init, config=config).prompts
    np.testing.assert_allclose(ours, _torch_reference(e, y, init, config), rtol=1e-4, atol=1e-5)


def test_tuning_lifts_held_out_accuracy_far_above_zero_shot() -> None:
    e, y = _clusters((300, 300), seed=3)
    train, test = stratified_split(y, test_fraction=0.2, seed=42)
    init = np.random.default_rng(4).normal(size=(2, 64)).astype(np.float32)
    zero_shot = _accuracy(e[test], y[test], init)
    result = train_prompts(e[train], y[train], init_prompts=init)
    tuned = _accuracy(e[test], y[test], result.prompts)
    assert tuned >= 0.95
    assert tuned > zero_shot + 0.2
    assert result.prompts.shape == (2, 64) and result.prompts.dtype == np.float32
    assert len(result.loss_history) == TuningConfig().epochs
    assert result.loss_history[-1] < result.loss_history[0]
    assert result.seconds > 0


def test_same_seed_same_prompts_other_seed_other_prompts() -> None:
    e, y = _clusters((40, 30), seed=5, spread=2.0)
    init = np.random.default_rng(6).normal(size=(2, 64)).astype(np.float32)
    config = TuningConfig(epochs=20, batch_size=8)
    first = train_prompts(e, y, init_prompts=init, config=config)
    second = train_prompts(e, y, init_prompts=init, config=config)
    np.testing.assert_array_equal(first.prompts, second.prompts)
    assert first.loss_history == second.loss_history
    other = train_prompts(
        e, y, init_prompts=init, config=TuningConfig(epochs=20, batch_size=8, seed=1)
    )
    assert not np.array_equal(first.prompts, other.prompts)
    np.testing.assert_array_equal(
        init, np.random.default_rng(6).normal(size=(2, 64)).astype(np.float32)
    )


def test_class_weights_are_inverse_frequency() -> None:
    np.testing.assert_allclose(class_weights(np.array([0] * 90 + [1] * 10)), [100 / 180, 100 / 20])
    np.testing.assert_allclose(class_weights(np.array([1, 1, 1])), [0.0, 0.5])


def test_class_weights_keep_the_minority_class_found() -> None:
    e, y = _clusters((450, 50), seed=8, spread=2.5)
    train, test = stratified_split(y, test_fraction=0.3, seed=0)
    init = np.random.default_rng(9).normal(size=(2, 64)).astype(np.float32)
    prompts = train_prompts(e[train], y[train], init_prompts=init).prompts
    metrics = classification_metrics(y[test], inappropriate_probability(e[test], prompts))
    assert metrics["recall"] >= 0.9
    assert metrics["accuracy"] >= 0.9


def test_single_class_trains_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    e, _ = _clusters((20, 0), seed=10)
    init = np.random.default_rng(11).normal(size=(2, 64)).astype(np.float32)
    with caplog.at_level(logging.WARNING, logger="worker.engine.tuning"):
        result = train_prompts(
            e, np.zeros(20, int), init_prompts=init, config=TuningConfig(epochs=100)
        )
    assert np.isfinite(result.prompts).all()
    assert "only one class" in caplog.text
    assert (inappropriate_probability(e, result.prompts) < 0.5).all()


@pytest.mark.parametrize(
    ("n", "labels", "init_shape", "message"),
    [
        (1, [1], (2, 8), "at least 2"),
        (4, [0, 1, 0], (2, 8), "labels must have shape"),
        (4, [0, 1, 2, 0], (2, 8), "labels must be 0"),
        (4, [0, 1, 1, 0], (2, 9), "init_prompts must have shape"),
        (4, [0, 1, 1, 0], (3, 8), "init_prompts must have shape"),
    ],
)
def test_bad_inputs(n: int, labels: list[int], init_shape: tuple[int, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        train_prompts(np.ones((n, 8)), np.array(labels), init_prompts=np.ones(init_shape))


def test_zero_prompt_row_is_rejected() -> None:
    init = np.ones((2, 8))
    init[1] = 0
    with pytest.raises(ValueError, match="non-zero rows"):
        train_prompts(np.eye(8)[:4], np.array([0, 1, 0, 1]), init_prompts=init)


def test_classification_metrics() -> None:
    labels = np.array([1, 1, 1, 0, 0, 0, 0, 1])
    probs = np.array([0.9, 0.6, 0.2, 0.1, 0.7, 0.3, 0.5, 0.5])
    m = classification_metrics(labels, probs)
    assert (m["tp"], m["fp"], m["tn"], m["fn"]) == (3, 2, 2, 1)
    assert m["accuracy"] == pytest.approx(5 / 8)
    assert m["precision"] == pytest.approx(3 / 5)
    assert m["recall"] == pytest.approx(3 / 4)
    assert m["f1"] == pytest.approx(2 * 0.6 * 0.75 / 1.35)
    assert m["n"] == 8 and m["positives"] == 4
    strict = classification_metrics(labels, probs, threshold=0.95)
    assert strict["precision"] == 0.0 and strict["recall"] == 0.0 and strict["f1"] == 0.0
    empty = classification_metrics(np.array([], int), np.array([]))
    assert empty["accuracy"] == 0.0 and empty["n"] == 0


def test_stratified_split() -> None:
    labels = np.array([0] * 50 + [1] * 10 + [2] * 2 + [3])
    train, test = stratified_split(labels, test_fraction=0.2, seed=42)
    assert np.intersect1d(train, test).size == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([train, test])), np.arange(labels.size))
    assert np.all(np.diff(train) > 0) and np.all(np.diff(test) > 0)
    counts = {c: int((labels[test] == c).sum()) for c in range(4)}
    assert counts == {0: 10, 1: 2, 2: 1, 3: 0}
    again = stratified_split(labels, test_fraction=0.2, seed=42)
    np.testing.assert_array_equal(again[1], test)
    assert not np.array_equal(stratified_split(labels, test_fraction=0.2, seed=1)[1], test)
    tiny_train, tiny_test = stratified_split(np.array([0, 0, 1, 1]), test_fraction=0.01, seed=0)
    assert len(tiny_test) == 2 and len(tiny_train) == 2
    with pytest.raises(ValueError):
        stratified_split(labels, test_fraction=1.0, seed=0)
