"""The audit trail in the Django admin: to read only. No one adds, changes or deletes events
there, superusers included (the admin page under Audit log in the app filters and exports)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "actor_name", "action", "target_type", "target_id", "target_repr"]
    search_fields = ["action", "actor_name", "target_repr"]
    # A million events: no COUNT(*) of the whole table on every page, and no filters that
    # list every distinct value (the app's Audit log page filters by index).
    show_full_result_count = False
    actions = None

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in AuditEvent._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
