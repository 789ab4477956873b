"""Creating datasets and importing their files (server folder, uploaded archive, URL list).

The import task lists the source and hands its files to workers in chunks
(curation.services.indexing). An import can be cancelled and resumed
(dataset_import_cancel, dataset_import_resume): the workers check the dataset's state
between batches (and every WALK_CHECK_EVERY files while a folder is listed) and stop; a
resume queues the chunks not done, which skip the files they recorded.

Uploaded archives are deleted when their import fails or is cancelled (they can be as
large as Q16_MAX_ARCHIVE_BYTES). The extracted files are kept when the extraction had
finished, so a resume walks the extracted folder; a partial extraction is deleted with the
archive, and that dataset cannot be resumed (upload the archive again).
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import User
from django.core.files import File
from django.db import transaction
from django.utils import timezone

from curation import dispatch
from curation.errors import StateConflict, ValidationFailed
from curation.models import Dataset
from curation.services import indexing
from curation.services.dataset_audit import audit_change, audit_delete, audit_import, audit_requeue
from curation.services.sources.common import FORMAT_EXTENSIONS as FORMAT_EXTENSIONS
from curation.services.sources.common import ImportStopped, SourceError, dataset_files_root
from curation.services.sources.common import ProgressCallback as ProgressCallback
from curation.services.sources.files import discard_upload, extracted_earlier
from curation.services.url_import import UrlFetcher, parse_url_list
from curation.storage import (
    MEDIA,
    local_path,
    storage,
    stored_reference,
    stored_reference_exists,
    stored_write,
)

logger = logging.getLogger(__name__)


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
    stored, stored_bytes = _store_upload(archive, f"archives/{uuid.uuid4().hex}.zip")
    dataset = Dataset(
        name=name,
        source_kind=Dataset.SourceKind.ARCHIVE,
        source=stored,
        # The name the admin knows it by (no folders: browsers may send a path).
        source_name=Path(archive.name or "").name[:255],
        created_by=created_by,
    )
    dataset.full_clean(exclude=["root_path"])
    with transaction.atomic():
        dataset.save()
        dataset.root_path = dataset_files_root(dataset.pk)
        dataset.save(update_fields=["root_path"])
        audit_import(
            dataset, actor=created_by, archive=Path(archive.name or "").name, bytes=stored_bytes
        )
        if queue:
            _queue_import(dataset)
    return dataset


def _store_upload(upload: File, name: str) -> tuple[str, int]:
    """Write an upload to the media storage, streamed; its reference and size. Local: the
    file under MEDIA_ROOT as before; S3: an object a worker on any machine can read."""
    path = local_path(MEDIA, name)
    if path is None:
        saved = storage(MEDIA).save(name, upload)
        return stored_reference(MEDIA, saved), int(upload.size or 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with open(path, "wb") as sink:
        for block in upload.chunks():
            sink.write(block)
            written += len(block)
    return str(path), written


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
    # Through the storage backend: a worker on another machine reads it from the bucket.
    stored = stored_write(
        MEDIA,
        f"url-lists/{uuid.uuid4().hex}.txt",
        ("\n".join(url for url, _ in entries) + "\n").encode("utf-8"),
    )
    dataset = Dataset(
        name=name, source_kind=Dataset.SourceKind.URLS, source=stored, created_by=created_by
    )
    dataset.full_clean(exclude=["root_path"])
    with transaction.atomic():
        dataset.save()
        dataset.root_path = dataset_files_root(dataset.pk)
        dataset.save(update_fields=["root_path"])
        audit_import(dataset, actor=created_by, urls=len(entries))
        if queue:
            _queue_import(dataset)
    return dataset


def _queue_import(dataset: Dataset) -> None:
    Dataset.objects.filter(pk=dataset.pk).update(heartbeat_at=timezone.now())
    dispatch.send_on_commit(dispatch.IMPORT_DATASET, [dataset.pk])


def dataset_import(
    *,
    dataset_id: int,
    progress: ProgressCallback | None = None,
    url_fetcher: UrlFetcher | None = None,
    queue_chunks: bool = False,
) -> Dataset:
    """List a dataset's candidates, record them as import chunks and index them. Safe to
    run twice.

    queue_chunks (the import task): the chunks go to the workers as index_chunk tasks and
    the last one to finish completes the dataset. Without it (the command, tests) they are
    indexed here, one after another, and the dataset is finished on return. A finished
    import is left alone; an interrupted one carries on with the chunks not done, and a
    chunk skips the files it already recorded. Bad files become failed images with a
    reason; only an unreadable source (missing folder, not a zip) fails the dataset.
    url_fetcher (URL lists and tables, in this process only) defaults to the production
    address policy.
    """
    with transaction.atomic():
        dataset = Dataset.objects.select_for_update().get(pk=dataset_id)
        if dataset.state != Dataset.State.PENDING and dataset.state != Dataset.State.IMPORTING:
            return dataset  # finished, failed or cancelled: a late or second delivery
        if dataset.state == Dataset.State.PENDING:
            dataset.state = Dataset.State.IMPORTING
            dataset.import_started_at = dataset.import_started_at or timezone.now()
            dataset.heartbeat_at = timezone.now()
            dataset.save(update_fields=["state", "import_started_at", "heartbeat_at"])

    try:
        chunk_ids = indexing.import_plan(dataset=dataset, queue_chunks=queue_chunks)
        if not queue_chunks:

            def after_batch() -> None:
                if progress:
                    counts = Dataset.objects.values_list("processed", "total").get(pk=dataset_id)
                    progress(min(counts), counts[1])

            indexing.import_run_here(
                dataset=dataset,
                chunk_ids=chunk_ids,
                url_fetcher=url_fetcher,
                after_batch=after_batch,
            )
    except SourceError as exc:
        logger.warning("import of dataset %s failed: %s", dataset.pk, exc)
        dataset_fail(dataset_id=dataset.pk, reason=str(exc))
    except ImportStopped:
        logger.info("import of dataset %s stopped: cancelled", dataset.pk)
        # Only a finished extraction gets this far, so its files stay for a resume.
        discard_upload(dataset, keep_extracted=True)
    dataset.refresh_from_db()
    return dataset


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
        # Chunks exist once the source was listed, so once an extraction had finished.
        keep = dataset.images.exists() or dataset.import_chunks.exists()
        discard_upload(dataset, keep_extracted=keep)


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
    keep = not was_pending or locked.images.exists() or extracted_earlier(locked)
    discard_upload(locked, keep_extracted=keep)
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
            stored_reference_exists(locked.source)
            or Path(locked.root_path).is_dir()
            or locked.import_chunks.exists()  # listed: the extraction had finished
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
