"""The audit events of dataset actions, for curation.services.datasets (kept apart: that
module is near the size limit). Called inside the action's transaction."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User

from audit.services import audit_record
from curation.models import Dataset


def audit_import(dataset: Dataset, *, actor: User | None, **source: Any) -> None:
    """A dataset created and its import queued: where its files come from."""
    audit_record(
        actor=actor,
        action="dataset.import",
        target=dataset,
        after={
            "name": dataset.name,
            "source_kind": dataset.source_kind,
            "source": dataset.source,
            **source,
        },
    )


def audit_change(
    dataset: Dataset, *, action: str, actor: User | None, before: dict[str, Any]
) -> None:
    """The fields in `before`, as they were and as they are now on `dataset`."""
    after = {name: getattr(dataset, name) for name in before}
    audit_record(actor=actor, action=action, target=dataset, before=before, after=after)


def audit_delete(dataset: Dataset, *, actor: User | None) -> None:
    audit_record(
        actor=actor,
        action="dataset.delete",
        target=dataset,
        before={
            "name": dataset.name,
            "state": dataset.state,
            "source_kind": dataset.source_kind,
            "source": dataset.source,
            "images": dataset.images.count(),
        },
    )


def audit_requeue(dataset: Dataset) -> None:
    audit_record(
        actor=None,
        action="dataset.import_requeue",
        target=dataset,
        details={"reason": "lost-work recovery: the import's task was lost"},
    )
