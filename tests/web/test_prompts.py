"""Prompt versions page: table with held-out comparisons, zero-shot and import forms, activation."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from curation.models import PromptJob, PromptVersion, ScoringRun
from tests.conftest import REPO_ROOT, require

from .conftest import make_version

PUBLISHED = REPO_ROOT.parent / "shared" / "reference" / "q16_prompts"


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def _published(model: str) -> bytes:
    path = PUBLISHED / model / "prompts.p"
    require(path.is_file(), f"the paper's published prompts are missing at {path}")
    return path.read_bytes()


def test_page_prefills_the_papers_texts(admin_client, db):
    response = admin_client.get(reverse("prompt-versions"))
    html = response.content.decode()
    assert "This image is about something positive" in html
    assert "This image is about something negative" in html
    assert response.context["model_key"] == "ViT-B-16/openai"


def test_trained_version_shows_heldout_next_to_parent_and_active(admin_client, version, model_key):
    trained = make_version(
        model_key,
        name="tuned on verdicts",
        source=PromptVersion.Source.TRAINED,
        parent=version,
        metrics={
            "n_train": 80,
            "n_heldout": 20,
            "heldout": {"accuracy": 0.95, "precision": 0.9, "recall": 1.0, "f1": 0.947},
            "parent_heldout": {"accuracy": 0.7, "precision": 0.6, "recall": 0.5, "f1": 0.545},
            "active_heldout": {"accuracy": 0.71, "precision": 0.61, "recall": 0.51, "f1": 0.556},
        },
    )
    html = admin_client.get(reverse("prompt-versions")).content.decode()
    row = html[html.index(f'id="version-{trained.pk}"') :]
    row = row[: row.index("</tr>\n", row.index("</table>"))]
    for text in ("This version", "Parent", "Active", "0.950", "0.700", "0.710", "0.947", "80 / 20"):
        assert text in row, text
    assert reverse("prompt-activate", args=[trained.pk]) in row
    # The active version has a badge instead of an Activate button.
    assert reverse("prompt-activate", args=[version.pk]) not in html
    assert "badge-active" in html


def test_zero_shot_form_queues_a_job_with_one_text_per_line(
    admin_client, admin_user, model_key, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = admin_client.post(
            reverse("prompt-zero-shot"),
            {
                "appropriate": "a happy photo\n\n  a calm landscape  \n",
                "inappropriate": "a violent photo",
                "name": "two templates",
            },
        )
    job = PromptJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('prompt-versions')}#job-{job.pk}"
    assert job.kind == PromptJob.Kind.ZERO_SHOT and job.model_key == model_key
    assert job.options["appropriate"] == ["a happy photo", "a calm landscape"]
    assert job.options["inappropriate"] == ["a violent photo"]
    assert job.created_by == admin_user
    assert len(callbacks) == 1
    html = admin_client.get(reverse("prompt-versions")).content.decode()
    assert f'data-poll-url="{reverse("api-prompt-job", args=[job.pk])}"' in html


def test_zero_shot_form_needs_texts_for_both_rows(admin_client, db):
    response = admin_client.post(
        reverse("prompt-zero-shot"), {"appropriate": "a photo", "inappropriate": "  \n "}
    )
    assert response.status_code == 400
    assert not PromptJob.objects.exists()


def test_import_the_papers_published_prompts(admin_client, admin_user, model_key):
    upload = SimpleUploadedFile("prompts.p", _published("ViT-B-16"))
    response = admin_client.post(reverse("prompt-import"), {"file": upload, "name": "Q16 paper"})
    version = PromptVersion.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('prompt-versions')}#version-{version.pk}"
    assert (version.name, version.model_key, version.dim) == ("Q16 paper", model_key, 512)
    assert version.source == PromptVersion.Source.IMPORTED
    assert version.created_by == admin_user


def test_import_names_the_version_after_the_file_by_default(admin_client, db):
    upload = SimpleUploadedFile("vit-b-16.p", _published("ViT-B-16"))
    admin_client.post(reverse("prompt-import"), {"file": upload})
    assert PromptVersion.objects.get().name == "vit-b-16.p"


def test_import_of_another_models_prompts_shows_the_error(admin_client, db):
    upload = SimpleUploadedFile("prompts.p", _published("ViT-L-14"))
    response = admin_client.post(reverse("prompt-import"), {"file": upload})
    assert response.status_code == 400
    errors = response.context["import_form"].errors["file"]
    assert any("768" in error and "512" in error for error in errors), errors
    assert not PromptVersion.objects.exists()


def test_import_of_garbage_shows_the_error(admin_client, db):
    upload = SimpleUploadedFile("prompts.p", b"this is not a pickle")
    response = admin_client.post(reverse("prompt-import"), {"file": upload})
    assert response.status_code == 400
    assert response.context["import_form"].errors["file"]
    assert not PromptVersion.objects.exists()


def test_activate_rescores_and_links_the_runs(admin_client, dataset, version, model_key):
    ScoringRun.objects.create(
        dataset=dataset,
        prompt_version=version,
        model_key=model_key,
        threshold=0.6,
        state=ScoringRun.State.SUCCEEDED,
        total=2,
        processed=2,
    )
    newer = make_version(model_key, name="imported")
    response = admin_client.post(reverse("prompt-activate", args=[newer.pk]), follow=True)
    newer.refresh_from_db()
    version.refresh_from_db()
    assert newer.is_active and not version.is_active
    rescore = ScoringRun.objects.get(kind=ScoringRun.Kind.RESCORE)
    assert (rescore.prompt_version, rescore.threshold) == (newer, 0.6)
    html = response.content.decode()
    assert "Activated “imported”; rescoring 1 dataset from cached embeddings" in html
    assert f'href="{reverse("dataset-detail", args=[dataset.pk])}#run-{rescore.pk}"' in html


def test_activate_shows_conflicts_as_an_error(admin_client, dataset, version, run, model_key):
    ScoringRun.objects.create(
        dataset=dataset, prompt_version=version, model_key=model_key, threshold=0.5,
        state=ScoringRun.State.SUCCEEDED, total=2, processed=2,
    )  # fmt: skip
    newer = make_version(model_key, name="imported")
    response = admin_client.post(reverse("prompt-activate", args=[newer.pk]), follow=True)
    assert "has a scoring run in progress" in response.content.decode()
    newer.refresh_from_db()
    assert not newer.is_active
