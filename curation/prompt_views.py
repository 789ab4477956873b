"""Admin pages of the prompt versions: the list with held-out comparisons, zero-shot and import
forms, and activation, which asks first when a trained version is worse than its parent or
the active version (curation.selectors.prompt_version_worse_than)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.views import View

from curation.errors import DomainError
from curation.forms import PromptImportForm, ZeroShotForm
from curation.models import PromptVersion, ScoringRun
from curation.selectors import (
    active_prompt_version,
    prompt_job_list,
    prompt_version_list,
    prompt_version_warning,
    prompt_version_worse_than,
)
from curation.services.prompt_jobs import prompt_job_create_zero_shot
from curation.services.prompt_versions import prompt_version_activate, prompt_version_import
from curation.views import StaffRequiredMixin, _acting_user, _model_key

PROMPT_JOBS_SHOWN = 50
# Held-out metrics shown for trained versions: (key in metrics, full name, column header).
METRICS = (
    ("accuracy", "Accuracy", "Acc."),
    ("precision", "Precision", "Prec."),
    ("recall", "Recall", "Rec."),
    ("f1", "F1 score", "F1"),
)
# The box an admin ticks to activate a version that is worse (the confirmation step).
ACTIVATE_ANYWAY = "activate_anyway"


def _metric_rows(version: PromptVersion) -> list[dict]:
    """Held-out metrics of a trained version next to its parent's and the active version's."""
    metrics = version.metrics or {}
    rows = []
    for key, label in (
        ("heldout", "This version"),
        ("parent_heldout", "Parent"),
        ("active_heldout", "Active"),
    ):
        values = metrics.get(key)
        if isinstance(values, dict):
            rows.append({"label": label, "values": [values.get(name) for name, _, _ in METRICS]})
    return rows


def _version_row(version: PromptVersion) -> dict:
    return {
        "version": version,
        "metric_rows": _metric_rows(version),
        "worse_than": prompt_version_worse_than(version),
        "warning": prompt_version_warning(version),
    }


def _prompts_page(
    request: HttpRequest,
    *,
    zero_shot_form: ZeroShotForm | None = None,
    import_form: PromptImportForm | None = None,
    status: int = 200,
) -> HttpResponse:
    model_key = _model_key()
    return render(
        request,
        "curation/prompt_versions.html",
        {
            "versions": [_version_row(version) for version in prompt_version_list()],
            "metric_headers": METRICS,
            "model_key": model_key,
            "active": active_prompt_version(model_key=model_key),
            "jobs": prompt_job_list(limit=PROMPT_JOBS_SHOWN),
            "zero_shot_form": zero_shot_form or ZeroShotForm(),
            "import_form": import_form or PromptImportForm(),
        },
        status=status,
    )


class PromptVersionListView(StaffRequiredMixin, View):
    def get(self, request: HttpRequest) -> HttpResponse:
        return _prompts_page(request)


class PromptZeroShotView(StaffRequiredMixin, View):
    def post(self, request: HttpRequest) -> HttpResponse:
        form = ZeroShotForm(request.POST)
        if form.is_valid():
            try:
                job = prompt_job_create_zero_shot(
                    model_key=_model_key(),
                    appropriate=form.cleaned_data["appropriate"],
                    inappropriate=form.cleaned_data["inappropriate"],
                    name=form.cleaned_data["name"],
                    created_by=_acting_user(request),
                )
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, f"Zero-shot job #{job.pk} queued.")
                return redirect(f"{reverse('prompt-versions')}#job-{job.pk}")
        return _prompts_page(request, zero_shot_form=form, status=400)


class PromptImportView(StaffRequiredMixin, View):
    def post(self, request: HttpRequest) -> HttpResponse:
        form = PromptImportForm(request.POST, request.FILES)
        if form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                version = prompt_version_import(
                    name=form.cleaned_data["name"] or upload.name,
                    model_key=_model_key(),
                    data=upload.read(),
                    created_by=_acting_user(request),
                )
            except DomainError as exc:
                form.add_error("file", exc.message)
            else:
                messages.success(
                    request, f"Imported prompt version #{version.pk} “{version.name}”."
                )
                return redirect(f"{reverse('prompt-versions')}#version-{version.pk}")
        return _prompts_page(request, import_form=form, status=400)


def _confirm_page(
    request: HttpRequest, version: PromptVersion, *, error: str = "", status: int = 200
) -> HttpResponse:
    return render(
        request,
        "curation/prompt_activate_confirm.html",
        {
            **_version_row(version),
            "metric_headers": METRICS,
            "active": active_prompt_version(model_key=version.model_key),
            "checkbox": ACTIVATE_ANYWAY,
            "error": error,
        },
        status=status,
    )


class PromptActivateConfirmView(StaffRequiredMixin, View):
    """The step before activating a worse version: the comparison, and "activate anyway"."""

    def get(self, request: HttpRequest, version_id: int) -> HttpResponse:
        version = get_object_or_404(PromptVersion, pk=version_id)
        if not prompt_version_worse_than(version):
            # Nothing to warn about (a stale link): the list's own Activate button will do.
            return redirect(f"{reverse('prompt-versions')}#version-{version.pk}")
        return _confirm_page(request, version)


class PromptActivateView(StaffRequiredMixin, View):
    def post(self, request: HttpRequest, version_id: int) -> HttpResponse:
        version = get_object_or_404(PromptVersion, pk=version_id)
        if prompt_version_worse_than(version) and not request.POST.get(ACTIVATE_ANYWAY):
            # A worse version goes live only once the admin has seen the comparison.
            return _confirm_page(
                request,
                version,
                error="Tick “Activate anyway” to activate a version that is worse on "
                "held-out verdicts; nothing was activated.",
                status=400,
            )
        try:
            runs = prompt_version_activate(version=version, created_by=_acting_user(request))
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _activation_message(version, runs))
        return redirect(f"{reverse('prompt-versions')}#version-{version.pk}")


def _activation_message(version: PromptVersion, runs: list[ScoringRun]) -> str:
    head = format_html(
        "Activated “{}”; rescoring {} dataset{} from cached embeddings",
        version.name,
        len(runs),
        "" if len(runs) == 1 else "s",
    )
    if not runs:
        return format_html("{}.", head)
    links = format_html_join(
        ", ",
        '<a href="{}#run-{}">run #{} ({})</a>',
        (
            (reverse("dataset-detail", args=[run.dataset_id]), run.pk, run.pk, run.dataset.name)
            for run in runs
        ),
    )
    return format_html("{}: {}.", head, links)
