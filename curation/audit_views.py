"""The Audit log page (admins): every admin action, filtered, newest first, and its CSV.

The events are read by audit.selectors (keyset pages, no COUNT); links to the objects that
still exist come from curation.audit_links.
"""

from __future__ import annotations

import csv
import datetime as dt
from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views import View

from audit.selectors import (
    NO_ACTOR,
    AuditCursorError,
    AuditFilter,
    AuditPage,
    audit_actor_names,
    audit_csv_rows,
    audit_event_changes,
    audit_event_page,
)
from curation.audit_links import TARGET_TYPE_LABELS, audit_target_links
from curation.views import StaffRequiredMixin

PAGE_SIZE = 50
MAX_ID = 2**63 - 1
FILTER_FIELDS = ("actor", "action", "target_type", "date_from", "date_to")


class AuditFilterForm(forms.Form):
    actor = forms.CharField(
        required=False,
        max_length=150,
        help_text=f"A username, or {NO_ACTOR} for the system and commands.",
        widget=forms.TextInput(attrs={"list": "audit-actors", "autocomplete": "off"}),
    )
    action = forms.CharField(
        required=False,
        max_length=64,
        help_text="The start of the action: run. or prompt_version.activate",
        widget=forms.TextInput(attrs={"placeholder": "e.g. dataset.", "autocomplete": "off"}),
    )
    target_type = forms.CharField(
        required=False,
        max_length=64,
        label="Object type",
        widget=forms.TextInput(attrs={"list": "audit-target-types", "autocomplete": "off"}),
    )
    date_from = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"})
    )
    before = forms.IntegerField(
        required=False, min_value=1, max_value=MAX_ID, widget=forms.HiddenInput
    )
    after = forms.IntegerField(
        required=False, min_value=1, max_value=MAX_ID, widget=forms.HiddenInput
    )

    def clean_action(self) -> str:
        return self.cleaned_data["action"].strip().lower()

    def clean_target_type(self) -> str:
        return self.cleaned_data["target_type"].strip().lower()

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "The end date is before the start date.")
        if data.get("before") and data.get("after"):
            raise forms.ValidationError("Page either before or after an event, not both.")
        return data

    def filters(self) -> AuditFilter:
        data = self.cleaned_data
        return AuditFilter(
            actor=data["actor"].strip(),
            action=data["action"],
            target_type=data["target_type"],
            since=_day_start(data["date_from"]),
            until=_day_start(data["date_to"] + dt.timedelta(days=1) if data["date_to"] else None),
        )

    def query(self, **cursor: int) -> str:
        """The filters as a query string (for the page links and the CSV), plus a cursor."""
        data = self.cleaned_data
        params: dict[str, str | int] = {
            name: str(data[name]) for name in FILTER_FIELDS if data.get(name)
        }
        params.update(cursor)
        return urlencode(params)


def _day_start(day: dt.date | None) -> dt.datetime | None:
    """Midnight at the start of the day, in the server's time zone (dates are inclusive)."""
    if day is None:
        return None
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def _render(
    request: HttpRequest, form: AuditFilterForm, page: AuditPage | None, status: int = 200
) -> HttpResponse:
    events = page.events if page else []
    links = audit_target_links(events)
    valid = form.is_valid()
    paged = valid and bool(form.cleaned_data.get("before") or form.cleaned_data.get("after"))
    return render(
        request,
        "curation/audit_log.html",
        {
            "form": form,
            "rows": [
                {"event": event, "changes": audit_event_changes(event), "url": links.get(event.pk)}
                for event in events
            ],
            "newer_query": form.query(after=page.newer) if page and page.newer else None,
            "older_query": form.query(before=page.older) if page and page.older else None,
            "first_query": form.query() if valid else "",
            "paged": paged,
            "csv_url": f"{reverse('audit-log-export')}?{form.query()}" if valid else None,
            "actor_names": audit_actor_names(),
            "no_actor": NO_ACTOR,
            "target_types": TARGET_TYPE_LABELS,
        },
        status=status,
    )


class AuditLogView(StaffRequiredMixin, View):
    def get(self, request: HttpRequest) -> HttpResponse:
        form = AuditFilterForm(request.GET)
        if not form.is_valid():
            return _render(request, form, None, status=400)
        try:
            page = audit_event_page(
                filters=form.filters(),
                before=form.cleaned_data["before"],
                after=form.cleaned_data["after"],
                size=PAGE_SIZE,
            )
        except AuditCursorError as exc:
            form.add_error(None, str(exc))
            return _render(request, form, None, status=400)
        return _render(request, form, page)


class _Echo:
    """A file-like sink for csv.writer that hands each written line back."""

    def write(self, value: str) -> str:
        return value


class AuditLogExportView(StaffRequiredMixin, View):
    """The filtered events as CSV, streamed (a log of any size, never held in memory)."""

    def get(self, request: HttpRequest) -> HttpResponseBase:
        form = AuditFilterForm(request.GET)
        if not form.is_valid():
            return _render(request, form, None, status=400)
        writer = csv.writer(_Echo())
        response = StreamingHttpResponse(
            (writer.writerow(row) for row in audit_csv_rows(filters=form.filters())),
            content_type="text/csv; charset=utf-8",
        )
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response["Content-Disposition"] = f'attachment; filename="q16-audit-log-{stamp}.csv"'
        response["X-Content-Type-Options"] = "nosniff"
        return response
