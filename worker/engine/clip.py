"""Loading a frozen open_clip CLIP model and encoding images and texts with it.

A model is named the open_clip way: an architecture name (``ViT-B-16``) plus
either a pretrained tag (``openai``, downloaded by open_clip on first use) or a
local checkpoint file (for machines without internet, and for tests). Both go
through :func:`open_clip.create_model_and_transforms`, so a checkpoint is
loaded exactly like real weights.

The project ships its own model configs in :data:`MODEL_CONFIG_DIR` (notably
``q16-tiny``, a CLIP small enough to build and run on a CPU in milliseconds),
registered with open_clip by :func:`register_model_configs`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np
import open_clip
import torch
import torch.nn.functional as F

from .locators import ImageLocator
from .spec import MODEL_CONFIG_DIR, ModelLoadError, ModelSpec

__all__ = [
    "CPU_FORWARD_BATCH",
    "MODEL_CONFIG_DIR",
    "ClipModel",
    "ModelLoadError",
    "ModelSpec",
    "build_random_checkpoint",
    "load_clip",
    "register_model_configs",
    "resolve_device",
]

logger = logging.getLogger(__name__)

_register_lock = threading.Lock()
_registered = False


def register_model_configs() -> None:
    """Register the project's model configs (:data:`MODEL_CONFIG_DIR`) with open_clip.

    Idempotent and thread-safe: open_clip appends to a global search path and
    rescans it on every call, so we only do it once per process.
    """
    global _registered
    with _register_lock:
        if _registered:
            return
        open_clip.add_model_config(MODEL_CONFIG_DIR)
        _registered = True
        logger.debug("registered open_clip model configs from %s", MODEL_CONFIG_DIR)


def resolve_device(device: str) -> torch.device:
    """Turn a device setting into a :class:`torch.device`.

    Args:
        device: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``
            or ``"cuda:N"``.

    Raises:
        ModelLoadError: unknown device string, or CUDA requested but unavailable.
    """
    setting = device.strip().lower()
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if setting == "cpu":
        return torch.device("cpu")
    if setting == "cuda" or setting.startswith("cuda:"):
        try:
            resolved = torch.device(setting)
        except RuntimeError as exc:
            raise ModelLoadError(f"invalid device {device!r}") from exc
        if not torch.cuda.is_available():
            raise ModelLoadError(f"device {device!r} requested but CUDA is not available")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ModelLoadError(
                f"device {device!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist"
            )
        return resolved
    raise ModelLoadError(f"unsupported device {device!r}; use 'auto', 'cpu', 'cuda' or 'cuda:N'")


def _image_size_of(model: torch.nn.Module) -> int:
    # The val transform resizes the shortest side to this and centre-crops to it;
    # for a non-square input size the larger side is the safe decode target.
    visual = getattr(model, "visual", None)
    size: Any = None
    preprocess_cfg = getattr(visual, "preprocess_cfg", None)
    if isinstance(preprocess_cfg, dict):
        size = preprocess_cfg.get("size")
    if size is None:
        size = getattr(visual, "image_size", None)
    if size is None:
        raise ModelLoadError("cannot determine the model's input image size")
    if isinstance(size, int):
        return size
    return int(max(size))


def _embed_dim_of(name: str, model: torch.nn.Module) -> int:
    config = open_clip.get_model_config(name)
    if isinstance(config, dict) and "embed_dim" in config:
        return int(config["embed_dim"])
    output_dim = getattr(getattr(model, "visual", None), "output_dim", None)
    if output_dim is None:
        raise ModelLoadError(f"cannot determine the embedding dimension of {name!r}")
    return int(output_dim)


class _ClipEncoders(Protocol):
    """The two methods of open_clip's CLIP/CustomTextCLIP that the engine uses."""

    def encode_image(self, image: torch.Tensor) -> torch.Tensor: ...

    def encode_text(self, text: torch.Tensor) -> torch.Tensor: ...


CPU_FORWARD_BATCH = 16
"""Largest batch the image encoder runs at once on a CPU; bigger batches are split.

On a CPU a ViT's throughput falls with large batches (the attention activations
leave the caches): measured by ``make bench`` on a 2-core AVX-512 machine, ViT-B-16
gave 6.5 img/s at batch 16 and 5.4 at 64 in PyTorch fp32, 36 and 27 with OpenVINO
bf16. Splitting keeps the pipeline's larger batches (fewer, bigger database writes
and decode hand-offs) while the forward runs at its efficient size.
"""


