"""Cancel and resume through the API: idempotent cancel, 409 with a reason, admins only."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from curation.models import Dataset, PromptJob, ScoringChunk, ScoringRun
from tests.reviewer.factories import make_dataset

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(admin_user):
    client = APIClient()
    client.force_login(admin_user)
    return client


@pytest.fixture
def running_run():
    dataset, run, images = make_dataset([0.9, 0.1, 0.7])
    ScoringRun.objects.filter(pk=run.pk).update(
        state=ScoringRun.State.RUNNING, chunks_total=2, total=3
    )
    ScoringChunk.objects.create(
        run=run, index=0, first_image_id=images[0].pk, last_image_id=images[1].pk,
        state=ScoringChunk.State.DONE,
    )  # fmt: skip
    ScoringChunk.objects.create(
        run=run, index=1, first_image_id=images[2].pk, last_image_id=images[2].pk,
        state=ScoringChunk.State.FAILED,
    )  # fmt: skip
    run.refresh_from_db()
    return run


def test_run_cancel_is_idempotent_and_resume_requeues(
    admin_client, running_run, django_capture_on_commit_callbacks
):
    url = f"/api/runs/{running_run.pk}/"
    first = admin_client.post(url + "cancel/")
    assert first.status_code == 200 and first.json()["state"] == "cancelled"
    again = admin_client.post(url + "cancel/")
    assert again.status_code == 200 and again.json()["state"] == "cancelled"

    with django_capture_on_commit_callbacks() as callbacks:
        resumed = admin_client.post(url + "resume/")
    assert resumed.status_code == 200, resumed.content
    assert resumed.json()["state"] in ("pending", "running")
    assert len(callbacks) == 1
    assert running_run.chunks.get(index=1).state == ScoringChunk.State.PENDING
    assert running_run.chunks.get(index=0).state == ScoringChunk.State.DONE


def test_resuming_a_finished_run_is_a_conflict_with_a_reason(admin_client):
    dataset, run, images = make_dataset([0.9])
    response = admin_client.post(f"/api/runs/{run.pk}/resume/")
    assert response.status_code == 409
    assert response.json()["detail"] == (
        f"Run #{run.pk} is succeeded; only a cancelled or failed run can be resumed."
    )
    response = admin_client.post(f"/api/runs/{run.pk}/cancel/")
    assert response.status_code == 409 and "has already succeeded" in response.json()["detail"]
    assert admin_client.post("/api/runs/999999/cancel/").status_code == 404


def test_import_cancel_and_resume(admin_client, tmp_path, django_capture_on_commit_callbacks):
    dataset = Dataset.objects.create(
        name="slow", source_kind=Dataset.SourceKind.FOLDER, source=str(tmp_path),
        root_path=str(tmp_path), state=Dataset.State.IMPORTING,
    )  # fmt: skip
    url = f"/api/datasets/{dataset.pk}/"
    assert admin_client.post(url + "cancel-import/").json()["state"] == "cancelled"
    assert admin_client.post(url + "cancel-import/").status_code == 200
    with django_capture_on_commit_callbacks() as callbacks:
        response = admin_client.post(url + "resume-import/")
    assert response.status_code == 200 and response.json()["state"] == "pending"
    assert len(callbacks) == 1
    conflict = admin_client.post(url + "resume-import/")
    assert conflict.status_code == 409
    assert "only a cancelled or failed import can be resumed" in conflict.json()["detail"]


def test_prompt_job_cancel_and_resume(admin_client, django_capture_on_commit_callbacks):
    job = PromptJob.objects.create(
        kind=PromptJob.Kind.ZERO_SHOT, model_key="m", state=PromptJob.State.RUNNING
    )
    url = f"/api/prompt-jobs/{job.pk}/"
    assert admin_client.post(url + "cancel/").json()["state"] == "cancelled"
    assert admin_client.post(url + "cancel/").json()["state"] == "cancelled"
    with django_capture_on_commit_callbacks() as callbacks:
        assert admin_client.post(url + "resume/").json()["state"] == "pending"
    assert len(callbacks) == 1
    assert admin_client.post(url + "resume/").status_code == 409


def test_reviewers_cannot_cancel_or_resume(reviewer_user, running_run):
    client = APIClient()
    client.force_login(reviewer_user)
    for action in ("cancel", "resume"):
        assert client.post(f"/api/runs/{running_run.pk}/{action}/").status_code == 403
    running_run.refresh_from_db()
    assert running_run.state == ScoringRun.State.RUNNING


def test_actions_are_in_the_schema_with_their_conflict(admin_client):
    schema = admin_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    for path in (
        "/api/runs/{run_id}/cancel/",
        "/api/runs/{run_id}/resume/",
        "/api/datasets/{dataset_id}/cancel-import/",
        "/api/datasets/{dataset_id}/resume-import/",
        "/api/prompt-jobs/{job_id}/cancel/",
        "/api/prompt-jobs/{job_id}/resume/",
    ):
        responses = schema["paths"][path]["post"]["responses"]
        assert {"200", "409"} <= set(responses), path
    states = schema["components"]["schemas"]["JobStateEnum"]["enum"]
    assert "cancelled" in states
