from csp.decorators import csp_update
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from curation.api.token_views import obtain_auth_token
from curation.media import image_file, image_thumbnail
from reviewer.api.classes import DatasetClassStatsApi
from reviewer.api.decisions import ImageHistoryApi
from reviewer.api.stats import DatasetReviewStatsApi

urlpatterns = [
    path("django-admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("images/<int:image_id>/file/", image_file, name="image-file"),
    path("images/<int:image_id>/thumbnail/", image_thumbnail, name="image-thumbnail"),
    path(
        "api/datasets/<int:dataset_id>/review-stats/",
        DatasetReviewStatsApi.as_view(),
        name="api-dataset-review-stats",
    ),
    path(
        "api/datasets/<int:dataset_id>/class-stats/",
        DatasetClassStatsApi.as_view(),
        name="api-dataset-class-stats",
    ),
    path("api/images/<int:image_id>/history/", ImageHistoryApi.as_view(), name="api-image-history"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Swagger UI without inline script (its init script is a separate URL); Swagger UI sets
    # inline style attributes, so this page alone allows them (scripts stay 'self' only).
    path(
        "api/docs/",
        csp_update({"style-src": ["'unsafe-inline'"]})(
            SpectacularSwaggerSplitView.as_view(url_name="api-schema")
        ),
        name="api-docs",
    ),
    path("api/", include("curation.api.urls")),
    path("api/review/", include("reviewer.api.urls")),
    path("api/auth/token/", obtain_auth_token, name="api-token"),
    path("review/", include("reviewer.urls")),
    path("", include("labels.urls")),
    path("", include("curation.urls")),
]
