"""20 reviewers deciding at the same time on 500 items through the API (k = 1).

Each client leases items with /api/review/next/ and decides them; every fifth step it
also tries to decide a random item, which another client may hold (a stale client): that
must be refused (409) and must not count. No item may be decided twice, no verdict may
be lost, and no request may fail with a server error.
"""

from __future__ import annotations

import random
import threading
from collections import Counter

import pytest
from django.apps import apps
from django.db import connection
from rest_framework.test import APIClient

from reviewer.models import Decision, ReviewItem
from tests.reviewer.factories import make_dataset

N_ITEMS = 500
N_CLIENTS = 20
# Every fifth step a client also posts a verdict on an item someone else already decided
# (a stale page): the service must refuse it with 409, never record a second verdict.
STALE_CLIENTS = True


def _assign(dataset, users) -> None:
    """Reviewers only see datasets assigned to them, where the assignment model exists."""
    try:
        assignment = apps.get_model("curation", "DatasetAssignment")
    except LookupError:
        return
    assignment.objects.bulk_create(assignment(dataset=dataset, user=user) for user in users)


@pytest.mark.django_db(transaction=True)
def test_twenty_reviewers_decide_500_items_once_each(django_user_model):
    dataset, _, _ = make_dataset([0.999 - 0.001 * i for i in range(N_ITEMS)])
    assert ReviewItem.objects.filter(dataset=dataset).count() == N_ITEMS
    item_ids = list(ReviewItem.objects.filter(dataset=dataset).values_list("id", flat=True))
    users = [
        django_user_model.objects.create_user(username=f"load{i}", password="x")
        for i in range(N_CLIENTS)
    ]
    _assign(dataset, users)

    decided: dict[int, list[int]] = {}
    statuses: Counter[int] = Counter()
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(N_CLIENTS)

    def work(user) -> None:
        rng = random.Random(user.pk)
        mine: list[int] = []
        try:
            client = APIClient()
            client.force_login(user)
            start.wait()
            step = 0
            while True:
                step += 1
                if STALE_CLIENTS and step % 5 == 0:
                    other = rng.choice(item_ids)
                    response = client.post(
                        f"/api/review/items/{other}/decision/", {"verdict": "appropriate"},
                        format="json",
                    )  # fmt: skip
                    with lock:
                        statuses[response.status_code] += 1
                    assert response.status_code in (201, 409), response.content
                    if response.status_code == 201:
                        mine.append(other)
                response = client.get("/api/review/next/", {"dataset": dataset.pk})
                with lock:
                    statuses[response.status_code] += 1
                if response.status_code == 204:
                    break
                assert response.status_code == 200, response.content
                item = response.json()
                verdict = "inappropriate" if item["id"] % 3 == 0 else "appropriate"
                response = client.post(
                    f"/api/review/items/{item['id']}/decision/", {"verdict": verdict},
                    format="json",
                )  # fmt: skip
                with lock:
                    statuses[response.status_code] += 1
                # 409 only if a stale client decided our leased item first (it may not).
                assert response.status_code in (201, 409), response.content
                if response.status_code == 201:
                    mine.append(item["id"])
            decided[user.pk] = mine
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(user,)) for user in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads)
    assert not errors, errors[:3]
    assert not [code for code in statuses if code >= 500], statuses

    all_decided = [item_id for mine in decided.values() for item_id in mine]
    assert len(all_decided) == len(set(all_decided)) == N_ITEMS  # none twice, none lost
    decisions = Decision.objects.filter(item__dataset=dataset, propagated_from__isnull=True)
    assert decisions.count() == N_ITEMS
    assert decisions.values("item").distinct().count() == N_ITEMS
    assert ReviewItem.objects.filter(dataset=dataset, state="decided").count() == N_ITEMS
    # Every client took part.
    assert sum(1 for mine in decided.values() if mine) >= N_CLIENTS // 2


@pytest.mark.django_db
def test_a_decided_item_cannot_be_decided_again_by_another_reviewer(django_user_model):
    dataset, _, _ = make_dataset([0.9])
    first, second = (
        django_user_model.objects.create_user(username=f"r{i}", password="x") for i in range(2)
    )
    _assign(dataset, [first, second])
    item = ReviewItem.objects.get(dataset=dataset)
    clients = []
    for user in (first, second):
        client = APIClient()
        client.force_login(user)
        clients.append(client)
    url = f"/api/review/items/{item.pk}/decision/"
    assert clients[0].post(url, {"verdict": "appropriate"}, format="json").status_code == 201
    late = clients[1].post(url, {"verdict": "inappropriate"}, format="json")
    assert late.status_code == 409
    assert Decision.objects.filter(item=item).count() == 1
