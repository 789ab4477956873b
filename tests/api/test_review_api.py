"""The review API as the review screen uses it: shapes, status codes, permissions, leases."""

from __future__ import annotations

import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from reviewer.models import ReviewItem
from tests.reviewer.factories import item_of, make_dataset, sha

ITEM_FIELDS = {
    "id", "dataset", "dataset_name", "image_id", "image_url", "relative_path", "width", "height",
    "format", "score", "state", "lease_expires_at", "thumbnail_url", "source_folder", "mode",
    "is_audit", "required_verdicts", "verdict_count", "categories", "identical",
    "near_duplicates", "history",
}  # fmt: skip


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def dup_dataset(db):
    """Image 0 and 1 identical; image 2 a near-duplicate of 0 (3 bits); image 3 unrelated."""
    same = sha("same")
    return make_dataset(
        [0.9, 0.8, 0.7, 0.6],
        hashes=[same, same, sha("b"), sha("c")],
        phashes=["0000000000000000", "0000000000000000", "0000000000000007", "ffffffff00000000"],
        paths=["a/x/0.png", "a/x/1.png", "b/2.png", "3.png"],
    )


def test_next_returns_the_full_item(reviewer_user, dup_dataset):
    dataset, _, images = dup_dataset
    response = client_for(reviewer_user).get("/api/review/next/", {"dataset": dataset.pk})
    assert response.status_code == 200
    item = response.json()
    assert set(item) == ITEM_FIELDS
    assert item["image_id"] == images[0].pk and item["source_folder"] == "a/x"
    assert item["thumbnail_url"] == f"/images/{images[0].pk}/thumbnail/"
    assert item["mode"] == "score" and item["is_audit"] is False
    assert item["required_verdicts"] == 1 and item["verdict_count"] == 0
    assert item["categories"][0] == "weapons" and len(item["categories"]) == 7
    assert item["identical"] == [
        {"image_id": images[1].pk, "relative_path": "a/x/1.png",
         "thumbnail_url": f"/images/{images[1].pk}/thumbnail/"}
    ]  # fmt: skip
    assert item["near_duplicates"] == [
        {"image_id": images[2].pk, "relative_path": "b/2.png",
         "thumbnail_url": f"/images/{images[2].pk}/thumbnail/", "distance": 3}
    ]  # fmt: skip
    assert item["history"] == []


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ({"mode": "nope"}, 400),
        ({"score_min": "2"}, 400),
        ({"mode": "audit"}, 400),
        ({"mode": "disagreement"}, 403),
        ({"dataset": "999999"}, 404),
        ({}, 204),
    ],
)
def test_next_validates_its_query(reviewer_user, db, query, status):
    assert client_for(reviewer_user).get("/api/review/next/", query).status_code == status


def test_batch_leases_up_to_limit(reviewer_user, admin_user):
    dataset, _, images = make_dataset([0.9 - 0.01 * i for i in range(30)])
    response = client_for(reviewer_user).get(
        "/api/review/batch/", {"dataset": dataset.pk, "limit": 24}
    )
    items = response.json()["items"]
    assert len(items) == 24 and all(set(item) == ITEM_FIELDS for item in items)
    other = (
        client_for(admin_user).get("/api/review/batch/", {"dataset": dataset.pk}).json()["items"]
    )
    assert len(other) == 6
    assert not {i["id"] for i in items} & {i["id"] for i in other}
    assert client_for(reviewer_user).get("/api/review/batch/", {"limit": 61}).status_code == 400


@pytest.mark.django_db(transaction=True)
def test_concurrent_reviewers_through_the_batch_api_never_share_an_item(django_user_model):
    dataset, _, _ = make_dataset([0.99 - 0.001 * i for i in range(60)])
    users = [
        django_user_model.objects.create_user(username=f"c{i}", password="x") for i in range(6)
    ]
    served: dict[int, list[int]] = {}
    errors: list[BaseException] = []

    def work(user) -> None:
        try:
            client = client_for(user)
            mine: list[int] = []
            while True:
                items = client.get(
                    "/api/review/batch/", {"dataset": dataset.pk, "limit": 4}
                ).json()["items"]
                if not items:
                    break
                for item in items:
                    response = client.post(
                        f"/api/review/items/{item['id']}/decision/", {"verdict": "appropriate"},
                        format="json",
                    )  # fmt: skip
                    assert response.status_code == 201, response.content
                    mine.append(item["id"])
            served[user.pk] = mine
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(user,)) for user in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    all_served = [item_id for mine in served.values() for item_id in mine]
    assert len(all_served) == len(set(all_served)) == 60
    assert ReviewItem.objects.filter(state="decided").count() == 60


