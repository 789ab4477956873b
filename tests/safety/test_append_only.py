"""Data safety: verdicts are append-only; exports are snapshots that record what they used."""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path

import pytest
from django.db.models.signals import pre_delete, pre_save
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from curation.models import Export
from curation.services.exports import export_create
from labels.exports import export_build
from reviewer.models import Decision, DecisionRetraction, ReviewItem
from tests.reviewer.factories import make_dataset

pytestmark = pytest.mark.django_db


def _client(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def _api_routes() -> list[str]:
    """Every URL pattern under /api/, as a route string with <...> converters."""
    routes: list[str] = []

    def walk(patterns, prefix: str) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                routes.append(prefix + str(pattern.pattern))

    walk(get_resolver().url_patterns, "/")
    return [route for route in routes if route.startswith("/api/")]


def _snapshot() -> list[tuple]:
    return list(
        Decision.objects.order_by("pk").values_list(
            "pk", "item_id", "image_id", "reviewer_id", "verdict", "category", "created_at"
        )
    )


@pytest.fixture
def decided(admin_user, reviewer_user):
    from django.apps import apps

    dataset, run, images = make_dataset([0.95, 0.9, 0.85, 0.8])
    with contextlib.suppress(LookupError):
        apps.get_model("curation", "DatasetAssignment").objects.create(
            dataset=dataset, user=reviewer_user
        )
    reviewer = _client(reviewer_user)
    for verdict in ("inappropriate", "appropriate", "inappropriate"):
        item = reviewer.get("/api/review/next/", {"dataset": dataset.pk}).json()
        response = reviewer.post(
            f"/api/review/items/{item['id']}/decision/", {"verdict": verdict}, format="json"
        )
        assert response.status_code == 201, response.content
    return dataset, run, images


def test_no_api_endpoint_updates_or_deletes_a_verdict(decided, admin_user, reviewer_user):
    dataset, run, _ = decided
    decision = Decision.objects.order_by("pk").first()
    before = _snapshot()
    assert len(before) == 3
    ids = {
        "item_id": decision.item_id, "dataset_id": dataset.pk, "run_id": run.pk,
        "image_id": decision.image_id, "decision_id": decision.pk,
    }  # fmt: skip
    routes = _api_routes()
    assert any("decision" in route for route in routes)
    tried = 0
    for user in (admin_user, reviewer_user):
        client = _client(user)
        for route in routes:
            url = re.sub(
                r"<(?:\w+:)?(\w+)>", lambda m: str(ids.get(m.group(1), decision.pk)), route
            )
            for method in ("put", "patch", "delete"):
                getattr(client, method)(
                    url, {"verdict": "appropriate", "category": "x"}, format="json"
                )
                tried += 1
    assert tried > 30
    assert _snapshot() == before


def test_undo_appends_a_retraction_and_keeps_the_verdict(decided, reviewer_user):
    before = _snapshot()
    response = _client(reviewer_user).post("/api/review/undo/", {}, format="json")
    assert response.status_code in (200, 201), response.content
    assert _snapshot() == before  # the verdict row is still there, unchanged
    retraction = DecisionRetraction.objects.get()
    assert retraction.decision_id == before[-1][0]
    assert retraction.retracted_by == reviewer_user and retraction.created_at


def test_the_review_services_never_update_or_delete_decisions(decided, admin_user, reviewer_user):
    """Through a whole review session (decide, undo, re-decide, adjudicate, bulk decide),
    Decision rows are only ever inserted."""
    writes: list[str] = []

    def on_save(sender, instance, **kwargs):
        if instance.pk is not None:
            writes.append(f"update {instance.pk}")

    def on_delete(sender, instance, **kwargs):
        writes.append(f"delete {instance.pk}")

    pre_save.connect(on_save, sender=Decision, dispatch_uid="append-only-save")
    pre_delete.connect(on_delete, sender=Decision, dispatch_uid="append-only-delete")
    try:
        dataset, _, _ = decided
        reviewer = _client(reviewer_user)
        admin = _client(admin_user)
        assert reviewer.post("/api/review/undo/", {}, format="json").status_code in (200, 201)
        item = reviewer.get("/api/review/next/", {"dataset": dataset.pk}).json()
        reviewer.post(
            f"/api/review/items/{item['id']}/decision/", {"verdict": "appropriate"}, format="json"
        )
        decided_item = ReviewItem.objects.filter(state="decided").first()
        admin.post(
            f"/api/review/items/{decided_item.pk}/decision/",
            {"verdict": "appropriate"},
            format="json",
        )
        pending = list(ReviewItem.objects.filter(state="pending").values_list("pk", flat=True))
        admin.post(
            "/api/review/bulk-decision/",
            {"item_ids": pending, "verdict": "appropriate"},
            format="json",
        )
    finally:
        pre_save.disconnect(dispatch_uid="append-only-save", sender=Decision)
        pre_delete.disconnect(dispatch_uid="append-only-delete", sender=Decision)
    assert writes == []
    assert Decision.objects.count() >= 5


def test_exports_record_prompt_version_and_threshold_and_are_snapshots(
    decided, settings, tmp_path, reviewer_user
):
    settings.MEDIA_ROOT = tmp_path / "media"
    dataset, run, _ = decided
    export = export_create(dataset=dataset, format=Export.Format.JSON, queue=False)
    assert export.run == run
    assert export.prompt_version == run.prompt_version and export.threshold == run.threshold
    export = export_build(export_id=export.pk)
    body = json.loads(Path(export.file_path).read_text(encoding="utf-8"))
    assert body["provenance"]["threshold"] == run.threshold
    assert body["provenance"]["prompt_version"]["id"] == run.prompt_version_id
    assert body["provenance"]["run"] == run.pk
    assert {row["run"] for row in body["rows"]} == {run.pk}
    written = Path(export.file_path).read_bytes()

    # Later verdicts do not change a finished export, and building it again is a no-op.
    reviewer = _client(reviewer_user)
    item = reviewer.get("/api/review/next/", {"dataset": dataset.pk}).json()
    reviewer.post(
        f"/api/review/items/{item['id']}/decision/", {"verdict": "inappropriate"}, format="json"
    )
    export_build(export_id=export.pk)
    assert Path(export.file_path).read_bytes() == written
