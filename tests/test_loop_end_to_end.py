"""The whole loop through a real Celery worker process on a real Redis.

import -> zero-shot prompts -> score -> verdicts through the API -> train ->
activate (rescore from cache) -> export. The worker is a separate process running
the tiny CLIP from a checkpoint, loaded through the same code path as real weights.
"""

from __future__ import annotations

import csv
import io
import json
import shutil

import numpy as np
import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from curation.models import Dataset, Embedding, Image, PromptJob, PromptVersion, Score, ScoringRun
from reviewer.models import Decision
from tests.engine.imagegen import make_two_kind_images
from tests.helpers import wait_for

pytestmark = [pytest.mark.celery, pytest.mark.django_db(transaction=True)]

N_PER_KIND = 100


def _api(user, token: bool = False) -> APIClient:
    client = APIClient()
    if token:
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    else:
        client.force_login(user)
    return client


def _wait_finished(model, pk: int, log):
    """Wait until a job-like row (PromptJob, ScoringRun) succeeded; fail with its error if not."""
    row = wait_for(
        lambda: model.objects.filter(pk=pk, state__in=["succeeded", "failed"]).first(),
        what=f"{model.__name__} {pk}",
        log=log,
    )
    assert row.state == "succeeded", row.error
    return row


def _wait_job(job_id: int, log) -> PromptJob:
    return _wait_finished(PromptJob, job_id, log)


def _wait_run(run_id: int, log) -> ScoringRun:
    return _wait_finished(ScoringRun, run_id, log)


