"""Blocklist exports: recording them and their failures; labels.exports writes the files."""

from __future__ import annotations

import logging

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from curation import dispatch
from curation.errors import ValidationFailed
from curation.models import Dataset, Export
from curation.selectors import dataset_latest_run

logger = logging.getLogger(__name__)


def export_create(
    *,
    dataset: Dataset,
    format: str,
    scope: str = Export.Scope.CONFIRMED,
    created_by: User | None = None,
    queue: bool = True,
) -> Export:
    """Record an export of the dataset's latest scores and verdicts; the file is written by a task."""
    if format not in Export.Format.values:
        raise ValidationFailed(f"Unknown export format {format!r}.")
    if scope not in Export.Scope.values:
        raise ValidationFailed(f"Unknown export scope {scope!r}.")
    run = dataset_latest_run(dataset=dataset)
    export = Export(
        dataset=dataset,
        format=format,
        scope=scope,
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
