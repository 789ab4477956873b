"""Reading the audit trail: filtered, newest first, a page at a time or all of it as CSV rows.

Pages are cut by keyset (the events older or newer than a given one), never by OFFSET or a
COUNT(*): a page of a million-row log costs what the first page costs. The filters use the
indexes on created_at, action (a prefix match, PostgreSQL's pattern index), target and
actor_name.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet

from audit.models import AuditEvent
from audit.spreadsheet import spreadsheet_cell

CSV_HEADER = [
    "time", "actor", "action", "object_type", "object_id", "object",
    "before", "after", "details",
]  # fmt: skip
VALUE_SHOWN_CHARS = 300
# Events without an actor (the system, a command), in the actor filter and the CSV. Never a
# username: Django's usernames have no parentheses.
NO_ACTOR = "(system)"


@dataclass(frozen=True)
class AuditFilter:
    """What the admin asked for; empty fields filter nothing."""

    actor: str = ""  # a username, or NO_ACTOR for the events without one
    action: str = ""  # a prefix: "run." or "prompt_version.activate"
    target_type: str = ""  # a model name: "dataset", "scoringrun"...
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive


@dataclass
class AuditPage:
    events: list[AuditEvent]
    newer: int | None = None  # the id to ask `after=` for the page before this one
    older: int | None = None  # the id to ask `before=` for the next page


@dataclass(frozen=True)
class Change:
    """One field of an event, before and after, as text (None: absent on that side)."""

    name: str
    before: str | None
    after: str | None
    added: list[str] = field(default_factory=list)  # list fields: what came in
    removed: list[str] = field(default_factory=list)  # and what went


class AuditCursorError(ValueError):
    """A page was asked from an event that does not exist."""


def audit_events(*, filters: AuditFilter) -> QuerySet[AuditEvent]:
    events = AuditEvent.objects.order_by("-created_at", "-id")
    if filters.actor == NO_ACTOR:
        events = events.filter(actor_name="")
    elif filters.actor:
        events = events.filter(actor_name=filters.actor)
    if filters.action:
        events = events.filter(action__startswith=filters.action)
    if filters.target_type:
        events = events.filter(target_type=filters.target_type)
    if filters.since is not None:
        events = events.filter(created_at__gte=filters.since)
    if filters.until is not None:
        events = events.filter(created_at__lt=filters.until)
    return events


def _older_than(event: AuditEvent) -> Q:
    return Q(created_at__lt=event.created_at) | Q(created_at=event.created_at, pk__lt=event.pk)


def _newer_than(event: AuditEvent) -> Q:
    return Q(created_at__gt=event.created_at) | Q(created_at=event.created_at, pk__gt=event.pk)


def _anchor(event_id: int) -> AuditEvent:
    anchor = AuditEvent.objects.only("pk", "created_at").filter(pk=event_id).first()
    if anchor is None:
        raise AuditCursorError(f"There is no audit event #{event_id} to page from.")
    return anchor


def audit_event_page(
    *, filters: AuditFilter, before: int | None = None, after: int | None = None, size: int = 50
) -> AuditPage:
    """The `size` newest events matching the filters: overall, or older than the event
    `before`, or the ones just newer than the event `after` (still newest first)."""
    events = audit_events(filters=filters)
    if after is not None:
        newer = events.filter(_newer_than(_anchor(after))).order_by("created_at", "id")
        rows = list(newer[: size + 1])
        has_newer = len(rows) > size
        rows = rows[:size][::-1]
        has_older = bool(rows) and events.filter(_older_than(rows[-1])).exists()
    else:
        if before is not None:
            events = events.filter(_older_than(_anchor(before)))
        rows = list(events[: size + 1])
        has_older = len(rows) > size
        rows = rows[:size]
        has_newer = (
            before is not None
            and bool(rows)
            and audit_events(filters=filters).filter(_newer_than(rows[0])).exists()
        )
    return AuditPage(
        events=rows,
        newer=rows[0].pk if rows and has_newer else None,
        older=rows[-1].pk if rows and has_older else None,
    )


def _text(value: Any) -> str:
    if isinstance(value, str):
        text = value
    elif value is None:
        text = "none"
    else:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= VALUE_SHOWN_CHARS else text[: VALUE_SHOWN_CHARS - 1] + "…"


def audit_event_changes(event: AuditEvent) -> list[Change]:
    """The event's fields, before → after, by name: every field either side has (a creation
    has only an after, a deletion only a before)."""
    before = event.before if isinstance(event.before, dict) else {}
    after = event.after if isinstance(event.after, dict) else {}
    changes = []
    for key in sorted({*before, *after}):  # PostgreSQL's jsonb keeps no key order
        old, new = before.get(key), after.get(key)
        added: list[str] = []
        removed: list[str] = []
        if isinstance(old, list) and isinstance(new, list):
            added = [_text(item) for item in new if item not in old]
            removed = [_text(item) for item in old if item not in new]
        changes.append(
            Change(
                name=key,
                before=_text(old) if key in before else None,
                after=_text(new) if key in after else None,
                added=added,
                removed=removed,
            )
        )
    return changes


def _cell(value: Any) -> str:
    return spreadsheet_cell(value)


def _json_cell(value: Any) -> str:
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def audit_csv_rows(*, filters: AuditFilter) -> Iterator[list[str]]:
    """The header, then every matching event, newest first, read in chunks (a server-side
    cursor on PostgreSQL): for a streamed download of any size."""
    yield CSV_HEADER
    rows = audit_events(filters=filters).values_list(
        "created_at", "actor_name", "action", "target_type", "target_id", "target_repr",
        "before", "after", "details",
    )  # fmt: skip
    for row in rows.iterator(chunk_size=2000):
        created_at, actor, action, target_type, target_id, target = row[:6]
        yield [
            _cell(created_at.isoformat()),
            _cell(actor or NO_ACTOR),
            _cell(action),
            _cell(target_type),
            "" if target_id is None else str(target_id),
            _cell(target),
            *(_cell(_json_cell(value)) for value in row[6:]),  # before, after, details
        ]


def audit_actor_names(*, limit: int = 500) -> list[str]:
    """Suggestions for the actor filter: NO_ACTOR and the accounts' usernames."""
    names = get_user_model().objects.order_by("username").values_list("username", flat=True)
    return [NO_ACTOR, *names[:limit]]
