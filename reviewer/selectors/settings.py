"""Review rules per dataset and preferences per reviewer, with unsaved defaults."""

from __future__ import annotations

from django.contrib.auth.models import User

from curation.models import Dataset
from reviewer.models import ReviewerPreferences, ReviewSettings


def review_settings_get(*, dataset_id: int) -> ReviewSettings:
    """The dataset's review rules; unsaved defaults when none were saved yet."""
    rules = ReviewSettings.objects.filter(dataset_id=dataset_id)
    return rules.first() or ReviewSettings(dataset_id=dataset_id)


def review_settings_of(dataset: Dataset) -> ReviewSettings:
    """The dataset's review rules, from `select_related("dataset__review_settings")` when the
    caller loaded them; unsaved defaults when none were saved yet."""
    try:
        return dataset.review_settings
    except ReviewSettings.DoesNotExist:
        return ReviewSettings(dataset_id=dataset.pk)


def reviewer_preferences_get(*, user: User) -> ReviewerPreferences:
    return ReviewerPreferences.objects.filter(user=user).first() or ReviewerPreferences(user=user)
