"""What every importer shares: batches, counts, cancellation checks, the remote-URL policy
and the download of one URL into the dataset folder."""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import fsspec
from django.conf import settings
from django.db.models import F
from django.utils import timezone

from curation.errors import ValidationFailed
from curation.models import Dataset, Image
from curation.services.url_import import UrlFetcher, UrlFetchError
from curation.storage import MEDIA, storage_folder_url, stored_write
from worker.engine.images import ImageLimits, InvalidImageError, probe_image_bytes
from worker.engine.locators import is_url

# The datasets module's logger: import logs read the same whatever the source.
logger = logging.getLogger("curation.services.datasets")
ProgressCallback = Callable[[int, int], None]
IMPORT_BATCH = 256
# File extension for each verified format (URL downloads are named <line>-<sha256>.<ext>).
FORMAT_EXTENSIONS = {
    "JPEG": "jpg",
    "PNG": "png",
    "GIF": "gif",
    "WEBP": "webp",
    "BMP": "bmp",
    "TIFF": "tif",
}


class ImportStopped(Exception):
    """The dataset left IMPORTING (cancelled) while the worker was importing it."""


class SourceError(Exception):
    """The source as a whole cannot be read (no shard found, unreadable table): the import
    fails with this reason."""


def image_limits() -> ImageLimits:
    return ImageLimits(
        max_bytes=settings.Q16_MAX_IMAGE_BYTES, max_pixels=settings.Q16_MAX_IMAGE_PIXELS
    )


def check_remote_url(url: str) -> str:
    """A remote source URL under one of Q16_IMPORT_URL_PREFIXES, or ValidationFailed (400)."""
    prefixes = [p for p in getattr(settings, "Q16_IMPORT_URL_PREFIXES", []) if p]
    if not prefixes:
        raise ValidationFailed(
            f"{url} is a remote source, and remote imports are off: add its prefix "
            "(e.g. s3://bucket/datasets/) to Q16_IMPORT_URL_PREFIXES."
        )
    if ".." in url.split("/") or not any(url.startswith(prefix) for prefix in prefixes):
        raise ValidationFailed(
            f"{url} is outside the allowed remote prefixes ({', '.join(prefixes)})."
        )
    return url


def still_importing(dataset_id: int) -> bool:
    """Beat the import's heartbeat; False once it was cancelled (one query for both)."""
    return bool(
        Dataset.objects.filter(pk=dataset_id, state=Dataset.State.IMPORTING).update(
            heartbeat_at=timezone.now()
        )
    )


def record_batch(dataset: Dataset, rows: list[Image], *, total_is_processed: bool = False) -> None:
    """Record a batch of probed files (rows an interrupted run already wrote are kept) and
    add them to the dataset's counts: an increment, so chunks on several workers add up.

    total_is_processed: sources whose size is known only once read (shards).
    """
    class_folders = bool((dataset.options or {}).get("class_folders"))
    for row in rows:
        row.dataset = dataset
        if class_folders and "/" in row.relative_path and not row.class_label:
            row.class_label = row.relative_path.split("/", 1)[0][:200]
    Image.objects.bulk_create(rows, ignore_conflicts=True)
    failed = sum(1 for row in rows if row.status == Image.Status.FAILED)
    counts = {"processed": F("processed") + len(rows), "failed": F("failed") + failed}
    if total_is_processed:
        counts["total"] = F("processed") + len(rows)
    Dataset.objects.filter(pk=dataset.pk).update(heartbeat_at=timezone.now(), **counts)


def refresh_import_counts(dataset: Dataset, *, total_is_processed: bool = False) -> None:
    """Count the dataset's images exactly (the increments can overcount a redelivered batch)."""
    images = Image.objects.filter(dataset=dataset)
    processed = images.count()
    counts = {"processed": processed, "failed": images.filter(status=Image.Status.FAILED).count()}
    if total_is_processed:
        counts["total"] = processed
    Dataset.objects.filter(pk=dataset.pk).update(**counts)


def dataset_files_root(dataset_pk: int) -> str:
    """Where a new import's own files go (extracted archives, URL downloads): MEDIA_ROOT/
    datasets/<pk> on local storage, the bucket's media/datasets/<pk> (an s3:// URL) with
    Q16_STORAGE=s3, so that a worker on another machine reads them through the bucket.

    The folder is emptied first: files left there under the same id (a database restored
    or recreated while the media stayed) belong to no dataset and must not be imported."""
    name = f"datasets/{dataset_pk}"
    url = storage_folder_url(MEDIA, name)
    if url is None:
        root = Path(settings.MEDIA_ROOT) / name
        shutil.rmtree(root, ignore_errors=True)
        return str(root)
    filesystem, path = fsspec.core.url_to_fs(url)
    if filesystem.exists(path):
        filesystem.rm(path, recursive=True)
    return url


def dataset_file_writer(dataset: Dataset) -> Callable[[str, bytes], None]:
    """Writes one of the dataset's own files under its root, whole (never half a file)."""
    if is_url(dataset.root_path):

        def write_stored(relative: str, data: bytes) -> None:
            stored_write(MEDIA, f"datasets/{dataset.pk}/{relative}", data)

        return write_stored
    root = Path(dataset.root_path)
    root.mkdir(parents=True, exist_ok=True)

    def write_local(relative: str, data: bytes) -> None:
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
        partial.write_bytes(data)
        os.replace(partial, target)

    return write_local


def download_image(
    index: int,
    url: str,
    problem: str | None,
    store: Callable[[str, bytes], None],
    fetcher: UrlFetcher,
    limits: ImageLimits,
    *,
    metadata: dict | None = None,
    sample_key: str = "",
) -> Image:
    """Fetch, validate and store one URL; a failure becomes a failed image with the reason."""
    failed_path = f"[url {index}] {url}"[:1024]
    extra = {"metadata": metadata or {}, "sample_key": sample_key[:512]}
    if problem is None:
        try:
            data = fetcher.fetch(url).data
            info = probe_image_bytes(data, limits=limits)
        except UrlFetchError as exc:
            problem = exc.reason
        except InvalidImageError as exc:
            problem = exc.reason
    if problem is not None:
        return Image(
            relative_path=failed_path,
            source_url=url[:2048],
            status=Image.Status.FAILED,
            error=problem[:500],
            **extra,
        )
    # A safe name from the list position, the content hash and the verified format,
    # never from the URL: <line>-<sha256>.<ext>. Written whole (a rename, or one put).
    relative = f"{index:07d}-{info.sha256}.{FORMAT_EXTENSIONS.get(info.format, 'img')}"
    store(relative, data)
    return Image(
        relative_path=relative,
        source_url=url[:2048],
        sha256=info.sha256,
        phash=info.phash,
        pdq=info.pdq,
        pdq_quality=info.pdq_quality,
        width=info.width,
        height=info.height,
        format=info.format,
        bytes=info.bytes,
        status=Image.Status.OK,
        **extra,
    )
