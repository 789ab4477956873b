"""Building an export: select the rows, write the file (and its provenance sidecar) to the
exports storage, then the cleaned copy if one was asked for; progress on the export row."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence

from django.utils import timezone

from curation.models import Export
from curation.storage import EXPORTS, stored_write
from labels.exports.cleaned import CopyError, cleaned_copy_write
from labels.exports.formats import RENDERERS, written_count
from labels.exports.provenance import export_provenance
from labels.exports.rows import export_select

logger = logging.getLogger(__name__)


def _progress(export_id: int, done: int) -> None:
    Export.objects.filter(pk=export_id, state=Export.State.PENDING).update(rows=done)


def export_build(*, export_id: int, banks: Mapping[int, Sequence[str]] | None = None) -> Export:
    """Write the export once; a finished (or failed) export is left alone.

    banks: image id -> names of the hash banks it matched (matched images count as blocked).
    """
    export = Export.objects.select_related("prompt_version", "dataset").get(pk=export_id)
    if export.state != Export.State.PENDING:
        return export
    selection = export_select(export=export, banks=banks)
    rows = selection.rows
    counts = dict(selection.counts)
    hashes = written_count(export.format, rows)
    if hashes is not None:
        counts["hashes"] = hashes
    Export.objects.filter(pk=export.pk).update(total=len(rows), rows=0)
    provenance = export_provenance(export=export, counts=counts, exported_at=timezone.now())
    # Built in memory, then stored whole (a local file is renamed into place): a worker on
    # another machine writes it to the bucket, the web server serves it from there.
    data = RENDERERS[export.format](rows, provenance)
    reference = stored_write(EXPORTS, f"export-{export.pk}.{export.file_extension}", data)
    sidecar = stored_write(
        EXPORTS,
        f"export-{export.pk}.provenance.json",
        json.dumps(provenance, indent=1, ensure_ascii=False).encode("utf-8"),
    )
    if export.copy_kind:
        try:
            cleaned_copy_write(
                export=export,
                images=selection.images,
                provenance=provenance,
                progress=lambda done: _progress(export.pk, done),
            )
        except CopyError as exc:
            Export.objects.filter(pk=export.pk, state=Export.State.PENDING).update(
                state=Export.State.FAILED,
                error=f"Cleaned copy failed: {exc}"[:5000],
                file_path=reference,
                provenance_path=sidecar,
                finished_at=timezone.now(),
            )
            export.refresh_from_db()
            logger.error("export %s: cleaned copy failed: %s", export.pk, exc)
            return export
    Export.objects.filter(pk=export.pk, state=Export.State.PENDING).update(
        state=Export.State.SUCCEEDED,
        rows=len(rows),
        file_path=reference,
        provenance_path=sidecar,
        finished_at=timezone.now(),
    )
    export.refresh_from_db()
    logger.info("export %s: %s rows to %s", export.pk, len(rows), reference)
    return export
