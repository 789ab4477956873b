"""Audit events: written once, never changed or deleted through the app."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models


class AppendOnlyError(Exception):
    """An attempt to change or delete an audit event."""


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    def update(self, **kwargs: Any) -> int:
        raise AppendOnlyError("Audit events are append-only.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("Audit events are append-only.")


class AuditEvent(models.Model):
    """One admin action: the actor, what they did (`action`, e.g. "run.cancel"), the object
    it was done to, and the object's relevant fields before and after.

    The object is named by type, id and text, not a foreign key: deleting it (a dataset and
    everything under it) leaves its events alone. The actor is a foreign key that becomes
    NULL when the user is deleted (actor_name keeps the name); on PostgreSQL a trigger
    (migration 0002) refuses every other UPDATE and every DELETE of a row.
    """

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # The actor's name is kept as text too: the record outlives the account.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_name = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=64, blank=True, db_index=True)
    target_id = models.BigIntegerField(null=True, blank=True)
    target_repr = models.CharField(max_length=300, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["target_type", "target_id"], name="audit_target"),
            # The admin page's actor filter, newest first.
            models.Index(fields=["actor_name", "created_at"], name="audit_actor"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_name or 'system'} {self.action}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise AppendOnlyError("Audit events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("Audit events are append-only.")
