from django.urls import path

from . import views

urlpatterns = [
    path("next/", views.ReviewNextApi.as_view(), name="api-review-next"),
    path("stats/", views.ReviewStatsApi.as_view(), name="api-review-stats"),
    path(
        "items/<int:item_id>/decision/",
        views.ReviewDecisionApi.as_view(),
        name="api-review-decision",
    ),
    path(
        "items/<int:item_id>/release/", views.ReviewReleaseApi.as_view(), name="api-review-release"
    ),
]
