"""Which CLIP a run uses, and the keys its embeddings are cached under. No torch.

The web process and the light commands name models, validate backends and compute
embedding-cache keys too; keeping these here lets them do so without importing torch,
open_clip or openvino (about 800 MB and several seconds per process).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "AUTO_BACKEND",
    "BACKENDS",
    "BackendUnavailable",
    "MODEL_CONFIG_DIR",
    "ModelLoadError",
    "ModelSpec",
    "backend_choice_path",
    "backend_key_suffix",
    "cpu_signature",
    "default_backend_cache_dir",
    "model_embed_dim",
    "model_key_for",
    "read_backend_choice",
    "safe_dirname",
    "validate_backend",
    "validate_backend_setting",
]

MODEL_CONFIG_DIR: Path = Path(__file__).resolve().parent / "model_configs"
"""Folder of open_clip model configs shipped with the project (``q16-tiny.json``, ...)."""

_HASH_BLOCK = 1 << 20  # 1 MiB: big enough to be fast, small enough to stream multi-GB weights
_KEY_HASH_CHARS = 16


class ModelLoadError(ValueError):
    """A model could not be specified, found or loaded (bad name, tag, file or device)."""


class BackendUnavailable(RuntimeError):
    """The requested backend's package is not installed or cannot run here."""


BACKENDS: tuple[str, ...] = ("torch", "openvino", "openvino-bf16", "openvino-int8")
"""Backend names accepted by :func:`worker.engine.clip.load_clip`."""

AUTO_BACKEND = "auto"
"""The ``Q16_BACKEND`` setting that lets a measurement on this CPU pick one of :data:`BACKENDS`
(:mod:`worker.engine.backend_choice`); the choice is recorded, so every process agrees."""

# The model-key suffix of each backend: lossy ones get their own cache key.
_KEY_SUFFIX = {"torch": "", "openvino": "", "openvino-bf16": "+bf16", "openvino-int8": "+int8"}

# The instruction-set flags that decide which backend is fast on a CPU (AVX-512 bf16 and AMX
# make bf16 fast; VNNI makes int8 faster; AVX2 alone is the floor OpenVINO needs).
CPU_FLAGS_OF_INTEREST: tuple[str, ...] = (
    "avx2",
    "fma",
    "avx512f",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "amx_bf16",
    "amx_int8",
)


def validate_backend(backend: str) -> str:
    """Return the normalised backend name, or raise ValueError for an unknown one."""
    name = (backend or "torch").strip().lower()
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    return name


def validate_backend_setting(backend: str) -> str:
    """Like :func:`validate_backend`, but also accepts ``"auto"`` (the Q16_BACKEND setting)."""
    name = (backend or "torch").strip().lower()
    if name == AUTO_BACKEND:
        return name
    if name not in BACKENDS:
        raise ValueError(
            f"unknown backend {backend!r}; use one of {', '.join((*BACKENDS, AUTO_BACKEND))}"
        )
    return name


def backend_key_suffix(backend: str) -> str:
    """The suffix a backend adds to the model key: ``""`` when exact, ``"+bf16"`` or
    ``"+int8"`` when not."""
    return _KEY_SUFFIX[validate_backend(backend)]


def model_key_for(spec_key: str, backend: str) -> str:
    """The embedding-cache key of a model run with a backend (``spec_key`` plus its suffix)."""
    return f"{spec_key}{backend_key_suffix(backend)}"


def default_backend_cache_dir() -> Path:
    """Where exported models are kept: ``$Q16_BACKEND_CACHE`` or ``~/.cache/q16-curator/backends``."""
    configured = os.environ.get("Q16_BACKEND_CACHE", "")
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "q16-curator" / "backends"


def safe_dirname(key: str) -> str:
    """A model key as one folder name."""
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", key)


def _cpu_info() -> tuple[str, set[str]]:
    name, flags = "", set[str]()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and not name:
                name = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:  # not Linux: the signature is then just the platform's
        import platform

        name = platform.processor() or platform.machine()
    return name, flags


def cpu_signature() -> dict[str, Any]:
    """This CPU's model name and the instruction-set flags that matter to the backends."""
    name, flags = _cpu_info()
    return {"cpu": name, "flags": [flag for flag in CPU_FLAGS_OF_INTEREST if flag in flags]}


