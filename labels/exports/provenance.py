"""What every export file says about itself: dataset, prompt version, run, threshold, scope,
filters, cleaned-copy target, time and counts.

The time is the only field that differs between two builds of the same export of unchanged
data (no export id, no paths of this server), so the files compare byte for byte otherwise.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from curation.models import Export, Image

GENERATOR = "q16-curator export"
TIME_FIELD = "exported_at"


def export_provenance(
    *, export: Export, counts: dict[str, int], exported_at: datetime
) -> dict[str, Any]:
    dataset = export.dataset
    version = export.prompt_version
    not_indexed = Image.objects.filter(dataset=dataset, status=Image.Status.FAILED).count()
    return {
        "generator": GENERATOR,
        "dataset": {"id": dataset.pk, "name": dataset.name, "source_kind": dataset.source_kind},
        "prompt_version": {"id": version.pk, "name": version.name} if version else None,
        "run": export.run_id,
        "threshold": export.threshold,
        "scope": export.scope,
        "format": export.format,
        "filters": export.filters or {},
        "cleaned_copy": {"kind": export.copy_kind, "mode": export.copy_mode}
        if export.copy_kind
        else None,
        "counts": {
            "rows": counts.get("rows", 0),
            # The indexed images the filters let through, blocked or kept.
            "scanned": counts.get("scanned", 0),
            "blocked": counts.get("blocked", 0),
            "kept": counts.get("kept", 0),
            "confirmed": counts.get("confirmed", 0),
            "matched": counts.get("matched", 0),
            "flagged_unreviewed": counts.get("flagged_unreviewed", 0),
            "unscored": counts.get("unscored", 0),
            # Images that failed to index: no hash, no score; in no list and no copy.
            "not_indexed": not_indexed,
            **({"hashes": counts["hashes"]} if "hashes" in counts else {}),
        },
        TIME_FIELD: exported_at.isoformat(),
    }
