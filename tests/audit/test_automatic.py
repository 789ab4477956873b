"""Events without an actor: what the system does by itself (the auto-retrain policy, lost-work
recovery) and what management commands do, each saying why or which command; the prompt
policy and the pinned version; a caller that records a combined event suppresses the parts."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from django.core.management import call_command
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_context, audit_covered, audit_record
from curation.models import Dataset, PromptJob, PromptPolicy, PromptVersion, ScoringRun
from curation.services.prompt_jobs import prompt_job_create_zero_shot
from curation.services.prompt_policy import (
    prompt_policy_apply,
    prompt_policy_count_verdicts,
    prompt_policy_update,
)
from curation.services.prompt_versions import prompt_version_pin
from curation.services.prompt_zero_shot import prompt_version_create_zero_shot
from curation.services.recovery import LiveTasks, recover_stalled_work
from curation.services.scoring import scoring_run_start

from .conftest import actions, make_version, only_event, prompt_file

pytestmark = pytest.mark.django_db


def test_auto_retrain_activation_has_no_actor_and_says_why(scored, dataset, version, model_key):
    candidate = make_version(
        model_key, name="candidate", source=PromptVersion.Source.TRAINED, parent=version,
        metrics={"heldout": {"accuracy": 0.9}, "active_heldout": {"accuracy": 0.8},
                 "active_id": version.pk, "n_heldout": 40},
    )  # fmt: skip
    job = PromptJob.objects.create(
        kind=PromptJob.Kind.TRAIN, model_key=model_key, dataset=dataset, parent=version,
        result=candidate, state=PromptJob.State.SUCCEEDED,
        options={"policy": {"trigger_verdicts": 25}},
    )  # fmt: skip
    prompt_policy_apply(job_id=job.pk)
    event = only_event("prompt_version.activate")
    assert event.actor is None and event.actor_name == ""
    assert event.target_id == candidate.pk
    assert event.details["source"] == "system" and event.details["prompt_job"] == job.pk
    assert event.details["reason"].startswith(f"auto-retrain policy: job {job.pk}'s candidate")
    rescore = only_event("run.rescore")
    assert rescore.actor is None and rescore.details["reason"] == event.details["reason"]


def test_auto_retrain_training_job_has_no_actor_and_says_why(scored, dataset):
    PromptPolicy.objects.create(dataset=dataset, auto_retrain_every=3)
    assert prompt_policy_count_verdicts(dataset_id=dataset.pk, count=2) is None
    job = prompt_policy_count_verdicts(dataset_id=dataset.pk, count=1)
    event = only_event("prompt_job.create")
    assert (event.actor, event.target_id) == (None, job.pk)
    assert event.details == {"reason": "auto-retrain policy: 3 new verdicts", "source": "system"}


def test_recovery_requeues_are_recorded_without_an_actor(dataset, version, model_key, tmp_path):
    run = scoring_run_start(dataset=dataset, prompt_version=version, threshold=0.5, queue=False)
    importing = Dataset.objects.create(
        name="stuck", source_kind=Dataset.SourceKind.FOLDER, source=str(tmp_path),
        root_path=str(tmp_path), state=Dataset.State.IMPORTING,
    )  # fmt: skip
    job = prompt_job_create_zero_shot(model_key=model_key)
    long_ago = timezone.now() - timedelta(hours=1)
    for model in (ScoringRun, Dataset, PromptJob):
        model.objects.update(heartbeat_at=long_ago)
    report = recover_stalled_work(stall_seconds=60, live=LiveTasks())
    assert report.runs == {run.pk: 1} and report.datasets == [importing.pk]
    assert report.jobs == [job.pk]
    for action, target_id in (
        ("run.requeue", run.pk), ("dataset.import_requeue", importing.pk),
        ("prompt_job.requeue", job.pk),
    ):  # fmt: skip
        event = only_event(action)
        assert (event.actor, event.target_id) == (None, target_id)
        assert event.details["source"] == "system"
        assert event.details["reason"].startswith("lost-work recovery")


def test_commands_record_their_name(dataset, version, tmp_path):
    run = scoring_run_start(dataset=dataset, prompt_version=version, threshold=0.5, queue=False)
    call_command("manage_work", "cancel", "run", str(run.pk))
    event = only_event("run.cancel")
    assert event.actor is None and event.details == {"source": "command: manage_work"}

    path = tmp_path / "prompts.p"
    path.write_bytes(prompt_file())
    call_command("import_prompts", str(path), "--name", "from the shell", "--activate")
    imported = only_event("prompt_version.import")
    assert imported.details == {"source": "command: import_prompts"}
    assert imported.after["name"] == "from the shell"
    activated = only_event("prompt_version.activate")
    assert activated.details["source"] == "command: import_prompts"
    assert AuditEvent.objects.filter(actor__isnull=False).count() == 0


def test_zero_shot_version_is_recorded_with_the_job_owner(admin_user, model_key):
    class TextTower:
        key, dim = model_key, 512

        def encode_texts(self, texts):
            return np.ones((len(texts), 512), np.float32)

    version = prompt_version_create_zero_shot(
        clip=TextTower(), appropriate=["calm"], inappropriate=["violent"], created_by=admin_user
    )
    event = only_event("prompt_version.create")
    assert (event.actor, event.target_id) == (admin_user, version.pk)
    assert event.after["source"] == "zero_shot"
    assert event.after["texts"] == {"appropriate": ["calm"], "inappropriate": ["violent"]}


def test_pin_unpin_and_policy_changes(admin_user, scored, dataset, version, model_key):
    other = make_version(model_key, name="other")
    run = prompt_version_pin(dataset=dataset, version=other, created_by=admin_user, queue=False)
    event = only_event("prompt_version.pin")
    assert (event.actor, event.target_type, event.target_id) == (admin_user, "dataset", dataset.pk)
    assert (event.before, event.after) == ({"pinned_version": None}, {"pinned_version": other.pk})
    assert run is not None and only_event("run.rescore").target_id == run.pk
    ScoringRun.objects.filter(pk=run.pk).update(state=ScoringRun.State.SUCCEEDED)

    prompt_version_pin(dataset=dataset, version=other, created_by=admin_user)  # no change
    prompt_version_pin(dataset=dataset, version=None, created_by=admin_user)
    event = only_event("prompt_version.unpin")
    assert (event.before, event.after) == ({"pinned_version": other.pk}, {"pinned_version": None})

    prompt_policy_update(dataset=dataset, auto_retrain_every=50, actor=admin_user)
    prompt_policy_update(dataset=dataset, auto_retrain_every=50, actor=admin_user)  # no change
    prompt_policy_update(dataset=dataset, auto_retrain_every=None, actor=admin_user)
    updates = list(AuditEvent.objects.filter(action="prompt_policy.update").order_by("id"))
    assert [(e.before, e.after) for e in updates] == [
        ({"auto_retrain_every": None}, {"auto_retrain_every": 50}),
        ({"auto_retrain_every": 50}, {"auto_retrain_every": None}),
    ]
    assert {e.actor for e in updates} == {admin_user}
    assert actions() == [
        "prompt_version.pin", "run.rescore", "prompt_version.unpin", "prompt_policy.update",
        "prompt_policy.update",
    ]  # fmt: skip


def test_a_caller_recording_a_combined_event_covers_the_parts(admin_user, dataset, version):
    with audit_covered("prompt_version.pin", "prompt_policy.update"):
        prompt_version_pin(dataset=dataset, version=version, created_by=admin_user)
        prompt_policy_update(dataset=dataset, auto_retrain_every=10, actor=admin_user)
        audit_record(actor=admin_user, action="review_settings.update", target=dataset)
    assert actions() == ["review_settings.update"]
    prompt_policy_update(dataset=dataset, auto_retrain_every=20, actor=admin_user)
    assert actions() == ["review_settings.update", "prompt_policy.update"]


def test_context_details_nest_and_end_with_their_block(admin_user):
    with audit_context(source="command: x"), audit_context(reason="because"):
        inner = audit_record(actor=None, action="a.b", details={"extra": 1})
    outer = audit_record(actor=admin_user, action="a.c")
    assert inner.details == {"source": "command: x", "reason": "because", "extra": 1}
    assert outer.details == {} and outer.actor_name == "admin"
