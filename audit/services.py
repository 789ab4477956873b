"""Recording admin actions. Called by the services that perform them, inside their
transaction: the record commits (or rolls back) with the action.

Who acted is the `actor` (a user), or nobody: the system itself (the auto-retrain policy,
lost-work recovery) or a management command. Those events say so in `details["source"]`
("system", or "command: <name>" inside a command wrapped by `audited_command`), and what
set them off in the details a caller adds with `audit_context`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

from django.contrib.auth.models import User
from django.db import models

from audit.models import AuditEvent

SYSTEM = "system"
# Details added to every event recorded inside an `audit_context` block (this thread/task).
_context_details: ContextVar[dict[str, Any] | None] = ContextVar("audit_details", default=None)
# Actions not recorded inside an `audit_covered` block: the caller records them itself.
_covered_actions: ContextVar[frozenset[str]] = ContextVar("audit_covered", default=frozenset())

Handle = TypeVar("Handle", bound=Callable[..., Any])


def audit_record(
    *,
    actor: User | None,
    action: str,
    target: models.Model | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent | None:
    """Append one event (None: inside `audit_covered` for this action, nothing is recorded). `action` is "<object>.<verb>" (e.g. "dataset.import", "run.cancel",
    "prompt_version.activate", "review_settings.update"); `before`/`after` hold the changed
    fields, JSON-serialisable. A None or anonymous actor is recorded as the system."""
    if action in _covered_actions.get():
        return None
    real_actor = actor if actor is not None and actor.is_authenticated else None
    merged = {**(_context_details.get() or {}), **(details or {})}
    if real_actor is None:
        merged.setdefault("source", SYSTEM)
    return AuditEvent.objects.create(
        actor=real_actor,
        actor_name=real_actor.get_username() if real_actor is not None else "",
        action=action,
        target_type=target._meta.model_name or "" if target is not None else "",
        target_id=target.pk if target is not None else None,
        target_repr=str(target)[:300] if target is not None else "",
        before=before,
        after=after,
        details=merged,
    )


@contextmanager
def audit_context(**details: Any) -> Iterator[None]:
    """Add these details to every event recorded inside the block: why the system acted
    (`reason=...`), or where an action came from (`source="command: import_dataset"`)."""
    token = _context_details.set({**(_context_details.get() or {}), **details})
    try:
        yield
    finally:
        _context_details.reset(token)


@contextmanager
def audit_covered(*actions: str) -> Iterator[None]:
    """Inside the block, events of these actions are not recorded: for a service whose own
    event already holds their changes (the review settings record the prompt policy and the
    pinned version they set through prompt_policy_update and prompt_version_pin)."""
    token = _covered_actions.set(_covered_actions.get() | frozenset(actions))
    try:
        yield
    finally:
        _covered_actions.reset(token)


def audited_command(handle: Handle) -> Handle:
    """Decorate a management command's `handle`: what it records has no actor and says
    `source: "command: <name>"` (the command's module name)."""

    @functools.wraps(handle)
    def wrapper(self: Any, *args: Any, **options: Any) -> Any:
        name = type(self).__module__.rpartition(".")[2]
        with audit_context(source=f"command: {name}"):
            return handle(self, *args, **options)

    return wrapper  # type: ignore[return-value]
