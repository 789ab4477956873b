"""Server folders and uploaded archives: listing their files, probing one, and deleting what
an upload left behind when its import stopped."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings

from curation.models import Dataset, Image
from curation.services.archives import ArchiveLimits, extract_archive
from curation.services.sources.common import ImportStopped, dataset_file_writer, still_importing
from curation.storage import MEDIA, REFERENCE_SCHEME, stored_delete, stored_open
from worker.engine.images import ImageLimits, InvalidImageError, probe_image, probe_image_bytes
from worker.engine.locators import ImageLocator, is_url, read_image_bytes

logger = logging.getLogger("curation.services.datasets")

# While listing a folder, look for a cancellation (and beat the heartbeat) this often.
WALK_CHECK_EVERY = 2000


def iter_folder_files(root: Path) -> Iterator[tuple[str, str | None]]:
    """Yield (relative path, problem) for every file under root, without leaving it."""
    for directory, subdirs, files in os.walk(root, followlinks=False):
        subdirs.sort()
        for filename in sorted(files):
            full = Path(directory) / filename
            relative = full.relative_to(root).as_posix()
            try:
                relative.encode("utf-8")
            except UnicodeEncodeError:
                safe = relative.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
                yield safe, "file name is not valid UTF-8"
                continue
            if full.is_symlink():
                target = full.resolve()
                if not target.is_relative_to(root):
                    yield relative, "symbolic link pointing outside the dataset folder"
                    continue
            yield relative, None


def collect_candidates(dataset: Dataset) -> list[tuple[str, str | None]]:
    """Every file of a folder import, or of an archive import (extracted first, unless a
    resume finds the extraction already done), with the problem that refuses it if any.
    Raises ArchiveError or OSError when the source as a whole cannot be read."""
    root = Path(dataset.root_path)
    rejected: list[tuple[str, str | None]] = []
    if dataset.source_kind == Dataset.SourceKind.ARCHIVE and extracted_earlier(dataset):
        pass  # a resume after the archive was deleted: walk what it extracted
    elif dataset.source_kind == Dataset.SourceKind.ARCHIVE:
        limits = ArchiveLimits(
            max_total_bytes=settings.Q16_MAX_ARCHIVE_BYTES,
            max_ratio=settings.Q16_MAX_ARCHIVE_RATIO,
            max_entries=settings.Q16_MAX_ARCHIVE_ENTRIES,
            max_entry_bytes=settings.Q16_MAX_IMAGE_BYTES,
        )
        if is_url(dataset.root_path):
            return _extract_to_storage(dataset, limits)
        result = extract_archive(dataset.source, root, limits=limits)
        # Refused entries are recorded under a marker so they never collide with real files.
        rejected = [(f"[refused] {name}"[:1024], reason) for name, reason in result.rejected]
    elif not root.is_dir():
        raise OSError(f"dataset folder {root} does not exist or is not a folder")
    candidates = []
    # A quarter of a million files take minutes to list: look for a cancellation meanwhile.
    for count, candidate in enumerate(iter_folder_files(root), start=1):
        if count % WALK_CHECK_EVERY == 0 and not still_importing(dataset.pk):
            raise ImportStopped
        candidates.append(candidate)
    return candidates + rejected


def _extract_to_storage(dataset: Dataset, limits: ArchiveLimits) -> list[tuple[str, str | None]]:
    """Q16_STORAGE=s3: the upload is fetched from the bucket, extracted on this worker's disk
    (a temporary folder, with every guard of extract_archive) and each accepted file is
    written to the bucket, where the workers indexing and scoring it read it."""
    write = dataset_file_writer(dataset)
    with tempfile.TemporaryDirectory(prefix="q16-extract-") as scratch:
        local_archive = Path(scratch) / "upload"
        with stored_open(dataset.source) as source, open(local_archive, "wb") as sink:
            shutil.copyfileobj(source, sink, 1 << 20)
        extracted = Path(scratch) / "files"
        result = extract_archive(local_archive, extracted, limits=limits)
        local_archive.unlink()
        candidates = []
        for count, (relative, problem) in enumerate(iter_folder_files(extracted), start=1):
            if count % WALK_CHECK_EVERY == 0 and not still_importing(dataset.pk):
                raise ImportStopped
            if problem is None:
                write(relative, (extracted / relative).read_bytes())
            candidates.append((relative, problem))
    rejected = [(f"[refused] {name}"[:1024], reason) for name, reason in result.rejected]
    return candidates + rejected


def probe_file(root: str, relative: str, limits: ImageLimits) -> Image:
    """One file checked and hashed; a bad or unreadable file is a failed image with why.
    root: a local folder, or the s3:// URL of a folder in the bucket (read whole)."""
    try:
        if is_url(root):
            locator = ImageLocator(f"{root.rstrip('/')}/{relative}")
            info = probe_image_bytes(
                read_image_bytes(locator, max_bytes=limits.max_bytes), limits=limits
            )
        else:
            info = probe_image(Path(root) / relative, limits=limits)
    except InvalidImageError as exc:
        return Image(relative_path=relative, status=Image.Status.FAILED, error=exc.reason[:500])
    except OSError as exc:
        return Image(
            relative_path=relative, status=Image.Status.FAILED, error=f"unreadable: {exc}"[:500]
        )
    return Image(
        relative_path=relative,
        sha256=info.sha256,
        phash=info.phash,
        pdq=info.pdq,
        pdq_quality=info.pdq_quality,
        width=info.width,
        height=info.height,
        format=info.format,
        bytes=info.bytes,
        status=Image.Status.OK,
    )


def extracted_earlier(dataset: Dataset) -> bool:
    """The uploaded archive is gone (deleted when the import stopped) but its files are not
    (a local extraction; one in the bucket is known by the import's chunks)."""
    if is_url(dataset.root_path):
        return False
    return not Path(dataset.source).exists() and Path(dataset.root_path).is_dir()


def discard_upload(dataset: Dataset, *, keep_extracted: bool) -> None:
    """Delete a stopped archive import's uploaded zip, and its extraction unless kept."""
    if dataset.source_kind != Dataset.SourceKind.ARCHIVE:
        return
    if dataset.source.startswith(REFERENCE_SCHEME):  # in the bucket: only our archives/ folder
        if dataset.source.startswith(f"{REFERENCE_SCHEME}{MEDIA}/archives/"):
            stored_delete(dataset.source)
            logger.info("deleted the uploaded archive of dataset %s", dataset.pk)
        return
    archives = (Path(settings.MEDIA_ROOT) / "archives").resolve()
    source = Path(dataset.source)
    # Only files this app stored: a source path is never trusted beyond MEDIA_ROOT.
    if source.resolve().is_relative_to(archives) and source.is_file():
        source.unlink(missing_ok=True)
        logger.info("deleted the uploaded archive of dataset %s", dataset.pk)
    extracted = (Path(settings.MEDIA_ROOT) / "datasets").resolve()
    root = Path(dataset.root_path)
    if not keep_extracted and root.resolve().is_relative_to(extracted) and root.is_dir():
        shutil.rmtree(root, ignore_errors=True)
        logger.info("deleted the partial extraction of dataset %s", dataset.pk)
