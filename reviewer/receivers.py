"""The review app's side of curation's extension points (curation/hooks.py)."""

from __future__ import annotations

from typing import Any

import numpy as np

from reviewer.models import ReviewItem
from reviewer.selectors.verdicts import dataset_review_counts
from reviewer.services.items import (
    review_items_restore_unmatched,
    review_items_retire_matched,
    review_items_sync_stored,
)


def on_chunk_scored(
    *,
    run: Any,
    first_image_id: int,
    last_image_id: int,
    image_ids: np.ndarray,
    probabilities: np.ndarray,
    **kwargs: Any,
) -> None:
    """Create, update and withdraw the chunk's review items, in the chunk's transaction."""
    review_items_sync_stored(
        run=run,
        first_image_id=first_image_id,
        last_image_id=last_image_id,
        image_ids=image_ids,
        probabilities=probabilities,
    )


def on_reviewers_unassigned(*, dataset_id: int, user_ids: list[int], **kwargs: Any) -> None:
    """A reviewer who lost a dataset gives back the leases they hold on it, at once."""
    ReviewItem.objects.filter(dataset_id=dataset_id, leased_by_id__in=user_ids).update(
        leased_by=None, lease_expires_at=None
    )


def on_user_access_revoked(*, user_id: int, kept_dataset_ids: list[int], **kwargs: Any) -> int:
    """A deactivated user (or a demoted admin) gives back their leases outside kept datasets."""
    return (
        ReviewItem.objects.filter(leased_by_id=user_id)
        .exclude(dataset_id__in=kept_dataset_ids)
        .update(leased_by=None, lease_expires_at=None)
    )


def on_dataset_review_counts(*, dataset: Any, **kwargs: Any) -> dict[str, int]:
    """The review half of the dataset summary: flagged, waiting, confirmed, rejected."""
    return dataset_review_counts(dataset=dataset)


def on_images_bank_matched(*, dataset_id: int, image_ids: list[int], **kwargs: Any) -> None:
    """Known-bad images leave the queue, in the match's transaction."""
    review_items_retire_matched(dataset_id=dataset_id, image_ids=image_ids)


def on_images_bank_unmatched(*, dataset_id: int, image_ids: list[int], **kwargs: Any) -> None:
    """Images no bank matches any more go back to the queue when still flagged."""
    review_items_restore_unmatched(dataset_id=dataset_id, image_ids=image_ids)
