"""The new sources through the web form, the API and `import_dataset`: created, imported,
and bad input refused with a 4xx that names the problem."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse
from rest_framework.test import APIClient

from curation.models import Dataset, Image
from curation.services.datasets import dataset_import
from tests.hostile import files
from tests.sources.shards import sample_members, write_img2dataset_folder, write_shard

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(admin_user):
    client = APIClient()
    client.force_authenticate(admin_user)
    return client


def test_form_creates_a_webdataset_dataset(admin_client, tmp_path):
    shard = write_shard(tmp_path / "w" / "00000.tar", sample_members("k"))
    response = admin_client.post(reverse("dataset-list"), {"name": "wf", "shards": str(shard)})
    assert response.status_code == 302
    dataset = Dataset.objects.get(name="wf")
    assert dataset.source_kind == Dataset.SourceKind.WEBDATASET
    assert dataset.options["shards"] == [str(shard)]


def test_form_refuses_a_remote_shard_and_a_bad_table(admin_client, db):
    response = admin_client.post(reverse("dataset-list"), {"name": "r", "shards": "s3://b/x.tar"})
    assert response.status_code == 400 and "remote imports are off" in response.content.decode()
    upload = SimpleUploadedFile("t.csv", b"link\nhttps://example.org/a.png\n")
    response = admin_client.post(reverse("dataset-list"), {"name": "t", "url_table": upload})
    assert response.status_code == 400 and "no column" in response.content.decode()
    assert not Dataset.objects.exists()


def test_form_class_folders_and_tar_upload(admin_client, tmp_path):
    (tmp_path / "cls" / "cat").mkdir(parents=True)
    (tmp_path / "cls" / "cat" / "a.png").write_bytes(files.png())
    response = admin_client.post(
        reverse("dataset-list"),
        {"name": "cf", "folder": str(tmp_path / "cls"), "class_folders": "on"},
    )
    assert response.status_code == 302
    dataset = dataset_import(dataset_id=Dataset.objects.get(name="cf").pk)
    assert list(dataset.images.values_list("class_label", flat=True)) == ["cat"]
    tar = io.BytesIO(write_shard(tmp_path / "a.tar", [("x.png", files.png())]).read_bytes())
    upload = SimpleUploadedFile("photos.tar", tar.getvalue())
    response = admin_client.post(reverse("dataset-list"), {"name": "tar", "archive": upload})
    assert response.status_code == 302, response.context["form"].errors


def test_api_creates_each_source_and_refuses_two(api, tmp_path):
    shard = write_shard(tmp_path / "a" / "00000.tar", sample_members("k"))
    response = api.post(
        reverse("api-datasets"), {"name": "a1", "shards": str(shard)}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["source_kind"] == "webdataset"
    folder = write_img2dataset_folder(tmp_path / "i2d")
    response = api.post(
        reverse("api-datasets"), {"name": "a2", "img2dataset_folder": str(folder)}, format="json"
    )
    assert response.status_code == 201
    table = SimpleUploadedFile("t.tsv", b"image\tcaption\nhttps://example.org/a.png\tx\n")
    response = api.post(
        reverse("api-datasets"),
        {"name": "a3", "url_table": table, "url_column": "image"},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    assert response.json()["options"] == {"url_column": "image", "table_format": "tsv"}
    response = api.post(
        reverse("api-datasets"),
        {"name": "a4", "shards": str(shard), "folder": str(tmp_path)},
        format="json",
    )
    assert response.status_code == 400
    response = api.post(reverse("api-datasets"), {"name": "a5", "shards": "{0..9"}, format="json")
    assert response.status_code == 400


def test_api_reimport_and_image_fields(api, tmp_path):
    shard = write_shard(tmp_path / "r" / "00000.tar", sample_members("k"))
    created = api.post(reverse("api-datasets"), {"name": "ri", "shards": str(shard)}, format="json")
    dataset = dataset_import(dataset_id=created.json()["id"])
    # A second request while READY re-queues; a pending one is a 409.
    assert api.post(reverse("api-dataset-reimport", args=[dataset.pk])).status_code == 200
    assert api.post(reverse("api-dataset-reimport", args=[dataset.pk])).status_code == 409
    image = Image.objects.get(dataset=dataset)
    assert image.sample_key == "k" and image.member_size and image.container == str(shard)


def test_import_dataset_command_imports_shards_and_reimports(tmp_path, capsys):
    shard = write_shard(tmp_path / "c" / "00000.tar", sample_members("k1") + sample_members("k2"))
    call_command("import_dataset", "cmd", "--shards", str(shard))
    dataset = Dataset.objects.get(name="cmd")
    assert (dataset.state, dataset.processed) == (Dataset.State.READY, 2)
    call_command("import_dataset", "cmd", "--into")
    assert Dataset.objects.get(name="cmd").processed == 2
    folder = write_img2dataset_folder(tmp_path / "i2d")
    call_command("import_dataset", "cmdi", "--img2dataset", str(folder))
    assert Dataset.objects.get(name="cmdi").failed == 1
