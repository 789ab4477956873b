"""The review page: a shell that static/js/review.js drives over the review API."""

from __future__ import annotations

from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views import View

from curation.forms import ReviewQueueForm

# A placeholder the script replaces with an item id in the per-item API URLs.
ITEM_ID_PLACEHOLDER = "0"


def _item_url(name: str) -> str:
    url = reverse(name, args=[int(ITEM_ID_PLACEHOLDER)])
    return url.replace(f"/{ITEM_ID_PLACEHOLDER}/", "/{id}/")


class ReviewView(LoginRequiredMixin, View):
    """Any logged-in user reviews; `?dataset=<id>` limits the queue to one dataset."""

    def get(self, request: HttpRequest) -> HttpResponse:
        form = ReviewQueueForm(request.GET)
        if form.is_valid():
            dataset = form.cleaned_data["dataset"]
        else:  # an unknown dataset id: fall back to the whole queue
            dataset, form = None, ReviewQueueForm()
        return render(
            request,
            "reviewer/review.html",
            {
                "queue_form": form,
                "dataset": dataset,
                "next_url": reverse("api-review-next"),
                "stats_url": reverse("api-review-stats"),
                "decision_url": _item_url("api-review-decision"),
                "release_url": _item_url("api-review-release"),
            },
        )
