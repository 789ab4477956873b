"""Hostile and broken files on every import path (folder, archive upload).

Each bad file becomes a failed image with a clear reason, the rest of the import
goes on, and the dataset's counts add up. Awkward but valid images (CMYK, 16-bit,
palette with transparency, animations, EXIF orientation) are imported, not refused.
The URL-list path has its own tests in test_url_import.py.

Decision, polyglots: a valid PNG followed by HTML is accepted as a PNG. Pillow
decodes the image and ignores trailing bytes, and the image is only ever served
as ``image/png`` with ``X-Content-Type-Options: nosniff`` through the authorised
image view, so the HTML is never rendered. Rejecting trailing data would need a
parser per format and would refuse many real camera files (which append data).
"""

from __future__ import annotations

import io
import os
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from curation.models import Dataset, Image
from curation.services.datasets import (
    dataset_create_from_archive,
    dataset_create_from_folder,
    dataset_import,
)
from tests.hostile import files
from worker.engine.images import load_rgb

pytestmark = pytest.mark.django_db

_JPEG = files.jpeg(size=(300, 200))

# name -> (bytes, expected reason fragment or None for "imported OK")
HOSTILE: dict[str, tuple[bytes, str | None]] = {
    "good.png": (files.png(), None),
    "zero.jpg": (b"", "empty file"),
    "truncated.jpg": (_JPEG[: len(_JPEG) * 2 // 3], "truncated or corrupt"),
    "corrupt.png": (files.png()[:60] + b"\x00" * 40 + files.png()[100:], "corrupt"),
    "text.png": (b"just some text pretending to be a PNG\n", "not an image"),
    "script.jpg": (b"#!/bin/sh\nrm -rf /\n", "not an image"),
    "vector.eps": (files.EPS, "format EPS not allowed"),
    "layers.psd": (files.psd(), "format PSD not allowed"),
    "drawing.svg": (files.SVG, "not an image"),
    "paper.pdf": (files.PDF, "not an image"),
    "bomb.png": (files.bomb_png(), "decompression bomb"),
    "huge.png": (files.huge_dimensions_png(), "decompression bomb"),
    "polyglot.png": (files.png() + files.POLYGLOT_HTML, None),
    "cmyk.jpg": (files.cmyk_jpeg(), None),
    "deep16.png": (files.png_16bit(), None),
    "palette.png": (files.palette_with_transparency(), None),
    "animated.gif": (files.animated("GIF"), None),
    "animated.webp": (files.animated("WEBP"), None),
    "rotated.jpg": (files.exif_rotated_jpeg(), None),
    "ünïcødé 画像 & 'quotes' (1).png": (files.png(color=(1, 2, 3)), None),
    "-leading dash;semi.png": (files.png(color=(4, 5, 6)), None),
}


def _import_folder(tmp_path: Path, entries: dict[str, bytes]) -> Dataset:
    folder = tmp_path / "data"
    folder.mkdir()
    for name, data in entries.items():
        (folder / name).write_bytes(data)
    dataset = dataset_create_from_folder(name="hostile-folder", folder=str(folder), queue=False)
    return dataset_import(dataset_id=dataset.pk)


def _import_archive(tmp_path: Path, entries: dict[str, bytes]) -> Dataset:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    upload = SimpleUploadedFile("hostile.zip", buffer.getvalue())
    dataset = dataset_create_from_archive(name="hostile-archive", archive=upload, queue=False)
    return dataset_import(dataset_id=dataset.pk)


IMPORTERS = {"folder": _import_folder, "archive": _import_archive}


@pytest.fixture(autouse=True)
def _media(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.mark.parametrize("path_kind", sorted(IMPORTERS))
def test_every_hostile_file_is_recorded_and_the_rest_imports(tmp_path, path_kind):
    dataset = IMPORTERS[path_kind](tmp_path, {name: data for name, (data, _) in HOSTILE.items()})

    assert dataset.state == Dataset.State.READY
    expected_failed = sum(1 for _, reason in HOSTILE.values() if reason)
    assert (dataset.total, dataset.processed, dataset.failed) == (
        len(HOSTILE),
        len(HOSTILE),
        expected_failed,
    )
    rows = {image.relative_path: image for image in dataset.images.all()}
    assert set(rows) == set(HOSTILE)
    for name, (_, reason) in HOSTILE.items():
        row = rows[name]
        if reason is None:
            assert row.status == Image.Status.OK, f"{name} refused: {row.error}"
            assert len(row.sha256) == 64
        else:
            assert row.status == Image.Status.FAILED, f"{name} was accepted"
            assert reason in row.error, f"{name}: {row.error!r} lacks {reason!r}"


@pytest.mark.parametrize("path_kind", sorted(IMPORTERS))
def test_awkward_valid_images_are_converted_correctly(tmp_path, path_kind):
    names = [
        "cmyk.jpg",
        "deep16.png",
        "palette.png",
        "animated.gif",
        "animated.webp",
        "rotated.jpg",
    ]
    dataset = IMPORTERS[path_kind](tmp_path, {name: HOSTILE[name][0] for name in names})
    rows = {image.relative_path: image for image in dataset.images.all()}
    root = Path(dataset.root_path)
    assert all(rows[name].status == Image.Status.OK for name in names)

    r, g, b = load_rgb(root / "cmyk.jpg").getpixel((15, 15))
    assert r > 200 and g < 60 and b < 60  # CMYK (0, 255, 255, 0) is red
    row = np.asarray(load_rgb(root / "deep16.png"))[0, :, 0]
    np.testing.assert_allclose(row, [0, 64, 128, 255], atol=1)  # scaled, not clipped
    palette = load_rgb(root / "palette.png")
    assert palette.getpixel((2, 5)) == (255, 0, 0) and palette.getpixel((8, 5)) == (255, 255, 255)
    for name in ("animated.gif", "animated.webp"):
        r, g, b = load_rgb(root / name).getpixel((10, 10))
        assert r > 200 and b < 60, f"{name}: not the first (red) frame"
        assert (rows[name].width, rows[name].height) == (32, 24)
    assert (rows["rotated.jpg"].width, rows["rotated.jpg"].height) == (20, 60)
    assert load_rgb(root / "rotated.jpg").size == (20, 60)


def test_pixel_limit_setting_is_enforced_not_raised(tmp_path, settings):
    """The configured pixel limit applies on import; lowering it refuses smaller images."""
    settings.Q16_MAX_IMAGE_PIXELS = 1000
    dataset = _import_folder(
        tmp_path, {"small.png": files.png(size=(10, 10)), "big.png": files.png(size=(40, 30))}
    )
    rows = {image.relative_path: image for image in dataset.images.all()}
    assert rows["small.png"].status == Image.Status.OK
    assert rows["big.png"].status == Image.Status.FAILED
    assert "decompression bomb" in rows["big.png"].error


def test_non_utf8_file_name_in_a_folder_is_refused_with_a_reason(tmp_path):
    """Decision: names that are not valid UTF-8 are refused (the database stores text and the
    review UI and exports show the name); the reason says why, the other files import."""
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "fine.png").write_bytes(files.png())
    raw = os.path.join(os.fsencode(folder), b"caf\xe9-latin1.png")
    with open(raw, "wb") as fh:
        fh.write(files.png(color=(9, 9, 9)))
    dataset = dataset_create_from_folder(name="latin1", folder=str(folder), queue=False)
    dataset = dataset_import(dataset_id=dataset.pk)
    assert (dataset.total, dataset.failed) == (2, 1)
    bad = dataset.images.get(status=Image.Status.FAILED)
    assert bad.error == "file name is not valid UTF-8"
    assert "caf" in bad.relative_path  # shown with a replacement character, still recognisable
    bad.relative_path.encode("utf-8")


def test_folder_symlink_pointing_outside_is_refused(tmp_path):
    secret = tmp_path / "secret.png"
    secret.write_bytes(files.png())
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "ok.png").write_bytes(files.png(color=(1, 1, 1)))
    (folder / "escape.png").symlink_to(secret)
    (folder / "linkdir").symlink_to(tmp_path, target_is_directory=True)  # not followed
    dataset = dataset_create_from_folder(name="links", folder=str(folder), queue=False)
    dataset = dataset_import(dataset_id=dataset.pk)
    rows = {image.relative_path: image for image in dataset.images.all()}
    assert rows["escape.png"].status == Image.Status.FAILED
    assert "outside" in rows["escape.png"].error
    assert not any(path.startswith("linkdir/") for path in rows)


def _zip_with(entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for info, data in entries:
            archive.writestr(info, data)
    return SimpleUploadedFile("a.zip", buffer.getvalue())


def test_archive_symlinks_traversal_and_absolute_paths_never_write_outside(tmp_path):
    link = zipfile.ZipInfo("images/link.png")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    dev = zipfile.ZipInfo("images/device")
    dev.external_attr = (stat.S_IFCHR | 0o644) << 16
    upload = _zip_with(
        [
            ("images/ok.png", files.png()),
            (link, b"../../../../etc/passwd"),
            (dev, b""),
            ("../escape.png", files.png()),
            ("a/../../escape2.png", files.png()),
            ("..\\windows.png", files.png()),
            ("/tmp/absolute.png", files.png()),
            ("C:/drive.png", files.png()),
        ]
    )
    dataset = dataset_create_from_archive(name="evil", archive=upload, queue=False)
    dataset = dataset_import(dataset_id=dataset.pk)
    rows = {image.relative_path: image for image in dataset.images.all()}
    assert rows["images/ok.png"].status == Image.Status.OK
    failed = {path: row.error for path, row in rows.items() if row.status == Image.Status.FAILED}
    assert len(failed) == 7 and dataset.failed == 7
    assert "symbolic link" in failed["[refused] images/link.png"]
    assert "special file" in failed["[refused] images/device"]
    assert "traversal" in failed["[refused] ../escape.png"]
    assert "traversal" in failed["[refused] ..\\windows.png"]
    assert "absolute" in failed["[refused] /tmp/absolute.png"]
    assert "absolute" in failed["[refused] C:/drive.png"]
    root = Path(dataset.root_path)
    written = {p for p in root.rglob("*")}
    assert not any(p.is_symlink() for p in written)
    assert {p.relative_to(root).as_posix() for p in written if p.is_file()} == {"images/ok.png"}
    for name in ("escape.png", "escape2.png", "windows.png", "absolute.png", "drive.png"):
        assert not list(tmp_path.rglob(name)), name
    assert not Path("/tmp/absolute.png").exists()


def test_zip_bomb_is_stopped_by_the_ratio_cap(tmp_path, settings):
    """A real high-ratio entry: 40 MB of zeros deflate to ~40 kB (ratio ~1000:1)."""
    upload = _zip_with([("ok.png", files.png()), ("bomb.png", b"\x00" * (40 * 2**20))])
    assert len(upload) < 200_000
    dataset = dataset_create_from_archive(name="bomb", archive=upload, queue=False)
    dataset = dataset_import(dataset_id=dataset.pk)
    rows = {image.relative_path: image for image in dataset.images.all()}
    assert rows["ok.png"].status == Image.Status.OK
    assert "compression ratio" in rows["[refused] bomb.png"].error
    assert not (Path(dataset.root_path) / "bomb.png").exists()


def test_archive_total_size_cap_stops_extraction(tmp_path, settings):
    one = files.jpeg(size=(64, 64))
    settings.Q16_MAX_ARCHIVE_BYTES = len(one) * 3 + 10
    upload = _zip_with(
        [(f"{index}.jpg", files.jpeg(color=(index, 0, 0), size=(64, 64))) for index in range(6)]
    )
    dataset = dataset_create_from_archive(name="capped", archive=upload, queue=False)
    dataset = dataset_import(dataset_id=dataset.pk)
    ok = dataset.images.filter(status=Image.Status.OK).count()
    refused = list(
        dataset.images.filter(status=Image.Status.FAILED).values_list("error", flat=True)
    )
    assert ok <= 3 and ok + len(refused) == 6 and refused
    assert all("total size cap" in reason for reason in refused)
    total = sum(p.stat().st_size for p in Path(dataset.root_path).rglob("*") if p.is_file())
    assert total <= settings.Q16_MAX_ARCHIVE_BYTES


def test_archive_entry_that_lies_about_its_size_is_cut_off(tmp_path):
    """A header declaring fewer bytes than the data stream holds never writes past it."""
    from curation.services.archives import ArchiveLimits, extract_archive

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("a.png", files.png())
    data = bytearray(buffer.getvalue())
    # Patch the central directory's uncompressed size of the single entry down to 10.
    cd = data.rfind(b"PK\x01\x02")
    data[cd + 24 : cd + 28] = (10).to_bytes(4, "little")
    (tmp_path / "lie.zip").write_bytes(bytes(data))
    result = extract_archive(tmp_path / "lie.zip", tmp_path / "out", limits=ArchiveLimits())
    assert result.extracted == [] and result.rejected
    assert not (tmp_path / "out" / "a.png").exists()


def test_nested_archives_are_refused(tmp_path):
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as archive:
        archive.writestr("x.png", files.png())
    upload = _zip_with(
        [("ok.png", files.png()), ("inner.zip", inner.getvalue()), ("deep/t.tar.gz", b"\x1f\x8b")]
    )
    dataset = dataset_create_from_archive(name="nested", archive=upload, queue=False)
    dataset = dataset_import(dataset_id=dataset.pk)
    failed = dict(
        dataset.images.filter(status=Image.Status.FAILED).values_list("relative_path", "error")
    )
    assert failed == {
        "[refused] inner.zip": "nested archive refused",
        "[refused] deep/t.tar.gz": "nested archive refused",
    }
    assert not list(Path(dataset.root_path).rglob("x.png"))
