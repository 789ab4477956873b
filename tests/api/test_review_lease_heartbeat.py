"""Short leases and the review page's heartbeat (issue 11): POST /api/review/leases/renew/
extends only the reviewer's own leases, an unrenewed lease runs out and the item goes to the
next reviewer, and the stats say how many items of an empty queue other reviewers hold.

Time is controlled by moving lease_expires_at in the database, never by sleeping."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework.test import APIClient

from curation.models import DatasetAssignment
from reviewer.models import Decision, ReviewItem
from reviewer.services.leases import HELD_BY_OTHER, NOT_LEASED
from reviewer.services.queue import MAX_BATCH
from tests.reviewer.factories import make_dataset

RENEW_URL = "/api/review/leases/renew/"


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def batch(client, dataset, limit: int) -> list[int]:
    response = client.get("/api/review/batch/", {"dataset": dataset.pk, "limit": limit})
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["items"]]


def expires_at(item_id: int):
    return ReviewItem.objects.get(pk=item_id).lease_expires_at


def set_expiry(item_ids, when) -> None:
    ReviewItem.objects.filter(pk__in=list(item_ids)).update(lease_expires_at=when)


def renew(client, body) -> dict:
    response = client.post(RENEW_URL, body, format="json")
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def other(django_user_model):
    return django_user_model.objects.create_user(username="other", password="x")


def test_leases_are_short_by_default():
    # A crashed tab's items come back within two minutes; the open page renews every minute.
    assert settings.Q16_LEASE_SECONDS == 120


def test_a_lease_lasts_q16_lease_seconds(reviewer_user):
    dataset, _, _ = make_dataset([0.9])
    before = timezone.now()
    (item_id,) = batch(client_for(reviewer_user), dataset, 1)
    lease = expires_at(item_id) - before
    assert timedelta(seconds=settings.Q16_LEASE_SECONDS - 5) < lease
    assert lease <= timedelta(seconds=settings.Q16_LEASE_SECONDS + 5)


def test_renew_extends_only_the_reviewers_own_live_leases(reviewer_user, other):
    dataset, _, _ = make_dataset([0.9, 0.8, 0.7, 0.6])
    client = client_for(reviewer_user)
    mine = batch(client, dataset, 2)
    theirs = batch(client_for(other), dataset, 1)
    soon = timezone.now() + timedelta(seconds=5)
    set_expiry(mine + theirs, soon)

    before = timezone.now()
    body = renew(client, {"item_ids": [*mine, *theirs]})

    assert body["renewed"] == sorted(mine)
    assert body["refused"] == [{"id": theirs[0], "reason": HELD_BY_OTHER}]
    assert body["lease_seconds"] == settings.Q16_LEASE_SECONDS
    until = parse_datetime(body["lease_expires_at"])
    assert until is not None and until >= before + timedelta(seconds=settings.Q16_LEASE_SECONDS)
    for item_id in mine:
        assert expires_at(item_id) == until
        assert ReviewItem.objects.get(pk=item_id).leased_by_id == reviewer_user.pk
    # Someone else's lease is never touched.
    held = ReviewItem.objects.get(pk=theirs[0])
    assert (held.leased_by_id, held.lease_expires_at) == (other.pk, soon)


def test_an_unrenewed_lease_runs_out_and_the_item_goes_to_the_next_reviewer(reviewer_user, other):
    dataset, _, _ = make_dataset([0.9, 0.8])
    client = client_for(reviewer_user)
    first, second = batch(client, dataset, 2)
    # The tab crashed: no heartbeat came, and the lease ran out.
    set_expiry([first], timezone.now() - timedelta(seconds=1))

    assert batch(client_for(other), dataset, 2) == [first]  # the live one stays the reviewer's
    assert ReviewItem.objects.get(pk=first).leased_by_id == other.pk

    # The crashed tab's page comes back: its renewal of the taken item is refused.
    body = renew(client, {"item_ids": [first, second]})
    assert body["renewed"] == [second]
    assert body["refused"] == [{"id": first, "reason": HELD_BY_OTHER}]
    assert ReviewItem.objects.get(pk=first).leased_by_id == other.pk


def test_a_lease_that_ran_out_untaken_is_still_the_reviewers_to_renew(reviewer_user):
    dataset, _, _ = make_dataset([0.9])
    client = client_for(reviewer_user)
    (item_id,) = batch(client, dataset, 1)
    set_expiry([item_id], timezone.now() - timedelta(seconds=30))  # a throttled background tab

    body = renew(client, {"item_ids": [item_id]})
    assert (body["renewed"], body["refused"]) == ([item_id], [])
    assert expires_at(item_id) > timezone.now() + timedelta(seconds=60)


def test_renew_refuses_released_decided_and_unknown_items(reviewer_user, other):
    dataset, _, _ = make_dataset([0.9, 0.8, 0.7])
    client = client_for(reviewer_user)
    released, decided, kept = batch(client, dataset, 3)
    client.post(f"/api/review/items/{released}/release/")
    client.post(f"/api/review/items/{decided}/decision/", {"verdict": "appropriate"}, format="json")

    body = renew(client, {"item_ids": [released, decided, kept, 999_999]})
    assert body["renewed"] == [kept]
    assert body["refused"] == [
        {"id": released, "reason": NOT_LEASED},
        {"id": decided, "reason": NOT_LEASED},
        {"id": 999_999, "reason": NOT_LEASED},
    ]
    assert ReviewItem.objects.get(pk=released).leased_by_id is None


def test_another_reviewers_expired_lease_is_not_renewed_for_them(reviewer_user, other):
    dataset, _, _ = make_dataset([0.9])
    (item_id,) = batch(client_for(other), dataset, 1)
    past = timezone.now() - timedelta(seconds=1)
    set_expiry([item_id], past)
    body = renew(client_for(reviewer_user), {"item_ids": [item_id]})
    assert (body["renewed"], body["refused"]) == ([], [{"id": item_id, "reason": NOT_LEASED}])
    assert (ReviewItem.objects.get(pk=item_id).leased_by_id, expires_at(item_id)) == (
        other.pk,
        past,
    )


def test_renew_ignores_items_outside_the_reviewers_datasets(reviewer_user, other):
    hidden, _, hidden_images = make_dataset([0.9])
    hidden_item = ReviewItem.objects.get(image=hidden_images[0])
    (theirs,) = batch(client_for(other), hidden, 1)
    assert theirs == hidden_item.pk
    soon = timezone.now() + timedelta(seconds=5)
    set_expiry([theirs], soon)
    DatasetAssignment.objects.filter(user=reviewer_user, dataset=hidden).delete()

    # Held by someone else, but in a dataset the reviewer does not review: not said.
    body = renew(client_for(reviewer_user), {"item_ids": [theirs]})
    assert body["refused"] == [{"id": theirs, "reason": NOT_LEASED}]
    assert expires_at(theirs) == soon


def test_renew_all_renews_every_lease_of_the_reviewer_and_no_one_elses(reviewer_user, other):
    first, _, _ = make_dataset([0.9, 0.8])
    second, _, _ = make_dataset([0.95])
    client = client_for(reviewer_user)
    mine = batch(client, first, 1) + batch(client, second, 1)
    theirs = batch(client_for(other), first, 1)
    soon = timezone.now() + timedelta(seconds=5)
    set_expiry(mine + theirs, soon)

    body = renew(client, {"all": True})
    assert (body["renewed"], body["refused"]) == (sorted(mine), [])
    assert all(expires_at(item_id) > soon for item_id in mine)
    assert expires_at(theirs[0]) == soon
    assert renew(client_for(other), {"all": True})["renewed"] == theirs


def test_renew_with_duplicate_ids_renews_once(reviewer_user):
    dataset, _, _ = make_dataset([0.9])
    client = client_for(reviewer_user)
    (item_id,) = batch(client, dataset, 1)
    assert renew(client, {"item_ids": [item_id, item_id]})["renewed"] == [item_id]


@pytest.mark.parametrize(
    "body",
    [
        {},  # neither the items nor all
        {"all": False},
        {"item_ids": []},
        {"item_ids": [1], "all": True},  # both
        {"item_ids": [0]},
        {"item_ids": ["x"]},
        {"item_ids": [2**63]},
        {"item_ids": "1"},
        {"item_ids": list(range(1, 202))},  # more than MAX_BULK
        {"all": "maybe"},
        [1, 2],
    ],
)
def test_renew_validates_its_body(reviewer_user, db, body):
    dataset, _, _ = make_dataset([0.9])
    client = client_for(reviewer_user)
    (item_id,) = batch(client, dataset, 1)
    before = expires_at(item_id)
    response = client.post(RENEW_URL, body, format="json")
    assert response.status_code == 400, body
    assert expires_at(item_id) == before  # nothing renewed, nothing lost


def test_renew_needs_a_login(db):
    assert APIClient().post(RENEW_URL, {"all": True}, format="json").status_code == 401


def test_renew_answers_post_only(reviewer_user, db):
    assert client_for(reviewer_user).get(RENEW_URL).status_code == 405


# --- GET /api/review/stats/: who holds what is left ------------------------------------------


def stats(client, **params) -> dict:
    response = client.get("/api/review/stats/", params)
    assert response.status_code == 200, response.content
    return response.json()


def test_stats_say_how_many_items_others_hold_and_when_the_first_lease_ends(
    reviewer_user, other, django_user_model
):
    dataset, _, _ = make_dataset([0.9 - 0.05 * i for i in range(6)])
    third = django_user_model.objects.create_user(username="third", password="x")
    theirs = batch(client_for(other), dataset, 3)
    third_ones = batch(client_for(third), dataset, 2)
    now = timezone.now()
    set_expiry(theirs, now + timedelta(seconds=90))
    set_expiry(third_ones[:1], now + timedelta(seconds=40))
    set_expiry(third_ones[1:], now - timedelta(seconds=1))  # ran out: free for anyone
    client = client_for(reviewer_user)
    mine = batch(client, dataset, 1)  # the last free one (or the one that ran out)

    counts = stats(client, dataset=dataset.pk)
    assert counts["queue_remaining"] == 6
    assert counts["held_by_others"] == 4  # not the reviewer's own, not the one that ran out
    assert parse_datetime(counts["held_by_others_until"]) == now + timedelta(seconds=40)
    assert mine  # the reviewer holds one: it is not "held by others"

    # The other reviewers' view: each counts the rest, not their own.
    assert stats(client_for(other), dataset=dataset.pk)["held_by_others"] == 1 + 1
    # Filters that leave out every held item: nothing held, the fields are not there.
    assert "held_by_others_until" not in stats(client, dataset=dataset.pk, score_max=0.66)
    # The earliest lease ran out too: the next one is the first to end.
    set_expiry(third_ones[:1], now - timedelta(seconds=1))
    counts = stats(client, dataset=dataset.pk)
    assert counts["held_by_others"] == 3
    assert parse_datetime(counts["held_by_others_until"]) == now + timedelta(seconds=90)


def test_stats_held_by_others_follow_the_filters_and_the_reviewers_verdicts(reviewer_user, other):
    dataset, _, _ = make_dataset([0.95, 0.9, 0.85], paths=["a/0.png", "b/1.png", "a/2.png"])
    theirs = batch(client_for(other), dataset, 3)
    client = client_for(reviewer_user)
    assert stats(client, dataset=dataset.pk, folder="a")["held_by_others"] == 2
    assert stats(client, dataset=dataset.pk, folder="b")["held_by_others"] == 1
    assert stats(client, dataset=dataset.pk, score_min=0.9)["held_by_others"] == 2
    # An item the reviewer gave a verdict on already (k > 1 keeps it pending) is not left.
    item = ReviewItem.objects.get(pk=theirs[0])
    Decision.objects.create(
        item=item, image=item.image, reviewer=reviewer_user, verdict=Decision.Verdict.SKIP
    )
    assert stats(client, dataset=dataset.pk)["held_by_others"] == 2


def test_stats_without_leases_elsewhere_answer_as_before(reviewer_user, other):
    dataset, _, _ = make_dataset([0.9, 0.8])
    client = client_for(reviewer_user)
    batch(client, dataset, 1)  # the reviewer's own lease is not "held by others"
    counts = stats(client, dataset=dataset.pk)
    assert counts == {
        "pending": 2, "decided": 0, "disputed": 0, "withdrawn": 0, "decided_by_me": 0,
        "queue": 2, "queue_remaining": 2,
    }  # fmt: skip
    # A lease elsewhere that ran out holds nothing either.
    (theirs,) = batch(client_for(other), dataset, 1)
    set_expiry([theirs], timezone.now() - timedelta(seconds=1))
    assert "held_by_others" not in stats(client, dataset=dataset.pk)


def test_the_renew_route_and_the_new_stats_fields_are_documented(admin_user):
    client = client_for(admin_user)
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operation = schema["paths"][RENEW_URL]["post"]
    assert "200" in operation["responses"]
    stats_schema = schema["components"]["schemas"]["ReviewStats"]["properties"]
    assert {"held_by_others", "held_by_others_until", "queue", "queue_remaining"} <= set(
        stats_schema
    )
    assert MAX_BATCH <= 200  # a grid page's leases fit in one renewal
