"""Where an audit event's object is shown in the app, while it still exists.

Audit events name their object by type and id (no foreign key: the record outlives it), so
the log page asks here, for a page of events at once (one query per object type), which
objects are still there and links to those.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from django.contrib.auth import get_user_model
from django.db.models import Model
from django.urls import NoReverseMatch, reverse

from audit.models import AuditEvent
from curation.models import Dataset, Export, PromptJob, PromptVersion, ScoringRun

# Object types as the events name them (model names), for the filter's suggestions.
TARGET_TYPE_LABELS = {
    "dataset": "Dataset",
    "scoringrun": "Scoring run",
    "promptversion": "Prompt version",
    "promptjob": "Prompt job",
    "export": "Export",
    "user": "User",
}


def _dataset_url(dataset_id: int, anchor: str = "") -> str:
    return reverse("dataset-detail", args=[dataset_id]) + anchor


def _user_url(user_id: int) -> str | None:
    try:
        return reverse("user-detail", args=[user_id])
    except NoReverseMatch:  # no user pages in this build
        return None


# type -> (model, fields read, url of a row of those fields)
LINKS: dict[str, tuple[type[Model], tuple[str, ...], Callable[..., str | None]]] = {
    "dataset": (Dataset, ("pk",), lambda pk: _dataset_url(pk)),
    "scoringrun": (
        ScoringRun,
        ("pk", "dataset_id"),
        lambda pk, dataset_id: _dataset_url(dataset_id, f"#run-{pk}"),
    ),
    "export": (
        Export,
        ("pk", "dataset_id"),
        lambda pk, dataset_id: _dataset_url(dataset_id, "#exports"),
    ),
    "promptversion": (
        PromptVersion,
        ("pk",),
        lambda pk: f"{reverse('prompt-versions')}#version-{pk}",
    ),
    "promptjob": (PromptJob, ("pk",), lambda pk: f"{reverse('prompt-versions')}#job-{pk}"),
    "user": (get_user_model(), ("pk",), _user_url),
}


def audit_target_links(events: list[AuditEvent]) -> dict[int, str]:
    """event id -> the URL of its object, for the objects that still exist."""
    wanted: dict[str, set[int]] = defaultdict(set)
    for event in events:
        if event.target_id is not None and event.target_type in LINKS:
            wanted[event.target_type].add(event.target_id)
    urls: dict[tuple[str, int], str] = {}
    for target_type, ids in wanted.items():
        model, fields, url_of = LINKS[target_type]
        for row in model._default_manager.filter(pk__in=ids).values_list(*fields):
            url = url_of(*row)
            if url:
                urls[target_type, row[0]] = url
    return {
        event.pk: urls[event.target_type, event.target_id]
        for event in events
        if event.target_id is not None and (event.target_type, event.target_id) in urls
    }
