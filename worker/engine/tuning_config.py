"""The hyper-parameters of prompt tuning, and their bounds. No torch.

One typed object for every place that accepts training settings (the web form, the API,
the train_prompts command, the automatic-retrain policy): each builds a TuningConfig
through tuning_config_from, so the defaults and the ranges live here only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

__all__ = [
    "DEFAULT_HELDOUT_FRACTION",
    "HELDOUT_FRACTION_BOUNDS",
    "TUNING_BOUNDS",
    "TUNING_DEFAULTS",
    "TuningConfig",
    "TuningConfigError",
    "tuning_config_from",
]


@dataclass(frozen=True)
class TuningConfig:
    """Hyper-parameters of prompt tuning; the defaults are the paper's.

    Attributes:
        epochs: passes over the training set.
        lr: SGD learning rate.
        momentum: SGD momentum (PyTorch's formulation, no dampening or Nesterov).
        batch_size: minibatch size (the last batch of an epoch may be smaller).
        seed: seed of the minibatch shuffling.
    """

    epochs: int = 300
    lr: float = 0.01
    momentum: float = 0.9
    batch_size: int = 64
    seed: int = 42


# Inclusive (min, max) of each field, as the form, the API and the command accept them.
TUNING_BOUNDS: dict[str, tuple[float, float]] = {
    "epochs": (1, 5000),
    "lr": (1e-6, 10.0),
    "momentum": (0.0, 0.999),
    "batch_size": (1, 65536),
    "seed": (0, 2**32 - 1),
}


TUNING_DEFAULTS = TuningConfig()

# The share of a dataset's verdicts held out to compare a trained version with its parent.
HELDOUT_FRACTION_BOUNDS = (0.05, 0.5)
DEFAULT_HELDOUT_FRACTION = 0.2


class TuningConfigError(ValueError):
    """A training setting is missing its type or lies outside TUNING_BOUNDS."""


def tuning_config_from(values: Mapping[str, Any] | None) -> TuningConfig:
    """A TuningConfig from user input or stored job options: absent or None fields take the
    paper's defaults; keys that are not tuning settings are ignored."""
    names = {f.name for f in fields(TuningConfig)}
    # Other keys (the held-out fraction, a name) belong to the caller.
    given = {
        key: value for key, value in (values or {}).items() if key in names and value is not None
    }
    checked: dict[str, Any] = {}
    for f in fields(TuningConfig):
        if f.name not in given:
            continue
        low, high = TUNING_BOUNDS[f.name]
        value = given[f.name]
        kind = int if f.type in ("int", int) else float
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TuningConfigError(f"{f.name} must be a number")
        if kind is int and value != int(value):
            raise TuningConfigError(f"{f.name} must be a whole number")
        if not low <= value <= high:
            raise TuningConfigError(f"{f.name} must be between {low:g} and {high:g}")
        checked[f.name] = kind(value)
    return TuningConfig(**checked)
