"""Image validation and decoding for untrusted files.

Two entry points:

- :func:`probe_image` validates a file at import time (size, format allowlist,
  pixel limit checked from the header *before* decoding, full decode to catch
  truncation) and returns its identity: SHA-256 of the bytes and a perceptual
  hash of the pixels.
- :func:`load_rgb` decodes a file for the model: first frame, EXIF orientation
  applied, converted to 8-bit RGB the right way (transparency composited onto
  white, 16-bit scaled rather than clipped), JPEGs downscaled in the DCT domain.

Every failure is an :class:`InvalidImageError` with a short human ``reason``.
All functions are thread-safe: limits are passed in, never set globally per call.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import imagehash
import numpy as np
import pdqhash
from PIL import Image, ImageOps, UnidentifiedImageError

from worker.engine.locators import ImageLocator, read_image_bytes

__all__ = [
    "DEFAULT_ALLOWED_FORMATS",
    "ImageInfo",
    "ImageLimits",
    "InvalidImageError",
    "load_rgb",
    "probe_image",
    "pdq_hash",
    "probe_image_bytes",
    "to_rgb",
]

logger = logging.getLogger(__name__)

DEFAULT_ALLOWED_FORMATS: frozenset[str] = frozenset({"JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF"})
"""Pillow format names accepted by default."""

# Pillow reports multi-picture JPEGs (common from phone cameras) as "MPO"; the first
# picture is an ordinary JPEG, so treat it as one.
_FORMAT_ALIASES = {"MPO": "JPEG"}

# probe_image only needs pixels for the perceptual hashes, so JPEGs are decoded at a
# reduced scale; the whole entropy stream is still read. pHash works at 32x32; PDQ's
# reference hasher downsamples to 512 before hashing, so 512 keeps PDQ values close to
# what other systems compute from the full image.
_PROBE_DECODE_SIZE = 512

_WHITE = (255, 255, 255)


@dataclass(frozen=True)
class ImageLimits:
    """Limits applied to untrusted image files.

    Attributes:
        max_bytes: largest accepted file size.
        max_pixels: largest accepted width * height, checked from the header before
            decoding. Pillow's own bomb check (``Image.MAX_IMAGE_PIXELS``, set to the
            default of this field at import) also errors above twice its value.
        allowed_formats: Pillow format names accepted.
    """

    max_bytes: int = 50 * 2**20
    max_pixels: int = 100_000_000
    allowed_formats: frozenset[str] = field(default=DEFAULT_ALLOWED_FORMATS)


_DEFAULT_LIMITS = ImageLimits()

# Pillow's global bomb guard stays on (never None), aligned with our default limit.
Image.MAX_IMAGE_PIXELS = _DEFAULT_LIMITS.max_pixels
# Register every plugin once, up front, rather than lazily from inside worker threads.
Image.init()


class InvalidImageError(ValueError):
    """A file is not an acceptable image.

    Attributes:
        reason: short human-readable explanation, suitable for storing on a row.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ImageInfo:
    """What :func:`probe_image` learns about a valid image.

    Attributes:
        format: Pillow format name (``"JPEG"``, ``"PNG"``, ...).
        width: width in pixels, after applying EXIF orientation.
        height: height in pixels, after applying EXIF orientation.
        bytes: file size.
        sha256: hex SHA-256 of the file's bytes (content identity).
        phash: perceptual hash (``imagehash.phash``, 16 hex chars) of the decoded,
            upright image (for near-duplicate search).
        pdq: PDQ hash (64 hex chars, the bit order ThreatExchange and Hasher-Matcher-Actioner
            write) of the same pixels, for matching against shared hash banks.
        pdq_quality: PDQ's own quality score, 0-100 (hash-sharing systems usually ignore
            hashes under 50: flat or tiny images hash unreliably).
    """

    format: str
    width: int
    height: int
    bytes: int
    sha256: str
    phash: str
    pdq: str
    pdq_quality: int


