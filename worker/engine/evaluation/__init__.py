"""The Q16 paper's evaluation protocol on SMID, as pure functions (no Django).

The protocol (Schramowski & Kersting, 2021; DESIGN.md section 1):

- Labels from SMID's moral ratings: an image whose mean moral rating is below
  2.5 is *inappropriate* (1), above 3.5 *appropriate* (0); the rest are dropped
  (:func:`~.smid.smid_labels`; the folder reader is :func:`~.smid.load_smid`).
- Ten stratified shuffle splits, 10 % test, seed 42, stratified on the ROUNDED
  moral mean (:func:`~.splits.stratified_shuffle_split`, which reproduces
  ``sklearn.model_selection.StratifiedShuffleSplit`` index for index, in NumPy).
- On each split: the zero-shot prompts, prompts tuned on the training part
  (initialised from the zero-shot ones, the paper's tuning settings) and any
  published prompt matrices, all scored on the test part; optionally the
  few-shot curve, tuning on a stratified fraction of the training part
  (:func:`~.protocol.run_protocol`, settings in :class:`~.config.ProtocolConfig`).
- Accuracy, precision, recall and F1 with *inappropriate* as the positive
  class, reported as mean ± std over the splits (:mod:`.results`), printed and
  written as CSV by :mod:`.report`.

Images are embedded once (:func:`~.embeddings.embed_files_cached`, optionally
backed by an ``.npz`` cache keyed by model) and the embeddings are reused by
every split.

Only :mod:`.protocol` needs torch (it tunes prompts). It is loaded on first use
of ``run_protocol``, so importing this package, or any other of its modules
(labels, splits, settings, results, reports, the cache), never imports torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .config import ProtocolConfig, protocol_steps
from .embeddings import CachedEncodeResult, embed_files_cached
from .report import format_table, write_protocol_csvs
from .results import METRICS, MethodSplitResult, MethodSummary, ProtocolResult, summarize_rows
from .smid import (
    DROPPED,
    MORAL_APPROPRIATE_ABOVE,
    MORAL_INAPPROPRIATE_BELOW,
    SmidDataset,
    SmidFormatError,
    load_smid,
    smid_labels,
    smid_strata,
)
from .splits import approximate_mode, stratified_shuffle_split, stratified_subsample

if TYPE_CHECKING:
    from .protocol import run_protocol

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

# Names served from a module that imports torch, loaded when first asked for (PEP 562).
_TORCH_NAMES = {"run_protocol": ".protocol"}


def __getattr__(name: str) -> Any:
    module = _TORCH_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value
