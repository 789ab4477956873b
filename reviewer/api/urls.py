from django.urls import path

from reviewer.api import decisions, exposure, queue, settings

urlpatterns = [
    path("next/", queue.ReviewNextApi.as_view(), name="api-review-next"),
    path("batch/", queue.ReviewBatchApi.as_view(), name="api-review-batch"),
    path("stats/", queue.ReviewStatsApi.as_view(), name="api-review-stats"),
    path("undo/", decisions.ReviewUndoApi.as_view(), name="api-review-undo"),
    path("release/", queue.ReviewLeasesReleaseApi.as_view(), name="api-review-leases-release"),
    path("leases/renew/", queue.ReviewLeasesRenewApi.as_view(), name="api-review-leases-renew"),
    path(
        "bulk-decision/", decisions.ReviewBulkDecisionApi.as_view(), name="api-review-bulk-decision"
    ),
    path("preferences/", settings.ReviewPreferencesApi.as_view(), name="api-review-preferences"),
    path(
        "items/<int:item_id>/decision/",
        decisions.ReviewDecisionApi.as_view(),
        name="api-review-decision",
    ),
    path(
        "items/<int:item_id>/release/", queue.ReviewReleaseApi.as_view(), name="api-review-release"
    ),
    path(
        "datasets/<int:dataset_id>/settings/",
        settings.DatasetReviewSettingsApi.as_view(),
        name="api-review-dataset-settings",
    ),
    path("reveals/", exposure.RevealStartApi.as_view(), name="api-review-reveals"),
    path(
        "reveals/<int:reveal_id>/end/",
        exposure.RevealEndApi.as_view(),
        name="api-review-reveal-end",
    ),
    path("exposure/", exposure.ExposureStatusApi.as_view(), name="api-review-exposure"),
]