def _pil_formats(allowed: frozenset[str]) -> list[str]:
    # Only names Pillow can open (an unknown name would make Image.open raise KeyError).
    # MPO needs no entry of its own: Pillow's JPEG opener returns MPO files itself.
    return sorted(name.upper() for name in allowed if name.upper() in Image.OPEN)


def _identify_any_format(fp: IO[bytes]) -> str | None:
    # Only to name a rejected format in the error message: headers are parsed,
    # nothing is decoded (so e.g. EPS never reaches Ghostscript).
    try:
        fp.seek(0)
        with Image.open(fp) as img:
            return img.format
    except Exception:
        return None


def _open_checked(
    fp: IO[bytes], *, max_pixels: int, allowed_formats: frozenset[str]
) -> Image.Image:
    """Open an image (headers only) and enforce the format allowlist and pixel limit."""
    try:
        img = Image.open(fp, formats=_pil_formats(allowed_formats))
    except Image.DecompressionBombError as exc:
        raise InvalidImageError(f"decompression bomb: {exc}") from exc
    except UnidentifiedImageError as exc:
        other = _identify_any_format(fp)
        if other is not None:
            raise InvalidImageError(f"format {other} not allowed") from exc
        raise InvalidImageError("not an image") from exc
    except Exception as exc:  # any parser failure on untrusted bytes
        raise InvalidImageError(f"unreadable image header: {exc}") from exc

    fmt = _FORMAT_ALIASES.get(img.format or "", img.format or "")
    if fmt not in {name.upper() for name in allowed_formats}:
        img.close()
        raise InvalidImageError(f"format {fmt or 'unknown'} not allowed")
    width, height = img.size
    if width <= 0 or height <= 0:
        img.close()
        raise InvalidImageError(f"invalid dimensions {width}x{height}")
    if width * height > max_pixels:
        img.close()
        raise InvalidImageError(
            f"decompression bomb: {width * height} pixels exceeds limit {max_pixels}"
        )
    return img


def _decode(img: Image.Image, *, target_size: int | None) -> Image.Image:
    """Decode the first frame (optionally DCT-downscaled) and apply EXIF orientation."""
    try:
        # A freshly opened image is on frame 0; asking for n_frames would parse
        # every frame of an animation, so don't.
        if target_size is not None:
            # JPEG only (a no-op elsewhere): libjpeg scales by 1/2, 1/4 or 1/8 while
            # decoding, keeping both sides >= target_size. Much faster on photos.
            img.draft("RGB", (target_size, target_size))
        img.load()
    except Image.DecompressionBombError as exc:
        raise InvalidImageError(f"decompression bomb: {exc}") from exc
    except Exception as exc:  # OSError("image file is truncated"), zlib errors, ...
        raise InvalidImageError(f"truncated or corrupt image: {exc}") from exc
    try:
        upright = ImageOps.exif_transpose(img)
    except Exception as exc:  # malformed EXIF must not reject otherwise good pixels
        logger.debug("ignoring unreadable EXIF orientation: %s", exc)
        return img
    return upright if upright is not None else img


