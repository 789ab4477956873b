from django.urls import path

from . import bank_views, export_views, views
from .reviewers import DatasetReviewersApi

urlpatterns = [
    path("config/", views.ConfigApi.as_view(), name="api-config"),
    path("datasets/", views.DatasetListApi.as_view(), name="api-datasets"),
    path("datasets/<int:dataset_id>/", views.DatasetDetailApi.as_view(), name="api-dataset"),
    path(
        "datasets/<int:dataset_id>/images/",
        views.DatasetImagesApi.as_view(),
        name="api-dataset-images",
    ),
    path(
        "datasets/<int:dataset_id>/cancel-import/",
        views.DatasetCancelImportApi.as_view(),
        name="api-dataset-cancel-import",
    ),
    path(
        "datasets/<int:dataset_id>/resume-import/",
        views.DatasetResumeImportApi.as_view(),
        name="api-dataset-resume-import",
    ),
    path(
        "datasets/<int:dataset_id>/reimport/",
        views.DatasetReimportApi.as_view(),
        name="api-dataset-reimport",
    ),
    path(
        "datasets/<int:dataset_id>/reviewers/",
        DatasetReviewersApi.as_view(),
        name="api-dataset-reviewers",
    ),
    path("runs/", views.RunListApi.as_view(), name="api-runs"),
    path("runs/<int:run_id>/", views.RunDetailApi.as_view(), name="api-run"),
    path("runs/<int:run_id>/cancel/", views.RunCancelApi.as_view(), name="api-run-cancel"),
    path("runs/<int:run_id>/resume/", views.RunResumeApi.as_view(), name="api-run-resume"),
    path("prompt-versions/", views.PromptVersionListApi.as_view(), name="api-prompt-versions"),
    path(
        "prompt-versions/import/",
        views.PromptVersionImportApi.as_view(),
        name="api-prompt-versions-import",
    ),
    path(
        "prompt-versions/<int:version_id>/",
        views.PromptVersionDetailApi.as_view(),
        name="api-prompt-version",
    ),
    path(
        "prompt-versions/<int:version_id>/activate/",
        views.PromptVersionActivateApi.as_view(),
        name="api-prompt-version-activate",
    ),
    path("prompt-jobs/", views.PromptJobListApi.as_view(), name="api-prompt-jobs"),
    path("prompt-jobs/<int:job_id>/", views.PromptJobDetailApi.as_view(), name="api-prompt-job"),
    path(
        "prompt-jobs/<int:job_id>/cancel/",
        views.PromptJobCancelApi.as_view(),
        name="api-prompt-job-cancel",
    ),
    path(
        "prompt-jobs/<int:job_id>/resume/",
        views.PromptJobResumeApi.as_view(),
        name="api-prompt-job-resume",
    ),
    path("hash-banks/", bank_views.HashBankListApi.as_view(), name="api-hash-banks"),
    path("hash-banks/<int:bank_id>/", bank_views.HashBankDetailApi.as_view(), name="api-hash-bank"),
    path(
        "hash-banks/<int:bank_id>/entries/",
        bank_views.HashBankEntriesApi.as_view(),
        name="api-hash-bank-entries",
    ),
    path(
        "hash-banks/<int:bank_id>/matches/",
        bank_views.HashBankMatchesApi.as_view(),
        name="api-hash-bank-matches",
    ),
    path("exports/", export_views.ExportListApi.as_view(), name="api-exports"),
    path("exports/<int:export_id>/", export_views.ExportDetailApi.as_view(), name="api-export"),
    path(
        "exports/<int:export_id>/download/",
        export_views.ExportDownloadApi.as_view(),
        name="api-export-download",
    ),
]
