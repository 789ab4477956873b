"""Dataset pages: the create form, the detail page and its run / training / export forms."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image as PILImage

from curation.models import Dataset, Export, PromptJob, ScoringRun
from reviewer.models import ReviewItem

from .conftest import make_version


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def _png_bytes() -> bytes:
    buffer = io.BytesIO()
    PILImage.new("RGB", (8, 8), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


# --- Create ---------------------------------------------------------------------------------


def test_create_from_folder_records_dataset_and_queues_import(
    admin_client, admin_user, tmp_path, django_capture_on_commit_callbacks
):
    folder = tmp_path / "photos"
    folder.mkdir()
    with django_capture_on_commit_callbacks() as callbacks:
        response = admin_client.post(
            reverse("dataset-list"), {"name": "photos", "folder": str(folder)}
        )
    dataset = Dataset.objects.get(name="photos")
    assert response.status_code == 302
    assert response["Location"] == reverse("dataset-detail", args=[dataset.pk])
    assert dataset.source_kind == Dataset.SourceKind.FOLDER
    assert dataset.root_path == str(folder.resolve())
    assert dataset.state == Dataset.State.PENDING
    assert dataset.created_by == admin_user
    assert len(callbacks) == 1  # the import task, sent when the transaction commits


def test_create_from_zip_upload(admin_client, media_root):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("img/red.png", _png_bytes())
    upload = SimpleUploadedFile("batch.zip", archive.getvalue(), content_type="application/zip")
    response = admin_client.post(reverse("dataset-list"), {"name": "batch", "archive": upload})
    assert response.status_code == 302
    dataset = Dataset.objects.get(name="batch")
    assert dataset.source_kind == Dataset.SourceKind.ARCHIVE
    assert dataset.source.startswith(str(media_root))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "x"}, "Give a server folder or upload a .zip archive"),
        ({"name": "x", "folder": "relative/path"}, "must be an absolute path"),
        ({"name": "x", "folder": "/definitely/not/here"}, "is not a folder on the server"),
        ({"name": "", "folder": "/tmp"}, "This field is required"),
    ],
)
def test_create_errors_are_shown_on_the_form(admin_client, db, data, message):
    response = admin_client.post(reverse("dataset-list"), data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Dataset.objects.exists()


def test_create_refuses_folder_and_archive_together(admin_client, tmp_path):
    upload = SimpleUploadedFile("a.zip", b"PK\x05\x06" + b"\0" * 18)
    response = admin_client.post(
        reverse("dataset-list"), {"name": "x", "folder": str(tmp_path), "archive": upload}
    )
    assert response.status_code == 400
    assert "one of them" in response.content.decode()


def test_create_refuses_non_zip_upload(admin_client, db):
    upload = SimpleUploadedFile("a.tar", b"not a zip")
    response = admin_client.post(reverse("dataset-list"), {"name": "x", "archive": upload})
    assert response.status_code == 400
    assert "Upload a .zip archive." in response.content.decode()


def test_duplicate_name_shows_the_domain_message(admin_client, dataset, tmp_path):
    response = admin_client.post(
        reverse("dataset-list"), {"name": dataset.name, "folder": str(tmp_path)}
    )
    assert response.status_code == 400
    assert "already exists" in response.content.decode()


def test_list_shows_datasets_with_live_progress(admin_client, dataset):
    html = admin_client.get(reverse("dataset-list")).content.decode()
    assert dataset.name in html
    assert f'data-poll-url="{reverse("api-dataset", args=[dataset.pk])}"' in html
    assert 'data-progress="processed"' in html


# --- Detail ---------------------------------------------------------------------------------


def test_detail_shows_counts_failures_runs_and_review_link(admin_client, dataset, run):
    ReviewItem.objects.create(dataset=dataset, image=dataset.images.first(), score=0.9, run=run)
    response = admin_client.get(reverse("dataset-detail", args=[dataset.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert response.context["summary"]["flagged"] == 1
    assert response.context["summary"]["pending_review"] == 1
    assert "notes.txt" in html and "not an image: cannot identify image file" in html
    assert f'href="{reverse("review")}?dataset={dataset.pk}"' in html
    # The running run polls its API row; the dataset counts follow the runs.
    assert f'data-poll-url="{reverse("api-run", args=[run.pk])}"' in html
    assert 'data-poll-follow="[data-poll-kind=run]"' in html
    # The run form offers the configured model only, read-only, and the active version.
    form = response.context["run_form"]
    assert form.fields["model"].disabled
    assert form.fields["prompt_version"].initial == run.prompt_version_id
    assert form.fields["threshold"].initial == 0.5


def test_detail_of_importing_dataset_polls_and_hides_run_form(admin_client, dataset):
    Dataset.objects.filter(pk=dataset.pk).update(state=Dataset.State.IMPORTING)
    html = admin_client.get(reverse("dataset-detail", args=[dataset.pk])).content.decode()
    assert 'data-state="importing"' in html
    assert "data-poll-reload-on-done" in html
    assert reverse("dataset-run-start", args=[dataset.pk]) not in html


def test_detail_404_for_unknown_dataset(admin_client, db):
    assert admin_client.get(reverse("dataset-detail", args=[999999])).status_code == 404


def test_start_scoring_run(
    admin_client, admin_user, dataset, version, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = admin_client.post(
            reverse("dataset-run-start", args=[dataset.pk]),
            {"prompt_version": version.pk, "threshold": "0.7"},
        )
    run = ScoringRun.objects.get(dataset=dataset)
    assert response.status_code == 302
    assert response["Location"].endswith(f"#run-{run.pk}")
    assert (run.threshold, run.prompt_version, run.created_by) == (0.7, version, admin_user)
    assert run.total == 2  # the valid images
    assert len(callbacks) == 1


def test_start_scoring_run_refuses_other_models_versions(admin_client, dataset):
    other = make_version("ViT-L-14/openai", name="large", dim=768)
    response = admin_client.post(
        reverse("dataset-run-start", args=[dataset.pk]),
        {"prompt_version": other.pk, "threshold": "0.5"},
    )
    assert response.status_code == 400
    assert not ScoringRun.objects.exists()


def test_start_scoring_run_shows_domain_errors(admin_client, dataset, version):
    Dataset.objects.filter(pk=dataset.pk).update(state=Dataset.State.IMPORTING)
    response = admin_client.post(
        reverse("dataset-run-start", args=[dataset.pk]),
        {"prompt_version": version.pk, "threshold": "0.5"},
    )
    assert response.status_code == 400
    assert "has not finished importing" in response.content.decode()


def test_threshold_zero_is_refused_by_the_service(admin_client, dataset, version):
    response = admin_client.post(
        reverse("dataset-run-start", args=[dataset.pk]),
        {"prompt_version": version.pk, "threshold": "0"},
    )
    assert response.status_code == 400
    assert "The threshold must be in (0, 1]." in response.content.decode()


def test_training_form_queues_a_job_with_paper_defaults(admin_client, dataset, version):
    form = admin_client.get(reverse("dataset-detail", args=[dataset.pk])).context["training_form"]
    defaults = {name: field.initial for name, field in form.fields.items() if name != "parent"}
    assert defaults == {
        "name": None, "epochs": 300, "lr": 0.01, "momentum": 0.9, "batch_size": 64, "seed": 42,
        "heldout_fraction": 0.2,
    }  # fmt: skip
    response = admin_client.post(
        reverse("dataset-train", args=[dataset.pk]),
        {"parent": version.pk, **{k: v for k, v in defaults.items() if v is not None}},
    )
    job = PromptJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('prompt-versions')}#job-{job.pk}"
    assert (job.kind, job.dataset, job.parent) == (PromptJob.Kind.TRAIN, dataset, version)
    assert job.options["epochs"] == 300 and job.options["heldout_fraction"] == 0.2


def test_training_form_validates_settings(admin_client, dataset, version):
    response = admin_client.post(
        reverse("dataset-train", args=[dataset.pk]),
        {"parent": version.pk, "epochs": 300, "lr": 0.01, "momentum": 0.9, "batch_size": 64,
         "seed": 42, "heldout_fraction": 0.9},
    )  # fmt: skip
    assert response.status_code == 400
    assert not PromptJob.objects.exists()


def test_export_form_queues_export_and_list_links_download(admin_client, dataset, run):
    response = admin_client.post(
        reverse("dataset-export", args=[dataset.pk]), {"format": "json", "scope": "flagged"}
    )
    export = Export.objects.get()
    assert response.status_code == 302
    assert (export.format, export.scope) == ("json", "flagged")
    Export.objects.filter(pk=export.pk).update(state=Export.State.SUCCEEDED, rows=3)
    html = admin_client.get(reverse("dataset-detail", args=[dataset.pk])).content.decode()
    assert f'href="{reverse("api-export-download", args=[export.pk])}"' in html


def test_export_form_rejects_unknown_format(admin_client, dataset):
    response = admin_client.post(
        reverse("dataset-export", args=[dataset.pk]), {"format": "xml", "scope": "confirmed"}
    )
    assert response.status_code == 400
    assert not Export.objects.exists()
