"""Browser pages of the curation app (admins), included at the site root."""

from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("datasets/", views.DatasetListView.as_view(), name="dataset-list"),
    path("datasets/<int:dataset_id>/", views.DatasetDetailView.as_view(), name="dataset-detail"),
    path(
        "datasets/<int:dataset_id>/stats/",
        views.DatasetStatsView.as_view(),
        name="dataset-stats",
    ),
    path(
        "datasets/<int:dataset_id>/cancel-import/",
        views.DatasetImportCancelView.as_view(),
        name="dataset-cancel-import",
    ),
    path(
        "datasets/<int:dataset_id>/resume-import/",
        views.DatasetImportResumeView.as_view(),
        name="dataset-resume-import",
    ),
    path("runs/<int:run_id>/cancel/", views.ScoringRunCancelView.as_view(), name="run-cancel"),
    path("runs/<int:run_id>/resume/", views.ScoringRunResumeView.as_view(), name="run-resume"),
    path(
        "datasets/<int:dataset_id>/runs/",
        views.ScoringRunStartView.as_view(),
        name="dataset-run-start",
    ),
    path(
        "datasets/<int:dataset_id>/train/",
        views.TrainingStartView.as_view(),
        name="dataset-train",
    ),
    path(
        "datasets/<int:dataset_id>/exports/",
        views.ExportStartView.as_view(),
        name="dataset-export",
    ),
    path(
        "datasets/<int:dataset_id>/reviewers/",
        views.DatasetReviewersView.as_view(),
        name="dataset-reviewers",
    ),
    path("prompts/", views.PromptVersionListView.as_view(), name="prompt-versions"),
    path("prompts/zero-shot/", views.PromptZeroShotView.as_view(), name="prompt-zero-shot"),
    path("prompts/import/", views.PromptImportView.as_view(), name="prompt-import"),
    path(
        "prompts/jobs/<int:job_id>/cancel/",
        views.PromptJobCancelView.as_view(),
        name="prompt-job-cancel",
    ),
    path(
        "prompts/jobs/<int:job_id>/resume/",
        views.PromptJobResumeView.as_view(),
        name="prompt-job-resume",
    ),
    path(
        "prompts/<int:version_id>/activate/",
        views.PromptActivateView.as_view(),
        name="prompt-activate",
    ),
]