def test_import_score_review_train_activate_export(
    celery_worker_process, admin_user, reviewer_user, tmp_path
):
    log = celery_worker_process.log_path
    folder = tmp_path / "photos"
    generated = make_two_kind_images(folder, N_PER_KIND, seed=7)
    # Two byte-identical copies: the embedding cache must encode each content once.
    first_path = generated[0][0]
    shutil.copyfile(first_path, folder / f"copy-of-{first_path.name}")
    kind_by_name = {path.name: kind for path, kind in generated}
    kind_by_name[f"copy-of-{first_path.name}"] = generated[0][1]

    def kind_of(relative_path: str) -> str:
        return kind_by_name[relative_path.rsplit("/", 1)[-1]]

    admin = _api(admin_user, token=True)
    reviewer = _api(reviewer_user)

    # 1. Import a server folder.
    response = admin.post(
        "/api/datasets/", {"name": "photos", "folder": str(folder)}, format="json"
    )
    assert response.status_code == 201, response.content
    dataset_id = response.json()["id"]
    dataset = wait_for(
        lambda: Dataset.objects.filter(pk=dataset_id, state=Dataset.State.READY).first(),
        what="import",
        log=log,
    )
    assert dataset.total == 2 * N_PER_KIND + 1
    assert dataset.failed == 0
    assert Image.objects.filter(dataset=dataset, status=Image.Status.OK).count() == dataset.total
    # The admin assigns the reviewer to the dataset (reviewers see only assigned datasets).
    response = admin.put(
        f"/api/datasets/{dataset_id}/reviewers/", {"user_ids": [reviewer_user.pk]}, format="json"
    )
    assert response.status_code == 200, response.content
    assert [row["username"] for row in response.json()["reviewers"]] == ["reviewer"]

    # 2. The paper's zero-shot prompts, encoded by the worker's text tower.
    response = admin.post("/api/prompt-jobs/", {"kind": "zero_shot"}, format="json")
    assert response.status_code == 201, response.content
    zero_shot = _wait_job(response.json()["id"], log).result
    assert zero_shot.source == PromptVersion.Source.ZERO_SHOT
    assert admin.post(f"/api/prompt-versions/{zero_shot.pk}/activate/").status_code == 200

    # 3. Score in chunks on the worker.
    response = admin.post(
        "/api/runs/",
        {"dataset": dataset_id, "prompt_version": zero_shot.pk, "threshold": 0.5, "chunk_size": 64},
        format="json",
    )
    assert response.status_code == 201, response.content
    first_run = _wait_run(response.json()["id"], log)
    assert first_run.chunks_total == 4 and first_run.chunks_done == 4
    assert first_run.processed == dataset.total and first_run.failed == 0
    assert first_run.encoded == 2 * N_PER_KIND  # the duplicate came from the cache
    assert Embedding.objects.count() == 2 * N_PER_KIND

    # Re-run at a threshold that flags ~75 % of images: every embedding is cached now.
    scores = dict(Score.objects.filter(run=first_run).values_list("image_id", "p_inappropriate"))
    threshold = float(max(np.quantile(list(scores.values()), 0.25), 1e-6))
    response = admin.post(
        "/api/runs/",
        {"dataset": dataset_id, "prompt_version": zero_shot.pk, "threshold": threshold},
        format="json",
    )
    second_run = _wait_run(response.json()["id"], log)
    assert second_run.encoded == 0
    assert second_run.flagged == sum(1 for p in scores.values() if p >= threshold)

    # Ground truth for the reviewers: the kind the random zero-shot prompts rank *lower* is
    # the offensive one, so the zero-shot version is measurably wrong and training must fix it.
    names = dict(Image.objects.filter(dataset=dataset).values_list("id", "relative_path"))
    mean_score = {
        kind: np.mean([p for image_id, p in scores.items() if kind_of(names[image_id]) == kind])
        for kind in {kind for _, kind in generated}
    }
    offensive_kind = min(mean_score, key=mean_score.get)

    # 4. A reviewer works through the flagged queue via the API (highest score first).
    decided = 0
    while (
        response := reviewer.get("/api/review/next/", {"dataset": dataset_id})
    ).status_code == 200:
        item = response.json()
        verdict = (
            "inappropriate" if kind_of(item["relative_path"]) == offensive_kind else "appropriate"
        )
        response = reviewer.post(
            f"/api/review/items/{item['id']}/decision/", {"verdict": verdict}, format="json"
        )
        assert response.status_code == 201, response.content
        decided += 1
    assert response.status_code == 204
    assert decided == second_run.flagged < dataset.total  # verdicts on part of the images
    assert Decision.objects.filter(reviewer=reviewer_user).count() == decided
    confirmed_ids = set(
        Decision.objects.filter(verdict=Decision.Verdict.INAPPROPRIATE).values_list(
            "image_id", flat=True
        )
    )
    assert 10 <= len(confirmed_ids) <= decided - 10, "need both verdicts to train"

    # 5. Train from the verdicts, from cached embeddings only.
    response = admin.post(
        "/api/prompt-jobs/",
        {"kind": "train", "dataset": dataset_id, "parent": zero_shot.pk},
        format="json",
    )
    assert response.status_code == 201, response.content
    trained = _wait_job(response.json()["id"], log).result
    metrics = trained.metrics
    assert metrics["n_train"] + metrics["n_heldout"] == decided
    assert metrics["heldout"]["accuracy"] > metrics["parent_heldout"]["accuracy"]
    assert metrics["heldout"]["accuracy"] >= 0.9

    # Activation rescores every image from the cache: no image is encoded again.
    embeddings_before = Embedding.objects.count()
    response = admin.post(f"/api/prompt-versions/{trained.pk}/activate/")
    assert response.status_code == 200, response.content
    (rescore,) = response.json()["rescore_runs"]
    rescore_run = _wait_run(rescore["id"], log)
    assert rescore_run.kind == ScoringRun.Kind.RESCORE
    assert rescore_run.prompt_version_id == trained.pk
    assert rescore_run.encoded == 0
    assert rescore_run.processed == dataset.total and rescore_run.failed == 0
    assert Score.objects.filter(run=rescore_run).count() == dataset.total
    assert Embedding.objects.count() == embeddings_before
    assert PromptVersion.objects.get(is_active=True, model_key=trained.model_key) == trained

    # 6. Exports hold exactly the confirmed images, with the active version's scores.
    confirmed = Image.objects.filter(pk__in=confirmed_ids)
    expected = {(image.sha256, image.relative_path) for image in confirmed}
    for fmt in ("csv", "json"):
        response = admin.post(
            "/api/exports/", {"dataset": dataset_id, "format": fmt}, format="json"
        )
        assert response.status_code == 201, response.content
        export_id = response.json()["id"]
        wait_for(
            lambda export_id=export_id: (
                admin.get(f"/api/exports/{export_id}/").json()["state"] == "succeeded"
            ),
            what=f"{fmt} export",
            log=log,
        )
        download = admin.get(f"/api/exports/{export_id}/download/")
        assert download.status_code == 200
        body = b"".join(download.streaming_content).decode()
        if fmt == "csv":
            rows = list(csv.DictReader(io.StringIO(body)))
        else:
            payload = json.loads(body)
            assert payload["provenance"]["prompt_version"]["id"] == trained.pk
            rows = payload["rows"]
        assert {(row["sha256"], row["path"]) for row in rows} == expected
        assert {row["verdict"] for row in rows} == {"inappropriate"}
        assert all(row["prompt_version"] == trained.name for row in rows)
        assert all(str(row["run"]) == str(rescore_run.pk) for row in rows)
        assert all(row["phash"] and row["score"] not in (None, "") for row in rows)

    # The worker loaded the model once for all its tasks (text tower, chunks), not per task.
    assert log.read_text().count("loading CLIP") == 1
