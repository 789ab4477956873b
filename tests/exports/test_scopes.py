"""Scopes and filters: confirmed, confirmed plus flagged-and-waiting (never a below-threshold
audit sample), the keep-list; keep-list + blocklist cover the indexed images exactly once,
also with hash-bank matches (blocked, verdict "matched"); images that failed to index are in
neither; category, score-range and class filters; refused combinations."""

from __future__ import annotations

import pytest

from curation.errors import ValidationFailed
from curation.models import Export
from curation.services.exports import export_create
from labels.exports import export_build, export_rows, export_select

pytestmark = pytest.mark.django_db


def ids(world, scope, *, banks=None, **filters) -> list[int]:
    export = export_create(
        dataset=world.dataset, format="json", scope=scope, filters=filters, queue=False
    )
    return [row["image_id"] for row in export_rows(export=export, banks=banks)]


def test_confirmed_and_flagged_scopes(world):
    images = world.images
    assert ids(world, "confirmed") == [images[0].pk, images[1].pk]
    # images[3] waits for review; images[4] is an audit sample (below the threshold): out.
    assert ids(world, "flagged") == [images[0].pk, images[1].pk, images[3].pk]


@pytest.mark.parametrize("banks", [None, "one"])
def test_keep_list_and_blocklist_cover_the_indexed_images_exactly_once(world, banks):
    mapping = {world.images[5].pk: ["known-bad"], world.images[0].pk: ["known-bad"]}
    banks_given = mapping if banks else None
    blocked = ids(world, "confirmed", banks=banks_given)
    kept = ids(world, "keep", banks=banks_given)
    assert not set(blocked) & set(kept)
    assert sorted(blocked + kept) == sorted(world.indexed)
    assert world.failed.pk not in blocked + kept  # failed to index: in no list
    if banks:
        assert world.images[5].pk in blocked


def test_a_bank_match_is_blocked_as_matched_with_the_bank(world):
    rejected = world.images[2]  # a reviewer said appropriate; a bank knows better
    export = export_create(dataset=world.dataset, format="json", queue=False)
    selection = export_select(export=export, banks={rejected.pk: ["ncmec", "internal"]})
    row = next(r for r in selection.rows if r["image_id"] == rejected.pk)
    assert (row["verdict"], row["banks"]) == ("matched", ["internal", "ncmec"])
    confirmed = next(r for r in selection.rows if r["image_id"] == world.images[0].pk)
    assert (confirmed["verdict"], confirmed["banks"]) == ("inappropriate", [])
    assert selection.counts["matched"] == 1 and selection.counts["blocked"] == 3


def test_category_filter(world):
    assert ids(world, "confirmed", categories=["weapons"]) == [world.images[0].pk]
    assert ids(world, "flagged", categories=["violence and gore", "self-harm"]) == [
        world.images[1].pk
    ]


def test_score_range_filter_is_inclusive(world):
    images = world.images
    assert ids(world, "flagged", min_score=0.8) == [images[0].pk, images[1].pk]
    assert ids(world, "flagged", max_score=0.8) == [images[1].pk, images[3].pk]
    assert ids(world, "keep", min_score=0.15, max_score=0.3) == [images[4].pk, images[6].pk]


def test_class_filter(world):
    images = world.images
    assert ids(world, "confirmed", classes=["revolver"]) == [images[0].pk]
    assert ids(world, "keep", classes=["revolver", "dog"]) == [
        images[2].pk, images[5].pk, images[6].pk,
    ]  # fmt: skip


def test_filters_are_recorded_in_order_without_empty_ones(world):
    export = export_create(
        dataset=world.dataset, format="csv", queue=False,
        filters={"classes": "dog, cat,,", "categories": [], "min_score": "0.25"},
    )  # fmt: skip
    assert export.filters == {"classes": ["cat", "dog"], "min_score": 0.25}
    assert export.filter_labels == ["classes: cat, dog", "score ≥ 0.25"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"format": "xml"}, "Unknown export format"),
        ({"scope": "everything"}, "Unknown export scope"),
        ({"filters": {"colour": ["red"]}}, "Unknown filter 'colour'"),
        ({"filters": {"min_score": 0.9, "max_score": 0.1}}, "lowest score is above"),
        ({"filters": {"min_score": "high"}}, "between 0 and 1"),
        ({"filters": {"max_score": 1.5}}, "between 0 and 1"),
        ({"filters": {"min_score": "nan"}}, "between 0 and 1"),
        ({"filters": {"classes": [3]}}, "list of names"),
        ({"filters": {"classes": ["x" * 201]}}, "at most 200"),
        ({"scope": "keep", "filters": {"categories": ["weapons"]}}, "no category filter"),
        ({"scope": "keep", "format": "hashbank"}, "cannot be a keep-list"),
        ({"copy_kind": "imagefolder", "copy_target": "/tmp/x"}, "keep-list scope"),
        ({"copy_target": "/tmp/x"}, "Choose what kind"),
        ({"scope": "keep", "copy_kind": "webdataset", "copy_target": "/x"}, "cannot be copied"),
        ({"scope": "keep", "copy_kind": "imagefolder"}, "Give the folder"),
        ({"scope": "keep", "copy_kind": "zip", "copy_target": "/x"}, "Unknown cleaned copy"),
    ],
)
def test_bad_options_are_refused_and_nothing_is_recorded(world, options, message):
    options = {"format": "csv", **options}
    with pytest.raises(ValidationFailed, match=message):
        export_create(dataset=world.dataset, queue=False, **options)
    assert not Export.objects.exists()


def test_progress_total_and_rows_are_on_the_export(world):
    export = export_build(
        export_id=export_create(dataset=world.dataset, format="csv", scope="keep", queue=False).pk
    )
    assert (export.rows, export.total) == (5, 5)
    again = export_build(export_id=export.pk)  # a finished export is left alone
    assert again.file_path == export.file_path and again.finished_at == export.finished_at
