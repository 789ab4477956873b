"""The review page: a shell that static/js/review.js drives over the review API."""

from __future__ import annotations

import json

from django.conf import settings
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.views import View

from curation.forms import ReviewQueueForm
from reviewer.models import DEFAULT_CATEGORIES, DEFAULT_KEYMAP, ReviewSettings
from reviewer.selectors.classes import dataset_class_counts

# A placeholder the script replaces with an item id in the per-item API URLs.
ITEM_ID_PLACEHOLDER = "0"

# Queue modes offered in the toolbar: (value, label, admins only).
QUEUE_MODES = (
    ("score", "Highest score", False),
    ("uncertain", "Most uncertain", False),
    ("learn", "Learn (uncertain + highest)", False),
    ("audit", "Audit sample", False),
    ("disagreement", "Disagreements", True),
)
FILTER_PARAMS = (
    "mode", "state", "score_min", "score_max", "folder", "category", "class_label", "view",
)  # fmt: skip


def _url(name: str, fallback: str, *, item: bool = False) -> str:
    """The API URL by name; the documented path while an endpoint is not mounted yet."""
    try:
        if not item:
            return reverse(name)
        url = reverse(name, args=[int(ITEM_ID_PLACEHOLDER)])
        return url.replace(f"/{ITEM_ID_PLACEHOLDER}/", "/{id}/")
    except NoReverseMatch:
        return fallback


def _item_url(name: str) -> str:
    url = reverse(name, args=[int(ITEM_ID_PLACEHOLDER)])
    return url.replace(f"/{ITEM_ID_PLACEHOLDER}/", "/{id}/")


class ReviewView(LoginRequiredMixin, View):
    """Any logged-in user reviews; `?dataset=<id>` and the filters narrow the queue.

    The filters (`mode`, `score_min`, `score_max`, `folder`, `category`, `class_label`,
    `view`) are
    read by the script from the URL and passed to the API; they are rendered here too
    so the toolbar shows them before the script runs.
    """

    def get(self, request: HttpRequest) -> HttpResponse:
        form = ReviewQueueForm(request.GET, user=request.user)
        if form.is_valid():
            dataset = form.cleaned_data["dataset"]
        else:  # an unknown (or not assigned) dataset id: fall back to the whole queue
            dataset, form = None, ReviewQueueForm(user=request.user)
        is_staff = request.user.is_staff
        modes = [(value, label) for value, label, staff in QUEUE_MODES if is_staff or not staff]
        filters = {key: request.GET.get(key, "").strip()[:200] for key in FILTER_PARAMS}
        if filters["mode"] not in {value for value, _ in modes}:
            filters["mode"] = "score"
        # Suggestions for the category filter: the dataset's taxonomy when one is chosen
        # (items carry their own taxonomy for the verdict keys).
        categories = None
        if dataset is not None:
            categories = (
                ReviewSettings.objects.filter(dataset=dataset)
                .values_list("categories", flat=True)
                .first()
            )
        categories = categories or DEFAULT_CATEGORIES
        # The class filter, only for a dataset with class labels (ImageFolder imports).
        classes = dataset_class_counts(dataset_id=dataset.pk) if dataset is not None else []
        return render(
            request,
            "reviewer/review.html",
            {
                "queue_form": form,
                "dataset": dataset,
                "modes": modes,
                "filters": filters,
                "categories": list(categories),
                "classes": classes,
                # The script's default keys (a JSON data attribute, escaped like the others:
                # the CSP allows no inline script, data included): the server's list is the only one.
                "default_keymap_json": json.dumps(DEFAULT_KEYMAP),
                # The taxonomy the preferences and the help name the category keys after while
                # no item is on screen (items carry their own).
                "categories_json": json.dumps(list(categories)),
                # The page renews its leases every half lease (static/js/review/leases.js).
                "lease_seconds": settings.Q16_LEASE_SECONDS,
                "renew_url": reverse("api-review-leases-renew"),
                "next_url": reverse("api-review-next"),
                "batch_url": _url("api-review-batch", "/api/review/batch/"),
                "stats_url": reverse("api-review-stats"),
                "decision_url": _item_url("api-review-decision"),
                "bulk_url": _url("api-review-bulk-decision", "/api/review/bulk-decision/"),
                "undo_url": _url("api-review-undo", "/api/review/undo/"),
                "release_url": _item_url("api-review-release"),
                "preferences_url": _url("api-review-preferences", "/api/review/preferences/"),
            },
        )
