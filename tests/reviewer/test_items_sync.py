"""review_items_sync (row by row), review_items_sync_stored (set-based over stored scores, what a
scoring chunk uses) and the many-row statements under them, on PostgreSQL (the test database)
and on SQLite (the embedded default, in a subprocess with its own database file)."""

from __future__ import annotations

import numpy as np
import pytest
from django.utils import timezone

from curation.bulk import insert_rows, update_rows
from curation.models import Image, Score
from curation.services.chunks import _replace_scores
from reviewer.models import ReviewItem
from reviewer.services.items import review_items_sync, review_items_sync_stored
from tests.helpers import run_django_script
from tests.reviewer.factories import make_dataset


def _states(dataset) -> dict[int, tuple[str, float, float, int | None]]:
    return {
        image_id: (state, round(score, 6), round(margin, 6), run_id)
        for image_id, state, score, margin, run_id in ReviewItem.objects.filter(
            dataset=dataset
        ).values_list("image_id", "state", "score", "margin", "run_id")
    }


def _sync(path: str, *, run, scores: dict[int, float]) -> int:
    """Sync through one path: a plain dict, or scores stored as a chunk stores them."""
    if path == "dict":
        return review_items_sync(run=run, scores=scores)
    ids = np.array(sorted(scores), dtype=np.int64)
    ps = np.array([scores[i] for i in ids.tolist()], dtype=np.float64)
    _replace_scores(
        run_id=run.pk, first_image_id=int(ids[0]), last_image_id=int(ids[-1]),
        image_ids=ids, probabilities=ps,
    )  # fmt: skip
    return review_items_sync_stored(
        run=run, first_image_id=int(ids[0]), last_image_id=int(ids[-1]),
        image_ids=ids, probabilities=ps,
    )  # fmt: skip


PATHS = pytest.mark.parametrize("path", ["dict", "stored"])


@pytest.mark.django_db
@PATHS
def test_sync_creates_rescores_withdraws_restores_and_spares_audit_items(reviewer_user, path):
    # Images 0-2 flagged by the first run; 3 is an audit item; 4 was withdrawn earlier.
    dataset, run, images = make_dataset([0.9, 0.8, 0.7, 0.2, 0.3])
    ids = [image.pk for image in images]
    ReviewItem.objects.create(dataset=dataset, image=images[3], score=0.2, is_audit=True, run=run)
    ReviewItem.objects.create(
        dataset=dataset, image=images[4], score=0.3, state=ReviewItem.State.WITHDRAWN, run=run
    )
    held = ReviewItem.objects.get(image=images[1])
    ReviewItem.objects.filter(pk=held.pk).update(
        leased_by=reviewer_user, lease_expires_at=timezone.now()
    )
    new_run = run.__class__.objects.create(
        dataset=dataset, prompt_version=run.prompt_version, model_key=run.model_key,
        threshold=0.6, state=run.State.RUNNING,
    )  # fmt: skip

    flagged = _sync(
        path,
        run=new_run,
        scores={ids[0]: 0.95, ids[1]: 0.4, ids[2]: 0.65, ids[3]: 0.1, ids[4]: 0.7},
    )

    assert flagged == 3
    assert _states(dataset) == {
        ids[0]: ("pending", 0.95, 0.35, new_run.pk),
        ids[1]: ("withdrawn", 0.4, 0.2, new_run.pk),  # fell below: withdrawn, lease cleared
        ids[2]: ("pending", 0.65, 0.05, new_run.pk),
        ids[3]: ("pending", 0.1, 0.5, new_run.pk),  # audit items stay below the threshold
        ids[4]: ("pending", 0.7, 0.1, new_run.pk),  # flagged again: back in the queue
    }
    held.refresh_from_db()
    assert held.leased_by is None and held.lease_expires_at is None


@pytest.mark.django_db
@PATHS
def test_sync_creates_items_only_for_flagged_images_without_one(path):
    dataset, run, images = make_dataset([0.1, 0.2, 0.3], threshold=0.5)
    assert not ReviewItem.objects.filter(dataset=dataset).exists()
    flagged = _sync(path, run=run, scores={images[0].pk: 0.9, images[1].pk: 0.2, images[2].pk: 0.5})
    assert flagged == 2
    items = ReviewItem.objects.filter(dataset=dataset).order_by("image_id")
    assert [(item.image_id, item.state, item.is_audit) for item in items] == [
        (images[0].pk, "pending", False),
        (images[2].pk, "pending", False),
    ]
    assert all(item.created_at is not None and item.run_id == run.pk for item in items)
    # Idempotent: a redelivered chunk changes nothing.
    assert _sync(path, run=run, scores={images[0].pk: 0.9, images[2].pk: 0.5}) == 2
    assert ReviewItem.objects.filter(dataset=dataset).count() == 2


