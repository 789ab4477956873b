"""Every export format round-trips: export, parse the file, compare with the database read
another way (tests/exports/world.py); hash lists and the hash-bank CSV hold the right hashes;
every file carries its provenance; the same export of unchanged data twice is the same bytes
apart from the time."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curation.models import Export
from curation.services.exports import export_create
from labels.exports import ROW_COLUMNS, export_build
from labels.exports.formats import HASH_BANK_COLUMNS
from tests.exports.parse import (
    export_bytes,
    parquet_provenance,
    parse_hash_bank,
    parse_lines,
    parse_rows,
)
from tests.exports.world import expected_row

pytestmark = pytest.mark.django_db

ROW_FORMATS = ["csv", "json", "jsonl", "parquet"]


def build(world, **options) -> Export:
    export = export_create(dataset=world.dataset, queue=False, **options)
    export = export_build(export_id=export.pk)
    assert export.state == Export.State.SUCCEEDED, export.error
    return export


def expected(world, ids) -> list[dict]:
    return [expected_row(image, world.run) for image in world.images if image.pk in ids]


@pytest.mark.parametrize("export_format", ROW_FORMATS)
@pytest.mark.parametrize(
    ("scope", "ids"),
    [
        ("confirmed", lambda w: w.confirmed),
        ("flagged", lambda w: w.confirmed | w.flagged_waiting),
        ("keep", lambda w: w.indexed - w.confirmed),
    ],
)
def test_rows_round_trip_through_every_row_format(world, export_format, scope, ids):
    export = build(world, format=export_format, scope=scope)
    rows = parse_rows(export)
    assert rows == expected(world, ids(world))
    assert all(list(row) == list(ROW_COLUMNS) for row in rows)
    assert (export.rows, export.total) == (len(rows), len(rows))


def test_the_rows_say_what_reviewers_said(world):
    rows = {row["image_id"]: row for row in parse_rows(build(world, format="json", scope="keep"))}
    confirmed = {r["image_id"]: r for r in parse_rows(build(world, format="json"))}
    first, second = (confirmed[world.images[i].pk] for i in (0, 1))
    assert (first["category"], first["verdicts"], first["agreement"]) == ("weapons", 1, 1.0)
    # A second look disagreed: two verdicts, half of them agree with the settled one.
    assert (second["category"], second["verdicts"], second["agreement"]) == (
        "violence and gore", 2, 0.5,
    )  # fmt: skip
    assert rows[world.images[2].pk]["verdict"] == "appropriate"
    assert rows[world.images[3].pk]["verdict"] == "unreviewed"
    assert world.failed.pk not in rows


@pytest.mark.parametrize(("export_format", "column"), [("sha256", "sha256"), ("phash", "phash"),
                                                       ("pdq", "pdq")])  # fmt: skip
@pytest.mark.parametrize("scope", ["confirmed", "flagged", "keep"])
def test_hash_lists_hold_each_hash_of_the_scope_once(world, export_format, column, scope):
    rows = parse_rows(build(world, format="json", scope=scope))
    export = build(world, format=export_format, scope=scope)
    wanted = list(dict.fromkeys(row[column] for row in rows if row[column]))
    assert parse_lines(export) == wanted
    provenance = json.loads(export_bytes(export, provenance=True))
    assert provenance["counts"]["hashes"] == len(wanted)


def test_identical_images_give_one_line_in_a_hash_list(world):
    a, b = world.images[0], world.images[1]
    type(b).objects.filter(pk=b.pk).update(sha256=a.sha256)
    assert parse_lines(build(world, format="sha256")) == [a.sha256]


def test_hash_bank_csv_is_threatexchange_dataset_csv_of_pdq_signals(world):
    export = build(world, format="hashbank", scope="flagged")
    rows = parse_hash_bank(export)
    assert list(rows[0]) == list(HASH_BANK_COLUMNS)
    by_hash = {row["signal_str"]: row for row in rows}
    first, second, waiting = (world.images[i] for i in (0, 1, 3))
    assert set(by_hash) == {first.pdq, second.pdq, waiting.pdq}
    assert by_hash[first.pdq] == {
        "signal_type": "pdq", "signal_str": first.pdq, "collab": world.dataset.name,
        "category": "POSITIVE_CLASS", "tags": "q16 weapons",
    }  # fmt: skip
    assert by_hash[second.pdq]["tags"] == "q16 violence_and_gore"
    assert by_hash[waiting.pdq]["category"] == "INVESTIGATION_SEED"
    assert all(len(row["signal_str"]) == 64 for row in rows)


def test_images_without_a_pdq_hash_are_left_out_of_pdq_files(world):
    # images[5] (never flagged) has no PDQ hash: it is in the keep-list but not its PDQ list.
    keep = parse_rows(build(world, format="json", scope="keep"))
    assert world.images[5].pk in {row["image_id"] for row in keep}
    assert "" not in parse_lines(build(world, format="pdq", scope="keep"))
    assert len(parse_lines(build(world, format="pdq", scope="keep"))) == len(keep) - 1


@pytest.mark.parametrize("export_format", [f for f in Export.Format.values])
def test_every_export_has_its_provenance(world, export_format):
    scope = "confirmed" if export_format == "hashbank" else "keep"
    export = build(world, format=export_format, scope=scope, filters={"classes": ["dog", "cat"]})
    sidecar = json.loads(export_bytes(export, provenance=True))
    version = world.run.prompt_version
    assert sidecar["dataset"] == {"id": world.dataset.pk, "name": world.dataset.name,
                                  "source_kind": "folder"}  # fmt: skip
    assert sidecar["prompt_version"] == {"id": version.pk, "name": version.name}
    assert (sidecar["run"], sidecar["threshold"]) == (world.run.pk, 0.5)
    assert (sidecar["scope"], sidecar["format"]) == (scope, export_format)
    assert sidecar["filters"] == {"classes": ["cat", "dog"]}
    assert sidecar["exported_at"]
    counts = sidecar["counts"]
    assert counts["rows"] == export.rows
    assert counts["not_indexed"] == 1  # the image that failed to index
    if export_format == "json":
        assert json.loads(export_bytes(export))["provenance"] == sidecar
    if export_format == "parquet":
        assert parquet_provenance(export) == sidecar


def _without_time(export: Export) -> bytes:
    data = export_bytes(export)
    if export.format == Export.Format.JSON:
        body = json.loads(data)
        body["provenance"].pop("exported_at")
        return json.dumps(body).encode()
    if export.format == Export.Format.PARQUET:
        table = pq.read_table(pa.BufferReader(data))
        provenance = json.loads(table.schema.metadata[b"q16_provenance"])
        provenance.pop("exported_at")
        return json.dumps([table.to_pylist(), provenance]).encode()
    return data


@pytest.mark.parametrize("export_format", [f for f in Export.Format.values])
def test_the_same_export_twice_is_the_same_bytes_apart_from_the_time(world, export_format):
    options = {"format": export_format, "scope": "flagged", "filters": {"min_score": 0.05}}
    first, second = build(world, **options), build(world, **options)
    assert first.file_path != second.file_path
    if export_format in ("json", "parquet"):
        assert export_bytes(first) != export_bytes(second) or True  # the time may tie
        assert _without_time(first) == _without_time(second)
    else:
        assert export_bytes(first) == export_bytes(second)  # no time inside at all
    sidecars = [json.loads(export_bytes(e, provenance=True)) for e in (first, second)]
    for sidecar in sidecars:
        sidecar.pop("exported_at")
    assert sidecars[0] == sidecars[1]


def test_a_changed_verdict_changes_the_file(world, admin_user):
    from reviewer.services.decisions import review_decision_record
    from tests.reviewer.factories import item_of

    before = export_bytes(build(world, format="csv"))
    review_decision_record(item_id=item_of(world.images[3]).pk, reviewer=admin_user,
                           verdict="inappropriate", category="other")  # fmt: skip
    after = export_bytes(build(world, format="csv"))
    assert before != after and world.images[3].sha256.encode() in after
