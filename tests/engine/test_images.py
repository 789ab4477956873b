"""Image validation and decoding on good, odd and hostile files."""

from __future__ import annotations

import hashlib
import io
import struct
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from worker.engine.images import (
    ImageInfo,
    ImageLimits,
    InvalidImageError,
    load_rgb,
    probe_image,
    probe_image_bytes,
)

ORIENTATION = 0x0112


def _noise(size: tuple[int, int], seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def _save(img: Image.Image, path: Path, fmt: str, **kwargs: object) -> Path:
    img.save(path, fmt, **kwargs)
    return path


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims the given size, with a token IDAT: cheap to write, never decoded."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("fmt", "suffix", "kwargs"),
    [
        ("JPEG", "jpg", {"quality": 90}),
        ("PNG", "png", {}),
        ("WEBP", "webp", {"quality": 90}),
        ("BMP", "bmp", {}),
        ("TIFF", "tif", {}),
    ],
)
def test_probe_good_files(tmp_path: Path, fmt: str, suffix: str, kwargs: dict[str, object]) -> None:
    path = _save(_noise((48, 32)), tmp_path / f"img.{suffix}", fmt, **kwargs)
    info = probe_image(path)
    assert isinstance(info, ImageInfo)
    assert (info.format, info.width, info.height) == (fmt, 48, 32)
    assert info.bytes == path.stat().st_size
    assert info.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert len(info.phash) == 16 and int(info.phash, 16) >= 0
    assert probe_image_bytes(path.read_bytes()) == info
    rgb = load_rgb(path)
    assert rgb.mode == "RGB" and rgb.size == (48, 32)


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_animated_images_use_the_first_frame(tmp_path: Path, fmt: str) -> None:
    frames = [Image.new("RGB", (40, 30), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    path = tmp_path / f"anim.{fmt.lower()}"
    frames[0].save(
        path, fmt, save_all=True, append_images=frames[1:], duration=100, loop=0, lossless=True
    )
    assert getattr(Image.open(path), "n_frames", 1) == 2
    info = probe_image(path)
    assert (info.format, info.width, info.height) == (fmt, 40, 30)
    red, green, blue = load_rgb(path).getpixel((5, 5))  # type: ignore[misc]
    assert red > 200 and blue < 50


def test_multi_picture_jpeg_counts_as_jpeg(tmp_path: Path) -> None:
    path = tmp_path / "camera.jpg"
    _noise((32, 32)).save(path, "MPO", save_all=True, append_images=[_noise((32, 32), seed=1)])
    assert Image.open(path).format == "MPO"
    assert probe_image(path).format == "JPEG"


def test_exif_orientation_swaps_the_reported_size(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[ORIENTATION] = 6  # rotate 90 degrees clockwise for display
    small = _save(_noise((60, 40)), tmp_path / "small.jpg", "JPEG", exif=exif.tobytes())
    info = probe_image(small)
    assert (info.width, info.height) == (40, 60)
    assert load_rgb(small).size == (40, 60)

    # Large enough for the reduced-scale (draft) JPEG decode path.
    big = _save(_noise((1600, 1200)), tmp_path / "big.jpg", "JPEG", exif=exif.tobytes())
    info = probe_image(big)
    assert (info.width, info.height) == (1200, 1600)
    drafted = load_rgb(big, target_size=64)
    assert drafted.width < drafted.height
    assert min(drafted.size) >= 64 and max(drafted.size) < 1600  # DCT-downscaled, not below target


def test_upright_phash_matches_the_pre_rotated_image(tmp_path: Path) -> None:
    import imagehash

    base = Image.new("RGB", (80, 60), (255, 255, 255))
    base.paste((0, 0, 0), (0, 0, 40, 30))
    exif = Image.Exif()
    exif[ORIENTATION] = 3  # upside down
    rotated = _save(base.rotate(180), tmp_path / "rot.png", "PNG", exif=exif.tobytes())
    plain = _save(base, tmp_path / "plain.png", "PNG")
    a = imagehash.hex_to_hash(probe_image(rotated).phash)
    b = imagehash.hex_to_hash(probe_image(plain).phash)
    assert a - b <= 2


def test_cmyk_jpeg_becomes_rgb(tmp_path: Path) -> None:
    path = _save(Image.new("CMYK", (32, 32), (0, 255, 255, 0)), tmp_path / "cmyk.jpg", "JPEG")
    assert Image.open(path).mode == "CMYK"
    probe_image(path)
    r, g, b = load_rgb(path).getpixel((16, 16))  # type: ignore[misc]
    assert r > 200 and g < 60 and b < 60


def test_16_bit_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    values = np.array([[0, 16384, 32768, 65535]], dtype=np.uint16).repeat(4, axis=0)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path, "PNG")
    assert Image.open(path).mode.startswith("I;16")
    probe_image(path)
    row = np.asarray(load_rgb(path))[0, :, 0]
    np.testing.assert_allclose(row, [0, 64, 128, 255], atol=1)


def test_transparency_is_composited_onto_white(tmp_path: Path) -> None:
    palette = Image.new("P", (10, 10), 0)
    palette.putpalette([0, 0, 0, 255, 0, 0] + [0] * (256 * 3 - 6))
    palette.paste(1, (0, 0, 5, 10))
    palette_path = tmp_path / "palette.png"
    palette.save(palette_path, "PNG", transparency=0)
    rgb = load_rgb(palette_path)
    assert rgb.getpixel((8, 5)) == (255, 255, 255)  # transparent index -> white
    assert rgb.getpixel((2, 5)) == (255, 0, 0)
    probe_image(palette_path)

    la = Image.new("LA", (10, 10), (0, 128))  # black at half opacity
    la_path = _save(la, tmp_path / "la.png", "PNG")
    value = load_rgb(la_path).getpixel((5, 5))
    assert value[0] == value[1] == value[2] and 120 <= value[0] <= 135  # type: ignore[index]

    clear = _save(Image.new("RGBA", (10, 10), (0, 0, 0, 0)), tmp_path / "clear.png", "PNG")
    assert load_rgb(clear).getpixel((5, 5)) == (255, 255, 255)
    grey_key = Image.new("L", (10, 10), 7)
    grey_path = _save(grey_key, tmp_path / "key.png", "PNG", transparency=7)
    assert load_rgb(grey_path).getpixel((5, 5)) == (255, 255, 255)


def test_truncated_jpeg_is_rejected(tmp_path: Path) -> None:
    whole = _save(_noise((400, 300)), tmp_path / "whole.jpg", "JPEG", quality=95).read_bytes()
    path = tmp_path / "cut.jpg"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(InvalidImageError) as excinfo:
        probe_image(path)
    assert excinfo.value.reason.startswith("truncated or corrupt image")
    with pytest.raises(InvalidImageError, match="truncated or corrupt"):
        load_rgb(path, target_size=64)


def test_corrupt_png_data_is_rejected(tmp_path: Path) -> None:
    data = bytearray(_save(_noise((64, 64)), tmp_path / "ok.png", "PNG").read_bytes())
    data[100:140] = b"\xff" * 40  # inside the compressed IDAT stream
    path = tmp_path / "bad.png"
    path.write_bytes(bytes(data))
    with pytest.raises(InvalidImageError, match="truncated or corrupt"):
        probe_image(path)


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.jpg", b"", "empty file"),
        ("text.jpg", b"hello, I am a text file\n" * 20, "not an image"),
        (
            "drawing.svg",
            b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect/></svg>',
            "not an image",
        ),
        (
            "layers.psd",
            b"8BPS\x00\x01" + b"\x00" * 6 + struct.pack(">HIIHH", 3, 16, 16, 8, 3) + b"\x00" * 64,
            "format PSD not allowed",
        ),
    ],
)
def test_non_images_are_rejected(tmp_path: Path, name: str, content: bytes, reason: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InvalidImageError) as excinfo:
        probe_image(path)
    assert excinfo.value.reason == reason
    assert str(excinfo.value) == reason
    if content:
        with pytest.raises(InvalidImageError):
            load_rgb(path)


