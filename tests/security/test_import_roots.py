"""Server-folder imports: only from the import folders (default <Q16_DATA_DIR>/imports), and
never from the data directory, /proc, /sys or /dev, whatever Q16_IMPORT_ROOTS says. Symlinks
are resolved first, so a link inside the import folder that points elsewhere is refused too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from curation.errors import ValidationFailed
from curation.models import Dataset
from curation.services.datasets import dataset_create_from_folder
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.django_db


@pytest.fixture
def data_dir(settings, tmp_path) -> Path:
    """A data directory with its imports folder, the roots left at their default."""
    data = tmp_path / "data"
    (data / "imports" / "street").mkdir(parents=True)
    (data / "media").mkdir()
    settings.DATA_DIR = data
    settings.MEDIA_ROOT = data / "media"
    settings.Q16_IMPORT_ROOTS = [str(data / "imports")]
    return data


def _create(folder) -> Dataset:
    return dataset_create_from_folder(name="x", folder=str(folder), queue=False)


def test_the_default_import_root_is_the_imports_folder_of_the_data_dir(tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "Q16_IMPORT_ROOTS"}
    env.update(Q16_DATA_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="config.settings")
    code = (
        "from django.conf import settings as s; import json; print(json.dumps(s.Q16_IMPORT_ROOTS))"
    )
    for value in (None, ""):  # unset, or set to nothing: the same safe default
        if value is not None:
            env["Q16_IMPORT_ROOTS"] = value
        result = subprocess.run(
            [sys.executable, "-c", f"import django; django.setup(); {code}"],
            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout.strip().splitlines()[-1]) == [str(tmp_path / "imports")]


def test_a_folder_inside_the_imports_folder_is_accepted(data_dir):
    dataset = _create(data_dir / "imports" / "street")
    assert dataset.root_path == str(data_dir / "imports" / "street")


@pytest.mark.parametrize("folder", ["/etc", "/root", "/proc/self", "/proc", "/sys", "/dev", "/"])
def test_system_folders_are_outside_the_import_folders(data_dir, folder):
    if not Path(folder).is_dir():
        pytest.skip(f"{folder} is not a folder here")
    with pytest.raises(ValidationFailed) as refused:
        _create(folder)
    message = str(refused.value)
    assert "is outside the import folders" in message
    assert str(data_dir / "imports") in message and "Q16_IMPORT_ROOTS" in message
    assert not Dataset.objects.exists()


@pytest.mark.parametrize("folder", ["/proc/self", "/proc", "/sys", "/dev", "/dev/shm"])
def test_proc_sys_and_dev_are_refused_even_when_the_roots_allow_them(settings, folder):
    if not Path(folder).is_dir():
        pytest.skip(f"{folder} is not a folder here")
    settings.Q16_IMPORT_ROOTS = ["/"]
    with pytest.raises(ValidationFailed, match="can never be imported"):
        _create(folder)


@pytest.mark.parametrize("inside", [".", "media", "media/datasets"])
def test_the_data_dir_is_refused_even_when_the_roots_allow_it(settings, data_dir, inside):
    (data_dir / "media" / "datasets").mkdir(exist_ok=True)
    settings.Q16_IMPORT_ROOTS = [str(data_dir.parent)]
    with pytest.raises(ValidationFailed, match="can never be imported"):
        _create(data_dir / inside)
    # A folder holding the data directory would expose it too.
    with pytest.raises(ValidationFailed, match="can never be imported"):
        _create(data_dir.parent)
    # The imports folder itself stays allowed.
    assert _create(data_dir / "imports" / "street").pk


def test_a_media_root_outside_the_data_dir_is_refused_too(settings, data_dir, tmp_path):
    media = tmp_path / "elsewhere" / "media"
    media.mkdir(parents=True)
    settings.MEDIA_ROOT = media
    settings.Q16_IMPORT_ROOTS = [str(tmp_path)]
    with pytest.raises(ValidationFailed, match="can never be imported"):
        _create(media)


def test_a_symlink_inside_the_imports_folder_pointing_out_is_refused(data_dir, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (data_dir / "imports" / "to-etc").symlink_to("/etc")
    (data_dir / "imports" / "to-outside").symlink_to(outside)
    (data_dir / "imports" / "to-data").symlink_to(data_dir)
    for link in ("to-etc", "to-outside", "to-data"):
        with pytest.raises(ValidationFailed, match="is outside the import folders"):
            _create(data_dir / "imports" / link)
    # A link that stays inside is fine (the resolved folder is recorded).
    (data_dir / "imports" / "to-street").symlink_to(data_dir / "imports" / "street")
    assert _create(data_dir / "imports" / "to-street").root_path == str(
        data_dir / "imports" / "street"
    )


def test_dotdot_cannot_climb_out_of_the_imports_folder(data_dir):
    with pytest.raises(ValidationFailed, match="is outside the import folders"):
        _create(f"{data_dir}/imports/../../../../../../etc")


def test_the_form_and_the_api_answer_400_with_how_to_allow_a_folder(client, admin_user, data_dir):
    client.force_login(admin_user)
    response = client.post(reverse("dataset-list"), {"name": "etc", "folder": "/etc"})
    assert response.status_code == 400
    page = response.content.decode()
    assert "is outside the import folders" in page and "Q16_IMPORT_ROOTS" in page

    api = APIClient()
    api.force_authenticate(admin_user)
    response = api.post(reverse("api-datasets"), {"name": "etc", "folder": "/etc"}, format="json")
    assert response.status_code == 400
    assert "is outside the import folders" in json.dumps(response.json())
    assert not Dataset.objects.exists()
