"""Building blocklist files: confirmed (or flagged) images with hashes, paths, scores, verdicts.

An export is recorded (and queued) by curation.services.exports; the worker writes its file here.
"""

from __future__ import annotations

import csv
import io
import json
import logging

from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone

from audit.spreadsheet import spreadsheet_cell
from curation.models import Export, Image, Score
from curation.storage import EXPORTS, stored_write
from reviewer.models import Decision, ReviewItem
from reviewer.selectors.verdicts import latest_verdict_subquery

logger = logging.getLogger(__name__)
EXPORT_COLUMNS = (
    "sha256",
    "phash",
    "path",
    "score",
    "verdict",
    "prompt_version",
    "prompt_version_id",
)


def export_rows(*, export: Export) -> list[dict]:
    """The rows of an export, in image order (a snapshot of verdicts at build time)."""
    images = (
        Image.objects.filter(dataset_id=export.dataset_id, status=Image.Status.OK)
        .annotate(verdict=latest_verdict_subquery())
        .order_by("id")
    )
    if export.run_id is not None:
        images = images.annotate(
            score=Subquery(
                Score.objects.filter(run_id=export.run_id, image=OuterRef("pk")).values(
                    "p_inappropriate"
                )[:1]
            )
        )
    if export.scope == Export.Scope.CONFIRMED:
        images = images.filter(verdict=Decision.Verdict.INAPPROPRIATE)
    else:
        flagged_unreviewed = Q(verdict__isnull=True) & Q(
            review_item__state=ReviewItem.State.PENDING
        )
        images = images.filter(Q(verdict=Decision.Verdict.INAPPROPRIATE) | flagged_unreviewed)
    version = export.prompt_version
    return [
        {
            "sha256": image.sha256,
            "phash": image.phash,
            # URL-list images: the URL they came from; files: the path in the dataset.
            "path": image.source_url or image.relative_path,
            "score": round(score, 6)
            if (score := getattr(image, "score", None)) is not None
            else None,
            "verdict": image.verdict or "unreviewed",
            "prompt_version": version.name if version else None,
            "prompt_version_id": version.pk if version else None,
        }
        for image in images
    ]


def export_build(*, export_id: int) -> Export:
    """Write the export file once; a finished export is left alone."""
    export = Export.objects.select_related("prompt_version", "dataset").get(pk=export_id)
    if export.state != Export.State.PENDING:
        return export
    rows = export_rows(export=export)
    # Built in memory, then stored whole (a local file is renamed into place): a worker on
    # another machine writes it to the bucket, the web server serves it from there.
    handle = io.StringIO(newline="")
    if export.format == Export.Format.CSV:
        writer = csv.DictWriter(handle, fieldnames=EXPORT_COLUMNS)
        writer.writeheader()
        # Paths and URLs come from the dataset's owners: no cell may run as a formula.
        writer.writerows(
            {
                key: spreadsheet_cell(value) if isinstance(value, str) else value
                for key, value in row.items()
            }
            for row in rows
        )
    else:
        json.dump(
            {
                "dataset": export.dataset.name,
                "scope": export.scope,
                "threshold": export.threshold,
                "prompt_version": export.prompt_version.name if export.prompt_version else None,
                "prompt_version_id": export.prompt_version_id,
                "run_id": export.run_id,
                "created_at": export.created_at.isoformat(),
                "rows": rows,
            },
            handle,
            indent=1,
        )
    reference = stored_write(
        EXPORTS, f"export-{export.pk}.{export.format}", handle.getvalue().encode("utf-8")
    )
    Export.objects.filter(pk=export.pk, state=Export.State.PENDING).update(
        state=Export.State.SUCCEEDED,
        rows=len(rows),
        file_path=reference,
        finished_at=timezone.now(),
    )
    export.refresh_from_db()
    logger.info("export %s: %s rows to %s", export.pk, len(rows), reference)
    return export