def _to_8bit(img: Image.Image) -> Image.Image:
    """Scale single-channel 16/32-bit integer and float images to 8-bit grey."""
    arr = np.asarray(img)
    scaled: np.ndarray
    if img.mode.startswith("I;16"):
        scaled = (arr.astype(np.uint32) * 255 + 32767) // 65535
    elif img.mode == "I":
        # Mode I carries no bit depth: 8-bit data stays, 16-bit data is rescaled,
        # anything wider is stretched over its own range.
        hi, lo = int(arr.max(initial=0)), int(arr.min(initial=0))
        if lo >= 0 and hi <= 255:
            scaled = arr
        elif lo >= 0 and hi <= 65535:
            scaled = (arr.astype(np.int64) * 255 + 32767) // 65535
        else:
            scaled = (arr.astype(np.float64) - lo) * (255.0 / max(hi - lo, 1))
    else:  # "F": [0, 1] floats are the common convention, else assume 0..255
        farr = np.nan_to_num(arr.astype(np.float64))
        scaled = farr * 255.0 if farr.size and farr.max() <= 1.0 and farr.min() >= 0.0 else farr
    out = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    return Image.fromarray(out)  # 2-D uint8 -> mode "L"


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert a decoded image of any Pillow mode to 8-bit RGB.

    Transparent images (RGBA, LA, palette or grey/RGB with a ``transparency``
    key) are composited onto white; 16-bit and 32-bit images are scaled to
    8 bits instead of clipped (Pillow's own conversion clips); CMYK and YCbCr
    go through Pillow's converters (no ICC colour management).

    Raises:
        InvalidImageError: a mode Pillow cannot convert to RGB.
    """
    mode = img.mode
    if mode == "RGB" and "transparency" not in img.info:
        return img
    try:
        if mode.startswith("I;16") or mode in ("I", "F"):
            return _to_8bit(img).convert("RGB")
        has_alpha = mode in ("RGBA", "LA", "La", "RGBa", "PA") or "transparency" in img.info
        if not has_alpha:
            return img.convert("RGB")
        rgba = img if mode == "RGBA" else img.convert("RGBA")
        background = Image.new("RGB", rgba.size, _WHITE)
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    except (ValueError, OSError) as exc:
        raise InvalidImageError(f"cannot convert colour mode {mode} to RGB: {exc}") from exc


def probe_image_bytes(data: bytes, *, limits: ImageLimits = _DEFAULT_LIMITS) -> ImageInfo:
    """Validate an image held in memory and compute its identity.

    See :func:`probe_image`; this variant serves archive members and downloads.

    Raises:
        InvalidImageError: with a short ``reason``.
    """
    if len(data) == 0:
        raise InvalidImageError("empty file")
    if len(data) > limits.max_bytes:
        raise InvalidImageError(f"file too large: {len(data)} bytes > limit {limits.max_bytes}")
    sha256 = hashlib.sha256(data).hexdigest()
    with _open_checked(
        io.BytesIO(data), max_pixels=limits.max_pixels, allowed_formats=limits.allowed_formats
    ) as img:
        fmt = _FORMAT_ALIASES.get(img.format or "", img.format or "")
        width, height = img.size
        decoded = _decode(img, target_size=_PROBE_DECODE_SIZE)
        # The decode may be downscaled (JPEG draft), so the header gives the size and
        # the decoded image only tells whether EXIF orientation swapped the axes.
        stored = img.size
        if decoded.size != stored and decoded.size == stored[::-1]:
            width, height = height, width
        rgb = to_rgb(decoded)
        phash = str(imagehash.phash(rgb))
        pdq, pdq_quality = pdq_hash(rgb)
    return ImageInfo(
        format=fmt,
        width=width,
        height=height,
        bytes=len(data),
        sha256=sha256,
        phash=phash,
        pdq=pdq,
        pdq_quality=pdq_quality,
    )


def pdq_hash(rgb: Image.Image) -> tuple[str, int]:
    """PDQ hash of an RGB image as 64 hex characters, and its quality (0-100).

    pdqhash returns the 256 bits most significant first, which is the order of the
    reference implementation's hex form (word 15 first), so packing them big-endian gives
    the same string that ThreatExchange and HMA exchange.
    """
    bits, quality = pdqhash.compute(np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8)))
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes().hex(), int(quality)


def probe_image(path: str | Path, *, limits: ImageLimits = _DEFAULT_LIMITS) -> ImageInfo:
    """Validate an image file and compute its identity.

    The file is read once (after a size check from ``stat``); its SHA-256 is
    taken from those bytes; the format allowlist and pixel limit are checked from
    the header before any decoding; then the first frame is fully decoded (which
    catches truncated files) and perceptually hashed, upright per EXIF.

    Args:
        path: the file.
        limits: size, pixel and format limits.

    Returns:
        The image's format, upright size, byte size, SHA-256 and perceptual hash.

    Raises:
        InvalidImageError: with a short ``reason`` such as ``"empty file"``,
            ``"not an image"``, ``"format EPS not allowed"``,
            ``"decompression bomb: ..."`` or ``"truncated or corrupt image: ..."``.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError as exc:
        raise InvalidImageError("file not found") from exc
    except OSError as exc:
        raise InvalidImageError(f"unreadable file: {exc.strerror or exc}") from exc
    if not Path(path).is_file():
        raise InvalidImageError("not a regular file")
    if st.st_size == 0:
        raise InvalidImageError("empty file")
    if st.st_size > limits.max_bytes:
        raise InvalidImageError(f"file too large: {st.st_size} bytes > limit {limits.max_bytes}")
    try:
        with open(path, "rb") as fh:
            # Bounded read: the file may have grown since stat.
            data = fh.read(limits.max_bytes + 1)
    except OSError as exc:
        raise InvalidImageError(f"unreadable file: {exc.strerror or exc}") from exc
    return probe_image_bytes(data, limits=limits)


def load_rgb(
    source: str | Path | bytes | ImageLocator,
    *,
    target_size: int | None = None,
    max_pixels: int = _DEFAULT_LIMITS.max_pixels,
    allowed_formats: frozenset[str] = DEFAULT_ALLOWED_FORMATS,
) -> Image.Image:
    """Decode an image for the model: first frame, upright, 8-bit RGB.

    Args:
        source: a file path, the file's bytes, or an ImageLocator (a container member is
            read by a range read; a loose-file locator is opened as its path).
        target_size: the model's input side; when given, JPEGs are decoded at the
            smallest DCT scale (1/2, 1/4, 1/8) that keeps both sides >= target_size.
            The image is not resized further here (the model's transform does it).
        max_pixels: pixel limit, checked from the header before decoding.
        allowed_formats: Pillow formats accepted (keeps risky decoders such as
            EPS/Ghostscript out of reach even for files that skipped import checks).

    Returns:
        A loaded RGB image, detached from the source file.

    Raises:
        InvalidImageError: not an image, disallowed format, over the pixel limit,
            truncated or corrupt.
    """
    if target_size is not None and target_size <= 0:
        raise ValueError(f"target_size must be positive, got {target_size}")
    fp: IO[bytes]
    if isinstance(source, ImageLocator):
        if not source.is_member and not source.is_remote:
            source = source.path_or_url
        else:
            try:
                source = read_image_bytes(source)
            except FileNotFoundError as exc:
                raise InvalidImageError("container not found") from exc
            except OSError as exc:
                raise InvalidImageError(f"unreadable container member: {exc}") from exc
    if isinstance(source, bytes | bytearray | memoryview):
        if len(source) == 0:
            raise InvalidImageError("empty file")
        fp = io.BytesIO(source)
    else:
        try:
            fp = open(source, "rb")  # noqa: SIM115 - closed in the finally below
        except FileNotFoundError as exc:
            raise InvalidImageError("file not found") from exc
        except OSError as exc:
            raise InvalidImageError(f"unreadable file: {exc.strerror or exc}") from exc
    try:
        if not isinstance(fp, io.BytesIO) and os.fstat(fp.fileno()).st_size == 0:
            raise InvalidImageError("empty file")
        with _open_checked(fp, max_pixels=max_pixels, allowed_formats=allowed_formats) as img:
            decoded = _decode(img, target_size=target_size)
            rgb = to_rgb(decoded)
            if rgb is img:
                # Still backed by the open file: take a detached copy before closing.
                rgb = img.copy()
        return rgb
    finally:
        fp.close()
