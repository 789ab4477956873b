"""Running ``Q16_BACKEND=auto``'s measurement in a child process, and reading its result.

The measurement itself is :mod:`worker.engine.backend_choice`, started here by module name
(``python -m worker.engine.backend_choice``) so that the loader (:func:`load_clip`) never
imports it: the backends it tries stay out of the worker's process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .locators import ImageLocator
from .spec import ModelLoadError, ModelSpec, read_backend_choice

__all__ = ["choose_backend_in_child", "source_from_json", "source_to_json"]

CALIBRATION_IMAGES = 300  # worker.engine.int8.CALIBRATION_IMAGES, without importing torch


def _sample_evenly(sources: Sequence[Any], count: int) -> list[Any]:
    if len(sources) <= count:
        return list(sources)
    positions = np.linspace(0, len(sources) - 1, count).round().astype(int)
    return [sources[i] for i in dict.fromkeys(positions.tolist())]


def source_to_json(source: str | Path | ImageLocator) -> Any:
    if isinstance(source, ImageLocator):
        return {"path_or_url": source.path_or_url, "offset": source.offset, "size": source.size}
    return str(source)


def source_from_json(item: Any) -> str | ImageLocator:
    return ImageLocator(**item) if isinstance(item, dict) else str(item)


def choose_backend_in_child(
    spec: ModelSpec,
    *,
    calibration_sources: Sequence[str | Path | ImageLocator],
    threshold: float,
    prompts: np.ndarray | None = None,
    cache_dir: str | Path | None = None,
    timeout_s: float = 3600.0,
) -> dict[str, Any]:
    """:func:`worker.engine.backend_choice.choose_backend` in a child process (nothing it
    tries stays loaded here); returns the record it wrote."""
    job = {
        "name": spec.name,
        "pretrained": spec.pretrained,
        "checkpoint_path": spec.checkpoint_path,
        "sources": [
            source_to_json(s) for s in _sample_evenly(calibration_sources, CALIBRATION_IMAGES)
        ],
        "threshold": threshold,
        "prompts": prompts.tolist() if prompts is not None else None,
        "cache_dir": str(cache_dir) if cache_dir is not None else None,
    }
    completed = subprocess.run(
        [sys.executable, "-m", "worker.engine.backend_choice"],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout_s,
    )
    if completed.returncode != 0:
        raise ModelLoadError(
            f"Q16_BACKEND=auto: choosing a backend failed:\n{completed.stderr[-2000:]}"
        )
    record = read_backend_choice(spec.key, cache_dir)
    if record is None:
        raise ModelLoadError("Q16_BACKEND=auto: the chooser recorded no choice")
    return record
