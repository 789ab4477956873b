"""The auto-retrain policy, pinning and rollback."""

from __future__ import annotations

import numpy as np
import pytest

from curation.models import PromptJob, PromptVersion, ScoringRun
from curation.services.embeddings import embeddings_store
from curation.services.prompt_policy import prompt_policy_apply
from curation.services.prompt_versions import prompt_version_activate
from reviewer.models import ReviewItem, ReviewSettings
from reviewer.services.decisions import review_decision_record
from reviewer.services.settings import review_settings_update
from tests.reviewer.factories import item_of, make_dataset, make_version

pytestmark = pytest.mark.django_db

N_IMAGES = 12


@pytest.fixture
def eager(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    from config.celery import app

    app.conf.task_always_eager = True
    yield settings
    app.conf.task_always_eager = False


def separable_dataset(*, active_vectors):
    """Images 0..5 look inappropriate (embedding near [0, 1]), 6..11 appropriate ([1, 0])."""
    version = make_version(name="active", vectors=active_vectors, is_active=True)
    rng = np.random.default_rng(0)
    dataset, run, images = make_dataset([0.99 - 0.01 * i for i in range(N_IMAGES)], version=version)
    for i, image in enumerate(images):
        base = np.array([0.0, 1.0]) if i < 6 else np.array([1.0, 0.0])
        vector = base + rng.normal(0, 0.05, 2)
        vector = (vector / np.linalg.norm(vector)).astype(np.float32)[None, :]
        embeddings_store(model_key=run.model_key, hashes=[image.sha256], matrix=vector)
    return dataset, run, images, version


def review_all(images, user, callbacks, *, first: int = 0):
    """A verdict on each image; its index in the dataset (first + position) picks the class."""
    for i, image in enumerate(images, start=first):
        with callbacks(execute=True):
            review_decision_record(
                item_id=item_of(image).pk, reviewer=user,
                verdict="inappropriate" if i < 6 else "appropriate",
            )  # fmt: skip


# Rows swapped: the active version is always wrong, so any candidate is at least as good.
WRONG = np.array([[0.0, 1.0], [1.0, 0.0]], np.float32)


def test_after_n_verdicts_a_training_job_runs_and_a_better_candidate_goes_live(
    eager, reviewer_user, django_capture_on_commit_callbacks
):
    dataset, run, images, active = separable_dataset(active_vectors=WRONG)
    review_settings_update(dataset=dataset, auto_retrain_every=N_IMAGES)
    review_all(images[: N_IMAGES - 1], reviewer_user, django_capture_on_commit_callbacks)
    assert not PromptJob.objects.exists()
    assert ReviewSettings.objects.get(dataset=dataset).verdicts_since_retrain == N_IMAGES - 1
    review_all(
        images[N_IMAGES - 1 :],
        reviewer_user,
        django_capture_on_commit_callbacks,
        first=N_IMAGES - 1,
    )

    job = PromptJob.objects.get()
    assert job.kind == PromptJob.Kind.TRAIN and job.parent_id == active.pk
    assert job.state == PromptJob.State.SUCCEEDED, job.error
    policy = job.options["policy"]
    assert policy["decided"] and policy["activated"], policy
    assert policy["active_id"] == active.pk and policy["active_accuracy"] == 0.0
    assert policy["candidate_accuracy"] >= policy["active_accuracy"]
    assert PromptVersion.objects.get(is_active=True).pk == job.result_id
    # Activation rescored the dataset from cached embeddings: the queue follows the new version.
    rescore = ScoringRun.objects.get(dataset=dataset, kind=ScoringRun.Kind.RESCORE)
    assert rescore.prompt_version_id == job.result_id
    assert rescore.state == ScoringRun.State.SUCCEEDED
    assert ReviewItem.objects.filter(dataset=dataset, run=rescore).count() == N_IMAGES
    rules = ReviewSettings.objects.get(dataset=dataset)
    assert rules.verdicts_since_retrain == 0 and rules.last_retrain_job_id == job.pk
    # Applying the policy again changes nothing (a redelivered task).
    again = prompt_policy_apply(job_id=job.pk)
    assert again.options["policy"] == policy


def test_pinned_dataset_trains_from_the_pinned_version_but_never_activates(
    eager, reviewer_user, django_capture_on_commit_callbacks
):
    dataset, run, images, active = separable_dataset(active_vectors=WRONG)
    review_settings_update(dataset=dataset, auto_retrain_every=N_IMAGES, pinned_version=active)
    review_all(images, reviewer_user, django_capture_on_commit_callbacks)
    job = PromptJob.objects.get()
    assert job.parent_id == active.pk
    policy = job.options["policy"]
    assert policy["activated"] is False and "pinned" in policy["reason"]
    assert PromptVersion.objects.get(is_active=True).pk == active.pk


def _finished_job(
    dataset,
    parent,
    *,
    candidate: float,
    active: float | None,
    measure: str = "accuracy",
    worse_share: float | None = None,
) -> PromptJob:
    metrics: dict = {"heldout": {measure: candidate}, "n_heldout": 10}
    if active is not None:
        metrics["active_heldout"] = {measure: active}
        metrics["active_id"] = parent.pk
    if worse_share is not None:
        metrics["active_comparison"] = {"measure": measure, "worse_share": worse_share}
    version = make_version(name="candidate", source=PromptVersion.Source.TRAINED, metrics=metrics)
    return PromptJob.objects.create(
        kind=PromptJob.Kind.TRAIN, model_key=parent.model_key, dataset=dataset, parent=parent,
        result=version, state=PromptJob.State.SUCCEEDED, options={"policy": {}},
    )  # fmt: skip


def test_a_worse_candidate_is_not_activated(django_capture_on_commit_callbacks):
    active = make_version(name="active", is_active=True)
    dataset, _, _ = make_dataset([0.9], version=active)
    job = _finished_job(dataset, active, candidate=0.7, active=0.8)
    with django_capture_on_commit_callbacks(execute=False):
        job = prompt_policy_apply(job_id=job.pk)
    policy = job.options["policy"]
    assert policy["activated"] is False and "worse" in policy["reason"]
    assert (policy["candidate_accuracy"], policy["active_accuracy"]) == (0.7, 0.8)
    assert PromptVersion.objects.get(is_active=True).pk == active.pk


def test_a_lower_ap_the_heldout_verdicts_cannot_confirm_is_activated(
    django_capture_on_commit_callbacks,
):
    active = make_version(name="active", is_active=True)
    dataset, _, _ = make_dataset([0.9], version=active)
    job = _finished_job(
        dataset, active, candidate=0.55, active=0.6, measure="average_precision",
        worse_share=0.6,
    )  # fmt: skip
    with django_capture_on_commit_callbacks(execute=False):
        policy = prompt_policy_apply(job_id=job.pk).options["policy"]
    assert policy["activated"] is True and policy["worse_share"] == 0.6
    assert "cannot tell them apart (worse in 60% of resamples)" in policy["reason"]
    assert PromptVersion.objects.get(is_active=True).pk == job.result_id


def test_a_lower_ap_the_heldout_verdicts_confirm_is_refused(django_capture_on_commit_callbacks):
    active = make_version(name="active", is_active=True)
    dataset, _, _ = make_dataset([0.9], version=active)
    job = _finished_job(
        dataset, active, candidate=0.4, active=0.6, measure="average_precision",
        worse_share=0.95,
    )  # fmt: skip
    with django_capture_on_commit_callbacks(execute=False):
        policy = prompt_policy_apply(job_id=job.pk).options["policy"]
    assert policy["activated"] is False
    assert policy["reason"].endswith(
        "worse than the active version on held-out verdicts (in 95% of resamples)"
    )
    assert PromptVersion.objects.get(is_active=True).pk == active.pk


def test_an_equal_candidate_is_activated(django_capture_on_commit_callbacks):
    active = make_version(name="active", is_active=True)
    dataset, _, _ = make_dataset([0.9], version=active)
    job = _finished_job(dataset, active, candidate=0.8, active=0.8)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        job = prompt_policy_apply(job_id=job.pk)
    assert job.options["policy"]["activated"] is True
    assert PromptVersion.objects.get(is_active=True).pk == job.result_id
    assert len(callbacks) == 1  # the rescore is queued


def test_a_failed_training_is_recorded(django_capture_on_commit_callbacks):
    active = make_version(name="active", is_active=True)
    dataset, _, _ = make_dataset([0.9], version=active)
    job = PromptJob.objects.create(
        kind=PromptJob.Kind.TRAIN, model_key=active.model_key, dataset=dataset, parent=active,
        state=PromptJob.State.FAILED, error="too few verdicts", options={"policy": {}},
    )  # fmt: skip
    policy = prompt_policy_apply(job_id=job.pk).options["policy"]
    assert policy["activated"] is False and "too few verdicts" in policy["reason"]


def test_pin_rescores_with_the_pinned_version_and_activation_skips_pinned_datasets(
    django_capture_on_commit_callbacks,
):
    first = make_version(name="first", is_active=True)
    dataset, run, _ = make_dataset([0.9], version=first)
    other_dataset, _, _ = make_dataset([0.9], version=first)
    second = make_version(name="second")
    with django_capture_on_commit_callbacks(execute=False):
        review_settings_update(dataset=dataset, pinned_version=first)
        runs = prompt_version_activate(version=second)
    # Only the unpinned dataset is rescored with the newly active version.
    assert [r.dataset_id for r in runs] == [other_dataset.pk]
    # Pinning to another version rescores the dataset with it.
    with django_capture_on_commit_callbacks(execute=False):
        rules = review_settings_update(dataset=dataset, pinned_version=second)
    assert rules.pinned_version_id == second.pk
    assert ScoringRun.objects.filter(dataset=dataset, prompt_version=second).exists()
    # Rollback: activating an earlier version again.
    with django_capture_on_commit_callbacks(execute=False):
        prompt_version_activate(version=first)
    assert PromptVersion.objects.get(is_active=True).pk == first.pk
    # Unpinning.
    assert review_settings_update(dataset=dataset, pinned_version=None).pinned_version is None


def test_pin_refuses_another_models_version():
    from curation.errors import ValidationFailed

    first = make_version(name="first", is_active=True)
    dataset, _, _ = make_dataset([0.9], version=first)
    with pytest.raises(ValidationFailed):
        review_settings_update(dataset=dataset, pinned_version=make_version("other/model"))
