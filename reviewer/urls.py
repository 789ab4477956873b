"""Browser pages of the review app, included at /review/."""

from django.urls import path

from . import exposure_views, settings_views, views

urlpatterns = [
    path("", views.ReviewView.as_view(), name="review"),
    path(
        "datasets/<int:dataset_id>/settings/",
        settings_views.DatasetReviewSettingsView.as_view(),
        name="dataset-review-settings",
    ),
    path("exposure/", exposure_views.ExposureView.as_view(), name="review-exposure"),
    path(
        "exposure/reviewers/<int:user_id>/",
        exposure_views.ExposureSettingsView.as_view(),
        name="review-exposure-settings",
    ),
]
