"""Uncertain-queue items made on demand: the unflagged images nearest the decision boundary.

The uncertain queue covers the whole scored dataset, not only its flagged part; images below
the threshold become review items (is_uncertain) a batch at a time, nearest first, with an
optional diversity rule so that one cluster of near-copies does not fill the queue."""

from __future__ import annotations

import numpy as np
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from curation.models import BankMatch, Dataset, Score
from curation.selectors import dataset_latest_run
from curation.services.embeddings import cached_vectors
from reviewer.models import ReviewItem, ReviewSettings

# Unflagged images the uncertain queue makes items of at once (when fewer than a batch's
# worth wait), and the candidates it reads per wanted item (for the diversity rule).
UNCERTAIN_BATCH = 32


UNCERTAIN_CANDIDATES = 4


# Embedding cosine at or above which two images count as near-copies (the diversity rule).
NEAR_COPY_COSINE = 0.95


def _near_copy_filter(
    candidates: list[tuple[int, float, str]], *, kept: list[str], model_key: str, dim: int
) -> list[tuple[int, float, str]]:
    """The candidates (image, score, sha256), in order, without those whose embedding is
    a near-copy of one kept before them or of the `kept` hashes (already in the queue)."""
    vectors = cached_vectors(
        model_key=model_key, dim=dim, hashes=[sha for *_, sha in candidates] + kept
    )
    chosen: list[np.ndarray] = [
        vectors[sha] / max(float(np.linalg.norm(vectors[sha])), 1e-12)
        for sha in kept
        if sha in vectors
    ]
    picked = []
    for image_id, p, sha in candidates:
        vector = vectors.get(sha)
        if vector is None:
            picked.append((image_id, p, sha))
            continue
        unit = vector / max(float(np.linalg.norm(vector)), 1e-12)
        if chosen and float(np.max(np.stack(chosen) @ unit)) >= NEAR_COPY_COSINE:
            continue
        chosen.append(unit)
        picked.append((image_id, p, sha))
    return picked


def uncertain_items_create(*, dataset: Dataset, wanted: int) -> int:
    """Keep at least `wanted` free uncertain items pending: when fewer wait, make items of the
    next UNCERTAIN_BATCH (at least `wanted`) unflagged images of the latest run nearest the
    threshold that have no item yet, skipping near-copies when the dataset's
    uncertain_diverse rule is on. Returns how many it made."""
    run = dataset_latest_run(dataset=dataset)
    if run is None:
        return 0
    now = timezone.now()
    waiting = ReviewItem.objects.filter(
        dataset=dataset, state=ReviewItem.State.PENDING, is_uncertain=True, score__lt=run.threshold
    ).filter(Q(leased_by__isnull=True) | Q(lease_expires_at__lt=now))
    if waiting.count() >= wanted:
        return 0
    count = max(UNCERTAIN_BATCH, wanted)
    diverse = (
        ReviewSettings.objects.filter(dataset=dataset)
        .values_list("uncertain_diverse", flat=True)
        .first()
    )
    diverse = True if diverse is None else diverse
    has_item = ReviewItem.objects.filter(image_id=OuterRef("image_id"))
    rows = list(
        Score.objects.filter(run=run, p_inappropriate__lt=run.threshold)
        .exclude(Exists(has_item))
        # Known-bad (bank-matched) images are never queued.
        .exclude(Exists(BankMatch.objects.filter(image_id=OuterRef("image_id"))))
        .order_by("-p_inappropriate", "image_id")
        .values_list("image_id", "p_inappropriate", "image__sha256")[
            : count * (UNCERTAIN_CANDIDATES if diverse else 1)
        ]
    )
    if not rows:
        return 0
    if diverse:
        kept = list(
            waiting.order_by("margin", "id").values_list("image__sha256", flat=True)[
                :UNCERTAIN_BATCH
            ]
        )
        rows = _near_copy_filter(
            rows, kept=kept, model_key=run.model_key, dim=run.prompt_version.dim
        )
    created = ReviewItem.objects.bulk_create(
        [
            ReviewItem(
                dataset=dataset,
                image_id=image_id,
                score=p,
                margin=abs(p - run.threshold),
                run=run,
                is_uncertain=True,
            )  # fmt: skip
            for image_id, p, _ in rows[:count]
        ],
        ignore_conflicts=True,
    )
    return len(created)