def test_eps_is_refused_without_running_ghostscript(tmp_path: Path) -> None:
    path = _save(_noise((20, 10)), tmp_path / "vector.eps", "EPS")
    with pytest.raises(InvalidImageError, match="format EPS not allowed"):
        probe_image(path)
    with pytest.raises(InvalidImageError, match="format EPS not allowed"):
        load_rgb(path)


def test_format_allowlist_is_configurable(tmp_path: Path) -> None:
    path = _save(_noise((16, 16)), tmp_path / "x.jpg", "JPEG")
    with pytest.raises(InvalidImageError, match="format JPEG not allowed"):
        probe_image(path, limits=ImageLimits(allowed_formats=frozenset({"PNG"})))
    with pytest.raises(InvalidImageError, match="format JPEG not allowed"):
        load_rgb(path, allowed_formats=frozenset({"PNG"}))


def test_decompression_bombs_are_rejected_before_decoding(tmp_path: Path) -> None:
    # 400 megapixels: beyond twice Pillow's limit, Pillow itself refuses to open it.
    huge = tmp_path / "huge.png"
    huge.write_bytes(_png_header_only(20_000, 20_000))
    with pytest.raises(InvalidImageError, match="decompression bomb"):
        probe_image(huge)
    with pytest.raises(InvalidImageError, match="decompression bomb"):
        load_rgb(huge)

    # 144 megapixels: Pillow only warns; our limit check refuses it.
    big = tmp_path / "big.png"
    big.write_bytes(_png_header_only(12_000, 12_000))
    with (
        pytest.warns(Image.DecompressionBombWarning),
        pytest.raises(
            InvalidImageError,
            match="decompression bomb: 144000000 pixels exceeds limit 100000000",
        ),
    ):
        probe_image(big)

    # And a small real image under a lowered limit.
    small = _save(_noise((60, 40)), tmp_path / "small.png", "PNG")
    with pytest.raises(InvalidImageError, match="2400 pixels exceeds limit 1000"):
        probe_image(small, limits=ImageLimits(max_pixels=1000))
    with pytest.raises(InvalidImageError, match="2400 pixels exceeds limit 1000"):
        load_rgb(small, max_pixels=1000)


