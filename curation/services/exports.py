"""Exports: checking and recording them (format, scope, filters, cleaned-copy target) and
their failures; labels.exports builds the files and copies."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from curation import dispatch
from curation.errors import ValidationFailed
from curation.models import Dataset, Export
from curation.selectors import dataset_latest_run
from worker.engine.locators import is_url

logger = logging.getLogger(__name__)
MAX_FILTER_VALUES = 100
# Which cleaned copy each kind of dataset can have: shards stay shards, a URL table stays a
# table, loose files (folders, archives, downloads) become an ImageFolder tree.
COPY_KINDS_FOR_SOURCE: dict[str, set[str]] = {
    Dataset.SourceKind.WEBDATASET: {Export.CopyKind.WEBDATASET},
    Dataset.SourceKind.TABLE: {Export.CopyKind.TABLE, Export.CopyKind.IMAGEFOLDER},
    Dataset.SourceKind.FOLDER: {Export.CopyKind.IMAGEFOLDER},
    Dataset.SourceKind.ARCHIVE: {Export.CopyKind.IMAGEFOLDER},
    Dataset.SourceKind.URLS: {Export.CopyKind.IMAGEFOLDER},
    Dataset.SourceKind.IMG2DATASET: {Export.CopyKind.IMAGEFOLDER},
}


def _texts(raw: Any, what: str, max_length: int) -> list[str]:
    if raw in (None, "", []):
        return []
    if isinstance(raw, str):
        raw = raw.split(",")
    if not isinstance(raw, list | tuple) or not all(isinstance(v, str) for v in raw):
        raise ValidationFailed(f"{what} must be a list of names.")
    values = sorted({value.strip() for value in raw if value.strip()})
    if len(values) > MAX_FILTER_VALUES:
        raise ValidationFailed(f"At most {MAX_FILTER_VALUES} {what}.")
    if any(len(value) > max_length for value in values):
        raise ValidationFailed(f"Each of the {what} must be at most {max_length} characters.")
    return values


def _score(raw: Any, what: str) -> float | None:
    if raw in (None, ""):
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError) as exc:
        raise ValidationFailed(f"The {what} must be a number between 0 and 1.") from exc
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ValidationFailed(f"The {what} must be a number between 0 and 1.")
    return value


def export_filters_clean(raw: dict[str, Any] | None, *, scope: str) -> dict[str, Any]:
    """The filters as stored: sorted name lists and scores in [0, 1]; only those given."""
    raw = raw or {}
    if not isinstance(raw, dict):
        raise ValidationFailed("The filters must be an object.")
    unknown = set(raw) - {"categories", "classes", "min_score", "max_score"}
    if unknown:
        raise ValidationFailed(f"Unknown filter {sorted(unknown)[0]!r}.")
    filters: dict[str, Any] = {
        "categories": _texts(raw.get("categories"), "categories", 100),
        "classes": _texts(raw.get("classes"), "classes", 200),
        "min_score": _score(raw.get("min_score"), "lowest score"),
        "max_score": _score(raw.get("max_score"), "highest score"),
    }
    low, high = filters["min_score"], filters["max_score"]
    if low is not None and high is not None and low > high:
        raise ValidationFailed("The lowest score is above the highest score.")
    if filters["categories"] and scope == Export.Scope.KEEP:
        raise ValidationFailed(
            "Kept images have no confirming category: the keep-list takes no category filter."
        )
    return {key: value for key, value in filters.items() if value not in (None, [])}


def _check_local_target(target: str, dataset: Dataset) -> str:
    path = Path(target).expanduser()
    if not path.is_absolute():
        raise ValidationFailed("The cleaned copy's folder must be an absolute path on the server.")
    try:
        path = path.resolve()
        exists, is_dir = path.exists(), path.is_dir()
        empty = is_dir and not any(path.iterdir())
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ValidationFailed(f"The folder path cannot be used: {reason}.") from exc
    roots = [Path(root).expanduser().resolve() for root in settings.Q16_EXPORT_ROOTS]
    where = ", ".join(str(root) for root in roots) or "none configured"
    if not any(path.is_relative_to(root) and path != root for root in roots):
        raise ValidationFailed(
            f"{target} is not inside an export folder ({where}): choose a new folder there, "
            "or add its parent to Q16_EXPORT_ROOTS."
        )
    if exists and not empty:
        raise ValidationFailed(f"{target} already exists and is not an empty folder.")
    if dataset.root_path:
        source = Path(dataset.root_path).resolve()
        if path.is_relative_to(source) or source.is_relative_to(path):
            raise ValidationFailed("The cleaned copy cannot go inside the dataset (or hold it).")
    return str(path)


def _check_remote_target(target: str) -> str:
    """An fsspec URL strictly inside one of Q16_EXPORT_URL_PREFIXES (no `..` segments)."""
    target = target.rstrip("/")
    if ".." in target.partition("://")[2].split("/"):
        raise ValidationFailed("The cleaned copy's URL may not contain '..'.")
    prefixes = list(settings.Q16_EXPORT_URL_PREFIXES)
    if any(target.startswith(prefix.rstrip("/") + "/") for prefix in prefixes):
        return target
    where = ", ".join(prefixes) or "none configured"
    raise ValidationFailed(
        f"{target} is not under an allowed export URL prefix ({where}): see "
        "Q16_EXPORT_URL_PREFIXES."
    )


def export_copy_clean(
    *, dataset: Dataset, scope: str, copy_kind: str, copy_target: str, copy_mode: str
) -> tuple[str, str, str]:
    """(kind, target, mode) of a cleaned copy, checked; all empty but the mode when none."""
    if copy_kind not in Export.CopyKind.values:
        raise ValidationFailed(f"Unknown cleaned copy {copy_kind!r}.")
    if copy_mode not in Export.CopyMode.values:
        raise ValidationFailed(f"Unknown copy mode {copy_mode!r}.")
    copy_target = (copy_target or "").strip()
    if not copy_kind:
        if copy_target:
            raise ValidationFailed("Choose what kind of cleaned copy to write to the target.")
        return "", "", Export.CopyMode.COPY
    if scope != Export.Scope.KEEP:
        raise ValidationFailed("A cleaned copy holds the kept images: choose the keep-list scope.")
    if copy_kind not in COPY_KINDS_FOR_SOURCE.get(dataset.source_kind, set()):
        raise ValidationFailed(
            f"A {dataset.get_source_kind_display()} dataset cannot be copied as "
            f"{Export.CopyKind(copy_kind).label}."
        )
    if not copy_target:
        raise ValidationFailed("Give the folder or s3:// URL to write the cleaned copy to.")
    if len(copy_target) > 2048 or "\x00" in copy_target:
        raise ValidationFailed("The cleaned copy's target is not a usable path.")
    remote = is_url(copy_target)
    if copy_mode != Export.CopyMode.COPY and (remote or copy_kind != Export.CopyKind.IMAGEFOLDER):
        raise ValidationFailed("Links are made only for ImageFolder copies on this server.")
    target = (
        _check_remote_target(copy_target) if remote else _check_local_target(copy_target, dataset)
    )
    return copy_kind, target, copy_mode


def export_create(
    *,
    dataset: Dataset,
    format: str,
    scope: str = Export.Scope.CONFIRMED,
    filters: dict[str, Any] | None = None,
    copy_kind: str = "",
    copy_target: str = "",
    copy_mode: str = Export.CopyMode.COPY,
    created_by: User | None = None,
    queue: bool = True,
) -> Export:
    """Record an export of the dataset's latest scores and verdicts; a task writes the file."""
    if format not in Export.Format.values:
        raise ValidationFailed(f"Unknown export format {format!r}.")
    if scope not in Export.Scope.values:
        raise ValidationFailed(f"Unknown export scope {scope!r}.")
    if format == Export.Format.HASH_BANK and scope == Export.Scope.KEEP:
        raise ValidationFailed("A hash bank lists known-bad images: it cannot be a keep-list.")
    cleaned_filters = export_filters_clean(filters, scope=scope)
    copy_kind, copy_target, copy_mode = export_copy_clean(
        dataset=dataset,
        scope=scope,
        copy_kind=copy_kind,
        copy_target=copy_target,
        copy_mode=copy_mode,
    )
    run = dataset_latest_run(dataset=dataset)
    if run is None and ("min_score" in cleaned_filters or "max_score" in cleaned_filters):
        raise ValidationFailed("The dataset has no scores yet: a score range cannot apply.")
    export = Export(
        dataset=dataset,
        format=format,
        scope=scope,
        filters=cleaned_filters,
        copy_kind=copy_kind,
        copy_target=copy_target,
        copy_mode=copy_mode,
        run=run,
        prompt_version=run.prompt_version if run else None,
        threshold=run.threshold if run else None,
        created_by=created_by,
    )
    export.full_clean()
    with transaction.atomic():
        export.save()
        audit_record(
            actor=created_by,
            action="export.create",
            target=export,
            after={
                "dataset": dataset.pk,
                "format": format,
                "scope": scope,
                "filters": cleaned_filters,
                "copy_kind": copy_kind,
                "copy_target": copy_target,
                "copy_mode": copy_mode,
                "run": export.run_id,
                "prompt_version": export.prompt_version_id,
                "threshold": export.threshold,
            },
        )
        if queue:
            dispatch.send_on_commit(dispatch.BUILD_EXPORT, [export.pk])
    return export


def export_fail(*, export_id: int, reason: str) -> None:
    """Mark a pending export failed for good with the reason."""
    Export.objects.filter(pk=export_id, state=Export.State.PENDING).update(
        state=Export.State.FAILED, error=reason[:5000], finished_at=timezone.now()
    )
    logger.error("export %s failed: %s", export_id, reason)
