"""Zero-shot prompt versions: each prompt is the mean of its texts' CLIP text features.

Worker-side: encoding needs the CLIP text tower (a loaded ClipModel is passed in).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from django.contrib.auth.models import User
from django.db import transaction

from audit.services import audit_record
from curation.models import PromptVersion
from curation.services.prompt_jobs import PAPER_APPROPRIATE, PAPER_INAPPROPRIATE
from worker.engine.scoring import zero_shot_prompts
from worker.engine.store import prompts_to_bytes

if TYPE_CHECKING:
    from worker.engine.clip import ClipModel


def prompt_version_create_zero_shot(
    *,
    clip: ClipModel,
    appropriate: Sequence[str] = PAPER_APPROPRIATE,
    inappropriate: Sequence[str] = PAPER_INAPPROPRIATE,
    name: str = "",
    created_by: User | None = None,
) -> PromptVersion:
    """Encode the texts with CLIP's text tower; each row is the mean of its texts' features."""
    vectors = zero_shot_prompts(clip, appropriate=appropriate, inappropriate=inappropriate)
    version = PromptVersion(
        name=name.strip() or f"zero-shot: {inappropriate[0]}",
        model_key=clip.key,
        dim=clip.dim,
        vectors=prompts_to_bytes(vectors),
        source=PromptVersion.Source.ZERO_SHOT,
        texts={"appropriate": list(appropriate), "inappropriate": list(inappropriate)},
        created_by=created_by,
    )
    version.full_clean()
    with transaction.atomic():
        version.save()
        audit_record(
            actor=created_by,
            action="prompt_version.create",
            target=version,
            after={
                "name": version.name,
                "model_key": version.model_key,
                "source": version.source,
                "texts": version.texts,
            },
        )
    return version
