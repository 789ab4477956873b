"""Cancel / resume buttons on the dataset and prompt pages, and what pressing them does."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from curation.models import Dataset, PromptJob, ScoringRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def _form(html: str, action: str) -> str:
    """The opening tag of the form posting to `action`."""
    match = re.search(rf'<form method="post" action="{re.escape(action)}"[^>]*>', html)
    assert match, f"no form for {action}"
    return match.group(0)


def test_running_run_shows_cancel_and_cancelling_shows_resume(admin_client, run):
    page = reverse("dataset-detail", args=[run.dataset_id])
    html = admin_client.get(page).content.decode()
    assert "hidden" not in _form(html, reverse("run-cancel", args=[run.pk]))
    assert "hidden" in _form(html, reverse("run-resume", args=[run.pk]))

    response = admin_client.post(reverse("run-cancel", args=[run.pk]), follow=True)
    assert response.redirect_chain[-1][0] == f"{page}#run-{run.pk}"
    assert f"Scoring run #{run.pk} cancelled." in response.content.decode()
    run.refresh_from_db()
    assert run.state == ScoringRun.State.CANCELLED
    html = response.content.decode()
    assert "hidden" in _form(html, reverse("run-cancel", args=[run.pk]))
    assert "hidden" not in _form(html, reverse("run-resume", args=[run.pk]))


def test_resuming_a_finished_run_explains_why_not(admin_client, run):
    ScoringRun.objects.filter(pk=run.pk).update(state=ScoringRun.State.SUCCEEDED)
    response = admin_client.post(reverse("run-resume", args=[run.pk]), follow=True)
    assert "only a cancelled or failed run can be resumed" in response.content.decode()


def test_importing_dataset_can_be_cancelled_and_resumed(
    admin_client, dataset, django_capture_on_commit_callbacks
):
    Dataset.objects.filter(pk=dataset.pk).update(state=Dataset.State.IMPORTING)
    page = reverse("dataset-detail", args=[dataset.pk])
    cancel = reverse("dataset-cancel-import", args=[dataset.pk])
    resume = reverse("dataset-resume-import", args=[dataset.pk])
    html = admin_client.get(page).content.decode()
    assert "hidden" not in _form(html, cancel) and "hidden" in _form(html, resume)

    html = admin_client.post(cancel, follow=True).content.decode()
    assert "Import cancelled." in html and "The import was cancelled." in html
    assert "hidden" in _form(html, cancel) and "hidden" not in _form(html, resume)

    with django_capture_on_commit_callbacks() as callbacks:
        admin_client.post(resume)
    assert len(callbacks) == 1
    assert Dataset.objects.get(pk=dataset.pk).state == Dataset.State.PENDING


def test_failed_prompt_job_can_run_again(admin_client, django_capture_on_commit_callbacks):
    job = PromptJob.objects.create(
        kind=PromptJob.Kind.ZERO_SHOT, model_key="m", state=PromptJob.State.FAILED, error="x"
    )
    html = admin_client.get(reverse("prompt-versions")).content.decode()
    assert "hidden" not in _form(html, reverse("prompt-job-resume", args=[job.pk]))
    assert "hidden" in _form(html, reverse("prompt-job-cancel", args=[job.pk]))
    with django_capture_on_commit_callbacks() as callbacks:
        response = admin_client.post(reverse("prompt-job-resume", args=[job.pk]), follow=True)
    assert f"Prompt job #{job.pk} queued again." in response.content.decode()
    assert len(callbacks) == 1
    assert PromptJob.objects.get(pk=job.pk).state == PromptJob.State.PENDING


def test_reviewer_cannot_press_the_buttons(client, reviewer_user, run):
    client.force_login(reviewer_user)
    assert client.post(reverse("run-cancel", args=[run.pk])).status_code == 403
    assert ScoringRun.objects.get(pk=run.pk).state == ScoringRun.State.RUNNING
