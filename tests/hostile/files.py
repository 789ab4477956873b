"""Hostile and awkward files, built in memory (no downloads), shared by the hostile tests."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image as PILImage


def png(color=(200, 30, 30), size=(40, 30)) -> bytes:
    buffer = io.BytesIO()
    PILImage.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


def jpeg(color=(20, 90, 200), size=(50, 40), **kwargs) -> bytes:
    buffer = io.BytesIO()
    PILImage.new("RGB", size, color).save(buffer, "JPEG", quality=90, **kwargs)
    return buffer.getvalue()


def encode(img: PILImage.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def bomb_png(side: int = 12_000) -> bytes:
    """A valid PNG header declaring side x side pixels; tiny on disk (one colour)."""
    return encode(PILImage.new("1", (side, side)), "PNG", optimize=True)


def huge_dimensions_png(width: int = 65_535, height: int = 65_535) -> bytes:
    """A PNG whose header claims width x height pixels, with no real pixel data after it.

    Only the IHDR matters: the pixel limit must refuse it before any decoding.
    """
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


def animated(fmt: str) -> bytes:
    frames = [PILImage.new("RGB", (32, 24), c) for c in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    return encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)


def exif_rotated_jpeg() -> bytes:
    """Stored 60x20, EXIF orientation 6 (rotate 90): upright it is 20x60."""
    img = PILImage.new("RGB", (60, 20), (10, 200, 10))
    exif = PILImage.Exif()
    exif[0x0112] = 6
    return encode(img, "JPEG", exif=exif.tobytes())


def cmyk_jpeg() -> bytes:
    return encode(PILImage.new("CMYK", (30, 30), (0, 255, 255, 0)), "JPEG")


def png_16bit() -> bytes:
    arr = np.array([[0, 16384, 32768, 65535]], dtype=np.uint16).repeat(4, axis=0)
    return encode(PILImage.fromarray(arr), "PNG")


def palette_with_transparency() -> bytes:
    """Left half red (index 1), right half transparent (index 0)."""
    img = PILImage.new("P", (10, 10), 0)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    img.paste(1, (0, 0, 5, 10))
    return encode(img, "PNG", transparency=0)


EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"
SVG = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def psd() -> bytes:
    """A minimal Photoshop header (Pillow identifies it as PSD)."""
    header = b"8BPS" + (1).to_bytes(2, "big") + b"\x00" * 6 + (3).to_bytes(2, "big")
    header += (10).to_bytes(4, "big") + (10).to_bytes(4, "big") + (8).to_bytes(2, "big")
    header += (3).to_bytes(2, "big")
    return header + b"\x00\x00\x00\x00" * 3 + b"\x00\x00" + b"\x00" * 300


POLYGLOT_HTML = b"<html><script>alert(document.domain)</script></html>"
