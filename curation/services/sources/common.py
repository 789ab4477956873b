"""What every importer shares: batches, counts, cancellation checks, the remote-URL policy
and the download of one URL into the dataset folder."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from curation.errors import ValidationFailed
from curation.models import Dataset, Image
from curation.services import banks
from curation.services.url_import import UrlFetcher, UrlFetchError
from worker.engine.images import ImageLimits, InvalidImageError, probe_image_bytes

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


def record_batch(dataset: Dataset, rows: list[Image]) -> None:
    """Record a batch of probed files; rows an interrupted run already wrote are kept."""
    class_folders = bool((dataset.options or {}).get("class_folders"))
    for row in rows:
        row.dataset = dataset
        if class_folders and "/" in row.relative_path and not row.class_label:
            row.class_label = row.relative_path.split("/", 1)[0][:200]
    Image.objects.bulk_create(rows, ignore_conflicts=True)
    refresh_import_counts(dataset)


def refresh_import_counts(dataset: Dataset, *, total_is_processed: bool = False) -> None:
    images = Image.objects.filter(dataset=dataset)
    processed = images.count()
    counts = {"processed": processed, "failed": images.filter(status=Image.Status.FAILED).count()}
    if total_is_processed:  # sources whose size is known only once read (shards)
        counts["total"] = processed
    Dataset.objects.filter(pk=dataset.pk).update(**counts)


def finish_import(dataset: Dataset, *, what: str) -> None:
    refresh_import_counts(dataset)
    # Only from IMPORTING: a cancellation after the last batch stays a cancellation.
    Dataset.objects.filter(pk=dataset.pk, state=Dataset.State.IMPORTING).update(
        state=Dataset.State.READY, import_finished_at=timezone.now()
    )
    dataset.refresh_from_db()
    logger.info(
        "imported dataset %s: %s %s, %s failed", dataset.pk, dataset.total, what, dataset.failed
    )
    banks.bank_match_dataset(dataset=dataset)  # known-bad images are marked before any review


def download_image(
    index: int,
    url: str,
    problem: str | None,
    root: Path,
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
    # never from the URL: <line>-<sha256>.<ext>. Written atomically (rename).
    relative = f"{index:07d}-{info.sha256}.{FORMAT_EXTENSIONS.get(info.format, 'img')}"
    partial = root / f".{relative}.{uuid.uuid4().hex}.part"
    partial.write_bytes(data)
    os.replace(partial, root / relative)
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