def test_decision_shape_propagation_and_errors(reviewer_user, admin_user, dup_dataset):
    dataset, _, images = dup_dataset
    client = client_for(reviewer_user)
    item = client.get("/api/review/next/", {"dataset": dataset.pk}).json()
    url = f"/api/review/items/{item['id']}/decision/"
    # Held by this reviewer: another gets 409.
    held = client_for(admin_user).post(url, {"verdict": "appropriate"}, format="json")
    assert held.status_code == 409 and "Another reviewer" in held.json()["detail"]
    bad = client.post(url, {"verdict": "inappropriate", "category": "cats"}, format="json")
    assert bad.status_code == 400 and "Unknown category" in bad.json()["detail"]
    bad = client.post(url, {"verdict": "inappropriate", "apply_to": [images[3].pk]}, format="json")
    assert bad.status_code == 400
    response = client.post(
        url, {"verdict": "inappropriate", "category": "weapons", "apply_to": [images[2].pk]},
        format="json",
    )  # fmt: skip
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {
        "id", "item", "image", "reviewer", "verdict", "category", "created_at",
        "propagated_image_ids",
        "skipped_propagation",
    }  # fmt: skip
    assert body["category"] == "weapons"
    assert body["propagated_image_ids"] == [images[1].pk, images[2].pk]
    again = client.post(url, {"verdict": "appropriate"}, format="json")
    assert again.status_code == 409
    withdrawn = item_of(images[3])
    ReviewItem.objects.filter(pk=withdrawn.pk).update(state="withdrawn")
    gone = client.post(
        f"/api/review/items/{withdrawn.pk}/decision/", {"verdict": "skip"}, format="json"
    )
    assert gone.status_code == 409


def test_bulk_decision_reports_conflicts(reviewer_user, admin_user):
    dataset, _, images = make_dataset([0.9, 0.8, 0.7])
    items = [item_of(image) for image in images]
    client_for(admin_user).get("/api/review/next/", {"dataset": dataset.pk})  # admin holds items[0]
    response = client_for(reviewer_user).post(
        "/api/review/bulk-decision/",
        {"item_ids": [i.pk for i in items], "verdict": "appropriate"},
        format="json",
    )
    assert response.status_code == 200
    body = response.json()
    assert body["decided"] == [items[1].pk, items[2].pk]
    assert body["conflicts"] == [{"id": items[0].pk, "detail": "Another reviewer holds this item."}]
    bad = client_for(reviewer_user).post(
        "/api/review/bulk-decision/",
        {"item_ids": [items[0].pk], "verdict": "inappropriate", "category": "cats"}, format="json",
    )  # fmt: skip
    assert bad.status_code == 400


def test_undo_returns_the_item_leased_back(reviewer_user):
    dataset, _, images = make_dataset([0.9, 0.8])
    client = client_for(reviewer_user)
    assert client.post("/api/review/undo/").status_code == 409
    item = client.get("/api/review/next/", {"dataset": dataset.pk}).json()
    decision = client.post(
        f"/api/review/items/{item['id']}/decision/", {"verdict": "inappropriate"}, format="json"
    ).json()
    response = client.post("/api/review/undo/")
    assert response.status_code == 200
    body = response.json()
    assert body["retracted_decision_id"] == decision["id"]
    assert body["item"]["id"] == item["id"] and body["item"]["state"] == "pending"
    assert body["item"]["history"][0]["retracted"] is True
    assert client.get("/api/review/next/", {"dataset": dataset.pk}).json()["id"] == item["id"]


