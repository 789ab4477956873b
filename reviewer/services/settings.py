"""Per-dataset review rules and per-reviewer preferences, validated."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.db import transaction

from curation.errors import ValidationFailed, full_clean_or_fail
from curation.models import Dataset
from curation.services.prompt_policy import prompt_policy_update
from curation.services.prompt_versions import prompt_version_pin
from reviewer.models import (
    DEFAULT_KEYMAP,
    Decision,
    ReviewerPreferences,
    ReviewItem,
    ReviewSettings,
)
from reviewer.services.decisions import review_item_save, review_item_settle


def _validate_categories(categories: Any) -> list[str]:
    if not isinstance(categories, list) or not categories:
        raise ValidationFailed("Categories must be a non-empty list of names.")
    cleaned = [str(name).strip() for name in categories]
    if any(not name or len(name) > 100 for name in cleaned):
        raise ValidationFailed("Each category needs a name of 1 to 100 characters.")
    if len(set(cleaned)) != len(cleaned):
        raise ValidationFailed("Category names must be unique.")
    if len(cleaned) > 30:
        raise ValidationFailed("At most 30 categories.")
    return cleaned


def review_settings_update(
    *, dataset: Dataset, updated_by: User | None = None, **fields: Any
) -> ReviewSettings:
    """Change a dataset's review rules; changing k re-settles the items that wait for verdicts.

    `pinned_version` (a PromptVersion or None) goes through prompt_version_pin.
    """
    allowed = {"required_verdicts", "near_duplicate_distance", "categories"}
    # The prompt policy's two settings belong to curation; the review settings carry them.
    pin_given = "pinned_version" in fields
    pinned = fields.pop("pinned_version", None)
    retrain_given = "auto_retrain_every" in fields
    retrain_every = fields.pop("auto_retrain_every", None)
    unknown = set(fields) - allowed
    if unknown:
        raise ValidationFailed(f"Unknown settings: {', '.join(sorted(unknown))}.")
    if "categories" in fields:
        fields["categories"] = _validate_categories(fields["categories"])
    with transaction.atomic():
        rules, _ = ReviewSettings.objects.select_for_update().get_or_create(dataset=dataset)
        old_k = rules.required_verdicts
        for name, value in fields.items():
            setattr(rules, name, value)
        full_clean_or_fail(rules)
        rules.save()
        if rules.required_verdicts != old_k:
            with_verdicts = Decision.objects.filter(item__dataset=dataset).values("item_id")
            for item in (
                ReviewItem.objects.select_for_update(of=("self",))
                .select_related("run")
                .filter(
                    dataset=dataset,
                    state__in=[
                        ReviewItem.State.PENDING,
                        ReviewItem.State.DECIDED,
                        ReviewItem.State.DISPUTED,
                    ],
                    pk__in=with_verdicts,
                )
            ):
                review_item_settle(item, required=rules.required_verdicts)
                review_item_save(item)
        if retrain_given:
            prompt_policy_update(dataset=dataset, auto_retrain_every=retrain_every)
        if pin_given and pinned != rules.pinned_version:
            prompt_version_pin(dataset=dataset, version=pinned, created_by=updated_by)
        rules.refresh_from_db()
    return rules


def _validate_keymap(keymap: Any) -> dict[str, str]:
    if not isinstance(keymap, dict):
        raise ValidationFailed("The keymap maps actions to keys.")
    unknown = set(keymap) - set(DEFAULT_KEYMAP)
    if unknown:
        raise ValidationFailed(f"Unknown keyboard actions: {', '.join(sorted(unknown))}.")
    merged = {**DEFAULT_KEYMAP, **keymap}
    for action, key in merged.items():
        if not isinstance(key, str) or not 1 <= len(key) <= 20:
            raise ValidationFailed(f"The key for {action!r} must be 1 to 20 characters.")
    keys = list(merged.values())
    clashes = sorted({key for key in keys if keys.count(key) > 1})
    if clashes:
        raise ValidationFailed(f"Keys used for more than one action: {', '.join(clashes)}.")
    return merged


def reviewer_preferences_update(*, user: User, **fields: Any) -> ReviewerPreferences:
    """Save a reviewer's screen preferences; a partial keymap is merged over the defaults."""
    allowed = {"blur_strength", "greyscale", "break_every", "keymap", "default_view"}
    unknown = set(fields) - allowed
    if unknown:
        raise ValidationFailed(f"Unknown preferences: {', '.join(sorted(unknown))}.")
    if "keymap" in fields:
        fields["keymap"] = _validate_keymap(fields["keymap"])
    with transaction.atomic():
        prefs, _ = ReviewerPreferences.objects.select_for_update().get_or_create(user=user)
        for name, value in fields.items():
            setattr(prefs, name, value)
        full_clean_or_fail(prefs)
        prefs.save()
    return prefs
