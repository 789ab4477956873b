"""Creating datasets and importing their files (server folder, uploaded archive, URL list)."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.files import File
from django.db import transaction
from django.utils import timezone

from curation.errors import StateConflict, ValidationFailed
from curation.models import Dataset, Image
from curation.services.archives import ArchiveError, ArchiveLimits, extract_archive
from curation.services.url_import import UrlFetcher, UrlFetchError, parse_url_list
from worker.engine.images import ImageLimits, InvalidImageError, probe_image, probe_image_bytes

logger = logging.getLogger(__name__)

IMPORT_BATCH = 256
URL_DOWNLOAD_WORKERS = 8
# File extension for each verified format (URL downloads are named <sha256>.<ext>).
FORMAT_EXTENSIONS = {
    "JPEG": "jpg",
    "PNG": "png",
    "GIF": "gif",
    "WEBP": "webp",
    "BMP": "bmp",
    "TIFF": "tif",
}
ProgressCallback = Callable[[int, int], None]


def _image_limits() -> ImageLimits:
    return ImageLimits(
        max_bytes=settings.Q16_MAX_IMAGE_BYTES, max_pixels=settings.Q16_MAX_IMAGE_PIXELS
    )


def _check_name_free(name: str) -> str:
    name = name.strip()
    if not name:
        raise ValidationFailed("A dataset needs a name.")
    if Dataset.objects.filter(name=name).exists():
        raise ValidationFailed(f"A dataset named {name!r} already exists.")
    return name


def _check_import_folder(folder: str) -> Path:
    path = Path(folder).expanduser()
    if not path.is_absolute():
        raise ValidationFailed("The folder must be an absolute path on the server.")
    path = path.resolve()
    if not path.is_dir():
        raise ValidationFailed(f"{folder} is not a folder on the server.")
    allowed_roots = [Path(root).resolve() for root in settings.Q16_IMPORT_ROOTS]
    if allowed_roots and not any(path.is_relative_to(root) for root in allowed_roots):
        raise ValidationFailed(f"{folder} is outside the folders allowed by Q16_IMPORT_ROOTS.")
    return path


def dataset_create_from_folder(
    *, name: str, folder: str, created_by: AbstractBaseUser | None = None, queue: bool = True
) -> Dataset:
    """Record a dataset whose images stay in a server folder; the import runs as a task."""
    path = _check_import_folder(folder)
    dataset = Dataset(
        name=_check_name_free(name),
        source_kind=Dataset.SourceKind.FOLDER,
        source=str(path),
        root_path=str(path),
        created_by=created_by,
    )
    dataset.full_clean()
    dataset.save()
    if queue:
        _queue_import(dataset)
    return dataset


def dataset_create_from_archive(
    *, name: str, archive: File, created_by: AbstractBaseUser | None = None, queue: bool = True
) -> Dataset:
    """Store an uploaded zip and record a dataset; extraction and import run as a task."""
    name = _check_name_free(name)
    archives_dir = Path(settings.MEDIA_ROOT) / "archives"
    archives_dir.mkdir(parents=True, exist_ok=True)
    stored = archives_dir / f"{uuid.uuid4().hex}.zip"
    with open(stored, "wb") as sink:
        for block in archive.chunks():
            sink.write(block)
    dataset = Dataset(
        name=name,
        source_kind=Dataset.SourceKind.ARCHIVE,
        source=str(stored),
        created_by=created_by,
    )
    dataset.full_clean(exclude=["root_path"])
    dataset.save()
    dataset.root_path = str(Path(settings.MEDIA_ROOT) / "datasets" / str(dataset.pk))
    dataset.save(update_fields=["root_path"])
    if queue:
        _queue_import(dataset)
    return dataset


def dataset_create_from_url_list(
    *, name: str, urls: str, created_by: AbstractBaseUser | None = None, queue: bool = True
) -> Dataset:
    """Record a dataset downloaded from a list of http(s) URLs (one per line).

    The list is stored under MEDIA_ROOT/url-lists/; the downloads run as the import task
    (see curation.services.url_import for the SSRF protections). Malformed or refused
    URLs are recorded as failed images at import time, like bad files.
    """
    name = _check_name_free(name)
    entries = parse_url_list(urls)
    if not entries:
        raise ValidationFailed("The URL list is empty.")
    max_urls = getattr(settings, "Q16_MAX_URLS", 100_000)
    if len(entries) > max_urls:
        raise ValidationFailed(f"The URL list has {len(entries)} URLs, more than {max_urls}.")
    lists_dir = Path(settings.MEDIA_ROOT) / "url-lists"
    lists_dir.mkdir(parents=True, exist_ok=True)
    stored = lists_dir / f"{uuid.uuid4().hex}.txt"
    stored.write_text("\n".join(url for url, _ in entries) + "\n", encoding="utf-8")
    dataset = Dataset(
        name=name, source_kind=Dataset.SourceKind.URLS, source=str(stored), created_by=created_by
    )
    dataset.full_clean(exclude=["root_path"])
    dataset.save()
    dataset.root_path = str(Path(settings.MEDIA_ROOT) / "datasets" / str(dataset.pk))
    dataset.save(update_fields=["root_path"])
    if queue:
        _queue_import(dataset)
    return dataset


def _queue_import(dataset: Dataset) -> None:
    from worker.tasks import import_dataset

    dataset_id = dataset.pk
    transaction.on_commit(lambda: import_dataset.delay(dataset_id))


def _iter_folder_files(root: Path) -> Iterator[tuple[str, str | None]]:
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


def _probe(root: Path, relative: str, limits: ImageLimits) -> Image:
    try:
        info = probe_image(root / relative, limits=limits)
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
        width=info.width,
        height=info.height,
        format=info.format,
        bytes=info.bytes,
        status=Image.Status.OK,
    )


def dataset_import(
    *,
    dataset_id: int,
    progress: ProgressCallback | None = None,
    url_fetcher: UrlFetcher | None = None,
) -> Dataset:
    """Validate, hash and record every file of a dataset. Safe to run twice.

    A finished import is left alone; an interrupted one (a killed worker) carries on
    and skips the files it already recorded. Bad files become failed images with a
    reason; only an unreadable source (missing folder, not a zip) fails the dataset.
    url_fetcher (URL lists only) defaults to the production address policy.
    """
    with transaction.atomic():
        dataset = Dataset.objects.select_for_update().get(pk=dataset_id)
        if dataset.state in (Dataset.State.READY, Dataset.State.FAILED):
            return dataset
        if dataset.state == Dataset.State.PENDING:
            dataset.state = Dataset.State.IMPORTING
            dataset.import_started_at = timezone.now()
            dataset.save(update_fields=["state", "import_started_at"])

    if dataset.source_kind == Dataset.SourceKind.URLS:
        return _import_url_list(dataset, progress=progress, fetcher=url_fetcher or _url_fetcher())

    try:
        candidates = _collect_candidates(dataset)
    except (ArchiveError, OSError) as exc:
        logger.warning("import of dataset %s failed: %s", dataset.pk, exc)
        dataset_fail(dataset_id=dataset.pk, reason=str(exc))
        dataset.refresh_from_db()
        return dataset

    Dataset.objects.filter(pk=dataset.pk).update(total=len(candidates))
    already = set(dataset.images.values_list("relative_path", flat=True))
    todo = [(path, problem) for path, problem in candidates if path not in already]
    root = Path(dataset.root_path)
    limits = _image_limits()
    workers = max(1, (os.cpu_count() or 2))

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for start in range(0, len(todo), IMPORT_BATCH):
            batch = todo[start : start + IMPORT_BATCH]
            clean = [path for path, problem in batch if problem is None]
            rows = list(pool.map(lambda rel: _probe(root, rel, limits), clean))
            rows += [
                Image(relative_path=path, status=Image.Status.FAILED, error=problem[:500])
                for path, problem in batch
                if problem is not None
            ]
            _record_batch(dataset, rows)
            if progress:
                progress(min(len(already) + start + len(batch), len(candidates)), len(candidates))

    _finish_import(dataset, what="files")
    return dataset


def _url_fetcher() -> UrlFetcher:
    from curation.services.url_import import FetchLimits

    return UrlFetcher(
        limits=FetchLimits(
            max_bytes=settings.Q16_MAX_IMAGE_BYTES,
            connect_timeout=getattr(settings, "Q16_URL_CONNECT_TIMEOUT", 5.0),
            total_timeout=getattr(settings, "Q16_URL_TOTAL_TIMEOUT", 30.0),
            max_redirects=getattr(settings, "Q16_URL_MAX_REDIRECTS", 5),
        )
    )


def _download(
    index: int, url: str, problem: str | None, root: Path, fetcher: UrlFetcher, limits: ImageLimits
) -> Image:
    """Fetch, validate and store one URL; a failure becomes a failed image with the reason."""
    failed_path = f"[url {index}] {url}"[:1024]
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
        width=info.width,
        height=info.height,
        format=info.format,
        bytes=info.bytes,
        status=Image.Status.OK,
    )


def _import_url_list(
    dataset: Dataset, *, progress: ProgressCallback | None, fetcher: UrlFetcher
) -> Dataset:
    try:
        text = Path(dataset.source).read_text(encoding="utf-8")
    except OSError as exc:
        dataset_fail(dataset_id=dataset.pk, reason=f"URL list unreadable: {exc}")
        dataset.refresh_from_db()
        return dataset
    entries = parse_url_list(text)
    Dataset.objects.filter(pk=dataset.pk).update(total=len(entries))
    already = set(dataset.images.values_list("source_url", flat=True))
    todo = [
        (index, url, problem) for index, (url, problem) in enumerate(entries) if url not in already
    ]
    root = Path(dataset.root_path)
    root.mkdir(parents=True, exist_ok=True)
    limits = _image_limits()
    with ThreadPoolExecutor(max_workers=URL_DOWNLOAD_WORKERS) as pool:
        for start in range(0, len(todo), IMPORT_BATCH):
            batch = todo[start : start + IMPORT_BATCH]
            rows = list(
                pool.map(lambda item: _download(*item, root, fetcher, limits), batch)  # type: ignore[misc]
            )
            _record_batch(dataset, rows)
            if progress:
                progress(min(len(already) + start + len(batch), len(entries)), len(entries))
    _finish_import(dataset, what="URLs")
    return dataset


def _collect_candidates(dataset: Dataset) -> list[tuple[str, str | None]]:
    root = Path(dataset.root_path)
    rejected: list[tuple[str, str | None]] = []
    if dataset.source_kind == Dataset.SourceKind.ARCHIVE:
        limits = ArchiveLimits(
            max_total_bytes=settings.Q16_MAX_ARCHIVE_BYTES,
            max_ratio=settings.Q16_MAX_ARCHIVE_RATIO,
            max_entries=settings.Q16_MAX_ARCHIVE_ENTRIES,
            max_entry_bytes=settings.Q16_MAX_IMAGE_BYTES,
        )
        result = extract_archive(dataset.source, root, limits=limits)
        # Refused entries are recorded under a marker so they never collide with real files.
        rejected = [(f"[refused] {name}"[:1024], reason) for name, reason in result.rejected]
    elif not root.is_dir():
        raise OSError(f"dataset folder {root} does not exist or is not a folder")
    return list(_iter_folder_files(root)) + rejected


def _record_batch(dataset: Dataset, rows: list[Image]) -> None:
    """Record a batch of probed files; rows an interrupted run already wrote are kept."""
    for row in rows:
        row.dataset = dataset
    Image.objects.bulk_create(rows, ignore_conflicts=True)
    _refresh_import_counts(dataset)


def _finish_import(dataset: Dataset, *, what: str) -> None:
    _refresh_import_counts(dataset)
    Dataset.objects.filter(pk=dataset.pk).update(
        state=Dataset.State.READY, import_finished_at=timezone.now()
    )
    dataset.refresh_from_db()
    logger.info(
        "imported dataset %s: %s %s, %s failed", dataset.pk, dataset.total, what, dataset.failed
    )


def _refresh_import_counts(dataset: Dataset) -> None:
    images = Image.objects.filter(dataset=dataset)
    Dataset.objects.filter(pk=dataset.pk).update(
        processed=images.count(), failed=images.filter(status=Image.Status.FAILED).count()
    )


def dataset_delete(*, dataset: Dataset) -> None:
    if dataset.state == Dataset.State.IMPORTING:
        raise StateConflict("The dataset is still importing.")
    dataset.delete()


def dataset_fail(*, dataset_id: int, reason: str) -> None:
    """Mark an import failed for good, keeping the images it had already recorded."""
    Dataset.objects.filter(pk=dataset_id).exclude(state=Dataset.State.READY).update(
        state=Dataset.State.FAILED, error=reason[:5000], import_finished_at=timezone.now()
    )
