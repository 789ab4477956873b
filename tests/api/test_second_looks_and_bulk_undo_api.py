"""The review API's second looks and the undo of a bulk verdict: status codes, messages, the
undo answer's new fields next to the old ones, and the OpenAPI schema."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from reviewer.models import Decision, DecisionRetraction, ReviewItem
from reviewer.selectors.stats import review_agreement
from tests.reviewer.factories import item_of, make_dataset

pytestmark = pytest.mark.django_db


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def other(django_user_model):
    return django_user_model.objects.create_user(username="other", password="x")


def test_a_second_look_through_the_api(reviewer_user, other):
    dataset, _, images = make_dataset([0.9])
    first = client_for(other)
    item = first.get("/api/review/next/", {"dataset": dataset.pk}).json()
    url = f"/api/review/items/{item['id']}/decision/"
    assert first.post(url, {"verdict": "inappropriate"}, format="json").status_code == 201

    second = client_for(reviewer_user)
    # Without the lease (a stale page): refused, nothing recorded.
    stale = second.post(url, {"verdict": "appropriate"}, format="json")
    assert stale.status_code == 409 and "already decided" in stale.json()["detail"]
    assert "Decided (second look)" in stale.json()["detail"]
    # Leased from the second-look queue: the panel counts the other verdict, shows no history.
    leased = second.get("/api/review/next/", {"dataset": dataset.pk, "state": "decided"}).json()
    assert leased["id"] == item["id"] and leased["state"] == "decided"
    assert leased["verdict_count"] == 1 and leased["history"] == []
    response = second.post(url, {"verdict": "appropriate"}, format="json")
    assert response.status_code == 201, response.content
    assert Decision.objects.get(pk=response.json()["id"]).is_second_look
    assert item_of(images[0]).state == ReviewItem.State.DISPUTED  # it disagreed
    pairs = review_agreement(dataset_id=dataset.pk)["pairs"]
    assert [(p["a"], p["b"], p["n"]) for p in pairs] == [("other", "reviewer", 1)]

    # A second verdict of the same reviewer, or of the first: 409 with a clear message.
    for client in (second, first):
        again = client.post(url, {"verdict": "inappropriate"}, format="json")
        assert again.status_code == 409
        assert "already gave a verdict" in again.json()["detail"]
    assert Decision.objects.filter(item_id=item["id"]).count() == 2


def test_undo_of_a_second_look_says_so_in_the_history(reviewer_user, other, admin_user):
    dataset, _, images = make_dataset([0.9])
    first = client_for(other)
    item = first.get("/api/review/next/", {"dataset": dataset.pk}).json()
    first.post(
        f"/api/review/items/{item['id']}/decision/", {"verdict": "appropriate"}, format="json"
    )
    second = client_for(reviewer_user)
    second.get("/api/review/next/", {"dataset": dataset.pk, "state": "decided"})
    second.post(
        f"/api/review/items/{item['id']}/decision/", {"verdict": "appropriate"}, format="json"
    )
    body = second.post("/api/review/undo/", {"mode": "score"}, format="json").json()
    assert body["item"]["state"] == "decided"
    assert [
        (h["verdict"], h["is_second_look"], h["retracted"]) for h in body["item"]["history"]
    ] == [("appropriate", True, True)]
    assert body["retracted_decisions"][0]["is_second_look"] is True
    history = client_for(admin_user).get(f"/api/images/{images[0].pk}/history/").json()
    assert [(h["reviewer"], h["is_second_look"], h["is_adjudication"]) for h in history] == [
        ("other", False, False), ("reviewer", True, False)
    ]  # fmt: skip


def test_undo_after_a_bulk_answers_every_item(reviewer_user):
    dataset, _, images = make_dataset([0.9, 0.8, 0.7, 0.6])
    client = client_for(reviewer_user)
    leased = client.get("/api/review/batch/", {"dataset": dataset.pk, "limit": 4}).json()["items"]
    chosen = [leased[0]["id"], leased[1]["id"], leased[3]["id"]]
    bulk = client.post(
        "/api/review/bulk-decision/", {"item_ids": chosen, "verdict": "inappropriate"},
        format="json",
    )  # fmt: skip
    assert bulk.status_code == 200 and bulk.json()["decided"] == chosen
    decisions = list(Decision.objects.order_by("created_at", "id"))

    response = client.post("/api/review/undo/", {"mode": "uncertain"}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert [item["id"] for item in body["items"]] == chosen
    assert {item["state"] for item in body["items"]} == {"pending"}
    assert {item["mode"] for item in body["items"]} == {"uncertain"}
    assert [d["id"] for d in body["retracted_decisions"]] == [d.pk for d in decisions]
    assert [d["item"] for d in body["retracted_decisions"]] == chosen
    assert {d["verdict"] for d in body["retracted_decisions"]} == {"inappropriate"}
    # The fields of a single undo are there as before: the latest decision and its item.
    assert body["item"] == body["items"][-1]
    assert body["retracted_decision_id"] == decisions[-1].pk
    assert DecisionRetraction.objects.count() == 3
    # All three are leased back: the next batch holds them first.
    again = client.get("/api/review/batch/", {"dataset": dataset.pk, "limit": 4}).json()["items"]
    assert {item["id"] for item in again} == {item["id"] for item in leased}
    assert client.post("/api/review/undo/").status_code == 409


def test_a_single_undo_answers_one_item_in_both_shapes(reviewer_user):
    dataset, _, _ = make_dataset([0.9])
    client = client_for(reviewer_user)
    item = client.get("/api/review/next/", {"dataset": dataset.pk}).json()
    client.post(f"/api/review/items/{item['id']}/decision/", {"verdict": "skip"}, format="json")
    body = client.post("/api/review/undo/").json()
    assert [i["id"] for i in body["items"]] == [body["item"]["id"]] == [item["id"]]
    assert [d["id"] for d in body["retracted_decisions"]] == [body["retracted_decision_id"]]
    assert body["retracted_decisions"][0]["verdict"] == "skip"


def test_undo_refuses_while_another_reviewer_holds_an_item_of_the_bulk(reviewer_user, other):
    from reviewer.services.settings import review_settings_update

    dataset, _, images = make_dataset([0.9, 0.8])
    review_settings_update(dataset=dataset, required_verdicts=2)
    client = client_for(reviewer_user)
    ids = [item_of(image).pk for image in images]
    client.post("/api/review/bulk-decision/", {"item_ids": ids, "verdict": "skip"}, format="json")
    client.post(
        "/api/review/bulk-decision/", {"item_ids": ids, "verdict": "appropriate"}, format="json"
    )
    client_for(other).get("/api/review/next/", {"dataset": dataset.pk})
    response = client.post("/api/review/undo/")
    assert response.status_code == 409
    assert "Another reviewer holds 1 of these 2 items" in response.json()["detail"]
    assert not DecisionRetraction.objects.exists()


def test_schema_documents_the_undo_answer_and_history_marks(admin_user):
    schema = (
        client_for(admin_user)
        .get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
        .json()
    )
    components = schema["components"]["schemas"]
    undo = components["ReviewUndoOutput"]
    assert {"item", "retracted_decision_id", "items", "retracted_decisions"} <= set(
        undo["required"]
    )
    assert undo["properties"]["items"]["items"]["$ref"].endswith("/ReviewItem")
    ref = undo["properties"]["retracted_decisions"]["items"]["$ref"]
    retracted = components[ref.rsplit("/", 1)[-1]]
    assert {"id", "item", "image", "verdict", "is_second_look"} <= set(retracted["properties"])
    history = components["ReviewHistoryEntry"]
    assert {"is_second_look", "is_adjudication"} <= set(history["required"])
