"""Creating datasets and importing their files (server folder, uploaded archive, URL list).

An import can be cancelled and resumed (dataset_import_cancel, dataset_import_resume):
the worker checks the dataset's state between batches (and every WALK_CHECK_EVERY files
while it lists a folder) and stops; a resume carries on, skipping the recorded files.

Uploaded archives are deleted when their import fails or is cancelled (they can be as
large as Q16_MAX_ARCHIVE_BYTES). The extracted files are kept when the extraction had
finished, so a resume walks the extracted folder; a partial extraction is deleted with the
archive, and that dataset cannot be resumed (upload the archive again).
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import User
from django.core.files import File
from django.db import transaction
from django.utils import timezone

from curation import dispatch
from curation.errors import StateConflict, ValidationFailed
from curation.models import Dataset, Image
from curation.services.archives import ArchiveError, ArchiveLimits, extract_archive
from curation.services.dataset_audit import audit_change, audit_delete, audit_import, audit_requeue
from curation.services.sources.common import FORMAT_EXTENSIONS as FORMAT_EXTENSIONS
from curation.services.sources.common import IMPORT_BATCH, ImportStopped, SourceError
from curation.services.sources.common import ProgressCallback as ProgressCallback
from curation.services.sources.common import download_image as _download
from curation.services.sources.common import finish_import as _finish_import
from curation.services.sources.common import record_batch as _record_batch
from curation.services.sources.common import still_importing as _still_importing
from curation.services.sources.img2dataset import import_img2dataset
from curation.services.sources.tables import import_table
from curation.services.sources.webdataset import import_webdataset
from curation.services.url_import import UrlFetcher, parse_url_list
from worker.engine.images import ImageLimits, InvalidImageError, probe_image

logger = logging.getLogger(__name__)

# While listing a folder, look for a cancellation (and beat the heartbeat) this often.
WALK_CHECK_EVERY = 2000
URL_DOWNLOAD_WORKERS = 8


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
    try:
        path = path.resolve()
        is_dir = path.is_dir()
    except (OSError, ValueError) as exc:  # ENAMETOOLONG, ELOOP, EACCES, a NUL byte...
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ValidationFailed(f"The folder path cannot be used: {reason}.") from exc
    if not is_dir:
        raise ValidationFailed(f"{folder} is not a folder on the server.")
    # Both sides resolved: a symlink (or `..`) leading out of an import folder is outside it.
    allowed_roots = [Path(root).expanduser().resolve() for root in settings.Q16_IMPORT_ROOTS]
    where = ", ".join(str(root) for root in allowed_roots) or "none configured"
    if not any(path.is_relative_to(root) for root in allowed_roots):
        raise ValidationFailed(
            f"{folder} is outside the import folders ({where}). Put the dataset there, "
            "or add its folder to Q16_IMPORT_ROOTS."
        )
    if _never_importable(path):
        raise ValidationFailed(
            f"{folder} can never be imported, whatever Q16_IMPORT_ROOTS says: it is (or holds) "
            f"a system folder or Q16's own data (database, media, secret key). Put the dataset "
            f"in an import folder ({where})."
        )
    return path


# Never a dataset: kernel and device files, and their parent "/".
SYSTEM_FOLDERS = (Path("/proc"), Path("/sys"), Path("/dev"))


def _never_importable(path: Path) -> bool:
    """A system folder, or Q16's data directory or media root, or a folder holding one of them
    (the data directory's imports folder excepted), even inside Q16_IMPORT_ROOTS."""
    if any(path.is_relative_to(system) or system.is_relative_to(path) for system in SYSTEM_FOLDERS):
        return True
    data_dir = Path(settings.DATA_DIR).resolve()
    if path.is_relative_to(data_dir / "imports"):
        return False
    private = (data_dir, Path(settings.MEDIA_ROOT).resolve())
    return any(path.is_relative_to(folder) or folder.is_relative_to(path) for folder in private)


def dataset_create_from_folder(
    *,
    name: str,
    folder: str,
    created_by: User | None = None,
    queue: bool = True,
    class_folders: bool = False,
) -> Dataset:
    """Record a dataset whose images stay in a server folder; the import runs as a task.
    class_folders (ImageFolder): each first-level folder's name is its images' class label."""
    path = _check_import_folder(folder)
    dataset = Dataset(
        name=_check_name_free(name),
        source_kind=Dataset.SourceKind.FOLDER,
        source=str(path),
        root_path=str(path),
        created_by=created_by,
        options={"class_folders": True} if class_folders else {},
    )
    dataset.full_clean()
    with transaction.atomic():
        dataset.save()
        audit_import(dataset, actor=created_by)
        if queue:
            _queue_import(dataset)
    return dataset


def dataset_create_from_archive(
    *, name: str, archive: File, created_by: User | None = None, queue: bool = True
) -> Dataset:
    """Store an uploaded zip and record a dataset; extraction and import run as a task."""
    name = _check_name_free(name)
    archives_dir = Path(settings.MEDIA_ROOT) / "archives"
    archives_dir.mkdir(parents=True, exist_ok=True)
    stored = archives_dir / f"{uuid.uuid4().hex}.zip"
    stored_bytes = 0
    with open(stored, "wb") as sink:
        for block in archive.chunks():
            sink.write(block)
            stored_bytes += len(block)
    dataset = Dataset(
        name=name,
        source_kind=Dataset.SourceKind.ARCHIVE,
        source=str(stored),
        # The name the admin knows it by (no folders: browsers may send a path).
        source_name=Path(archive.name or "").name[:255],
        created_by=created_by,
    )
    dataset.full_clean(exclude=["root_path"])
    with transaction.atomic():
        dataset.save()
        dataset.root_path = str(Path(settings.MEDIA_ROOT) / "datasets" / str(dataset.pk))
        dataset.save(update_fields=["root_path"])
        audit_import(
            dataset, actor=created_by, archive=Path(archive.name or "").name, bytes=stored_bytes
        )
        if queue:
            _queue_import(dataset)
    return dataset


def dataset_create_from_url_list(
    *, name: str, urls: str, created_by: User | None = None, queue: bool = True
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
    with transaction.atomic():
        dataset.save()
        dataset.root_path = str(Path(settings.MEDIA_ROOT) / "datasets" / str(dataset.pk))
        dataset.save(update_fields=["root_path"])
        audit_import(dataset, actor=created_by, urls=len(entries))
        if queue:
            _queue_import(dataset)
    return dataset


def _queue_import(dataset: Dataset) -> None:
    Dataset.objects.filter(pk=dataset.pk).update(heartbeat_at=timezone.now())
    dispatch.send_on_commit(dispatch.IMPORT_DATASET, [dataset.pk])


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
        pdq=info.pdq,
        pdq_quality=info.pdq_quality,
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
        if dataset.state != Dataset.State.PENDING and dataset.state != Dataset.State.IMPORTING:
            return dataset  # finished, failed or cancelled: a late or second delivery
        if dataset.state == Dataset.State.PENDING:
            dataset.state = Dataset.State.IMPORTING
            dataset.import_started_at = timezone.now()
            dataset.heartbeat_at = dataset.import_started_at
            dataset.save(update_fields=["state", "import_started_at", "heartbeat_at"])

    try:
        if dataset.source_kind == Dataset.SourceKind.URLS:
            return _import_url_list(
                dataset, progress=progress, fetcher=url_fetcher or _url_fetcher()
            )
        if dataset.source_kind == Dataset.SourceKind.TABLE:
            return import_table(dataset, progress=progress, fetcher=url_fetcher or _url_fetcher())
        if dataset.source_kind == Dataset.SourceKind.WEBDATASET:
            return import_webdataset(dataset, progress=progress)
        if dataset.source_kind == Dataset.SourceKind.IMG2DATASET:
            return import_img2dataset(dataset, progress=progress)
        return _import_files(dataset, progress=progress)
    except SourceError as exc:
        dataset_fail(dataset_id=dataset.pk, reason=str(exc))
        dataset.refresh_from_db()
        return dataset
    except ImportStopped:
        logger.info("import of dataset %s stopped: cancelled", dataset.pk)
        # Only a finished extraction gets this far, so its files stay for a resume.
        _discard_upload(dataset, keep_extracted=True)
        dataset.refresh_from_db()
        return dataset


def _import_files(dataset: Dataset, *, progress: ProgressCallback | None) -> Dataset:
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
            if not _still_importing(dataset.pk):
                raise ImportStopped
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
            if not _still_importing(dataset.pk):
                raise ImportStopped
            batch = todo[start : start + IMPORT_BATCH]
            rows = list(
                pool.map(
                    lambda item: _download(item[0], item[1], item[2], root, fetcher, limits), batch
                )
            )
            _record_batch(dataset, rows)
            if progress:
                progress(min(len(already) + start + len(batch), len(entries)), len(entries))
    _finish_import(dataset, what="URLs")
    return dataset


def _collect_candidates(dataset: Dataset) -> list[tuple[str, str | None]]:
    root = Path(dataset.root_path)
    rejected: list[tuple[str, str | None]] = []
    if dataset.source_kind == Dataset.SourceKind.ARCHIVE and _extracted_earlier(dataset):
        pass  # a resume after the archive was deleted: walk what it extracted
    elif dataset.source_kind == Dataset.SourceKind.ARCHIVE:
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
    candidates = []
    # A quarter of a million files take minutes to list: look for a cancellation meanwhile.
    for count, candidate in enumerate(_iter_folder_files(root), start=1):
        if count % WALK_CHECK_EVERY == 0 and not _still_importing(dataset.pk):
            raise ImportStopped
        candidates.append(candidate)
    return candidates + rejected


def _extracted_earlier(dataset: Dataset) -> bool:
    """The uploaded archive is gone (deleted when the import stopped) but its files are not."""
    return not Path(dataset.source).exists() and Path(dataset.root_path).is_dir()


def dataset_delete(*, dataset: Dataset, actor: User | None = None) -> None:
    if dataset.state == Dataset.State.IMPORTING:
        raise StateConflict("The dataset is still importing.")
    with transaction.atomic():
        audit_delete(dataset, actor=actor)  # first: the id is gone after the delete
        dataset.delete()


def dataset_fail(*, dataset_id: int, reason: str) -> None:
    """Mark an import failed for good, keeping the images it had already recorded.

    The uploaded archive is deleted; its extracted files stay only when the import had
    recorded some (the extraction finished), so that a resume can carry on.
    """
    Dataset.objects.filter(pk=dataset_id).exclude(
        state__in=[Dataset.State.READY, Dataset.State.CANCELLED]
    ).update(state=Dataset.State.FAILED, error=reason[:5000], import_finished_at=timezone.now())
    dataset = Dataset.objects.filter(pk=dataset_id).first()
    if dataset is not None and dataset.state == Dataset.State.FAILED:
        _discard_upload(dataset, keep_extracted=dataset.images.exists())


def dataset_import_cancel(*, dataset: Dataset, actor: User | None = None) -> Dataset:
    """Stop a pending or running import; cancelling a cancelled import changes nothing.

    A worker importing it stops before its next batch. The images recorded so far are kept.
    """
    with transaction.atomic():
        locked = Dataset.objects.select_for_update().get(pk=dataset.pk)
        if locked.state == Dataset.State.CANCELLED:
            return locked
        if locked.state not in (Dataset.State.PENDING, Dataset.State.IMPORTING):
            raise StateConflict(
                f"The import of “{locked.name}” has already {_finished_word(locked.state)}; "
                "only a pending or running import can be cancelled."
            )
        was_pending = locked.state == Dataset.State.PENDING
        before = {"state": locked.state}
        locked.state = Dataset.State.CANCELLED
        locked.error = "Cancelled by an admin."
        locked.import_finished_at = timezone.now()
        locked.save(update_fields=["state", "error", "import_finished_at"])
        audit_change(locked, action="dataset.import_cancel", actor=actor, before=before)
    # Pending: no worker has it, everything can go now. Importing: the worker may still be
    # extracting; it keeps the finished extraction when it notices (deleting the open zip
    # is safe on POSIX).
    keep = not was_pending or locked.images.exists() or _extracted_earlier(locked)
    _discard_upload(locked, keep_extracted=keep)
    logger.info("import of dataset %s cancelled at %s files", locked.pk, locked.processed)
    return locked


def dataset_import_resume(*, dataset: Dataset, actor: User | None = None) -> Dataset:
    """Queue a cancelled or failed import again; it skips the files already recorded."""
    with transaction.atomic():
        locked = Dataset.objects.select_for_update().get(pk=dataset.pk)
        if locked.state not in (Dataset.State.CANCELLED, Dataset.State.FAILED):
            raise StateConflict(
                f"The import of “{locked.name}” is {locked.get_state_display().lower()}; only a "
                "cancelled or failed import can be resumed."
            )
        if locked.source_kind == Dataset.SourceKind.ARCHIVE and not (
            Path(locked.source).exists() or Path(locked.root_path).is_dir()
        ):
            raise StateConflict(
                "The uploaded archive was deleted when its import stopped before the "
                "extraction finished: upload it again as a new dataset."
            )
        before = {"state": locked.state, "error": locked.error}
        locked.state = Dataset.State.PENDING
        locked.error = ""
        locked.import_finished_at = None
        locked.save(update_fields=["state", "error", "import_finished_at"])
        audit_change(locked, action="dataset.import_resume", actor=actor, before=before)
        _queue_import(locked)
    locked.refresh_from_db()
    return locked


def dataset_import_requeue(*, dataset: Dataset) -> None:
    """Send a pending or importing dataset's import task again (recovery); safe to repeat."""
    with transaction.atomic():
        _queue_import(dataset)
        audit_requeue(dataset)


def _finished_word(state: str) -> str:
    words: dict[str, str] = {Dataset.State.READY: "finished", Dataset.State.FAILED: "failed"}
    return words.get(state, state)


def _discard_upload(dataset: Dataset, *, keep_extracted: bool) -> None:
    """Delete a stopped archive import's uploaded zip, and its extraction unless kept."""
    if dataset.source_kind != Dataset.SourceKind.ARCHIVE:
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
