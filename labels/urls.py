"""The dataset report's pages, included at the site root."""

from django.urls import path

from . import views

urlpatterns = [
    path(
        "datasets/<int:dataset_id>/report/",
        views.DatasetReportView.as_view(),
        name="dataset-report",
    ),
    path(
        "datasets/<int:dataset_id>/report/answer/",
        views.DatasetReportAnswerView.as_view(),
        name="dataset-report-answer",
    ),
    path(
        "datasets/<int:dataset_id>/report/report.html",
        views.DatasetReportHtmlView.as_view(),
        name="dataset-report-html",
    ),
    path(
        "datasets/<int:dataset_id>/report/report.pdf",
        views.DatasetReportPdfView.as_view(),
        name="dataset-report-pdf",
    ),
]
