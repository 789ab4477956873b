"""Leases, verdicts and the queue order, on the real database."""

from __future__ import annotations

import threading
from datetime import timedelta

import numpy as np
import pytest
from django.db import connection
from django.utils import timezone

from curation.errors import StateConflict
from curation.models import Dataset, Image, PromptVersion, ScoringRun
from reviewer.models import Decision, ReviewItem
from reviewer.selectors.verdicts import images_with_latest_verdict
from reviewer.services.decisions import review_decision_record
from reviewer.services.items import review_items_sync
from reviewer.services.queue import review_item_next
from worker.engine.store import prompts_to_bytes


def make_queue(n: int, *, scores=None) -> tuple[Dataset, ScoringRun, list[ReviewItem]]:
    dataset = Dataset.objects.create(
        name=f"queue-{Dataset.objects.count()}", source_kind="folder", source="/x", root_path="/x",
        state=Dataset.State.READY,
    )  # fmt: skip
    version = PromptVersion.objects.create(
        name="v", model_key="m/test", dim=2, vectors=prompts_to_bytes(np.eye(2, dtype=np.float32)),
        source=PromptVersion.Source.ZERO_SHOT,
    )  # fmt: skip
    run = ScoringRun.objects.create(
        dataset=dataset, prompt_version=version, model_key="m/test", threshold=0.5,
        state=ScoringRun.State.SUCCEEDED,
    )  # fmt: skip
    images = Image.objects.bulk_create(
        Image(dataset=dataset, relative_path=f"{i}.png", sha256=f"{i:064x}", format="PNG")
        for i in range(n)
    )
    scores = scores or [0.99 - i * 0.001 for i in range(n)]
    review_items_sync(
        run=run, scores={image.pk: s for image, s in zip(images, scores, strict=True)}
    )
    return dataset, run, list(ReviewItem.objects.filter(dataset=dataset).order_by("-score"))


@pytest.mark.django_db
def test_queue_serves_highest_score_first_and_never_the_same_item_twice(admin_user, reviewer_user):
    dataset, _, items = make_queue(3)
    first = review_item_next(reviewer=reviewer_user, dataset=dataset)
    assert first == items[0]
    # Asking again returns the item the reviewer already holds.
    assert review_item_next(reviewer=reviewer_user, dataset=dataset) == items[0]
    # Another reviewer gets the next one, never the leased one.
    assert review_item_next(reviewer=admin_user, dataset=dataset) == items[1]
    with pytest.raises(StateConflict, match="Another reviewer"):
        review_decision_record(item_id=items[0].pk, reviewer=admin_user, verdict="appropriate")


@pytest.mark.django_db
def test_expired_lease_returns_the_item_to_the_queue(admin_user, reviewer_user):
    dataset, _, items = make_queue(1)
    review_item_next(reviewer=reviewer_user, dataset=dataset)
    assert review_item_next(reviewer=admin_user, dataset=dataset) is None
    ReviewItem.objects.filter(pk=items[0].pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert review_item_next(reviewer=admin_user, dataset=dataset) == items[0]


@pytest.mark.django_db
def test_verdicts_are_appended_and_the_latest_counts(reviewer_user, admin_user):
    dataset, _, items = make_queue(2)
    item = review_item_next(reviewer=reviewer_user, dataset=dataset)
    review_decision_record(item_id=item.pk, reviewer=reviewer_user, verdict="inappropriate")
    item.refresh_from_db()
    assert item.state == ReviewItem.State.DECIDED and item.leased_by is None
    # An admin overrules: a new row, the old one stays.
    review_decision_record(item_id=item.pk, reviewer=admin_user, verdict="appropriate")
    assert list(Decision.objects.filter(item=item).values_list("verdict", flat=True)) == [
        "inappropriate",
        "appropriate",
    ]
    verdicts = dict(images_with_latest_verdict(dataset_id=dataset.pk).values_list("id", "verdict"))
    assert verdicts[item.image_id] == "appropriate"
    assert verdicts[items[1].image_id] is None


@pytest.mark.django_db
def test_skip_releases_the_item_for_others_but_not_back_to_the_skipper(reviewer_user, admin_user):
    dataset, _, items = make_queue(2)
    item = review_item_next(reviewer=reviewer_user, dataset=dataset)
    review_decision_record(item_id=item.pk, reviewer=reviewer_user, verdict="skip")
    item.refresh_from_db()
    assert item.state == ReviewItem.State.PENDING and item.leased_by is None
    assert review_item_next(reviewer=reviewer_user, dataset=dataset) == items[1]
    assert review_item_next(reviewer=admin_user, dataset=dataset) == items[0]


@pytest.mark.django_db
def test_rescore_withdraws_pending_items_below_the_new_threshold_and_keeps_decided(reviewer_user):
    dataset, run, items = make_queue(3, scores=[0.9, 0.8, 0.7])
    review_decision_record(item_id=items[0].pk, reviewer=reviewer_user, verdict="inappropriate")
    flagged = review_items_sync(
        run=run, scores={items[0].image_id: 0.1, items[1].image_id: 0.2, items[2].image_id: 0.95}
    )
    assert flagged == 1
    states = {item.pk: item.state for item in ReviewItem.objects.filter(dataset=dataset)}
    assert states == {
        items[0].pk: ReviewItem.State.DECIDED,
        items[1].pk: ReviewItem.State.WITHDRAWN,
        items[2].pk: ReviewItem.State.PENDING,
    }


@pytest.mark.django_db(transaction=True)
def test_concurrent_reviewers_never_decide_the_same_item(django_user_model):
    dataset, _, items = make_queue(40)
    reviewers = [
        django_user_model.objects.create_user(username=f"r{i}", password="x") for i in range(6)
    ]
    decided: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(user) -> None:
        try:
            while True:
                item = review_item_next(reviewer=user, dataset=dataset)
                if item is None:
                    return
                review_decision_record(item_id=item.pk, reviewer=user, verdict="appropriate")
                with lock:
                    decided.append(item.pk)
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(user,)) for user in reviewers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert sorted(decided) == sorted(item.pk for item in items)
    assert Decision.objects.count() == 40
