"""Propagation through the decision API respects other reviewers' leases and the k rule.

Issue 9, defect 1: reviewer A's verdict used to land on a copy reviewer B held (B's later
verdict got 409 and B's lease was gone), and on items of a k > 1 dataset as if it were an
independent verdict.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from reviewer.models import Decision, ReviewItem
from reviewer.services.settings import review_settings_update
from tests.reviewer.factories import item_of, make_dataset, sha

pytestmark = pytest.mark.django_db


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def two_reviewers(django_user_model):
    return [django_user_model.objects.create_user(username=n, password="x") for n in "ab"]


def decide(client: APIClient, item_id: int, **body):
    return client.post(
        f"/api/review/items/{item_id}/decision/", {"verdict": "appropriate", **body},
        format="json",
    )  # fmt: skip


def twins(n_twins: int = 1, **kwargs):
    """Image 0 and the next n_twins byte-identical, highest score first; one unrelated image."""
    same = sha("same")
    scores = [0.9 - 0.05 * i for i in range(n_twins + 2)]
    return make_dataset(scores, hashes=[same] * (n_twins + 1) + [sha("other")], **kwargs)


def test_identical_copy_leased_by_another_reviewer_is_skipped_and_reported(two_reviewers):
    a, b = (client_for(user) for user in two_reviewers)
    dataset, _, images = twins()
    first = a.get("/api/review/next/", {"dataset": dataset.pk}).json()
    held = b.get("/api/review/batch/", {"dataset": dataset.pk, "limit": 10}).json()["items"]
    copy = item_of(images[1])
    assert first["image_id"] == images[0].pk and copy.pk in {item["id"] for item in held}

    response = decide(a, first["id"])
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["propagated_image_ids"] == []
    [skipped] = body["skipped_propagation"]
    assert skipped["image_id"] == images[1].pk and skipped["item_id"] == copy.pk
    assert skipped["reason"].startswith("held by another reviewer until ")
    copy.refresh_from_db()
    assert copy.state == ReviewItem.State.PENDING
    assert copy.leased_by_id == two_reviewers[1].pk
    assert not Decision.objects.filter(item=copy).exists()

    # B's lease and B's verdict stand.
    later = decide(b, copy.pk, verdict="inappropriate")
    assert later.status_code == 201, later.content
    assert item_of(images[1]).state == ReviewItem.State.DECIDED
    # ... and does not reopen A's decided item as a dispute.
    assert later.json()["skipped_propagation"] == [
        {"image_id": images[0].pk, "item_id": first["id"], "reason": "already decided"}
    ]
    assert item_of(images[0]).state == ReviewItem.State.DECIDED


def test_near_duplicate_in_apply_to_leased_by_another_reviewer_is_skipped(two_reviewers):
    a, b = (client_for(user) for user in two_reviewers)
    dataset, _, images = make_dataset(
        [0.9, 0.8, 0.7], phashes=["0000000000000000", "0000000000000007", "ffffffff00000000"]
    )
    first = a.get("/api/review/next/", {"dataset": dataset.pk}).json()
    b.get("/api/review/batch/", {"dataset": dataset.pk, "limit": 10})
    near = item_of(images[1])
    assert near.leased_by_id == two_reviewers[1].pk

    response = decide(a, first["id"], apply_to=[images[1].pk])
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["propagated_image_ids"] == []
    assert [(s["image_id"], s["item_id"]) for s in body["skipped_propagation"]] == [
        (images[1].pk, near.pk)
    ]
    assert "another reviewer" in body["skipped_propagation"][0]["reason"]
    near.refresh_from_db()
    assert near.state == ReviewItem.State.PENDING and near.leased_by_id == two_reviewers[1].pk
    assert decide(b, near.pk).status_code == 201


def test_own_expired_and_unleased_copies_still_receive_the_verdict(two_reviewers):
    a_user, b_user = two_reviewers
    a, b = client_for(a_user), client_for(b_user)
    dataset, _, images = twins(n_twins=3)
    # A holds images 0 and 1; B held image 2 but the lease ran out; image 3 is unleased.
    held = a.get("/api/review/batch/", {"dataset": dataset.pk, "limit": 2}).json()["items"]
    assert [item["image_id"] for item in held] == [images[0].pk, images[1].pk]
    b.get("/api/review/next/", {"dataset": dataset.pk})
    ReviewItem.objects.filter(image=images[2]).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert item_of(images[2]).leased_by_id == b_user.pk

    response = decide(a, held[0]["id"])
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["propagated_image_ids"] == [images[1].pk, images[2].pk, images[3].pk]
    assert body["skipped_propagation"] == []
    for image in images[1:4]:
        item = item_of(image)
        assert item.state == ReviewItem.State.DECIDED and item.leased_by_id is None


def test_k2_dataset_copies_are_skipped_not_counted(two_reviewers):
    a_user, b_user = two_reviewers
    a, b = client_for(a_user), client_for(b_user)
    dataset, _, images = twins(n_twins=2)
    review_settings_update(dataset=dataset, required_verdicts=2)
    # B already gave image 2 a verdict: A's copy would have been its second, deciding it.
    assert decide(b, item_of(images[2]).pk).status_code == 201

    response = decide(a, item_of(images[0]).pk)
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["propagated_image_ids"] == []
    assert [(s["image_id"], s["reason"]) for s in body["skipped_propagation"]] == [
        (images[1].pk, "needs 2 independent verdicts"),
        (images[2].pk, "needs 2 independent verdicts"),
    ]
    assert item_of(images[1]).state == ReviewItem.State.PENDING
    assert item_of(images[2]).state == ReviewItem.State.PENDING
    assert not Decision.objects.filter(propagated_from__isnull=False).exists()
    # Each copy still takes two reviewers of its own: A may give image 1 its own verdict.
    assert decide(a, item_of(images[1]).pk).status_code == 201
    assert item_of(images[1]).state == ReviewItem.State.PENDING
    assert decide(b, item_of(images[1]).pk).status_code == 201
    assert item_of(images[1]).state == ReviewItem.State.DECIDED


def test_schema_documents_the_skip_list(admin_user):
    schema = (
        client_for(admin_user)
        .get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
        .json()
    )
    components = schema["components"]["schemas"]
    output = components["ReviewDecisionOutput"]
    assert {"propagated_image_ids", "skipped_propagation"} <= set(output["required"])
    ref = output["properties"]["skipped_propagation"]["items"]["$ref"]
    skipped = components[ref.rsplit("/", 1)[-1]]
    assert set(skipped["properties"]) == {"image_id", "item_id", "reason"}
    assert set(skipped["required"]) == {"image_id", "item_id", "reason"}
    decision = schema["paths"]["/api/review/items/{item_id}/decision/"]["post"]
    assert "201" in decision["responses"]
