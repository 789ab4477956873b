"""Review API additions: releasing many leases at once, queue counts that follow the queue
filters, undo answering in the screen's mode, and the keymap's grid and near-duplicate actions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from curation.models import DatasetAssignment
from reviewer.models import DEFAULT_KEYMAP, Decision, ReviewItem
from tests.reviewer.factories import make_dataset

RELEASE_URL = "/api/review/release/"


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def leased_to(user) -> set[int]:
    return set(ReviewItem.objects.filter(leased_by=user).values_list("pk", flat=True))


def batch(client, dataset, limit: int) -> list[int]:
    response = client.get("/api/review/batch/", {"dataset": dataset.pk, "limit": limit})
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["items"]]


# --- POST /api/review/release/ ----------------------------------------------------------------


def test_release_gives_back_the_named_leases_of_the_reviewer_only(reviewer_user, django_user_model):
    dataset, _, _ = make_dataset([0.9 - 0.05 * i for i in range(8)])
    other = django_user_model.objects.create_user(username="other", password="x")
    mine = batch(client_for(reviewer_user), dataset, 4)
    theirs = batch(client_for(other), dataset, 2)

    response = client_for(reviewer_user).post(
        RELEASE_URL, {"item_ids": [mine[0], mine[1], *theirs]}, format="json"
    )
    assert response.status_code == 200
    assert response.json() == {"released": 2}
    assert leased_to(reviewer_user) == {mine[2], mine[3]}
    assert leased_to(other) == set(theirs)  # someone else's lease is never touched
    released = ReviewItem.objects.get(pk=mine[0])
    assert (released.leased_by_id, released.lease_expires_at) == (None, None)
    # The released item is served again, to anyone.
    third = django_user_model.objects.create_user(username="third", password="x")
    assert batch(client_for(third), dataset, 1) == [mine[0]]


@pytest.mark.parametrize("body", [{}, {"item_ids": []}])
def test_release_without_ids_gives_back_every_lease_of_the_reviewer(
    reviewer_user, django_user_model, body
):
    first, _, _ = make_dataset([0.9, 0.8, 0.7])
    second, _, _ = make_dataset([0.95, 0.85])
    other = django_user_model.objects.create_user(username="other", password="x")
    client = client_for(reviewer_user)
    held = batch(client, first, 2) + batch(client, second, 2)
    theirs = batch(client_for(other), first, 1)

    response = client.post(RELEASE_URL, body, format="json")
    assert response.json() == {"released": len(held)}
    assert leased_to(reviewer_user) == set()
    assert leased_to(other) == set(theirs)
    assert client.post(RELEASE_URL, body, format="json").json() == {"released": 0}


def test_release_ignores_items_outside_the_reviewers_datasets(reviewer_user):
    visible, _, _ = make_dataset([0.9, 0.8])
    hidden, _, hidden_images = make_dataset([0.7])
    client = client_for(reviewer_user)
    mine = batch(client, visible, 1)
    # A lease left over from before the reviewer was unassigned from the dataset.
    hidden_item = ReviewItem.objects.get(image=hidden_images[0])
    ReviewItem.objects.filter(pk=hidden_item.pk).update(
        leased_by=reviewer_user, lease_expires_at=timezone.now() + timedelta(minutes=5)
    )
    DatasetAssignment.objects.filter(user=reviewer_user, dataset=hidden).delete()

    response = client.post(RELEASE_URL, {"item_ids": [hidden_item.pk, 999999]}, format="json")
    assert response.status_code == 200  # not a 404: which ids exist elsewhere does not leak
    assert response.json() == {"released": 0}
    assert client.post(RELEASE_URL, {}, format="json").json() == {"released": 1}
    assert leased_to(reviewer_user) == {hidden_item.pk}
    assert mine[0] not in leased_to(reviewer_user)


@pytest.mark.parametrize(
    "body", [{"item_ids": [0]}, {"item_ids": ["x"]}, {"item_ids": list(range(1, 202))}]
)
def test_release_validates_its_body(reviewer_user, db, body):
    assert client_for(reviewer_user).post(RELEASE_URL, body, format="json").status_code == 400


def test_release_needs_a_login(db):
    assert APIClient().post(RELEASE_URL, {}, format="json").status_code == 401


# --- GET /api/review/stats/ follows the queue's parameters ----------------------------------


@pytest.fixture
def folders_dataset(db):
    """Six flagged items: three in a/, three in b/, scores 0.95 down to 0.70."""
    return make_dataset(
        [0.95, 0.9, 0.85, 0.8, 0.75, 0.7],
        paths=["a/0.png", "b/1.png", "a/2.png", "b/3.png", "a/4.png", "b/5.png"],
    )


def stats(client, **params) -> dict:
    response = client.get("/api/review/stats/", params)
    assert response.status_code == 200, response.content
    return response.json()


def test_stats_count_the_queue_the_filters_select(reviewer_user, folders_dataset):
    dataset, _, _ = folders_dataset
    make_dataset([0.99, 0.98])  # another dataset the reviewer reviews
    client = client_for(reviewer_user)

    everything = stats(client)
    assert (everything["queue"], everything["queue_remaining"]) == (8, 8)
    assert everything["pending"] == 8  # the per-state counts keep their meaning
    one = stats(client, dataset=dataset.pk)
    assert (one["queue"], one["queue_remaining"], one["pending"]) == (6, 6, 6)
    assert stats(client, dataset=dataset.pk, score_min=0.8)["queue"] == 4
    assert stats(client, dataset=dataset.pk, score_max=0.8)["queue"] == 3
    assert stats(client, dataset=dataset.pk, folder="a")["queue"] == 3
    narrow = stats(client, dataset=dataset.pk, folder="b", score_min=0.8)
    assert (narrow["queue"], narrow["queue_remaining"]) == (2, 2)
    assert narrow["pending"] == 6
    assert stats(client, dataset=dataset.pk, mode="uncertain", folder="b")["queue"] == 3


def test_stats_remaining_drops_with_the_reviewers_verdicts(
    reviewer_user, django_user_model, folders_dataset
):
    dataset, _, _ = folders_dataset
    client = client_for(reviewer_user)
    for item_id in batch(client, dataset, 2):  # a/0 (0.95) and b/1 (0.9)
        client.post(f"/api/review/items/{item_id}/decision/", {"verdict": "skip"}, format="json")
    counts = stats(client, dataset=dataset.pk, folder="a")
    # Skipped items stay pending (for others) but are no longer left for this reviewer.
    assert (counts["queue"], counts["queue_remaining"]) == (3, 2)
    other = django_user_model.objects.create_user(username="other", password="x")
    theirs = stats(client_for(other), dataset=dataset.pk, folder="a")
    assert (theirs["queue"], theirs["queue_remaining"]) == (3, 3)


def test_stats_decided_queue_and_state_filter(reviewer_user, folders_dataset):
    dataset, _, _ = folders_dataset
    client = client_for(reviewer_user)
    item_id = batch(client, dataset, 1)[0]
    client.post(f"/api/review/items/{item_id}/decision/", {"verdict": "appropriate"}, format="json")
    assert stats(client, dataset=dataset.pk)["queue"] == 5
    decided = stats(client, dataset=dataset.pk, state="decided")
    assert (decided["queue"], decided["queue_remaining"], decided["decided"]) == (1, 0, 1)


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ({"mode": "nope"}, 400),
        ({"score_min": "2"}, 400),
        ({"mode": "audit"}, 400),  # the audit queue needs a dataset
        ({"mode": "disagreement"}, 403),
        ({"dataset": "999999"}, 404),
    ],
)
def test_stats_validate_the_queue_query_like_next(reviewer_user, db, query, status):
    assert client_for(reviewer_user).get("/api/review/stats/", query).status_code == status


# --- POST /api/review/undo/ answers in the queue's mode --------------------------------------


@pytest.mark.parametrize(
    ("send", "expected"),
    [
        ({}, "score"),
        ({"json": {"mode": "uncertain"}}, "uncertain"),
        ({"query": "?mode=uncertain"}, "uncertain"),
    ],
)
def test_undo_echoes_the_queue_mode(reviewer_user, send, expected):
    dataset, _, _ = make_dataset([0.9, 0.6])
    client = client_for(reviewer_user)
    item = client.get("/api/review/next/", {"dataset": dataset.pk, "mode": "uncertain"}).json()
    assert item["mode"] == "uncertain"
    client.post(f"/api/review/items/{item['id']}/decision/", {"verdict": "skip"}, format="json")
    url = "/api/review/undo/" + send.get("query", "")
    response = client.post(url, send.get("json"), format="json")
    assert response.status_code == 200, response.content
    assert response.json()["item"]["id"] == item["id"]
    assert response.json()["item"]["mode"] == expected


def test_undo_refuses_an_unknown_mode_without_retracting(reviewer_user):
    dataset, _, _ = make_dataset([0.9])
    client = client_for(reviewer_user)
    item = client.get("/api/review/next/", {"dataset": dataset.pk}).json()
    client.post(f"/api/review/items/{item['id']}/decision/", {"verdict": "skip"}, format="json")
    assert client.post("/api/review/undo/", {"mode": "nope"}, format="json").status_code == 400
    assert Decision.objects.filter(retraction__isnull=True).count() == 1


# --- The keymap: every key of the screen is an action -----------------------------------------


def test_default_keymap_has_the_grid_and_near_duplicate_actions(reviewer_user):
    keymap = client_for(reviewer_user).get("/api/review/preferences/").json()["keymap"]
    assert keymap == DEFAULT_KEYMAP
    assert (keymap["confirm_near"], keymap["reject_near"]) == ("Shift+c", "Shift+r")
    assert keymap["category_1_near"] == "Shift+1"
    assert (keymap["next_alt"], keymap["prev_alt"]) == ("ArrowRight", "ArrowLeft")
    assert (keymap["grid_down"], keymap["grid_up"]) == ("ArrowDown", "ArrowUp")
    assert (keymap["grid_select"], keymap["grid_select_alt"]) == ("x", " ")
    assert (keymap["grid_open"], keymap["grid_clear"]) == ("Enter", "Escape")
    assert len(set(keymap.values())) == len(keymap)


def test_keymap_accepts_the_new_actions(reviewer_user):
    client = client_for(reviewer_user)
    response = client.put(
        "/api/review/preferences/",
        {"keymap": {"grid_down": "n", "grid_up": "Shift+n", "confirm_near": "y",
                    "grid_select_alt": "b", "grid_select": " "}},
        format="json",
    )  # fmt: skip
    assert response.status_code == 200, response.content
    keymap = client.get("/api/review/preferences/").json()["keymap"]
    assert (keymap["grid_down"], keymap["grid_up"], keymap["confirm_near"]) == ("n", "Shift+n", "y")
    assert keymap["grid_select"] == " "  # Space survives: keys are not trimmed
    assert keymap["reject_near"] == "Shift+r"  # the rest keep their defaults


@pytest.mark.parametrize(
    "keymap",
    [
        {"grid_diagonal": "z"},  # unknown action
        {"confirm_near_all": "y"},  # unknown action
        {"grid_select": "c"},  # clashes with confirm
        {"grid_down": "ArrowUp"},  # clashes with grid_up's default
        {"confirm_near": "Shift+r"},  # clashes with reject_near's default
        {"grid_open": ""},
        {"grid_clear": "x" * 21},
    ],
)
def test_keymap_rejects_unknown_actions_and_clashes(reviewer_user, keymap):
    client = client_for(reviewer_user)
    response = client.put("/api/review/preferences/", {"keymap": keymap}, format="json")
    assert response.status_code == 400, keymap
    assert client.get("/api/review/preferences/").json()["keymap"] == DEFAULT_KEYMAP