def test_preferences_round_trip(reviewer_user):
    client = client_for(reviewer_user)
    defaults = client.get("/api/review/preferences/").json()
    assert defaults["blur_strength"] == 24 and defaults["greyscale"] is True
    assert defaults["break_every"] == 200 and defaults["default_view"] == "single"
    assert defaults["keymap"]["confirm"] == "c" and defaults["keymap"]["category_9"] == "9"
    response = client.put(
        "/api/review/preferences/",
        {"blur_strength": 40, "greyscale": False, "break_every": 0, "default_view": "grid",
         "keymap": {"confirm": "y", "reject": "n"}},
        format="json",
    )  # fmt: skip
    assert response.status_code == 200
    saved = client.get("/api/review/preferences/").json()
    assert saved["blur_strength"] == 40 and saved["greyscale"] is False
    assert saved["break_every"] == 0 and saved["default_view"] == "grid"
    assert saved["keymap"]["confirm"] == "y" and saved["keymap"]["skip"] == "s"
    for bad in (
        {"blur_strength": 65},
        {"default_view": "list"},
        {"keymap": {"fly": "f"}},
        {"keymap": {"confirm": "r"}},  # clashes with reject
    ):
        assert client.put("/api/review/preferences/", bad, format="json").status_code == 400, bad


def test_dataset_settings_are_for_admins(reviewer_user, admin_user):
    dataset, _, _ = make_dataset([0.9])
    url = f"/api/review/datasets/{dataset.pk}/settings/"
    assert client_for(reviewer_user).get(url).status_code == 403
    admin = client_for(admin_user)
    got = admin.get(url).json()
    assert got["required_verdicts"] == 1 and got["near_duplicate_distance"] == 6
    assert got["auto_retrain_every"] is None and got["pinned_version"] is None
    put = admin.put(
        url,
        {"required_verdicts": 3, "categories": ["a", "b"], "auto_retrain_every": 50},
        format="json",
    )
    assert put.status_code == 200, put.content
    assert admin.get(url).json()["categories"] == ["a", "b"]
    assert admin.put(url, {"required_verdicts": 0}, format="json").status_code == 400


def test_review_stats_and_history_for_admins(reviewer_user, admin_user, django_user_model):
    dataset, _, images = make_dataset([0.9, 0.8, 0.2])
    other = django_user_model.objects.create_user(username="other", password="x")
    client = client_for(reviewer_user)
    item = client.get("/api/review/next/", {"dataset": dataset.pk}).json()
    client.post(
        f"/api/review/items/{item['id']}/decision/",
        {"verdict": "inappropriate", "category": "weapons"},
        format="json",
    )
    client_for(admin_user).post(
        f"/api/review/items/{item['id']}/decision/", {"verdict": "appropriate"}, format="json"
    )

    url = f"/api/datasets/{dataset.pk}/review-stats/"
    assert client.get(url).status_code == 403
    stats = client_for(admin_user).get(url).json()
    assert set(stats) >= {
        "counts", "precision", "missed", "histogram", "thresholds", "throughput", "agreement",
        "policy",
    }  # fmt: skip
    assert stats["counts"]["scored"] == 3 and stats["counts"]["flagged"] == 2
    assert len(stats["histogram"]["bins"]) == 21 and len(stats["histogram"]["confirmed"]) == 20
    assert len(stats["thresholds"]) == 19
    assert set(stats["precision"]) == {"estimate", "low", "high", "n", "flagged", "flagged_covered"}
    assert {"rate", "low", "high", "n_audited", "estimated_missed"} <= set(stats["missed"])
    assert stats["agreement"]["overall"] is None

    history_url = f"/api/images/{item['image_id']}/history/"
    assert client.get(history_url).status_code == 403
    history = client_for(admin_user).get(history_url).json()
    assert [(h["reviewer"], h["verdict"], h["category"], h["retracted"]) for h in history] == [
        ("reviewer", "inappropriate", "weapons", False), ("admin", "appropriate", "", False)
    ]  # fmt: skip
    assert set(history[0]) >= {
        "reviewer",
        "verdict",
        "category",
        "created_at",
        "retracted",
        "propagated_from",
    }

    # Reviewers see only their own entries in an item's history.
    counts = client_for(other).get("/api/review/stats/", {"dataset": dataset.pk}).json()
    assert counts == {
        "pending": 1, "decided": 1, "disputed": 0, "withdrawn": 0, "decided_by_me": 0,
        "queue": 1, "queue_remaining": 1,
    }  # fmt: skip


def test_unknown_items(reviewer_user, db):
    client = client_for(reviewer_user)
    missing = client.post("/api/review/items/999999/decision/", {"verdict": "skip"}, format="json")
    assert missing.status_code == 404
    bulk = client.post(
        "/api/review/bulk-decision/", {"item_ids": [999999], "verdict": "skip"}, format="json"
    )
    assert bulk.json() == {
        "decided": [],
        "conflicts": [{"id": 999999, "detail": "No such review item."}],
    }
