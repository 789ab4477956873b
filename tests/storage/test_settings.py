"""Q16_STORAGE: the named storages it configures, and bad configuration refused at startup."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import storages

from config.storage_settings import file_storages
from curation import storage

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_local_storages_follow_media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "m"
    assert storage.local_path(storage.THUMBNAILS, "ab/x.jpg") == tmp_path / "m/thumbnails/ab/x.jpg"
    assert storage.local_path(storage.EXPORTS, "e.csv") == tmp_path / "m/exports/e.csv"
    assert storage.local_path(storage.EMBEDDINGS, "k/s") == tmp_path / "m/embeddings/k/s"
    assert storage.local_path(storage.MEDIA, "archives/a.zip") == tmp_path / "m/archives/a.zip"
    assert Path(storages["default"].path("x")) == tmp_path / "m/x"


def test_local_write_and_open_round_trip(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "m"
    reference = storage.stored_write(storage.EXPORTS, "export-1.csv", b"a,b\n")
    assert reference == str(tmp_path / "m/exports/export-1.csv")  # a plain path, as before
    assert storage.stored_write(storage.EXPORTS, "export-1.csv", b"c\n") == reference
    with storage.stored_open(reference) as handle:
        assert handle.read() == b"c\n"
    assert sorted(p.name for p in (tmp_path / "m/exports").iterdir()) == ["export-1.csv"]


def test_s3_storages_share_one_bucket_under_their_prefixes():
    entries = file_storages(kind="s3", bucket="b", prefix="/team/q16/", endpoint_url="http://h:9")
    locations = {name: entry["OPTIONS"]["location"] for name, entry in entries.items()}
    assert locations == {
        "default": "team/q16/media", "media": "team/q16/media",
        "thumbnails": "team/q16/thumbnails", "exports": "team/q16/exports",
        "embeddings": "team/q16/embeddings",
    }  # fmt: skip
    assert {entry["OPTIONS"]["bucket_name"] for entry in entries.values()} == {"b"}
    assert {entry["OPTIONS"]["endpoint_url"] for entry in entries.values()} == {"http://h:9"}


def test_unknown_kind_and_missing_bucket_are_refused():
    with pytest.raises(ImproperlyConfigured, match="Q16_STORAGE='disk' is not a storage kind"):
        file_storages(kind="disk")
    with pytest.raises(ImproperlyConfigured, match="Q16_STORAGE=s3 needs Q16_S3_BUCKET"):
        file_storages(kind="s3")


def test_a_foreign_reference_is_not_opened():
    with pytest.raises(FileNotFoundError):
        storage.stored_open("storage:staticfiles/settings.py")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"Q16_STORAGE": "floppy"}, "Q16_STORAGE='floppy' is not a storage kind"),
        ({"Q16_STORAGE": "s3", "Q16_S3_BUCKET": ""}, "Q16_STORAGE=s3 needs Q16_S3_BUCKET"),
    ],
)
def test_bad_configuration_fails_at_startup_with_a_clear_message(env, message):
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=REPO_ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "SECRET_KEY": "x", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr
