"""The protocol's settings, its row labels and its progress-step count. No torch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..tuning_config import TuningConfig

__all__ = [
    "TUNED_ALL",
    "ZERO_SHOT",
    "ProtocolConfig",
    "checked_fractions",
    "fraction_label",
    "protocol_steps",
]


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


ZERO_SHOT = "zero-shot"
TUNED_ALL = "tuned (all training data)"


def fraction_label(percent: float) -> str:
    """Row label of prompts tuned on ``percent`` % of the training part."""
    return f"tuned, {percent:g} % of training data"


def checked_fractions(fractions: Sequence[float]) -> tuple[float, ...]:
    """The few-shot percentages as floats, first occurrences kept; ValueError outside (0, 100]."""
    checked = []
    for percent in fractions:
        if not 0.0 < percent <= 100.0:
            raise ValueError(f"training fractions are percentages in (0, 100], got {percent}")
        if percent not in checked:
            checked.append(float(percent))
    return tuple(checked)


def protocol_steps(config: ProtocolConfig) -> int:
    """Number of progress steps :func:`~.protocol.run_protocol` reports (one per split and training)."""
    trainings = 1 + sum(1 for p in checked_fractions(config.fractions) if p < 100.0)
    return config.n_splits * trainings
