"""Stored files through Django's named storages (config/storage_settings.py configures them).

Code names a storage (MEDIA, THUMBNAILS, EXPORTS, EMBEDDINGS) and a file name in it, never a
disk path, so a worker on another machine writes to the bucket and the web server serves from
it. A model field that keeps where a file is (Export.file_path) holds a *reference*: the
absolute path for local storage (what it always held), `storage:<alias>/<name>` otherwise;
stored_open() opens either.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, Storage, storages
from django.utils.functional import cached_property

MEDIA = "media"
THUMBNAILS = "thumbnails"
EXPORTS = "exports"
EMBEDDINGS = "embeddings"
STORAGE_NAMES = (MEDIA, THUMBNAILS, EXPORTS, EMBEDDINGS)
REFERENCE_SCHEME = "storage:"


class MediaFolderStorage(FileSystemStorage):
    """A folder under MEDIA_ROOT, read when used: tests (and `make run`) change MEDIA_ROOT."""

    def __init__(self, *, folder: str = "", **kwargs: object) -> None:
        self.folder = folder
        super().__init__(**kwargs)  # type: ignore[arg-type]

    @cached_property
    def base_location(self) -> str:
        return os.path.join(settings.MEDIA_ROOT, self.folder)


def storage(alias: str) -> Storage:
    return storages[alias]


def local_path(alias: str, name: str) -> Path | None:
    """The file's path on this machine's disk, or None for a remote storage (S3)."""
    try:
        return Path(storage(alias).path(name))
    except NotImplementedError:
        return None


def stored_reference(alias: str, name: str) -> str:
    """What a model keeps for a stored file: a local path, or storage:<alias>/<name>."""
    path = local_path(alias, name)
    return str(path) if path is not None else f"{REFERENCE_SCHEME}{alias}/{name}"


def stored_open(reference: str) -> IO[bytes]:
    """Open a stored_reference() for reading (binary); OSError when it is gone."""
    if not reference.startswith(REFERENCE_SCHEME):
        return open(reference, "rb")  # noqa: SIM115 - the caller closes it
    alias, _, name = reference.removeprefix(REFERENCE_SCHEME).partition("/")
    if alias not in STORAGE_NAMES or not name:
        raise FileNotFoundError(f"not a stored file: {reference}")
    try:
        return storage(alias).open(name, "rb")
    except FileNotFoundError:
        raise
    except Exception as exc:  # a backend's own error (botocore's ClientError): gone or unreachable
        raise FileNotFoundError(f"stored file unavailable: {reference} ({exc})") from exc


def stored_write(alias: str, name: str, data: bytes) -> str:
    """Write a whole file under exactly `name` (replacing it); returns its reference.

    Local files are written under a temporary name and renamed into place, so a reader never
    sees half a file; a remote object appears whole on its single put.
    """
    path = local_path(alias, name)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.part")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        return str(path)
    target = storage(alias)
    if target.exists(name):
        target.delete(name)
    saved = target.save(name, ContentFile(data))
    return stored_reference(alias, saved)


def storage_folder_url(alias: str, name: str) -> str | None:
    """The fsspec URL (s3://bucket/location/name) of a folder on a remote storage, which the
    engine reads by range or whole; None for local storage (use local_path)."""
    if local_path(alias, name) is not None:
        return None
    backend = storage(alias)
    parts = (getattr(backend, "bucket_name", ""), getattr(backend, "location", ""), name)
    return "s3://" + "/".join(part.strip("/") for part in parts if part and part.strip("/"))


def stored_delete(reference: str) -> None:
    """Delete a stored_reference() (a local file or an object); gone already is fine."""
    if not reference.startswith(REFERENCE_SCHEME):
        Path(reference).unlink(missing_ok=True)
        return
    alias, _, name = reference.removeprefix(REFERENCE_SCHEME).partition("/")
    if alias in STORAGE_NAMES and name:
        storage(alias).delete(name)


def stored_reference_exists(reference: str) -> bool:
    if not reference.startswith(REFERENCE_SCHEME):
        return Path(reference).exists()
    alias, _, name = reference.removeprefix(REFERENCE_SCHEME).partition("/")
    return alias in STORAGE_NAMES and bool(name) and stored_exists(alias, name)


def stored_exists(alias: str, name: str) -> bool:
    return bool(storage(alias).exists(name))


def storages_reset() -> None:
    """Forget the storages built so far (tests that change STORAGES outside override_settings;
    override_settings(STORAGES=...) does this itself through Django's setting_changed)."""
    from django.core.files.storage import default_storage
    from django.utils.functional import empty

    handler: Any = storages  # Django's private caches, as its own setting_changed handler
    handler._storages = {}
    handler._backends = None
    handler.__dict__.pop("backends", None)
    lazy_default: Any = default_storage
    lazy_default._wrapped = empty
