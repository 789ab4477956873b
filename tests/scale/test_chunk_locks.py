"""A chunk that holds its run's row (adding its counters) does not block another chunk's
review-item writes: those reference the run, and PostgreSQL's foreign-key check locks it."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from django.db import connection, connections, transaction

from curation.models import Score, ScoringRun
from curation.services.chunks import _add_chunk_to_run
from reviewer.models import ReviewItem
from reviewer.services.items import review_items_sync_stored
from tests.conftest import require
from tests.reviewer.factories import make_dataset

pytestmark = pytest.mark.django_db(transaction=True)


def test_review_item_writes_go_on_while_another_chunk_holds_the_run():
    require(connection.vendor == "postgresql", "row locks and foreign-key checks of PostgreSQL")
    dataset, first, images = make_dataset([0.9, 0.8, 0.1, 0.7])
    rescore = ScoringRun.objects.create(
        dataset=dataset, prompt_version=first.prompt_version, model_key=first.model_key,
        threshold=0.5, kind=ScoringRun.Kind.RESCORE, state=ScoringRun.State.RUNNING,
        chunks_total=2,
    )  # fmt: skip
    probabilities = np.array([0.95, 0.2, 0.6, 0.75])
    Score.objects.bulk_create(
        Score(run=rescore, image=image, p_inappropriate=float(p))
        for image, p in zip(images, probabilities, strict=True)
    )
    holding, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def other_chunk_commits() -> None:
        try:
            with transaction.atomic():
                _add_chunk_to_run(
                    run_id=rescore.pk, processed=2, failed=0, flagged=1, encoded=0, timings={}
                )
                holding.set()
                release.wait(10)
        except BaseException as error:  # reported by the main thread
            errors.append(error)
            holding.set()
        finally:
            connections.close_all()

    holder = threading.Thread(target=other_chunk_commits)
    holder.start()
    try:
        assert holding.wait(10)
        with transaction.atomic(), connection.cursor() as cursor:
            # A FOR UPDATE on the run would make this wait for the other chunk's commit.
            cursor.execute("SET LOCAL lock_timeout = '2s'")
            flagged = review_items_sync_stored(
                run=rescore,
                first_image_id=images[0].pk,
                last_image_id=images[-1].pk,
                image_ids=np.array([image.pk for image in images]),
                probabilities=probabilities,
            )
    finally:
        release.set()
        holder.join(10)
    assert not errors, errors
    assert flagged == 3
    items = {item.image_id: item for item in ReviewItem.objects.filter(dataset=dataset)}
    assert {i: (items[i].run_id, items[i].state) for i in items} == {
        images[0].pk: (rescore.pk, ReviewItem.State.PENDING),
        images[1].pk: (rescore.pk, ReviewItem.State.WITHDRAWN),
        images[2].pk: (rescore.pk, ReviewItem.State.PENDING),
        images[3].pk: (rescore.pk, ReviewItem.State.PENDING),
    }
    assert ScoringRun.objects.get(pk=rescore.pk).chunks_done == 1
