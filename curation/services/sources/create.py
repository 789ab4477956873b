"""Recording datasets from the newer sources (WebDataset shards, URL tables, img2dataset
folders) and re-importing a source into its dataset; the imports run as the import task."""

from __future__ import annotations

import uuid
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import User
from django.core.files import File
from django.db import transaction

from curation.errors import StateConflict, ValidationFailed
from curation.models import Dataset
from curation.services.dataset_audit import audit_change, audit_import
from curation.services.datasets import _check_import_folder, _check_name_free, _queue_import
from curation.services.sources.common import check_remote_url, dataset_files_root
from curation.services.sources.img2dataset import folder_contents
from curation.services.sources.tables import (
    DEFAULT_URL_COLUMN,
    TableError,
    parse_table,
    table_format_for,
)
from curation.services.sources.webdataset import expand_shards
from curation.storage import MEDIA, stored_write
from worker.engine.locators import is_url


def checked_shards(spec: str) -> list[str]:
    """The shards of a spec, each allowed: local files inside Q16_IMPORT_ROOTS (resolved),
    remote URLs under Q16_IMPORT_URL_PREFIXES."""
    shards = expand_shards(spec)
    if not shards:
        raise ValidationFailed("Give at least one WebDataset shard (a path, URL or pattern).")
    checked: list[str] = []
    folders: dict[Path, Path] = {}
    for shard in shards:
        if is_url(shard):
            checked.append(check_remote_url(shard))
            continue
        path = Path(shard)
        if not path.is_absolute():
            raise ValidationFailed(f"{shard}: a local shard must be an absolute path.")
        try:
            resolved = path.resolve()
        except (OSError, ValueError) as exc:
            raise ValidationFailed(f"{shard}: the path cannot be used.") from exc
        if resolved.parent not in folders:
            folders[resolved.parent] = _check_import_folder(str(resolved.parent))
        if not resolved.is_file():
            raise ValidationFailed(f"{shard} is not a file on the server.")
        checked.append(str(resolved))
    return checked


def _record(dataset: Dataset, *, created_by: User | None, queue: bool, **audit: object) -> Dataset:
    dataset.full_clean(exclude=["root_path"])
    with transaction.atomic():
        dataset.save()
        if not dataset.root_path:
            dataset.root_path = dataset_files_root(dataset.pk)
            dataset.save(update_fields=["root_path"])
        audit_import(dataset, actor=created_by, **audit)
        if queue:
            _queue_import(dataset)
    return dataset


def dataset_create_from_webdataset(
    *, name: str, shards: str, created_by: User | None = None, queue: bool = True
) -> Dataset:
    """Record a dataset read from WebDataset shards (a path, URL, list or brace pattern)."""
    name = _check_name_free(name)
    checked = checked_shards(shards)
    dataset = Dataset(
        name=name,
        source_kind=Dataset.SourceKind.WEBDATASET,
        source=shards.strip()[:1024],
        options={"shards": checked},
        created_by=created_by,
    )
    return _record(dataset, created_by=created_by, queue=queue, shards=len(checked))


def dataset_create_from_table(
    *,
    name: str,
    table: File,
    url_column: str = DEFAULT_URL_COLUMN,
    table_format: str = "",
    created_by: User | None = None,
    queue: bool = True,
) -> Dataset:
    """Store an uploaded URL table (CSV, TSV, JSONL, Parquet) and record its dataset; the
    table is read now, so a missing URL column or an unreadable file is refused at once."""
    name = _check_name_free(name)
    url_column = (url_column or DEFAULT_URL_COLUMN).strip()
    upload_name = Path(table.name or "").name
    data = b"".join(table.chunks())
    try:
        table_format = table_format_for(upload_name, table_format)
        rows = parse_table(data, table_format=table_format, url_column=url_column)
    except TableError as exc:
        raise ValidationFailed(f"The URL table cannot be imported: {exc}.") from exc
    max_urls = getattr(settings, "Q16_MAX_URLS", 100_000)
    if len(rows) > max_urls:
        raise ValidationFailed(f"The URL table has {len(rows)} rows, more than {max_urls}.")
    # Through the storage backend: a worker on another machine reads it from the bucket.
    stored = stored_write(MEDIA, f"url-tables/{uuid.uuid4().hex}.{table_format}", data)
    dataset = Dataset(
        name=name,
        source_kind=Dataset.SourceKind.TABLE,
        source=stored,
        source_name=upload_name[:255],
        options={"url_column": url_column, "table_format": table_format},
        created_by=created_by,
    )
    return _record(dataset, created_by=created_by, queue=queue, rows=len(rows))


def dataset_create_from_img2dataset(
    *, name: str, folder: str, created_by: User | None = None, queue: bool = True
) -> Dataset:
    """Record a dataset from an img2dataset output folder (shards + parquet) on the server."""
    name = _check_name_free(name)
    path = _check_import_folder(folder)
    shards, tables = folder_contents(path)
    if not shards and not tables:
        raise ValidationFailed(f"{folder} holds no img2dataset shards (.tar) or .parquet files.")
    dataset = Dataset(
        name=name,
        source_kind=Dataset.SourceKind.IMG2DATASET,
        source=str(path),
        root_path=str(path),
        created_by=created_by,
    )
    return _record(dataset, created_by=created_by, queue=queue, shards=len(shards))


def dataset_reimport(*, dataset: Dataset, actor: User | None = None, queue: bool = True) -> Dataset:
    """Import a finished dataset's source again: only what is new (by path or key) is added.

    A WebDataset pattern is expanded again, so shards added since are picked up.
    """
    with transaction.atomic():
        locked = Dataset.objects.select_for_update().get(pk=dataset.pk)
        if locked.state != Dataset.State.READY:
            raise StateConflict(
                f"The import of “{locked.name}” is {locked.get_state_display().lower()}; only a "
                "finished import can be run again (resume a cancelled or failed one)."
            )
        if locked.source_kind == Dataset.SourceKind.ARCHIVE:
            raise StateConflict("An uploaded archive cannot be imported again: upload it anew.")
        if locked.source_kind == Dataset.SourceKind.WEBDATASET:
            locked.options = {**(locked.options or {}), "shards": checked_shards(locked.source)}
        before = {"state": locked.state}
        # The new import lists the source again into chunks of its own (only what is new).
        locked.import_chunks.all().delete()
        locked.state = Dataset.State.PENDING
        locked.import_finished_at = None
        locked.save(update_fields=["state", "import_finished_at", "options"])
        audit_change(locked, action="dataset.reimport", actor=actor, before=before)
        if queue:
            _queue_import(locked)
    locked.refresh_from_db()
    return locked


def dataset_create_from_source(
    *,
    name: str,
    shards: str = "",
    url_table: File | None = None,
    url_column: str = DEFAULT_URL_COLUMN,
    table_format: str = "",
    img2dataset_folder: str = "",
    created_by: User | None = None,
    queue: bool = True,
) -> Dataset:
    """The one source given (the forms and the API): shards, a URL table or an img2dataset
    folder."""
    if shards.strip():
        return dataset_create_from_webdataset(
            name=name, shards=shards, created_by=created_by, queue=queue
        )
    if url_table is not None:
        return dataset_create_from_table(
            name=name,
            table=url_table,
            url_column=url_column,
            table_format=table_format,
            created_by=created_by,
            queue=queue,
        )
    return dataset_create_from_img2dataset(
        name=name, folder=img2dataset_folder, created_by=created_by, queue=queue
    )