class ClipModel:
    """A loaded, frozen CLIP model with its preprocessing and tokenizer.

    Build it with :func:`load_clip`. Thread-safety: encoding from several
    threads is safe (inference only), but one thread per model is the
    efficient pattern; the pipeline parallelises decoding, not the forward.

    Attributes:
        spec: what was loaded.
        model: the open_clip model, in eval mode, with ``requires_grad`` off.
        preprocess: open_clip's validation transform (PIL image -> float tensor (3, H, W)).
        tokenizer: open_clip tokenizer for the model.
        device: the device the model lives on.
        dim: joint embedding dimension D.
        image_size: side length of the model's input images.
        key: :attr:`ModelSpec.key`, the embedding-cache identity of the weights, plus the
            backend's suffix when the backend is not exact (``"+bf16"``).
        backend: the image-encoder backend (``"torch"``, ``"openvino"``, ...).
        cpu_forward_batch: on the CPU, batches larger than this are encoded in slices of
            this size (:data:`CPU_FORWARD_BATCH`); ``0`` disables the split.
    """

    def __init__(
        self,
        *,
        spec: ModelSpec,
        model: torch.nn.Module,
        preprocess: Callable[[Any], torch.Tensor],
        tokenizer: Callable[..., torch.Tensor],
        device: torch.device,
        key: str,
        image_encoder: Callable[[torch.Tensor], torch.Tensor] | None = None,
        backend: str = "torch",
    ) -> None:
        self.spec = spec
        self.model = model
        self._encoders = cast(_ClipEncoders, model)
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.device = device
        self.key = key
        self.backend = backend
        self._image_encoder = image_encoder
        self.cpu_forward_batch = CPU_FORWARD_BATCH
        self.dim = _embed_dim_of(spec.name, model)
        self.image_size = _image_size_of(model)

    def __repr__(self) -> str:
        return (
            f"ClipModel(key={self.key!r}, device={str(self.device)!r}, backend={self.backend!r}, "
            f"dim={self.dim}, image_size={self.image_size})"
        )

    @property
    def is_cuda(self) -> bool:
        """Whether the model runs on a CUDA device."""
        return self.device.type == "cuda"

    def encode_image_batch(self, pixels: torch.Tensor) -> np.ndarray:
        """Encode a batch of preprocessed images into L2-normalised embeddings.

        On CUDA the forward runs under bf16 autocast and the host-to-device copy
        is non-blocking (pass pinned memory to overlap it); on CPU it runs in fp32,
        or in the faster image encoder of the model's backend (see
        :mod:`worker.engine.backends`), in slices of at most :attr:`cpu_forward_batch`.

        Args:
            pixels: float tensor (N, 3, H, W), as produced by stacking :attr:`preprocess` outputs.

        Returns:
            float32 array (N, D), each row of unit norm.
        """
        if pixels.ndim != 4:
            raise ValueError(f"expected pixels of shape (N, 3, H, W), got {tuple(pixels.shape)}")
        step = self.cpu_forward_batch
        if not self.is_cuda and step > 0 and pixels.shape[0] > step:
            return np.concatenate(
                [
                    self.encode_image_batch(pixels[start : start + step])
                    for start in range(0, pixels.shape[0], step)
                ],
                axis=0,
            )
        with torch.inference_mode():
            if self._image_encoder is not None:
                features = self._image_encoder(pixels)
                features = F.normalize(features.float(), dim=-1)
                return np.ascontiguousarray(features.numpy(), dtype=np.float32)
            x = pixels.to(self.device, non_blocking=self.is_cuda)
            if self.is_cuda:
                with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
                    features = self._encoders.encode_image(x)
            else:
                features = self._encoders.encode_image(x)
            # Normalise in fp32: bf16 rounding would leave norms visibly off 1.
            features = F.normalize(features.float(), dim=-1)
            return np.ascontiguousarray(features.cpu().numpy(), dtype=np.float32)

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Encode texts into RAW (not normalised) text features.

        Runs in fp32 on every device: there are only a handful of prompt texts and
        their exact values become the starting point of prompt tuning.

        Args:
            texts: one or more strings.

        Returns:
            float32 array (N, D).
        """
        if isinstance(texts, str):
            raise TypeError("encode_texts expects a sequence of strings, not a single string")
        if len(texts) == 0:
            raise ValueError("encode_texts needs at least one text")
        with torch.inference_mode():
            tokens = self.tokenizer(list(texts)).to(self.device)
            features = self._encoders.encode_text(tokens)
            return np.ascontiguousarray(features.float().cpu().numpy(), dtype=np.float32)


def _checked_pretrained_tag(name: str, tag: str) -> dict[str, Any]:
    config = open_clip.get_pretrained_cfg(name, tag)
    if not config:
        known = open_clip.list_pretrained_tags_by_model(name)
        raise ModelLoadError(
            f"unknown pretrained tag {tag!r} for model {name!r}; known tags: {known or 'none'}"
        )
    return dict(config)


def load_clip(
    spec: ModelSpec,
    *,
    device: str = "auto",
    backend: str = "torch",
    backend_cache_dir: str | Path | None = None,
    calibration_sources: Sequence[str | Path | ImageLocator] | None = None,
    calibration_images: Callable[[], Iterable[torch.Tensor]] | None = None,
    auto_threshold: float = 0.5,
) -> ClipModel:
    """Load a frozen CLIP model for inference.

    Pretrained tags are fetched (and cached) by open_clip; checkpoint files go
    through the same ``create_model_and_transforms`` call, as a file path.

    Args:
        spec: architecture and weights to load.
        device: see :func:`resolve_device`.
        backend: image-encoder backend, one of :data:`worker.engine.backends.BACKENDS`:
            ``"torch"`` (default), or on the CPU ``"openvino"`` (fp32, same model key),
            ``"openvino-bf16"`` (key suffixed ``"+bf16"``), ``"openvino-int8"`` (key
            suffixed ``"+int8"``), or ``"auto"``: the backend recorded for this model and
            CPU class by :mod:`worker.engine.backend_choice`, measured now (in a child
            process, on ``calibration_sources``) when none is recorded yet.
        backend_cache_dir: where a backend keeps its exported model (default
            :func:`worker.engine.backends.default_backend_cache_dir`).
        calibration_sources: image files (a sample of the dataset's own) that int8
            quantisation and ``auto`` calibrate on, when nothing is cached yet.
        calibration_images: instead of ``calibration_sources``: gives the preprocessed
            calibration images.
        auto_threshold: the flag threshold ``auto``'s flag agreement is measured at.

    Returns:
        The model in eval mode with gradients disabled, plus its transform and tokenizer.

    Raises:
        ModelLoadError: unknown model name or tag, missing or unreadable checkpoint,
            weights that do not fit the architecture, an unavailable device, or an
            unknown or unavailable backend.
    """
    from .spec import AUTO_BACKEND, model_key_for, validate_backend_setting

    register_model_configs()
    torch_device = resolve_device(device)
    try:
        backend = validate_backend_setting(backend)
    except ValueError as exc:
        raise ModelLoadError(str(exc)) from exc
    if backend == AUTO_BACKEND:
        backend = _auto_backend(
            spec,
            torch_device=torch_device,
            cache_dir=backend_cache_dir,
            calibration_sources=calibration_sources,
            threshold=auto_threshold,
        )
    if backend != "torch" and torch_device.type != "cpu":
        raise ModelLoadError(f"backend {backend!r} runs on the CPU only, not on {torch_device}")
    if spec.name not in open_clip.list_models():
        raise ModelLoadError(
            f"unknown open_clip model {spec.name!r} (see open_clip.list_models(); "
            f"project configs live in {MODEL_CONFIG_DIR})"
        )

    force_quick_gelu = False
    if spec.pretrained is not None:
        tag_config = _checked_pretrained_tag(spec.name, spec.pretrained)
        # open_clip 3 only *warns* when e.g. ViT-B-16 + "openai" mismatch in GELU flavour;
        # the tag metadata knows the right one, so follow it.
        force_quick_gelu = bool(tag_config.get("quick_gelu", False))
        source = spec.pretrained
    else:
        assert spec.checkpoint_path is not None
        # An absolute path can never be mistaken by open_clip for a pretrained tag.
        source = str(Path(spec.checkpoint_path).expanduser().resolve())
    key = spec.key  # raises ModelLoadError for a missing checkpoint, before any heavy work

    started = time.perf_counter()
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(
            spec.name,
            pretrained=source,
            device=torch_device,
            force_quick_gelu=force_quick_gelu,
        )
        tokenizer = open_clip.get_tokenizer(spec.name)
    except Exception as exc:  # open_clip/torch raise many types; callers need one domain error
        raise ModelLoadError(f"could not load model {spec.name!r} from {source!r}: {exc}") from exc

    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)

    image_encoder = None
    if backend != "torch":
        # Imported only here: a torch worker never loads OpenVINO (its threads slow PyTorch).
        from .backends import BackendUnavailable, build_image_encoder

        if calibration_images is None and calibration_sources is not None:
            from .int8 import CALIBRATION_IMAGES, calibration_tensors, sample_evenly

            sources = sample_evenly(calibration_sources, CALIBRATION_IMAGES)
            image_size = _image_size_of(model)

            def calibration_images() -> list[torch.Tensor]:
                return calibration_tensors(
                    preprocess=preprocess, image_size=image_size, sources=sources
                )

        try:
            image_encoder = build_image_encoder(
                backend=backend,
                visual=model.visual,
                model_key=key,
                image_size=_image_size_of(model),
                cache_dir=backend_cache_dir,
                calibration=calibration_images,
            )
        except BackendUnavailable as exc:
            raise ModelLoadError(str(exc)) from exc
        except Exception as exc:  # conversion/compilation failures of the backend's own types
            raise ModelLoadError(f"could not build the {backend} backend for {key}: {exc}") from exc

    clip = ClipModel(
        spec=spec,
        model=model,
        preprocess=preprocess,
        tokenizer=tokenizer,
        device=torch_device,
        key=model_key_for(key, backend),
        image_encoder=image_encoder,
        backend=backend,
    )
    logger.info(
        "loaded CLIP %s on %s (backend %s) in %.2fs (dim=%d, image_size=%d)",
        clip.key,
        torch_device,
        backend,
        time.perf_counter() - started,
        clip.dim,
        clip.image_size,
    )
    return clip


def _auto_backend(
    spec: ModelSpec,
    *,
    torch_device: torch.device,
    cache_dir: str | Path | None,
    calibration_sources: Sequence[str | Path | ImageLocator] | None,
    threshold: float,
) -> str:
    """The backend ``auto`` stands for: the recorded choice, or one measured now."""
    from .spec import read_backend_choice

    if torch_device.type != "cpu":
        return "torch"  # the CPU backends do not apply to a GPU
    record = read_backend_choice(spec.key, cache_dir)
    if record is None:
        if not calibration_sources:
            raise ModelLoadError(
                "Q16_BACKEND=auto has no recorded choice for this model and CPU yet and needs "
                "calibration images (a sample of the dataset's own) to measure the backends"
            )
        from .auto_backend import choose_backend_in_child

        record = choose_backend_in_child(
            spec, calibration_sources=calibration_sources, threshold=threshold, cache_dir=cache_dir
        )
    logger.info(
        "Q16_BACKEND=auto uses %s for %s on this CPU (%s; %s)",
        record["backend"],
        spec.key,
        record.get("cpu", "?"),
        ", ".join(
            f"{name} {m.get('images_per_second', 0.0):.2f} img/s"
            + ("" if m.get("passes") else " refused")
            for name, m in (record.get("measured") or {}).items()
        ),
    )
    return str(record["backend"])


def build_random_checkpoint(model_name: str, path: str | Path, *, seed: int = 0) -> Path:
    """Create a randomly initialised open_clip model and save its state dict.

    Used by tests and benchmarks, which never download weights: the result loads
    through :func:`load_clip` exactly like real weights. Deterministic: a seed
    always gives the same file bytes, hence the same :attr:`ModelSpec.key`. The
    caller's global torch RNG state is left untouched.

    Args:
        model_name: open_clip architecture, e.g. ``"q16-tiny"``.
        path: where to write the checkpoint (parent folders are created).
        seed: torch seed for the random initialisation.

    Returns:
        The checkpoint path.

    Raises:
        ModelLoadError: unknown model name.
    """
    register_model_configs()
    if model_name not in open_clip.list_models():
        raise ModelLoadError(f"unknown open_clip model {model_name!r}")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = open_clip.create_model(model_name, pretrained=None, device="cpu")
    # Write then rename, so a concurrent reader never sees half a file.
    tmp_name = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        # Saving through a file object (not a path) keeps the archive's internal
        # name fixed ("archive"), so a seed always yields the same bytes and key.
        with open(tmp_name, "wb") as fh:
            torch.save(model.state_dict(), fh)
        os.replace(tmp_name, target)
    except BaseException:
        tmp_name.unlink(missing_ok=True)
        raise
    logger.info("wrote random %s checkpoint (seed %d) to %s", model_name, seed, target)
    return target
