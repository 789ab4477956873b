from django.urls import path

from . import views

urlpatterns = [
    path("next/", views.ReviewNextApi.as_view(), name="api-review-next"),
    path("batch/", views.ReviewBatchApi.as_view(), name="api-review-batch"),
    path("stats/", views.ReviewStatsApi.as_view(), name="api-review-stats"),
    path("undo/", views.ReviewUndoApi.as_view(), name="api-review-undo"),
    path("release/", views.ReviewLeasesReleaseApi.as_view(), name="api-review-leases-release"),
    path("bulk-decision/", views.ReviewBulkDecisionApi.as_view(), name="api-review-bulk-decision"),
    path("preferences/", views.ReviewPreferencesApi.as_view(), name="api-review-preferences"),
    path(
        "items/<int:item_id>/decision/",
        views.ReviewDecisionApi.as_view(),
        name="api-review-decision",
    ),
    path(
        "items/<int:item_id>/release/", views.ReviewReleaseApi.as_view(), name="api-review-release"
    ),
    path(
        "datasets/<int:dataset_id>/settings/",
        views.DatasetReviewSettingsApi.as_view(),
        name="api-review-dataset-settings",
    ),
]
