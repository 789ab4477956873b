"""The Q16 engine: CLIP, the encode pipeline, scoring and prompt tuning. No Django.

The method (Schramowski & Kersting, "Inferring Offensiveness In Images From
Natural Language Supervision"): a frozen CLIP image encoder plus a 2 x D prompt
matrix ``P`` (row 0 appropriate, row 1 inappropriate). An image embedding ``e``
scores ``softmax(100 * normalize(e) @ normalize(P).T)[1]``; ``P`` starts from
text features and is tuned on labelled embeddings with CLIP frozen.

Modules:

- :mod:`.clip` -- load a model by open_clip name plus pretrained tag or checkpoint
  (:func:`load_clip`), encode images and texts; :func:`build_random_checkpoint`
  makes tiny random-weight checkpoints for tests and benchmarks.
- :mod:`.images` -- validate untrusted image files (:func:`probe_image`) and decode
  them to RGB (:func:`load_rgb`).
- :mod:`.pipeline` -- batched encode with decoding overlapped with the forward pass
  (:func:`encode_files`).
- :mod:`.scoring` -- the score (:func:`inappropriate_probability`) and zero-shot prompts.
- :mod:`.tuning` -- soft-prompt tuning (:func:`train_prompts`), metrics, splits.
- :mod:`.prompt_files` -- the paper's published prompt format, read safely.
- :mod:`.store` -- byte encodings for embeddings and prompts in database blobs.

Names are re-exported here lazily, so that importing e.g. :mod:`.store` from a web
process does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ClipModel": "clip",
    "ModelLoadError": "clip",
    "ModelSpec": "clip",
    "build_random_checkpoint": "clip",
    "load_clip": "clip",
    "register_model_configs": "clip",
    "resolve_device": "clip",
    "ImageInfo": "images",
    "ImageLimits": "images",
    "InvalidImageError": "images",
    "load_rgb": "images",
    "probe_image": "images",
    "EncodeResult": "pipeline",
    "encode_files": "pipeline",
    "PromptFileError": "prompt_files",
    "read_published_prompts": "prompt_files",
    "write_published_prompts": "prompt_files",
    "PROMPT_SCALE": "scoring",
    "inappropriate_probability": "scoring",
    "zero_shot_prompts": "scoring",
    "embeddings_from_bytes": "store",
    "embeddings_to_bytes": "store",
    "prompts_from_bytes": "store",
    "prompts_to_bytes": "store",
    "TuningConfig": "tuning",
    "TuningResult": "tuning",
    "classification_metrics": "tuning",
    "stratified_split": "tuning",
    "train_prompts": "tuning",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
