"""The dataset review settings API carries the audit share and category renames."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from audit.models import AuditEvent
from reviewer.models import Decision
from reviewer.services.decisions import review_decision_record
from reviewer.services.settings import review_settings_update
from tests.reviewer.factories import item_of, make_dataset

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _reviewers_assigned(reviewers_assigned_everywhere):
    return reviewers_assigned_everywhere


def admin_client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_audit_share_and_renames_through_the_api(admin_user, reviewer_user):
    dataset, _, images = make_dataset([0.9])
    review_settings_update(dataset=dataset, categories=["a", "b"])
    review_decision_record(
        item_id=item_of(images[0]).pk, reviewer=reviewer_user, verdict="inappropriate",
        category="a",
    )  # fmt: skip
    url = f"/api/review/datasets/{dataset.pk}/settings/"
    client = admin_client(admin_user)
    response = client.put(
        url,
        {"audit_share": 0.2, "categories": ["c", "b"], "category_renames": {"a": "c"}},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["audit_share"] == 0.2 and response.json()["categories"] == ["c", "b"]
    assert Decision.objects.get(image=images[0]).category == "c"
    event = AuditEvent.objects.get(action="review_settings.update", actor=admin_user)
    assert event.after == {"categories": ["c", "b"], "audit_share": 0.2}
    assert client.get(url).json()["audit_share"] == 0.2


@pytest.mark.parametrize(
    "body",
    [
        {"audit_share": 0.9},
        {"audit_share": -1},
        {"audit_share": "NaN"},
        {"category_renames": ["a"]},
        {"categories": ["a", "b"], "category_renames": {"zzz": "a"}},
    ],
)
def test_bad_settings_answer_400(admin_user, body):
    dataset, _, _ = make_dataset([0.9])
    response = admin_client(admin_user).put(
        f"/api/review/datasets/{dataset.pk}/settings/", body, format="json"
    )
    assert response.status_code == 400, response.content
    assert not AuditEvent.objects.filter(action="review_settings.update").exists()