@pytest.mark.django_db
@PATHS
def test_sync_keeps_verdicts_and_ignores_other_datasets_and_nan(path):
    # Decided and disputed items keep their state whatever the score; NaN never flags.
    dataset, run, images = make_dataset([0.9, 0.9, 0.1, 0.1])
    other_dataset, other_run, other_images = make_dataset([0.9])
    ids = [image.pk for image in images]
    ReviewItem.objects.filter(image=images[0]).update(state=ReviewItem.State.DECIDED)
    ReviewItem.objects.filter(image=images[1]).update(state=ReviewItem.State.DISPUTED)
    flagged = _sync(
        path, run=run, scores={ids[0]: 0.1, ids[1]: 0.2, ids[2]: 0.8, ids[3]: float("nan")}
    )
    assert flagged == 1
    states = dict(ReviewItem.objects.filter(dataset=dataset).values_list("image_id", "state"))
    assert states == {ids[0]: "decided", ids[1]: "disputed", ids[2]: "pending"}
    assert ReviewItem.objects.get(image=other_images[0]).run_id == other_run.pk


@pytest.mark.django_db
def test_insert_rows_upserts_and_update_rows_sets_by_key():
    dataset, run, images = make_dataset([0.1, 0.2])
    Score.objects.filter(run=run).delete()
    conflict = (
        "ON CONFLICT (run_id, image_id) DO UPDATE SET p_inappropriate = excluded.p_inappropriate"
    )
    columns = ["run_id", "image_id", "p_inappropriate"]
    types = ["bigint", "bigint", "float8"]
    rows = [(run.pk, images[0].pk, 0.25), (run.pk, images[1].pk, 0.75)]
    insert_rows(
        table=Score._meta.db_table, columns=columns, pg_types=types, rows=rows, on_conflict=conflict
    )
    insert_rows(
        table=Score._meta.db_table, columns=columns, pg_types=types,
        rows=[(run.pk, images[0].pk, 0.5)], on_conflict=conflict,
    )  # fmt: skip
    insert_rows(
        table=Score._meta.db_table, columns=columns, pg_types=types, rows=[], on_conflict=""
    )
    assert dict(Score.objects.filter(run=run).values_list("image_id", "p_inappropriate")) == {
        images[0].pk: 0.5,
        images[1].pk: 0.75,
    }
    # update_rows by an id key: the images' dimensions (scores are keyed by run and image).
    update_rows(
        table=Image._meta.db_table, key="id", columns=["width"],
        pg_types=["bigint", "bigint"], rows=[(images[1].pk, 125)],
    )  # fmt: skip
    assert Image.objects.get(pk=images[1].pk).width == 125
    assert Image.objects.get(pk=images[0].pk).width == 8


# The same behaviour on SQLite, through the service a rescore uses: a fresh database file.
SQLITE_SCRIPT = r"""
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0, interactive=False)
from tests.reviewer.factories import make_dataset
from curation.models import Score
from reviewer.models import ReviewItem
from reviewer.services.items import review_items_sync
import numpy as np
from reviewer.services.items import review_items_sync_stored
from curation.services.chunks import _replace_scores

dataset, run, images = make_dataset([0.9, 0.8, 0.2])
ids = [image.pk for image in images]
arrays = dict(image_ids=np.array(ids, dtype=np.int64), probabilities=np.array([0.1, 0.7, 0.6]))
_replace_scores(run_id=run.pk, first_image_id=ids[0], last_image_id=ids[-1], **arrays)
_replace_scores(run_id=run.pk, first_image_id=ids[0], last_image_id=ids[-1], **arrays)
scores = dict(Score.objects.filter(run=run).values_list("image_id", "p_inappropriate"))
assert scores == {ids[0]: 0.1, ids[1]: 0.7, ids[2]: 0.6}, scores
assert review_items_sync_stored(
    run=run, first_image_id=ids[0], last_image_id=ids[-1], **arrays
) == 2
states = dict(ReviewItem.objects.values_list("image_id", "state"))
assert states == {ids[0]: "withdrawn", ids[1]: "pending", ids[2]: "pending"}, states
assert ReviewItem.objects.get(image_id=ids[2]).created_at is not None
assert review_items_sync(run=run, scores={ids[0]: 0.9}) == 1
assert ReviewItem.objects.get(image_id=ids[0]).state == "pending"
print("sqlite-sync-ok")
"""


def test_sync_and_score_upserts_on_sqlite(tmp_path):
    out = run_django_script(
        SQLITE_SCRIPT,
        database_url=f"sqlite:///{tmp_path / 'sync.sqlite3'}",
        Q16_DATA_DIR=str(tmp_path / "data"),
    )
    assert "sqlite-sync-ok" in out