def backend_choice_path(spec_key: str, cache_dir: str | Path | None = None) -> Path:
    """Where ``auto``'s choice for a model on this CPU class is recorded."""
    root = Path(cache_dir) if cache_dir is not None else default_backend_cache_dir()
    signature = cpu_signature()
    cpu_id = hashlib.sha256(json.dumps(signature, sort_keys=True).encode()).hexdigest()[:12]
    return root / safe_dirname(spec_key) / f"auto-choice-{cpu_id}.json"


def read_backend_choice(
    spec_key: str, cache_dir: str | Path | None = None
) -> dict[str, Any] | None:
    """The recorded ``auto`` choice for a model on this CPU class, or None before the first one.

    Torch-free: the web process reads it to know the model key the workers score under.
    """
    path = backend_choice_path(spec_key, cache_dir)
    try:
        choice = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(choice, dict) or choice.get("backend") not in BACKENDS:
        return None
    return choice


@functools.lru_cache(maxsize=64)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    # size and mtime_ns are part of the cache key only: a rewritten file is re-hashed.
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _checkpoint_sha256(path: str | Path) -> str:
    """Return the SHA-256 hex digest of a checkpoint file, cached per (path, size, mtime)."""
    resolved = Path(path).expanduser().resolve()
    try:
        st = resolved.stat()
    except FileNotFoundError as exc:
        raise ModelLoadError(f"checkpoint file not found: {path}") from exc
    except OSError as exc:
        raise ModelLoadError(f"checkpoint file unreadable: {path}: {exc}") from exc
    if not resolved.is_file():
        raise ModelLoadError(f"checkpoint path is not a file: {path}")
    return _file_sha256(str(resolved), st.st_size, st.st_mtime_ns)


@dataclass(frozen=True)
class ModelSpec:
    """Which CLIP to load: an open_clip architecture plus the source of its weights.

    Exactly one of ``pretrained`` (an open_clip pretrained tag such as
    ``"openai"``) or ``checkpoint_path`` (a local weights file) must be given.

    Note that OpenAI's weights were trained with QuickGELU: when loading them
    from a checkpoint file, name the ``-quickgelu`` architecture
    (``ViT-B-16-quickgelu``). With a pretrained tag :func:`load_clip` sets
    QuickGELU from the tag's metadata itself.

    Attributes:
        name: open_clip model (architecture) name, e.g. ``"ViT-B-16"`` or ``"q16-tiny"``.
        pretrained: open_clip pretrained tag, e.g. ``"openai"``.
        checkpoint_path: path of a local checkpoint (state dict) for ``name``.
    """

    name: str
    pretrained: str | None = None
    checkpoint_path: str | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise ModelLoadError("model name is empty")
        if (self.pretrained is None) == (self.checkpoint_path is None):
            raise ModelLoadError(
                f"model {self.name!r}: give exactly one of a pretrained tag or a checkpoint path "
                f"(got pretrained={self.pretrained!r}, checkpoint_path={self.checkpoint_path!r})"
            )
        if self.pretrained == "" or self.checkpoint_path == "":
            raise ModelLoadError(f"model {self.name!r}: empty pretrained tag or checkpoint path")

    @property
    def key(self) -> str:
        """A stable identity of the weights, used as the embedding-cache key.

        ``"<name>/<tag>"`` for a pretrained tag; ``"<name>/sha256-<16 hex>"`` for a
        checkpoint, from the file's content, so moving or renaming the file keeps
        the key and overwriting it with other weights changes it.

        Raises:
            ModelLoadError: the checkpoint file does not exist or cannot be read.
        """
        if self.pretrained is not None:
            return f"{self.name}/{self.pretrained}"
        assert self.checkpoint_path is not None  # guaranteed by __post_init__
        digest = _checkpoint_sha256(self.checkpoint_path)
        return f"{self.name}/sha256-{digest[:_KEY_HASH_CHARS]}"


def _open_clip_config_dir() -> Path | None:
    """open_clip's folder of shipped model configs, found without importing open_clip."""
    found = importlib.util.find_spec("open_clip")
    if found is None or not found.submodule_search_locations:
        return None
    return Path(next(iter(found.submodule_search_locations))) / "model_configs"


@functools.lru_cache(maxsize=64)
def model_embed_dim(model_name: str) -> int:
    """Embedding width of an open_clip architecture, read from its config file (no weights).

    The project's configs first, then open_clip's own: the same search open_clip does.
    """
    for folder in (MODEL_CONFIG_DIR, _open_clip_config_dir()):
        if folder is None:
            continue
        path = folder / f"{model_name}.json"
        if path.is_file():
            return int(json.loads(path.read_text(encoding="utf-8"))["embed_dim"])
    raise ValueError(f"unknown open_clip model {model_name!r}")
