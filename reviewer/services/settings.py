"""Per-dataset review rules and per-reviewer preferences, validated."""

from __future__ import annotations

import math
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Case, F, Value, When

from audit.services import audit_covered, audit_record
from curation.errors import ValidationFailed, full_clean_or_fail
from curation.models import Dataset
from curation.services.prompt_policy import prompt_policy_update
from curation.services.prompt_versions import prompt_version_pin
from reviewer.models import (
    DEFAULT_KEYMAP,
    MAX_AUDIT_SHARE,
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


def _validate_learn_share(share: Any) -> float:
    try:
        value = float(share)
    except (TypeError, ValueError) as exc:
        raise ValidationFailed(
            "The learn queue's uncertain share is a number from 0 to 1."
        ) from exc
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ValidationFailed("The learn queue's uncertain share is a number from 0 to 1.")
    return value


def _validate_audit_share(share: Any) -> float:
    try:
        value = float(share)
    except (TypeError, ValueError) as exc:
        raise ValidationFailed(f"The audit share is a number from 0 to {MAX_AUDIT_SHARE}.") from exc
    if not math.isfinite(value) or not 0.0 <= value <= MAX_AUDIT_SHARE:
        raise ValidationFailed(f"The audit share is a number from 0 to {MAX_AUDIT_SHARE}.")
    return value


# What an audit event of a settings change compares: the review rules and the prompt policy.
AUDITED_SETTINGS = (
    "required_verdicts",
    "near_duplicate_distance",
    "categories",
    "audit_share",
    "learn_uncertain_share",
    "uncertain_diverse",
    "auto_retrain_every",
    "pinned_version",
)


def _settings_snapshot(rules: ReviewSettings) -> dict[str, Any]:
    return {
        "required_verdicts": rules.required_verdicts,
        "near_duplicate_distance": rules.near_duplicate_distance,
        "categories": list(rules.categories),
        "audit_share": rules.audit_share,
        "learn_uncertain_share": rules.learn_uncertain_share,
        "uncertain_diverse": rules.uncertain_diverse,
        "auto_retrain_every": rules.auto_retrain_every,
        "pinned_version": rules.pinned_version_id,
    }


def _validate_renames(renames: Any, *, current: list[str], new: list[str] | None) -> dict[str, str]:
    """old name -> new name, each old one a current category and each new one in the new
    list; renaming onto a category that stays would merge two categories' verdicts."""
    if not isinstance(renames, dict):
        raise ValidationFailed("Category renames map old names to new names.")
    cleaned = {str(old).strip(): str(name).strip() for old, name in renames.items()}
    cleaned = {old: name for old, name in cleaned.items() if old != name}
    unknown = sorted(set(cleaned) - set(current))
    if unknown:
        raise ValidationFailed(f"Not a category of this dataset: {', '.join(unknown)}.")
    targets = list(cleaned.values())
    if len(set(targets)) != len(targets):
        raise ValidationFailed("Two categories cannot be renamed to the same name.")
    merged = sorted(name for name in targets if name in current and name not in cleaned)
    if merged:
        raise ValidationFailed(
            f"Renaming onto an existing category would merge them: {', '.join(merged)}."
        )
    if new is not None:
        missing = sorted(name for name in targets if name not in new)
        if missing:
            raise ValidationFailed(
                f"Renamed categories missing from the list: {', '.join(missing)}."
            )
        # A renamed name still listed (and not taken by another rename) would split it.
        kept = sorted(old for old in cleaned if old in new and old not in targets)
        if kept:
            raise ValidationFailed(
                f"A renamed category cannot stay in the list too: {', '.join(kept)}."
            )
    return cleaned


def _relabel_decisions(*, dataset: Dataset, renames: dict[str, str]) -> int:
    """Give the dataset's past verdicts the renamed categories (one UPDATE: swaps work)."""
    if not renames:
        return 0
    return Decision.objects.filter(item__dataset=dataset, category__in=list(renames)).update(
        category=Case(
            *(When(category=old, then=Value(name)) for old, name in renames.items()),
            default=F("category"),
        )
    )


def review_settings_update(
    *,
    dataset: Dataset,
    updated_by: User | None = None,
    category_renames: dict[str, str] | None = None,
    **fields: Any,
) -> ReviewSettings:
    """Change a dataset's review rules; changing k re-settles the items that wait for verdicts.

    `pinned_version` (a PromptVersion or None) goes through prompt_version_pin and
    `auto_retrain_every` (None = off) through prompt_policy_update. `category_renames`
    ({old: new}) renames categories: the dataset's past verdicts with the old name take the new
    one, so filters and counts keep meaning the same thing (the audit event keeps the old
    names); a category removed from the list stays on the verdicts that used it. What
    changed is recorded as a "review_settings.update" audit event on the dataset.
    """
    allowed = {
        "required_verdicts",
        "near_duplicate_distance",
        "categories",
        "audit_share",
        "learn_uncertain_share",
        "uncertain_diverse",
    }
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
    if "audit_share" in fields:
        fields["audit_share"] = _validate_audit_share(fields["audit_share"])
    if "learn_uncertain_share" in fields:
        fields["learn_uncertain_share"] = _validate_learn_share(fields["learn_uncertain_share"])
    if "uncertain_diverse" in fields and not isinstance(fields["uncertain_diverse"], bool):
        raise ValidationFailed("uncertain_diverse is true or false.")
    with transaction.atomic():
        rules, _ = ReviewSettings.objects.select_for_update().get_or_create(dataset=dataset)
        before = _settings_snapshot(rules)
        renames = _validate_renames(
            category_renames or {}, current=list(rules.categories), new=fields.get("categories")
        )
        if renames and "categories" not in fields:
            fields["categories"] = [renames.get(name, name) for name in rules.categories]
        old_k = rules.required_verdicts
        for name, value in fields.items():
            setattr(rules, name, value)
        full_clean_or_fail(rules)
        rules.save()
        relabelled = _relabel_decisions(dataset=dataset, renames=renames)
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
        # One event for the whole change: review_settings.update below holds the policy and
        # pin changes too, so their own events are not recorded.
        with audit_covered("prompt_policy.update", "prompt_version.pin", "prompt_version.unpin"):
            if retrain_given:
                prompt_policy_update(
                    dataset=dataset, auto_retrain_every=retrain_every, actor=updated_by
                )
            if pin_given and pinned != rules.pinned_version:
                prompt_version_pin(dataset=dataset, version=pinned, created_by=updated_by)
        rules.refresh_from_db()
        after = _settings_snapshot(rules)
        changed = [name for name in AUDITED_SETTINGS if before[name] != after[name]]
        if changed:
            audit_record(
                actor=updated_by,
                action="review_settings.update",
                target=dataset,
                before={name: before[name] for name in changed},
                after={name: after[name] for name in changed},
                details=(
                    {"category_renames": renames, "decisions_relabelled": relabelled}
                    if renames
                    else None
                ),
            )
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
