"""Browser pages of the curation app (admins), included at the site root."""

from django.urls import path

from . import audit_views, bank_views, prompt_views, user_views, views

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
    path("banks/", bank_views.BankListView.as_view(), name="hash-bank-list"),
    path("banks/<int:bank_id>/", bank_views.BankDetailView.as_view(), name="hash-bank-detail"),
    path(
        "banks/<int:bank_id>/rematch/",
        bank_views.BankRematchView.as_view(),
        name="hash-bank-rematch",
    ),
    path(
        "banks/<int:bank_id>/delete/", bank_views.BankDeleteView.as_view(), name="hash-bank-delete"
    ),
    path("users/", user_views.UserListView.as_view(), name="user-list"),
    path("users/<int:user_id>/", user_views.UserDetailView.as_view(), name="user-detail"),
    path(
        "users/<int:user_id>/password/",
        user_views.UserPasswordView.as_view(),
        name="user-password",
    ),
    path("users/<int:user_id>/role/", user_views.UserRoleView.as_view(), name="user-role"),
    path(
        "users/<int:user_id>/deactivate/",
        user_views.UserDeactivateView.as_view(),
        name="user-deactivate",
    ),
    path(
        "users/<int:user_id>/reactivate/",
        user_views.UserReactivateView.as_view(),
        name="user-reactivate",
    ),
    path(
        "users/<int:user_id>/datasets/",
        user_views.UserDatasetsView.as_view(),
        name="user-datasets",
    ),
    path("prompts/", prompt_views.PromptVersionListView.as_view(), name="prompt-versions"),
    path("prompts/zero-shot/", prompt_views.PromptZeroShotView.as_view(), name="prompt-zero-shot"),
    path("prompts/import/", prompt_views.PromptImportView.as_view(), name="prompt-import"),
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
        "prompts/<int:version_id>/activate/confirm/",
        prompt_views.PromptActivateConfirmView.as_view(),
        name="prompt-activate-confirm",
    ),
    path(
        "prompts/<int:version_id>/activate/",
        prompt_views.PromptActivateView.as_view(),
        name="prompt-activate",
    ),
    path("audit/", audit_views.AuditLogView.as_view(), name="audit-log"),
    path("audit/export.csv", audit_views.AuditLogExportView.as_view(), name="audit-log-export"),
]
