"""Admin pages of the browser UI: datasets, scoring runs, exports, prompt jobs' cancel and
resume (the prompt versions' pages are in curation/prompt_views.py).

Views parse a form and call a service or a selector; domain errors become form
errors or flash messages. Nothing here runs a model: the work is queued by the
services and progress is polled from the JSON API by static/js/poll.js.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.mixins import LoginRequiredMixin, UserPassesTestMixin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.views import View

from curation.bank_selectors import dataset_bank_matched_count, dataset_bank_matches
from curation.errors import DomainError
from curation.forms import (
    DatasetCreateForm,
    DatasetReviewersForm,
    ExportForm,
    ScoringRunForm,
    TrainingForm,
)
from curation.glossary import FIGURES
from curation.models import Dataset, PromptJob, PromptVersion, ScoringRun
from curation.selectors import (
    dataset_active_runs,
    dataset_exports,
    dataset_failed_images,
    dataset_import_progress,
    dataset_list,
    dataset_list_summaries,
    dataset_reviewers,
    dataset_runs,
    dataset_summary,
    dataset_threshold_preview,
    runs_worker_progress,
)
from curation.services.assignments import dataset_reviewers_set
from curation.services.clip_config import configured_model_key
from curation.services.datasets import (
    dataset_create_from_archive,
    dataset_create_from_folder,
    dataset_create_from_url_list,
    dataset_import_cancel,
    dataset_import_resume,
)
from curation.services.exports import export_create
from curation.services.prompt_jobs import (
    prompt_job_cancel,
    prompt_job_create_training,
    prompt_job_resume,
)
from curation.services.scoring import scoring_run_cancel, scoring_run_resume, scoring_run_start
from curation.services.sources.create import dataset_create_from_source
from worker.engine.tuning_config import tuning_config_from

if TYPE_CHECKING:
    from django.contrib.auth.models import User

FAILED_FILES_SHOWN = 200
RUNS_SHOWN = 50
EXPORTS_SHOWN = 50


@login_required
def home(request: HttpRequest) -> HttpResponseRedirect:
    """Admins land on their datasets, reviewers on the review queue."""
    return redirect("dataset-list" if request.user.is_staff else "review")


class StaffRequiredMixin(LoginRequiredMixin, UserPassesTestMixin):
    """Anonymous users go to the login page; logged-in non-staff users get a 403."""

    request: HttpRequest  # set by View.setup() before the test runs

    def test_func(self) -> bool:
        return self.request.user.is_staff


def _acting_user(request: HttpRequest) -> User:
    """The logged-in user behind a request, for the services' `created_by` and the like.

    Only for views behind login (StaffRequiredMixin): an anonymous request never gets here,
    and one that did anyway would be refused (403), never recorded.
    """
    user = request.user
    if not user.is_authenticated:
        raise PermissionDenied
    return user


def _model_key() -> str:
    return configured_model_key()


# --- Datasets -----------------------------------------------------------------------------


class DatasetListView(StaffRequiredMixin, View):
    template_name = "curation/dataset_list.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        return self._render(request, DatasetCreateForm())

    def post(self, request: HttpRequest) -> HttpResponse:
        form = DatasetCreateForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                source = form.cleaned_data
                if source["shards"].strip() or source["url_table"] or source["img2dataset_folder"]:
                    dataset = dataset_create_from_source(
                        name=source["name"],
                        shards=source["shards"],
                        url_table=source["url_table"],
                        url_column=source["url_column"] or "url",
                        table_format=source["table_format"],
                        img2dataset_folder=source["img2dataset_folder"].strip(),
                        created_by=_acting_user(request),
                    )
                elif form.cleaned_data["urls"].strip():
                    dataset = dataset_create_from_url_list(
                        name=form.cleaned_data["name"],
                        urls=form.cleaned_data["urls"],
                        created_by=_acting_user(request),
                    )
                elif form.cleaned_data["folder"].strip():
                    dataset = dataset_create_from_folder(
                        name=form.cleaned_data["name"],
                        folder=form.cleaned_data["folder"].strip(),
                        created_by=_acting_user(request),
                        class_folders=form.cleaned_data["class_folders"],
                    )
                else:
                    dataset = dataset_create_from_archive(
                        name=form.cleaned_data["name"],
                        archive=form.cleaned_data["archive"],
                        created_by=_acting_user(request),
                    )
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(
                    request, f"Dataset “{dataset.name}” created; the import is queued."
                )
                return redirect("dataset-detail", dataset_id=dataset.pk)
        return self._render(request, form, status=400)

    def _render(self, request: HttpRequest, form: DatasetCreateForm, status: int = 200):
        datasets = list(dataset_list())
        summaries = dataset_list_summaries(datasets=datasets)
        return render(
            request,
            self.template_name,
            {
                "datasets": datasets,
                "dataset_rows": [(dataset, summaries[dataset.pk]) for dataset in datasets],
                "form": form,
            },
            status=status,
        )


# Images matched to hash banks shown on the dataset page (the bank pages list the rest).
BANK_MATCHES_SHOWN = 24


def _dataset_page(
    request: HttpRequest,
    dataset: Dataset,
    *,
    run_form: ScoringRunForm | None = None,
    training_form: TrainingForm | None = None,
    export_form: ExportForm | None = None,
    reviewers_form: DatasetReviewersForm | None = None,
    status: int = 200,
) -> HttpResponse:
    model_key = _model_key()
    runs = list(dataset_runs(dataset=dataset, limit=RUNS_SHOWN))
    workers = runs_worker_progress(runs=runs)
    return render(
        request,
        "curation/dataset_detail.html",
        {
            "dataset": dataset,
            "summary": dataset_summary(dataset=dataset),
            "failed_images": dataset_failed_images(dataset=dataset, limit=FAILED_FILES_SHOWN),
            "failed_shown": FAILED_FILES_SHOWN,
            "runs": runs,
            # Each run with its per-worker progress (who took which chunks, rates).
            "run_rows": [(run, workers[run.pk]) for run in runs],
            "threshold_preview": dataset_threshold_preview(dataset=dataset),
            "exports": dataset_exports(dataset=dataset, limit=EXPORTS_SHOWN),
            "model_key": model_key,
            "has_prompt_versions": PromptVersion.objects.filter(model_key=model_key).exists(),
            "run_form": run_form or ScoringRunForm(model_key=model_key),
            "training_form": training_form or TrainingForm(model_key=model_key),
            "export_form": export_form or ExportForm(),
            "reviewers_form": reviewers_form
            or DatasetReviewersForm(
                initial={"reviewers": list(dataset_reviewers(dataset=dataset))}
            ),
            "importing": dataset.state in (Dataset.State.PENDING, Dataset.State.IMPORTING),
            "import_chunks": dataset_import_progress(dataset=dataset),
            "bank_matched": dataset_bank_matched_count(dataset=dataset),
            "bank_matches": dataset_bank_matches(dataset=dataset, limit=BANK_MATCHES_SHOWN),
        },
        status=status,
    )


class DatasetDetailView(StaffRequiredMixin, View):
    def get(self, request: HttpRequest, dataset_id: int) -> HttpResponse:
        return _dataset_page(request, get_object_or_404(Dataset, pk=dataset_id))


# Names the review backend may give the per-dataset review statistics API, in order.
REVIEW_STATS_API_NAMES = ("api-review-dataset-stats", "api-dataset-review-stats")


def _review_stats_api_url(dataset_id: int) -> str:
    for name in REVIEW_STATS_API_NAMES:
        try:
            return reverse(name, args=[dataset_id])
        except NoReverseMatch:
            continue
    return f"/api/review/datasets/{dataset_id}/stats/"


class DatasetStatsView(StaffRequiredMixin, View):
    """Review numbers and plots of a dataset: a shell that static/js/dataset_stats.js fills
    from the review statistics API (counts, precision, missed content, histogram,
    thresholds, throughput, agreement, retraining policy)."""

    def get(self, request: HttpRequest, dataset_id: int) -> HttpResponse:
        dataset = get_object_or_404(Dataset, pk=dataset_id)
        return render(
            request,
            "curation/dataset_stats.html",
            {
                "dataset": dataset,
                "stats_api_url": _review_stats_api_url(dataset.pk),
                "class_stats_api_url": reverse("api-dataset-class-stats", args=[dataset.pk]),
                # Followed by poll.js: the numbers load again when one of them ends.
                "active_runs": dataset_active_runs(dataset=dataset),
                # The figures' definitions, for the counts' tooltips (one glossary, every page).
                "glossary_json": json.dumps(FIGURES),
            },
        )


class ScoringRunStartView(StaffRequiredMixin, View):
    def post(self, request: HttpRequest, dataset_id: int) -> HttpResponse:
        dataset = get_object_or_404(Dataset, pk=dataset_id)
        form = ScoringRunForm(request.POST, model_key=_model_key())
        if form.is_valid():
            try:
                run = scoring_run_start(
                    dataset=dataset,
                    prompt_version=form.cleaned_data["prompt_version"],
                    threshold=form.cleaned_data["threshold"],
                    created_by=_acting_user(request),
                )
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, f"Scoring run #{run.pk} queued: {run.total} images.")
                return redirect(f"{reverse('dataset-detail', args=[dataset.pk])}#run-{run.pk}")
        return _dataset_page(request, dataset, run_form=form, status=400)


# --- Cancel and resume (runs, imports, prompt jobs) -------------------------------------------


def _state_action(request: HttpRequest, action, success: str, **kwargs) -> None:
    """Call a cancel / resume service; its refusal (a StateConflict) becomes a flash message."""
    try:
        action(**kwargs)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, success)


class DatasetImportCancelView(StaffRequiredMixin, View):
    def post(self, request: HttpRequest, dataset_id: int) -> HttpResponse:
        dataset = get_object_or_404(Dataset, pk=dataset_id)
        _state_action(
            request,
            dataset_import_cancel,
            "Import cancelled.",
            dataset=dataset,
            actor=_acting_user(request),
        )
        return redirect("dataset-detail", dataset_id=dataset.pk)


class DatasetImportResumeView(StaffRequiredMixin, View):
    def post(self, request: HttpRequest, dataset_id: int) -> HttpResponse:
        dataset = get_object_or_404(Dataset, pk=dataset_id)
        _state_action(
            request,
            dataset_import_resume,
            "Import queued again; files already recorded are skipped.",
            dataset=dataset,
            actor=_acting_user(request),
        )
        return redirect("dataset-detail", dataset_id=dataset.pk)


class ScoringRunCancelView(StaffRequiredMixin, View):
    def post(self, request: HttpRequest, run_id: int) -> HttpResponse:
        run = get_object_or_404(ScoringRun, pk=run_id)
        _state_action(
            request,
            scoring_run_cancel,
            f"Scoring run #{run.pk} cancelled.",
            run=run,
            actor=_acting_user(request),
        )
        return redirect(f"{reverse('dataset-detail', args=[run.dataset_id])}#run-{run.pk}")


class ScoringRunResumeView(StaffRequiredMixin, View):
    def post(self, request: HttpRequest, run_id: int) -> HttpResponse:
        run = get_object_or_404(ScoringRun, pk=run_id)
        _state_action(
            request,
            scoring_run_resume,
            f"Scoring run #{run.pk} resumed: its unfinished chunks are queued again.",
            run=run,
            actor=_acting_user(request),
        )
        return redirect(f"{reverse('dataset-detail', args=[run.dataset_id])}#run-{run.pk}")


class PromptJobCancelView(StaffRequiredMixin, View):
    def post(self, request: HttpRequest, job_id: int) -> HttpResponse:
        job = get_object_or_404(PromptJob, pk=job_id)
        _state_action(
            request,
            prompt_job_cancel,
            f"Prompt job #{job.pk} cancelled.",
            job=job,
            actor=_acting_user(request),
        )
        return redirect(f"{reverse('prompt-versions')}#job-{job.pk}")


class PromptJobResumeView(StaffRequiredMixin, View):
    def post(self, request: HttpRequest, job_id: int) -> HttpResponse:
        job = get_object_or_404(PromptJob, pk=job_id)
        _state_action(
            request,
            prompt_job_resume,
            f"Prompt job #{job.pk} queued again.",
            job=job,
            actor=_acting_user(request),
        )
        return redirect(f"{reverse('prompt-versions')}#job-{job.pk}")


class TrainingStartView(StaffRequiredMixin, View):
    def post(self, request: HttpRequest, dataset_id: int) -> HttpResponse:
        dataset = get_object_or_404(Dataset, pk=dataset_id)
        form = TrainingForm(request.POST, model_key=_model_key())
        if form.is_valid():
            values = form.cleaned_data
            try:
                job = prompt_job_create_training(
                    dataset=dataset,
                    parent=values["parent"],
                    config=tuning_config_from(values),
                    heldout_fraction=values["heldout_fraction"],
                    name=values["name"],
                    created_by=_acting_user(request),
                )
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(
                    request,
                    f"Training job #{job.pk} queued; the new version appears under Prompts.",
                )
                return redirect(f"{reverse('prompt-versions')}#job-{job.pk}")
        return _dataset_page(request, dataset, training_form=form, status=400)


class ExportStartView(StaffRequiredMixin, View):
    def post(self, request: HttpRequest, dataset_id: int) -> HttpResponse:
        dataset = get_object_or_404(Dataset, pk=dataset_id)
        form = ExportForm(request.POST)
        if form.is_valid():
            try:
                export = export_create(
                    dataset=dataset,
                    format=form.cleaned_data["format"],
                    scope=form.cleaned_data["scope"],
                    **form.export_options(),
                    created_by=_acting_user(request),
                )
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, f"Export #{export.pk} queued.")
                return redirect(f"{reverse('dataset-detail', args=[dataset.pk])}#exports")
        return _dataset_page(request, dataset, export_form=form, status=400)


class DatasetReviewersView(StaffRequiredMixin, View):
    """Choose which reviewers may review the dataset (admins review every dataset)."""

    def post(self, request: HttpRequest, dataset_id: int) -> HttpResponse:
        dataset = get_object_or_404(Dataset, pk=dataset_id)
        form = DatasetReviewersForm(request.POST)
        if form.is_valid():
            try:
                users = dataset_reviewers_set(
                    dataset=dataset,
                    user_ids=[user.pk for user in form.cleaned_data["reviewers"]],
                    assigned_by=_acting_user(request),
                )
            except DomainError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, f"{len(users)} reviewer(s) assigned to this dataset.")
                return redirect(f"{reverse('dataset-detail', args=[dataset.pk])}#reviewers")
        return _dataset_page(request, dataset, reviewers_form=form, status=400)
