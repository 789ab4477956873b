"""Recording admin actions. Called by the services that perform them, inside their
transaction: the record commits (or rolls back) with the action."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.db import models

from audit.models import AuditEvent


def audit_record(
    *,
    actor: User | None,
    action: str,
    target: models.Model | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event. `action` is "<object>.<verb>" (e.g. "dataset.import", "run.cancel",
    "prompt_version.activate", "review_settings.update"); `before`/`after` hold the changed
    fields, JSON-serialisable. A None or anonymous actor is recorded as the system."""
    real_actor = actor if actor is not None and actor.is_authenticated else None
    return AuditEvent.objects.create(
        actor=real_actor,
        actor_name=real_actor.get_username() if real_actor is not None else "",
        action=action,
        target_type=target._meta.model_name or "" if target is not None else "",
        target_id=target.pk if target is not None else None,
        target_repr=str(target)[:300] if target is not None else "",
        before=before,
        after=after,
        details=details or {},
    )
