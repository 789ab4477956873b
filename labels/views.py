"""The dataset report's pages (admins): the page, its standalone HTML and PDF downloads, and
the form that edits and publishes the answer paragraph."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.text import slugify
from django.views import View

from curation.errors import DomainError
from curation.models import Dataset
from curation.views import StaffRequiredMixin, _acting_user
from labels.report.render import report_context, report_pdf, report_standalone_html
from labels.report.services import MAX_ANSWER_CHARS, report_answer_save

PUBLISHED_MESSAGES = {
    "save": "Answer saved as a draft.",
    "publish": "Answer published.",
    "unpublish": "Answer withdrawn; it is a draft again.",
}


def _report_page(
    request: HttpRequest, dataset: Dataset, *, typed: str | None = None, error: str = "", status=200
) -> HttpResponse:
    context = report_context(dataset=dataset)
    context["typed"] = typed if typed is not None else context["answer"]
    context["error"] = error
    context["max_answer_chars"] = MAX_ANSWER_CHARS
    return render(request, "labels/report.html", context, status=status)


class DatasetReportView(StaffRequiredMixin, View):
    def get(self, request: HttpRequest, dataset_id: int) -> HttpResponse:
        return _report_page(request, get_object_or_404(Dataset, pk=dataset_id))


class DatasetReportAnswerView(StaffRequiredMixin, View):
    def post(self, request: HttpRequest, dataset_id: int) -> HttpResponse:
        dataset = get_object_or_404(Dataset, pk=dataset_id)
        text = request.POST.get("answer_text", "")
        action = request.POST.get("action", "")
        try:
            report_answer_save(
                dataset=dataset, text=text, action=action, actor=_acting_user(request)
            )
        except DomainError as exc:
            return _report_page(request, dataset, typed=text, error=exc.message, status=400)
        messages.success(request, PUBLISHED_MESSAGES[action])
        return redirect(f"{reverse('dataset-report', args=[dataset.pk])}#answer")


def _unblurred(request: HttpRequest) -> bool | None:
    """The "include unblurred examples" tick: absent or empty = no, "1" = yes, else None."""
    value = request.GET.get("unblurred", "")
    return {"": False, "0": False, "1": True}.get(value)


def _download(content: bytes | str, *, dataset: Dataset, content_type: str, ext: str):
    response = HttpResponse(content, content_type=content_type)
    name = slugify(dataset.name) or f"dataset-{dataset.pk}"
    response["Content-Disposition"] = f'attachment; filename="q16-report-{name}.{ext}"'
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "no-store"
    return response


class DatasetReportHtmlView(StaffRequiredMixin, View):
    def get(self, request: HttpRequest, dataset_id: int) -> HttpResponse:
        dataset = get_object_or_404(Dataset, pk=dataset_id)
        unblurred = _unblurred(request)
        if unblurred is None:
            return HttpResponseBadRequest("unblurred must be 1 or left out.")
        html = report_standalone_html(dataset=dataset, unblurred=unblurred)
        return _download(html, dataset=dataset, content_type="text/html; charset=utf-8", ext="html")


class DatasetReportPdfView(StaffRequiredMixin, View):
    """Built on request: a few seconds at most on a dataset's report (docs/report.md)."""

    def get(self, request: HttpRequest, dataset_id: int) -> HttpResponse:
        dataset = get_object_or_404(Dataset, pk=dataset_id)
        unblurred = _unblurred(request)
        if unblurred is None:
            return HttpResponseBadRequest("unblurred must be 1 or left out.")
        pdf = report_pdf(dataset=dataset, unblurred=unblurred)
        return _download(pdf, dataset=dataset, content_type="application/pdf", ext="pdf")