def test_size_limit_and_missing_files(tmp_path: Path) -> None:
    path = _save(_noise((32, 32)), tmp_path / "x.png", "PNG")
    size = path.stat().st_size
    with pytest.raises(InvalidImageError, match=f"file too large: {size} bytes > limit 100"):
        probe_image(path, limits=ImageLimits(max_bytes=100))
    with pytest.raises(InvalidImageError, match="file not found"):
        probe_image(tmp_path / "missing.png")
    with pytest.raises(InvalidImageError, match="file not found"):
        load_rgb(tmp_path / "missing.png")
    with pytest.raises(InvalidImageError, match="not a regular file"):
        probe_image(tmp_path)


def test_load_rgb_from_bytes_matches_path_and_is_thread_safe(tmp_path: Path) -> None:
    paths = [_save(_noise((300, 200), seed=i), tmp_path / f"{i}.jpg", "JPEG") for i in range(8)]
    expected = [np.asarray(load_rgb(p, target_size=64)) for p in paths]
    np.testing.assert_array_equal(
        np.asarray(load_rgb(paths[0].read_bytes(), target_size=64)), expected[0]
    )
    results: dict[int, np.ndarray] = {}

    def work(i: int) -> None:
        results[i] = np.asarray(load_rgb(paths[i], target_size=64))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(paths))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for i, array in enumerate(expected):
        np.testing.assert_array_equal(results[i], array)
    with pytest.raises(InvalidImageError, match="empty file"):
        load_rgb(b"")
    assert isinstance(load_rgb(io.BytesIO(paths[1].read_bytes()).getvalue()), Image.Image)
