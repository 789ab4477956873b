"""Exports from the API, the dataset page's form and `export_blocklist`: every option, bad
input a clear 4xx (never a 500) that records nothing, downloads (file and provenance) only
through the authorised view, formula cells neutralised in every CSV column."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from rest_framework.test import APIClient

from curation.models import Export
from curation.services.exports import export_create
from labels.exports import export_build
from tests.exports.world import make_world

pytestmark = pytest.mark.django_db


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_api_creates_an_export_with_filters_and_reports_progress(
    world, admin_user, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False):
        response = api(admin_user).post("/api/exports/", {
            "dataset": world.dataset.pk, "format": "parquet", "scope": "flagged",
            "filters": {"classes": ["revolver"], "min_score": 0.5},
        }, format="json")  # fmt: skip
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["filters"] == {"classes": ["revolver"], "min_score": 0.5}
    assert (body["state"], body["download_url"], body["provenance_url"]) == ("pending", None, None)
    export_build(export_id=body["id"])
    detail = api(admin_user).get(f"/api/exports/{body['id']}/").json()
    assert (detail["state"], detail["rows"], detail["total"]) == ("succeeded", 1, 1)
    download = api(admin_user).get(detail["download_url"])
    assert download.status_code == 200
    assert download["Content-Type"] == "application/vnd.apache.parquet"
    assert (
        f"q16-blocklist-{world.dataset.pk}-{body['id']}.parquet" in download["Content-Disposition"]
    )
    provenance = api(admin_user).get(detail["provenance_url"])
    assert provenance.status_code == 200
    sidecar = json.loads(b"".join(provenance.streaming_content))
    assert sidecar["filters"] == {"classes": ["revolver"], "min_score": 0.5}


@pytest.mark.parametrize(
    "payload",
    [
        {"format": "xml"},
        {"scope": "all"},
        {"filters": {"colour": "red"}},
        {"filters": {"min_score": 2}},
        {"filters": {"min_score": 0.9, "max_score": 0.2}},
        {"filters": {"classes": "not-a-list"}},
        {"filters": "nope"},
        {"scope": "keep", "filters": {"categories": ["weapons"]}},
        {"scope": "keep", "format": "hashbank"},
        {"copy_kind": "imagefolder", "copy_target": "/etc"},
        {"scope": "keep", "copy_kind": "imagefolder", "copy_target": "/etc/q16"},
        {"scope": "keep", "copy_kind": "webdataset", "copy_target": "/tmp/x"},
        {"scope": "keep", "copy_kind": "imagefolder", "copy_target": "s3://b/x", "copy_mode": "x"},
    ],
)
def test_api_bad_input_is_a_400_and_records_nothing(world, admin_user, payload):
    data = {"dataset": world.dataset.pk, "format": "csv", **payload}
    response = api(admin_user).post("/api/exports/", data, format="json")
    assert response.status_code == 400, response.content
    assert response.json()
    assert not Export.objects.exists()


def test_download_is_refused_until_ready_and_for_a_bad_part(world, admin_user, reviewer_user):
    export = export_create(dataset=world.dataset, format="jsonl", queue=False)
    assert api(admin_user).get(f"/api/exports/{export.pk}/download/").status_code == 409
    export_build(export_id=export.pk)
    url = f"/api/exports/{export.pk}/download/"
    assert api(admin_user).get(url + "?part=everything").status_code == 400
    assert api(reviewer_user).get(url).status_code == 403
    assert api(reviewer_user).get(url + "?part=provenance").status_code == 403
    assert APIClient().get(url).status_code in (401, 403)
    response = api(admin_user).get(url)
    assert response["Content-Type"] == "application/x-ndjson"


def test_page_form_queues_an_export_with_every_option(
    client, world, admin_user, settings, tmp_path, django_capture_on_commit_callbacks
):
    client.force_login(admin_user)
    with django_capture_on_commit_callbacks(execute=False):
        response = client.post(reverse("dataset-export", args=[world.dataset.pk]), {
            "format": "sha256", "scope": "confirmed", "categories": "weapons, other",
            "classes": "", "min_score": "0.1", "max_score": "", "copy_kind": "",
            "copy_target": "", "copy_mode": "copy",
        })  # fmt: skip
    assert response.status_code == 302
    export = Export.objects.get()
    assert (export.format, export.filters) == ("sha256", {
        "categories": ["other", "weapons"], "min_score": 0.1})  # fmt: skip
    page = client.get(reverse("dataset-detail", args=[world.dataset.pk])).content.decode()
    assert "categories: other, weapons" in page and "score ≥ 0.1" in page


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"min_score": "7"}, "less than or equal to 1"),
        ({"scope": "keep", "categories": "weapons"}, "no category filter"),
        ({"scope": "keep", "copy_kind": "imagefolder", "copy_target": "/etc/x"}, "export folder"),
        ({"copy_kind": "imagefolder", "copy_target": "/tmp/x"}, "keep-list scope"),
    ],
)
def test_page_form_bad_input_is_a_400_with_the_reason(client, world, admin_user, form, message):
    client.force_login(admin_user)
    data = {"format": "csv", "scope": "confirmed", "copy_mode": "copy", **form}
    response = client.post(reverse("dataset-export", args=[world.dataset.pk]), data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Export.objects.exists()


def test_command_takes_every_option(world, tmp_path, settings):
    out, sidecar = tmp_path / "keep.parquet", tmp_path / "keep.provenance.json"
    call_command("export_blocklist", str(world.dataset.pk), "--format", "parquet",
                 "--scope", "keep", "--class", "dog,cat", "--max-score", "0.65",
                 "-o", str(out), "--provenance-output", str(sidecar),
                 stdout=io.StringIO())  # fmt: skip
    import pyarrow.parquet as pq

    rows = pq.read_table(out).to_pylist()
    assert [row["image_id"] for row in rows] == [world.images[i].pk for i in (3, 4, 5, 6)]
    assert json.loads(sidecar.read_text())["filters"] == {"classes": ["cat", "dog"],
                                                          "max_score": 0.65}  # fmt: skip
    with pytest.raises(CommandError, match="no category filter"):
        call_command("export_blocklist", str(world.dataset.pk), "--scope", "keep",
                     "--category", "weapons", stdout=io.StringIO())  # fmt: skip


def test_command_writes_a_cleaned_copy(tmp_path, settings, admin_user):
    from curation.services.datasets import dataset_create_from_folder, dataset_import
    from tests.exports.test_cleaned_copies import score_and_confirm
    from tests.hostile import files

    settings.MEDIA_ROOT = tmp_path / "media"
    settings.Q16_EXPORT_ROOTS = [str(tmp_path / "out")]
    folder = tmp_path / "src"
    (folder / "a").mkdir(parents=True)
    (folder / "a" / "1.png").write_bytes(files.png(color=(1, 2, 3)))
    (folder / "a" / "2.png").write_bytes(files.png(color=(200, 2, 3)))
    dataset = dataset_import(dataset_id=dataset_create_from_folder(
        name="cmd", folder=str(folder), class_folders=True, queue=False).pk)  # fmt: skip
    score_and_confirm(dataset, admin_user, blocked={"a/1.png"}, key=lambda i: i.relative_path)
    stdout = io.StringIO()
    call_command("export_blocklist", "cmd", "--scope", "keep", "--copy", "imagefolder",
                 "--copy-to", str(tmp_path / "out" / "clean"), "--copy-mode", "symlink",
                 stdout=stdout)  # fmt: skip
    assert "cleaned copy in" in stdout.getvalue()
    assert [p.name for p in (tmp_path / "out" / "clean" / "a").iterdir()] == ["2.png"]


HOSTILE = ['=HYPERLINK("http://evil.example/","x")', "+cmd|' -c calc'!A0", "-1+2", "@SUM(1)",
           "\tx", "\rx"]  # fmt: skip


def test_every_csv_column_an_owner_controls_is_neutralised(
    db, settings, tmp_path, admin_user, other_user
):
    settings.MEDIA_ROOT = tmp_path / "media"
    world = make_world(admin_user, other_user, name="=cmd|' /C calc'!A0")
    for index, image in enumerate(world.images[: len(HOSTILE)]):
        image.relative_path = HOSTILE[index] + f"-{index}"
        image.sample_key = HOSTILE[index]
        image.class_label = HOSTILE[index]
        image.save(update_fields=["relative_path", "sample_key", "class_label"])
    export = export_build(export_id=export_create(
        dataset=world.dataset, format="csv", scope="keep", queue=False).pk)  # fmt: skip
    with open(export.file_path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    cells = [row[column] for row in rows for column in ("path", "sample_key", "class_label")]
    assert cells and all(not cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in cells)
    assert {row["class_label"] for row in rows} >= {"'" + HOSTILE[2], "'" + HOSTILE[3]}
    bank = export_build(export_id=export_create(
        dataset=world.dataset, format="hashbank", queue=False).pk)  # fmt: skip
    with open(bank.file_path, newline="", encoding="utf-8") as handle:
        collabs = {row["collab"] for row in csv.DictReader(handle)}
    assert collabs == {"'=cmd|' /C calc'!A0"}
