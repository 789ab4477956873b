"""Bank pages, API and the import_hash_bank command: who may, good files, hostile files (4xx
with line numbers, nothing kept), matched images shown on the dataset and bank pages."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse
from rest_framework.test import APIClient

from curation.bank_models import HashBank, HashBankEntry
from curation.services.banks import bank_create, bank_match_all_datasets
from tests.banks.conftest import export_csv, image

pytestmark = pytest.mark.django_db

PHASHES = b"f0e1d2c3b4a59687\n0000ffff0000ffff\n"


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def api(admin_user):
    client = APIClient()
    client.force_authenticate(admin_user)
    return client


def upload(data: bytes, name: str = "bank.txt") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


def test_only_admins_see_the_bank_pages(client, reviewer_user):
    assert client.get(reverse("hash-bank-list")).status_code == 302  # to the login page
    client.force_login(reviewer_user)
    assert client.get(reverse("hash-bank-list")).status_code == 403
    api = APIClient()
    api.force_authenticate(reviewer_user)
    assert api.get(reverse("api-hash-banks")).status_code == 403


def test_upload_a_bank_on_the_page(admin_client):
    response = admin_client.post(
        reverse("hash-bank-list"),
        {"name": "phash list", "file": upload(PHASHES), "kind": "", "file_format": "auto"},
    )
    bank = HashBank.objects.get(name="phash list")
    assert response.status_code == 302 and response["Location"] == reverse(
        "hash-bank-detail", args=[bank.pk]
    )
    assert bank.phash_count == 2 and bank.source_name == "bank.txt"
    page = admin_client.get(reverse("hash-bank-list")).content.decode()
    assert "phash list" in page
    detail = admin_client.get(reverse("hash-bank-detail", args=[bank.pk])).content.decode()
    assert "No image matches this bank" in detail


def test_a_hostile_upload_is_a_400_with_line_numbers_and_keeps_nothing(admin_client):
    bad = b"f0e1d2c3b4a59687\nnot-hex-at-all!!\n" + b"a" * 64 + b"\n"
    response = admin_client.post(
        reverse("hash-bank-list"), {"name": "bad", "file": upload(bad), "file_format": "auto"}
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "line 2:" in page and "line 3: 64 hex digits is a SHA-256 or a PDQ hash" in page
    assert not HashBank.objects.exists() and not HashBankEntry.objects.exists()
    empty = admin_client.post(
        reverse("hash-bank-list"), {"name": "empty", "file": upload(b""), "file_format": "auto"}
    )
    assert empty.status_code == 400  # Django refuses an empty upload before the service


def test_an_oversized_upload_is_refused(admin_client, settings):
    settings.Q16_MAX_BANK_BYTES = 10
    response = admin_client.post(
        reverse("hash-bank-list"), {"name": "big", "file": upload(PHASHES), "file_format": "auto"}
    )
    assert response.status_code in (400, 413)
    assert not HashBank.objects.exists()


def test_api_create_list_replace_matches_and_delete(api, two_datasets):
    source, other = two_datasets
    original = image(source, "original-1.png")
    created = api.post(
        reverse("api-hash-banks"),
        {"name": "api bank", "file": upload(export_csv([original]), "export.csv")},
        format="multipart",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["entries"] == {"sha256": 1, "phash": 1, "pdq": 1} and body["format"] == "csv"
    bank_id = body["bank"]["id"]
    bank_match_all_datasets(bank_id=bank_id)
    listed = api.get(reverse("api-hash-banks")).json()
    assert [(b["name"], b["matched_images"]) for b in listed] == [("api bank", 2)]
    matches = api.get(reverse("api-hash-bank-matches", args=[bank_id])).json()
    assert {m["image"] for m in matches} == {original.pk, image(other, "exact-1.png").pk}

    bad = api.put(
        reverse("api-hash-bank-entries", args=[bank_id]),
        {"file": upload(b"zzzz\n"), "kind": "phash"},
        format="multipart",
    )
    assert bad.status_code == 400 and "line 1" in bad.json()["detail"]
    assert HashBankEntry.objects.filter(bank_id=bank_id).count() == 3  # unchanged

    replaced = api.put(
        reverse("api-hash-bank-entries", args=[bank_id]),
        {"file": upload(PHASHES), "file_format": "hashes"},
        format="multipart",
    )
    assert replaced.status_code == 200 and replaced.json()["entries"]["phash"] == 2

    assert api.delete(reverse("api-hash-bank", args=[bank_id])).status_code == 204
    assert api.get(reverse("api-hash-bank", args=[bank_id])).status_code == 404


def test_api_name_conflicts_and_bad_kinds(api):
    first = api.post(
        reverse("api-hash-banks"), {"name": "x", "file": upload(PHASHES)}, format="multipart"
    )
    assert first.status_code == 201
    again = api.post(
        reverse("api-hash-banks"), {"name": "x", "file": upload(PHASHES)}, format="multipart"
    )
    assert again.status_code == 409
    odd = api.post(
        reverse("api-hash-banks"),
        {"name": "y", "file": upload(PHASHES), "kind": "md5"},
        format="multipart",
    )
    assert odd.status_code == 400


def test_matched_images_show_on_the_dataset_and_bank_pages(admin_client, two_datasets):
    source, other = two_datasets
    bank, _ = bank_create(name="shown bank", data=export_csv([image(source, "original-0.png")]))
    bank_match_all_datasets(bank_id=bank.pk)
    page = admin_client.get(reverse("dataset-detail", args=[other.pk])).content.decode()
    assert 'id="bank-matches"' in page and "shown bank" in page and "copy-of-0.jpg" in page
    assert 'id="dataset-bank-matched">1<' in page
    detail = admin_client.get(reverse("hash-bank-detail", args=[bank.pk])).content.decode()
    assert "copy-of-0.jpg" in detail and "original-0.png" in detail
    assert 'id="bank-matched-images">2<' in detail


def test_delete_on_the_page(admin_client):
    bank, _ = bank_create(name="gone", data=PHASHES)
    response = admin_client.post(reverse("hash-bank-delete", args=[bank.pk]))
    assert response.status_code == 302 and not HashBank.objects.exists()


def test_the_command_imports_and_refuses(tmp_path):
    good = tmp_path / "shas.txt"
    good.write_text("a" * 64 + "\n" + "b" * 64 + "\n" + "a" * 64 + "\n")
    out = StringIO()
    call_command("import_hash_bank", str(good), "--name", "cmd", "--kind", "sha256", stdout=out)
    assert "2 sha256" in out.getvalue() and "1 duplicates merged" in out.getvalue()
    assert HashBank.objects.get(name="cmd").sha256_count == 2
    with pytest.raises(CommandError, match="give the kind"):
        call_command("import_hash_bank", str(good), "--name", "cmd2")
    with pytest.raises(CommandError, match="exists already"):
        call_command("import_hash_bank", str(good), "--name", "cmd", "--kind", "sha256")
    call_command(
        "import_hash_bank", str(good), "--name", "cmd", "--kind", "pdq", "--replace", stdout=out
    )
    bank = HashBank.objects.get(name="cmd")
    assert (bank.sha256_count, bank.pdq_count) == (0, 2)
    with pytest.raises(CommandError, match="not a file"):
        call_command("import_hash_bank", str(tmp_path / "missing"), "--name", "z")
