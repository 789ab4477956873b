"""Prompt versions: importing published prompt files, activating, pinning a dataset to one.

Activating or pinning rescores the affected datasets from cached embeddings (a rescore
run); nothing here loads the model.
"""

from __future__ import annotations

import logging
from typing import BinaryIO

import numpy as np
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from curation.errors import StateConflict, ValidationFailed
from curation.models import Dataset, PromptPolicy, PromptVersion, ScoringRun
from curation.selectors import dataset_latest_run
from curation.services.scoring import scoring_run_start
from worker.engine.prompt_files import PromptFileError, read_published_prompts
from worker.engine.spec import model_embed_dim
from worker.engine.store import prompts_from_bytes, prompts_to_bytes

logger = logging.getLogger(__name__)


def prompt_vectors(version: PromptVersion) -> np.ndarray:
    return prompts_from_bytes(bytes(version.vectors))


def _model_name(model_key: str) -> str:
    return model_key.split("/", 1)[0]


def prompt_version_import(
    *,
    name: str,
    model_key: str,
    data: bytes | BinaryIO,
    created_by: User | None = None,
) -> PromptVersion:
    """Import prompts in the paper's published format (pickled float16 (2, D), row 1 = inappropriate)."""
    try:
        dim = model_embed_dim(_model_name(model_key))
    except ValueError as exc:
        raise ValidationFailed(str(exc)) from exc
    try:
        vectors = read_published_prompts(data, expected_dim=dim, model_key=model_key)
    except PromptFileError as exc:
        raise ValidationFailed(str(exc)) from exc
    version = PromptVersion(
        name=name.strip() or "imported prompts",
        model_key=model_key,
        dim=dim,
        vectors=prompts_to_bytes(vectors),
        source=PromptVersion.Source.IMPORTED,
        created_by=created_by,
    )
    version.full_clean()
    with transaction.atomic():
        version.save()
        audit_record(
            actor=created_by,
            action="prompt_version.import",
            target=version,
            after={"name": version.name, "model_key": version.model_key, "dim": version.dim},
        )
    return version


def prompt_version_activate(
    *,
    version: PromptVersion,
    rescore: bool = True,
    created_by: User | None = None,
    queue: bool = True,
) -> list[ScoringRun]:
    """Make this the active version of its model and rescore every dataset it has scored.

    Rescoring uses cached embeddings only; the image encoder is not touched.
    """
    with transaction.atomic():
        # Serialise activations of the same model.
        list(PromptVersion.objects.select_for_update().filter(model_key=version.model_key))
        was_active = (
            PromptVersion.objects.filter(model_key=version.model_key, is_active=True)
            .values_list("pk", flat=True)
            .first()
        )
        PromptVersion.objects.filter(model_key=version.model_key, is_active=True).exclude(
            pk=version.pk
        ).update(is_active=False)
        PromptVersion.objects.filter(pk=version.pk).update(
            is_active=True, activated_at=timezone.now()
        )
        version.refresh_from_db()
        # The rescore runs it starts record their own "run.rescore" events.
        audit_record(
            actor=created_by,
            action="prompt_version.activate",
            target=version,
            before={"active_version": was_active},
            after={"active_version": version.pk},
            details={"model_key": version.model_key, "rescore": rescore},
        )
        runs: list[ScoringRun] = []
        if not rescore:
            return runs
        for dataset in Dataset.objects.filter(
            runs__model_key=version.model_key, runs__state=ScoringRun.State.SUCCEEDED
        ).distinct():
            last = (
                dataset.runs.filter(model_key=version.model_key, state=ScoringRun.State.SUCCEEDED)
                .order_by("-created_at")
                .first()
            )
            if last is None or last.prompt_version_id == version.pk:
                continue
            if _pinned_version_id(dataset) not in (None, version.pk):
                continue  # the dataset keeps its pinned version
            if dataset.runs.filter(
                state__in=[ScoringRun.State.PENDING, ScoringRun.State.RUNNING]
            ).exists():
                raise StateConflict(
                    f"Dataset {dataset.name!r} has a scoring run in progress; activate after it ends."
                )
            runs.append(
                scoring_run_start(
                    dataset=dataset,
                    prompt_version=version,
                    threshold=last.threshold,
                    kind=ScoringRun.Kind.RESCORE,
                    created_by=created_by,
                    queue=queue,
                )
            )
    return runs


def _pinned_version_id(dataset: Dataset) -> int | None:
    return (
        PromptPolicy.objects.filter(dataset=dataset)
        .values_list("pinned_version_id", flat=True)
        .first()
    )


def prompt_version_pin(
    *,
    dataset: Dataset,
    version: PromptVersion | None,
    created_by: User | None = None,
    queue: bool = True,
) -> ScoringRun | None:
    """Pin a dataset to a prompt version (None unpins).

    A pinned dataset is rescored with the pinned version (from cached embeddings) when its
    latest run used another one; activating other versions no longer rescores it, and the
    auto-retrain policy never activates a candidate for it. Rolling back is activating an
    earlier version (prompt_version_activate).
    """
    with transaction.atomic():
        policy, _ = PromptPolicy.objects.select_for_update().get_or_create(dataset=dataset)
        last = dataset_latest_run(dataset=dataset)
        if version is not None and last is not None and version.model_key != last.model_key:
            raise ValidationFailed(
                f"This dataset is scored with {last.model_key}; pin a version of that model."
            )
        was_pinned = policy.pinned_version_id
        policy.pinned_version = version
        policy.save(update_fields=["pinned_version", "updated_at"])
        if was_pinned != policy.pinned_version_id:
            audit_record(
                actor=created_by,
                action="prompt_version.pin" if version is not None else "prompt_version.unpin",
                target=dataset,
                before={"pinned_version": was_pinned},
                after={"pinned_version": policy.pinned_version_id},
                details={"version": str(version)} if version is not None else None,
            )
        if version is None or last is None or last.prompt_version_id == version.pk:
            return None
        if dataset.runs.filter(
            state__in=[ScoringRun.State.PENDING, ScoringRun.State.RUNNING]
        ).exists():
            raise StateConflict("This dataset has a scoring run in progress; pin after it ends.")
        return scoring_run_start(
            dataset=dataset,
            prompt_version=version,
            threshold=last.threshold,
            kind=ScoringRun.Kind.RESCORE,
            created_by=created_by,
            queue=queue,
        )
