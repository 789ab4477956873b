"""Hand-built datasets for review tests: images, a succeeded run with scores, review items."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from curation.models import Dataset, Image, PromptVersion, Score, ScoringRun
from reviewer.models import ReviewItem
from reviewer.services.items import review_items_sync
from worker.engine.store import prompts_to_bytes


def sha(n: int | str) -> str:
    return hashlib.sha256(str(n).encode()).hexdigest()


def make_version(model_key: str = "m/test", *, dim: int = 2, **fields) -> PromptVersion:
    return PromptVersion.objects.create(
        name=fields.pop("name", "v"), model_key=model_key, dim=dim,
        vectors=prompts_to_bytes(fields.pop("vectors", np.eye(2, dim, dtype=np.float32))),
        source=fields.pop("source", PromptVersion.Source.ZERO_SHOT), **fields,
    )  # fmt: skip


def make_dataset(
    scores: Sequence[float],
    *,
    threshold: float = 0.5,
    paths: Sequence[str] | None = None,
    hashes: Sequence[str] | None = None,
    phashes: Sequence[str] | None = None,
    version: PromptVersion | None = None,
    root: str = "/x",
) -> tuple[Dataset, ScoringRun, list[Image]]:
    """A ready dataset whose images have these scores in a succeeded run; flagged ones get items."""
    dataset = Dataset.objects.create(
        name=f"ds-{Dataset.objects.count()}-{len(scores)}", source_kind="folder", source=root,
        root_path=root, state=Dataset.State.READY,
    )  # fmt: skip
    version = version or make_version()
    run = ScoringRun.objects.create(
        dataset=dataset, prompt_version=version, model_key=version.model_key,
        threshold=threshold, state=ScoringRun.State.SUCCEEDED,
    )  # fmt: skip
    n = len(scores)
    paths = paths or [f"img/{i}.png" for i in range(n)]
    hashes = hashes or [sha(f"{dataset.pk}-{i}") for i in range(n)]
    phashes = phashes or [f"{(i * 0x9E3779B97F4A7C15) % 2**64:016x}" for i in range(n)]
    images = Image.objects.bulk_create(
        Image(
            dataset=dataset,
            relative_path=paths[i],
            sha256=hashes[i],
            phash=phashes[i],
            format="PNG",
            width=8,
            height=8,
        )  # fmt: skip
        for i in range(n)
    )
    Score.objects.bulk_create(
        Score(run=run, image=image, p_inappropriate=p)
        for image, p in zip(images, scores, strict=True)
    )
    review_items_sync(
        run=run, scores={image.pk: p for image, p in zip(images, scores, strict=True)}
    )
    return dataset, run, images


def item_of(image: Image) -> ReviewItem:
    return ReviewItem.objects.get(image=image)
