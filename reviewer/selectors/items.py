"""What the review screen shows with each item of a batch, in a few queries."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from django.contrib.auth.models import User
from django.db.models import Q

from curation.models import Image
from reviewer.models import Decision, ReviewItem
from reviewer.selectors.duplicates import near_candidates, nearest
from reviewer.selectors.settings import review_settings_of
from reviewer.selectors.verdicts import history_entry


def review_items_details(*, items: Sequence[ReviewItem], viewer: User) -> dict[int, dict[str, Any]]:
    """What the review screen shows with each item, in a few queries for the whole batch:
    rules, identical and near-duplicate images, verdict count and history (admins see every
    reviewer's entries, reviewers only their own)."""
    if not items:
        return {}
    rules = {item.dataset_id: review_settings_of(item.dataset) for item in items}
    near = {
        item.pk: near_candidates(item.image, rules[item.dataset_id].near_duplicate_distance)
        for item in items
    }
    hashes = {item.image.sha256 for item in items if item.image.sha256}
    near_ids = {pk for candidates in near.values() for pk in candidates}
    related: dict[int, Image] = {}
    if hashes or near_ids:
        related = {
            image.pk: image
            for image in Image.objects.filter(
                Q(dataset_id__in=list(rules), sha256__in=hashes) | Q(pk__in=near_ids),
                status=Image.Status.OK,
            ).order_by("id")
        }
    decisions: dict[int, list[Decision]] = defaultdict(list)
    for decision in (
        Decision.objects.filter(image_id__in=[item.image_id for item in items])
        .select_related("reviewer", "retraction")
        .order_by("created_at", "id")
    ):
        decisions[decision.image_id].append(decision)
    details: dict[int, dict[str, Any]] = {}
    for item in items:
        item_rules = rules[item.dataset_id]
        own = decisions.get(item.image_id, [])
        live_reviewers = {
            d.reviewer_id
            for d in own
            if d.item_id == item.pk
            and d.verdict != Decision.Verdict.SKIP
            and getattr(d, "retraction", None) is None
        }
        visible = own if viewer.is_staff else [d for d in own if d.reviewer_id == viewer.pk]
        details[item.pk] = {
            "required_verdicts": item_rules.required_verdicts,
            "categories": list(item_rules.categories),
            "verdict_count": len(live_reviewers),
            "identical": [
                image
                for image in related.values()
                if image.sha256 == item.image.sha256
                and image.dataset_id == item.dataset_id
                and image.pk != item.image_id
            ]
            if item.image.sha256
            else [],
            "near_duplicates": nearest(item.image, near[item.pk], related),
            "history": [history_entry(d) for d in visible],
        }
    return details
