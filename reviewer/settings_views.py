"""The review settings page of a dataset (admins): verdicts per item, categories, near-duplicate
distance, audit share, automatic retraining and the pinned version, saved through
review_settings_update (the same service as the API)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views import View

from curation.errors import DomainError
from curation.models import Dataset
from curation.views import StaffRequiredMixin, _acting_user
from reviewer.models import ReviewSettings
from reviewer.selectors.settings import review_settings_get
from reviewer.services.settings import review_settings_update
from reviewer.settings_forms import (
    CATEGORY_KEYS,
    BaseCategoryFormSet,
    ReviewSettingsForm,
    category_formset,
)


def _page(
    request: HttpRequest,
    *,
    dataset: Dataset,
    rules: ReviewSettings,
    form: ReviewSettingsForm,
    categories: BaseCategoryFormSet,
    status: int = 200,
) -> HttpResponse:
    return render(
        request,
        "reviewer/dataset_settings.html",
        {
            "dataset": dataset,
            "rules": rules,
            "form": form,
            "categories": categories,
            "category_keys": CATEGORY_KEYS,
        },
        status=status,
    )


class DatasetReviewSettingsView(StaffRequiredMixin, View):
    def get(self, request: HttpRequest, dataset_id: int) -> HttpResponse:
        dataset = get_object_or_404(Dataset, pk=dataset_id)
        rules = review_settings_get(dataset_id=dataset.pk)
        form = ReviewSettingsForm(initial=ReviewSettingsForm.initial_from(rules), dataset=dataset)
        categories = category_formset(categories=list(rules.categories))
        return _page(request, dataset=dataset, rules=rules, form=form, categories=categories)

    def post(self, request: HttpRequest, dataset_id: int) -> HttpResponse:
        dataset = get_object_or_404(Dataset, pk=dataset_id)
        form = ReviewSettingsForm(request.POST, dataset=dataset)
        categories = category_formset(request.POST)
        status = 400
        # Both validated, so every mistake on the page shows at once.
        form_valid, categories_valid = form.is_valid(), categories.is_valid()
        if form_valid and categories_valid:
            try:
                review_settings_update(
                    dataset=dataset,
                    updated_by=_acting_user(request),
                    categories=categories.names(),
                    category_renames=categories.renames(),
                    **form.settings(),
                )
            except DomainError as exc:
                form.add_error(None, exc.message)
                status = exc.status_code
            else:
                messages.success(request, "Review settings saved.")
                return redirect("dataset-review-settings", dataset_id=dataset.pk)
        rules = review_settings_get(dataset_id=dataset.pk)
        return _page(
            request, dataset=dataset, rules=rules, form=form, categories=categories, status=status
        )
