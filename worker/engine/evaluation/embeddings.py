"""Images embedded once per model, through the engine's encoder, with an ``.npz`` cache.

The encoder (and so torch) is imported only when files must actually be encoded.
"""

from __future__ import annotations

import logging
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ..clip import ClipModel

__all__ = ["CachedEncodeResult", "embed_files_cached"]

logger = logging.getLogger(__name__)


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
    from ..pipeline import encode_files

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
