"""Every admin action records exactly one audit event, through the browser forms and through
the API: the actor, the action, the object, and the fields before and after. An action that
changes nothing (cancelling a cancelled run, saving the same reviewers) records nothing; one
refused midway records nothing either (the event is in the action's transaction)."""

from __future__ import annotations

import io
import zipfile

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image as PILImage

from audit.models import AuditEvent
from curation.errors import StateConflict
from curation.models import Dataset, Export, PromptJob, PromptVersion, ScoringRun
from curation.services.datasets import dataset_delete
from curation.services.prompt_jobs import prompt_job_create_zero_shot
from curation.services.prompt_versions import prompt_version_activate
from curation.services.scoring import scoring_run_start
from worker.engine.tuning_config import DEFAULT_HELDOUT_FRACTION, TUNING_DEFAULTS

from .conftest import actions, make_version, only_event, prompt_file

pytestmark = pytest.mark.django_db


def _png() -> bytes:
    buffer = io.BytesIO()
    PILImage.new("RGB", (8, 8), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("red.png", _png())
    return buffer.getvalue()


def _reviewers(*names: str) -> list:
    return [get_user_model().objects.create_user(username=name, password="pw") for name in names]


# --- Dataset imports ----------------------------------------------------------------------


def test_folder_import_through_the_form(web, admin_user, tmp_path):
    folder = tmp_path / "to-import"
    folder.mkdir()
    response = web.post(reverse("dataset-list"), {"name": "street", "folder": str(folder)})
    assert response.status_code == 302, response.content[:500]
    dataset = Dataset.objects.get(name="street")
    event = only_event("dataset.import")
    assert (event.actor, event.actor_name) == (admin_user, "admin")
    assert (event.target_type, event.target_id, event.target_repr) == (
        "dataset",
        dataset.pk,
        "street",
    )
    assert event.before is None
    assert event.after == {
        "name": "street",
        "source_kind": "folder",
        "source": str(folder.resolve()),
    }
    assert actions() == ["dataset.import"]


def test_archive_import_through_the_form(web, admin_user, media_root):
    upload = SimpleUploadedFile("holiday.zip", _zip(), content_type="application/zip")
    response = web.post(reverse("dataset-list"), {"name": "zipped", "archive": upload})
    assert response.status_code == 302, response.content[:500]
    event = only_event("dataset.import")
    assert event.actor == admin_user and event.target_id == Dataset.objects.get().pk
    assert event.after["source_kind"] == "archive"
    assert event.after["archive"] == "holiday.zip" and event.after["bytes"] == len(_zip())


def test_url_list_and_folder_imports_through_the_api(api, admin_user, media_root, tmp_path):
    response = api.post(
        "/api/datasets/", {"name": "web", "urls": "https://example.org/a.png\n"}, format="json"
    )
    assert response.status_code == 201, response.content
    event = only_event("dataset.import")
    assert event.actor == admin_user and event.target_id == response.json()["id"]
    assert (event.after["source_kind"], event.after["urls"]) == ("urls", 1)

    refused = api.post("/api/datasets/", {"name": "web", "folder": str(tmp_path)}, format="json")
    assert refused.status_code == 400  # the name is taken: nothing created, nothing recorded
    assert actions() == ["dataset.import"]


def test_import_cancel_and_resume_through_the_forms_and_the_api(web, api, admin_user, tmp_path):
    dataset = Dataset.objects.create(
        name="slow", source_kind=Dataset.SourceKind.FOLDER, source=str(tmp_path),
        root_path=str(tmp_path), state=Dataset.State.IMPORTING,
    )  # fmt: skip
    assert web.post(reverse("dataset-cancel-import", args=[dataset.pk])).status_code == 302
    event = only_event("dataset.import_cancel")
    assert event.actor == admin_user and event.target_id == dataset.pk
    assert (event.before, event.after) == ({"state": "importing"}, {"state": "cancelled"})

    assert api.post(f"/api/datasets/{dataset.pk}/cancel-import/").status_code == 200
    assert actions() == ["dataset.import_cancel"]  # cancelling again changes nothing

    assert api.post(f"/api/datasets/{dataset.pk}/resume-import/").status_code == 200
    event = only_event("dataset.import_resume")
    assert event.actor == admin_user
    assert event.before == {"state": "cancelled", "error": "Cancelled by an admin."}
    assert event.after == {"state": "pending", "error": ""}

    web.post(reverse("dataset-cancel-import", args=[dataset.pk]))
    assert web.post(reverse("dataset-resume-import", args=[dataset.pk])).status_code == 302
    assert actions() == [
        "dataset.import_cancel", "dataset.import_resume", "dataset.import_cancel",
        "dataset.import_resume",
    ]  # fmt: skip
    assert AuditEvent.objects.filter(actor=admin_user).count() == 4


def test_dataset_delete_is_recorded_and_the_event_outlives_the_dataset(admin_user, dataset):
    dataset_id = dataset.pk
    dataset_delete(dataset=dataset, actor=admin_user)
    assert not Dataset.objects.filter(pk=dataset_id).exists()
    event = only_event("dataset.delete")
    assert (event.target_type, event.target_id, event.target_repr) == (
        "dataset", dataset_id, "holiday photos",
    )  # fmt: skip
    assert event.before["images"] == 2 and event.before["state"] == "ready"
    assert event.after is None and event.actor == admin_user


# --- Scoring runs -----------------------------------------------------------------------------


def test_run_start_through_the_form_and_the_api(web, api, admin_user, dataset, version):
    response = web.post(
        reverse("dataset-run-start", args=[dataset.pk]),
        {"prompt_version": version.pk, "threshold": 0.4},
    )
    assert response.status_code == 302, response.content[:500]
    run = ScoringRun.objects.get()
    event = only_event("run.start")
    assert (event.actor, event.target_type, event.target_id) == (admin_user, "scoringrun", run.pk)
    assert event.after == {
        "dataset": dataset.pk, "prompt_version": version.pk, "threshold": 0.4, "images": 2,
        "chunks": 1,
    }  # fmt: skip

    response = api.post(
        "/api/runs/", {"dataset": dataset.pk, "prompt_version": version.pk}, format="json"
    )
    assert response.status_code == 201
    assert AuditEvent.objects.filter(action="run.start", actor=admin_user).count() == 2


def test_run_cancel_and_resume_through_the_forms_and_the_api(
    web, api, admin_user, dataset, version
):
    run = scoring_run_start(dataset=dataset, prompt_version=version, threshold=0.5, queue=False)
    assert web.post(reverse("run-cancel", args=[run.pk])).status_code == 302
    event = only_event("run.cancel")
    assert (event.actor, event.target_id) == (admin_user, run.pk)
    assert event.before == {"state": "pending"}
    assert event.after == {"state": "cancelled", "chunks_done": 0}
    assert api.post(f"/api/runs/{run.pk}/cancel/").status_code == 200  # no change, no event

    assert api.post(f"/api/runs/{run.pk}/resume/").status_code == 200
    event = only_event("run.resume")
    assert event.actor == admin_user
    assert event.before == {"state": "cancelled", "error": "Cancelled by an admin."}
    assert event.after == {"state": "pending", "error": "", "chunks_queued": 1}

    api.post(f"/api/runs/{run.pk}/cancel/")
    assert web.post(reverse("run-resume", args=[run.pk])).status_code == 302
    assert actions() == ["run.start", "run.cancel", "run.resume", "run.cancel", "run.resume"]


def test_refused_resume_records_nothing(api, scored):
    assert api.post(f"/api/runs/{scored.pk}/resume/").status_code == 409
    assert api.post(f"/api/runs/{scored.pk}/cancel/").status_code == 409
    assert not AuditEvent.objects.exists()


# --- Prompt versions and jobs ---------------------------------------------------------------


def test_prompt_import_through_the_form_and_the_api(web, api, admin_user, model_key):
    upload = SimpleUploadedFile("prompts.p", prompt_file())
    response = web.post(reverse("prompt-import"), {"file": upload, "name": "Q16 paper"})
    assert response.status_code == 302, response.content[:500]
    version = PromptVersion.objects.get()
    event = only_event("prompt_version.import")
    assert (event.actor, event.target_type, event.target_id) == (
        admin_user, "promptversion", version.pk,
    )  # fmt: skip
    assert event.after == {"name": "Q16 paper", "model_key": model_key, "dim": 512}

    upload = SimpleUploadedFile("other.p", prompt_file())
    assert api.post("/api/prompt-versions/import/", {"file": upload}).status_code == 201
    garbage = SimpleUploadedFile("bad.p", b"not a pickle")
    assert web.post(reverse("prompt-import"), {"file": garbage}).status_code == 400
    assert AuditEvent.objects.filter(action="prompt_version.import").count() == 2


def test_zero_shot_and_training_jobs_through_the_forms_and_the_api(
    web, api, admin_user, dataset, version, model_key
):
    response = web.post(
        reverse("prompt-zero-shot"),
        {"appropriate": "a calm street\na park", "inappropriate": "violence", "name": "zs"},
    )
    assert response.status_code == 302, response.content[:500]
    job = PromptJob.objects.get()
    event = only_event("prompt_job.create")
    assert (event.actor, event.target_type, event.target_id) == (admin_user, "promptjob", job.pk)
    assert event.after["kind"] == "zero_shot" and event.after["model_key"] == model_key
    assert event.after["options"]["appropriate"] == ["a calm street", "a park"]

    training = {
        "parent": version.pk, "heldout_fraction": DEFAULT_HELDOUT_FRACTION,
        **{name: getattr(TUNING_DEFAULTS, name) for name in (
            "epochs", "lr", "momentum", "batch_size", "seed")},
    }  # fmt: skip
    response = web.post(reverse("dataset-train", args=[dataset.pk]), training)
    assert response.status_code == 302, response.content[:500]
    train_job = PromptJob.objects.get(kind=PromptJob.Kind.TRAIN)
    event = AuditEvent.objects.get(action="prompt_job.create", target_id=train_job.pk)
    assert (event.after["kind"], event.after["dataset"], event.after["parent"]) == (
        "train", dataset.pk, version.pk,
    )  # fmt: skip

    assert api.post("/api/prompt-jobs/", {"kind": "zero_shot"}, format="json").status_code == 201
    response = api.post(
        "/api/prompt-jobs/",
        {"kind": "train", "dataset": dataset.pk, "parent": version.pk},
        format="json",
    )
    assert response.status_code == 201
    assert AuditEvent.objects.filter(action="prompt_job.create", actor=admin_user).count() == 4


def test_prompt_job_cancel_and_resume_through_the_forms_and_the_api(
    web, api, admin_user, model_key
):
    job = prompt_job_create_zero_shot(model_key=model_key)
    assert web.post(reverse("prompt-job-cancel", args=[job.pk])).status_code == 302
    event = only_event("prompt_job.cancel")
    assert (event.actor, event.target_id) == (admin_user, job.pk)
    assert (event.before, event.after) == ({"state": "pending"}, {"state": "cancelled"})
    assert api.post(f"/api/prompt-jobs/{job.pk}/cancel/").status_code == 200  # no change

    assert api.post(f"/api/prompt-jobs/{job.pk}/resume/").status_code == 200
    event = only_event("prompt_job.resume")
    assert event.after == {"state": "pending", "error": ""} and event.actor == admin_user
    api.post(f"/api/prompt-jobs/{job.pk}/cancel/")
    assert web.post(reverse("prompt-job-resume", args=[job.pk])).status_code == 302
    assert actions() == [
        "prompt_job.create", "prompt_job.cancel", "prompt_job.resume", "prompt_job.cancel",
        "prompt_job.resume",
    ]  # fmt: skip
    assert AuditEvent.objects.get(action="prompt_job.create").actor is None  # a service call


def test_activation_through_the_form_records_it_and_the_rescore_it_starts(
    web, admin_user, scored, version, model_key
):
    newer = make_version(model_key, name="imported")
    response = web.post(reverse("prompt-activate", args=[newer.pk]))
    assert response.status_code == 302
    event = only_event("prompt_version.activate")
    assert (event.actor, event.target_type, event.target_id) == (
        admin_user, "promptversion", newer.pk,
    )  # fmt: skip
    assert (event.before, event.after) == (
        {"active_version": version.pk},
        {"active_version": newer.pk},
    )
    rescore = only_event("run.rescore")
    assert rescore.actor == admin_user
    assert rescore.target_id == ScoringRun.objects.get(kind=ScoringRun.Kind.RESCORE).pk
    assert rescore.after["prompt_version"] == newer.pk and rescore.after["threshold"] == 0.6


def test_activation_through_the_api(api, admin_user, version, model_key):
    newer = make_version(model_key, name="imported")
    assert api.post(f"/api/prompt-versions/{newer.pk}/activate/").status_code == 200
    event = only_event("prompt_version.activate")
    assert event.actor == admin_user and event.after == {"active_version": newer.pk}
    assert actions() == ["prompt_version.activate"]  # nothing scored yet: no rescore


def test_refused_activation_leaves_no_event(admin_user, scored, dataset, version, model_key):
    scoring_run_start(dataset=dataset, prompt_version=version, threshold=0.5, queue=False)
    before = actions()
    newer = make_version(model_key, name="imported")
    with pytest.raises(StateConflict):
        prompt_version_activate(version=newer, created_by=admin_user)
    assert actions() == before == ["run.start"]  # the activation rolled back with its event


# --- Assignments and exports ------------------------------------------------------------------


def test_reviewer_assignments_through_the_form_and_the_api(web, api, admin_user, dataset):
    rita, sam = _reviewers("rita", "sam")
    response = web.post(reverse("dataset-reviewers", args=[dataset.pk]), {"reviewers": [rita.pk]})
    assert response.status_code == 302, response.content[:500]
    event = only_event("assignment.update")
    assert (event.actor, event.target_type, event.target_id) == (admin_user, "dataset", dataset.pk)
    assert (event.before, event.after) == ({"reviewers": []}, {"reviewers": ["rita"]})

    url = f"/api/datasets/{dataset.pk}/reviewers/"
    assert api.put(url, {"user_ids": [sam.pk]}, format="json").status_code == 200
    latest = AuditEvent.objects.filter(action="assignment.update").first()
    assert (latest.before, latest.after) == ({"reviewers": ["rita"]}, {"reviewers": ["sam"]})
    assert api.put(url, {"user_ids": [sam.pk]}, format="json").status_code == 200  # the same
    assert AuditEvent.objects.filter(action="assignment.update").count() == 2


def test_exports_through_the_form_and_the_api(web, api, admin_user, scored, dataset):
    response = web.post(
        reverse("dataset-export", args=[dataset.pk]), {"format": "csv", "scope": "flagged"}
    )
    assert response.status_code == 302, response.content[:500]
    export = Export.objects.get()
    event = only_event("export.create")
    assert (event.actor, event.target_type, event.target_id) == (admin_user, "export", export.pk)
    assert event.after == {
        "dataset": dataset.pk, "format": "csv", "scope": "flagged", "run": scored.pk,
        "prompt_version": scored.prompt_version_id, "threshold": 0.6,
        "filters": {}, "copy_kind": "", "copy_target": "", "copy_mode": "copy",
    }  # fmt: skip
    response = api.post("/api/exports/", {"dataset": dataset.pk, "format": "json"}, format="json")
    assert response.status_code == 201
    assert AuditEvent.objects.filter(action="export.create", actor=admin_user).count() == 2


# --- API tokens -----------------------------------------------------------------------------


def test_token_issue_and_revocation(client, reviewer_user):
    response = client.post(
        "/api/auth/token/", {"username": "reviewer", "password": "review-pass-123"}
    )
    assert response.status_code == 200
    event = only_event("token.create")
    assert (event.actor, event.target_type, event.target_id) == (
        reviewer_user,
        "user",
        reviewer_user.pk,
    )
    assert "expires_at" in event.after
    assert response.json()["token"] not in str(event.after) + str(event.details)  # no secret
    again = client.post("/api/auth/token/", {"username": "reviewer", "password": "review-pass-123"})
    assert again.json()["token"] == response.json()["token"]
    assert actions() == ["token.create"]  # the same token handed out again

    reviewer_user.set_password("a-new-password-456")
    reviewer_user.save()
    event = only_event("token.revoke")
    assert event.actor is None and event.target_id == reviewer_user.pk
    assert event.details == {"reason": "password changed", "source": "system"}
    assert (event.before, event.after) == ({"tokens": 1}, {"tokens": 0})

    reviewer_user.is_active = False
    reviewer_user.save()  # no token left to revoke: nothing recorded
    assert actions() == ["token.create", "token.revoke"]
