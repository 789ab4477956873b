"""The admins' Exposure page: what each reviewer was shown per day, and their exposure rules
(daily cap, enforced break), editable per reviewer."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views import View

from curation.errors import DomainError
from curation.views import StaffRequiredMixin
from reviewer.selectors.exposure import exposure_page
from reviewer.services.exposure import exposure_settings_update

DAY_CHOICES = (7, 14, 30)
DEFAULT_DAYS = 14


class ExposureRangeForm(forms.Form):
    days = forms.TypedChoiceField(
        choices=[(str(n), f"{n} days") for n in DAY_CHOICES], coerce=int, required=False
    )


class ExposureSettingsForm(forms.Form):
    """A reviewer's own rules; an empty field follows the default, 0 turns the rule off."""

    daily_reveal_cap = forms.IntegerField(required=False, min_value=0, max_value=100_000)
    break_after_minutes = forms.IntegerField(required=False, min_value=0, max_value=24 * 60)
    break_minutes = forms.IntegerField(required=False, min_value=1, max_value=24 * 60)


def _days(request: HttpRequest) -> tuple[int, ExposureRangeForm]:
    form = ExposureRangeForm(request.GET)
    if form.is_valid() and form.cleaned_data["days"]:
        return form.cleaned_data["days"], form
    return DEFAULT_DAYS, form


def _page(
    request: HttpRequest,
    *,
    failed: tuple[int, ExposureSettingsForm] | None = None,
    status: int = 200,
) -> HttpResponse:
    days, range_form = _days(request)
    if range_form.errors:
        status = 400
    return render(
        request,
        "reviewer/exposure.html",
        {
            "page": exposure_page(days=days),
            "day_choices": DAY_CHOICES,
            "range_form": range_form,
            "failed_reviewer": failed[0] if failed else None,
            "failed_form": failed[1] if failed else None,
        },
        status=status,
    )


class ExposureView(StaffRequiredMixin, View):
    """Exposure per reviewer per day (`?days=7|14|30`, default 14)."""

    def get(self, request: HttpRequest) -> HttpResponse:
        return _page(request)


class ExposureSettingsView(StaffRequiredMixin, View):
    """Save one reviewer's own exposure rules (recorded in the audit trail)."""

    def post(self, request: HttpRequest, user_id: int) -> HttpResponse:
        reviewer = get_object_or_404(User, pk=user_id)
        admin = request.user
        if not isinstance(admin, User):
            raise PermissionDenied
        form = ExposureSettingsForm(request.POST)
        if form.is_valid():
            try:
                exposure_settings_update(reviewer=reviewer, updated_by=admin, **form.cleaned_data)
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, f"Exposure settings of {reviewer.get_username()} saved.")
                days, _ = _days(request)
                url = reverse("review-exposure")
                return redirect(f"{url}?days={days}#reviewer-{reviewer.pk}")
        return _page(request, failed=(reviewer.pk, form), status=400)
