"""The review API's routes are in the OpenAPI schema."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient


@pytest.mark.django_db
def test_review_routes_are_documented(admin_user):
    client = APIClient()
    client.force_login(admin_user)
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    for path in (
        "/api/review/next/",
        "/api/review/batch/",
        "/api/review/undo/",
        "/api/review/bulk-decision/",
        "/api/review/preferences/",
        "/api/review/datasets/{dataset_id}/settings/",
        "/api/datasets/{dataset_id}/review-stats/",
        "/api/images/{image_id}/history/",
    ):
        assert path in schema["paths"], path
    next_params = {p["name"] for p in schema["paths"]["/api/review/next/"]["get"]["parameters"]}
    assert {
        "dataset",
        "mode",
        "score_min",
        "score_max",
        "folder",
        "category",
        "state",
    } <= next_params
