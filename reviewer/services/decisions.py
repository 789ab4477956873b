"""Verdicts: append-only decisions, k independent verdicts with admin adjudication, second
looks at decided items, duplicate propagation that respects other reviewers' leases, bulk
verdicts and undo (of a whole bulk verdict at once)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from curation.errors import NotAllowed, StateConflict, ValidationFailed
from curation.models import BankMatch, Image, Score
from curation.selectors import dataset_latest_run
from curation.services.prompt_policy import prompt_policy_count_verdicts
from reviewer.models import (
    Decision,
    DecisionRetraction,
    ReviewItem,
    ReviewSettings,
)
from reviewer.selectors.duplicates import image_near_duplicates
from reviewer.selectors.settings import review_settings_get, review_settings_of
from reviewer.services.queue import reviewable_items

# The most items one bulk decision touches.
MAX_BULK = 200


def _live_verdicts(item: ReviewItem | OuterRef) -> QuerySet[Decision]:
    return (
        Decision.objects.filter(item=item, retraction__isnull=True)
        .exclude(verdict=Decision.Verdict.SKIP)
        .order_by("created_at", "id")
    )


def _live_verdict_rows(item: ReviewItem) -> list[tuple[int, str, bool]]:
    """(reviewer id, verdict, is adjudication) of the item's live verdicts, oldest first."""
    return list(_live_verdicts(item).values_list("reviewer_id", "verdict", "is_adjudication"))


def review_item_settle(
    item: ReviewItem, *, required: int, rows: list[tuple[int, str, bool]] | None = None
) -> None:
    """Set the item's state from its live verdicts (no save); `rows` saves the query when the
    caller has them (see _live_verdict_rows).

    An admin's adjudication decides; otherwise the item stays pending until `required`
    distinct reviewers gave a verdict, then it is decided if they agree, disputed if not.
    A pending item below its run's threshold (and not an audit item) is withdrawn.
    """
    latest: dict[int, str] = {}
    adjudicated = False
    for reviewer_id, verdict, is_adjudication in _live_verdict_rows(item) if rows is None else rows:
        latest[reviewer_id] = verdict
        adjudicated = adjudicated or is_adjudication
    if adjudicated:
        state = ReviewItem.State.DECIDED
    elif len(latest) >= required:
        agree = len(set(latest.values())) == 1
        state = ReviewItem.State.DECIDED if agree else ReviewItem.State.DISPUTED
    else:
        below = item.run is not None and item.score < item.run.threshold
        state = (
            ReviewItem.State.WITHDRAWN if below and not item.is_audit else ReviewItem.State.PENDING
        )
    if state != item.state:
        item.decided_at = timezone.now() if state == ReviewItem.State.DECIDED else None
    item.state = state
    if state != ReviewItem.State.PENDING:
        item.leased_by = None
        item.lease_expires_at = None


def review_item_save(item: ReviewItem) -> None:
    item.save(update_fields=["leased_by", "lease_expires_at", "state", "decided_at"])


def _validate_category(*, verdict: str, category: str, rules: ReviewSettings) -> str:
    category = (category or "").strip()
    if not category:
        return ""
    if verdict != Decision.Verdict.INAPPROPRIATE:
        raise ValidationFailed("A category goes with a confirming (inappropriate) verdict only.")
    if category not in rules.categories:
        raise ValidationFailed(
            f"Unknown category {category!r}; this dataset uses: {', '.join(rules.categories)}."
        )
    return category


def _has_live_verdict(*, item_id: int, reviewer_id: int) -> bool:
    return (
        Decision.objects.filter(item_id=item_id, reviewer_id=reviewer_id, retraction__isnull=True)
        .exclude(verdict=Decision.Verdict.SKIP)
        .exists()
    )


def _item_for_image(*, image: Image, origin: ReviewItem) -> ReviewItem:
    """The image's review item, created (scored like the latest run) when it has none."""
    item = (
        ReviewItem.objects.select_for_update(of=("self",))
        .select_related("run")
        .filter(image=image)
        .first()
    )
    if item is not None:
        return item
    run = dataset_latest_run(dataset=origin.dataset) or origin.run
    score = None
    if run is not None:
        score = (
            Score.objects.filter(run=run, image=image)
            .values_list("p_inappropriate", flat=True)
            .first()
        )
    score = origin.score if score is None else score
    ReviewItem.objects.bulk_create(
        [
            ReviewItem(
                dataset_id=image.dataset_id,
                image=image,
                score=score,
                run=run,
                margin=abs(score - run.threshold) if run else 0.0,
            )  # fmt: skip
        ],
        ignore_conflicts=True,
    )
    return ReviewItem.objects.select_for_update(of=("self",)).select_related("run").get(image=image)


def _propagate(
    *,
    origin: Decision,
    item: ReviewItem,
    images: Iterable[Image],
    rules: ReviewSettings,
    now: datetime,
) -> tuple[list[int], list[dict[str, Any]]]:
    """Copy the verdict onto other images of the dataset: (images it reached, the ones it left
    alone as {image_id, item_id, reason}).

    A copy never takes an item another reviewer holds (their verdict is theirs to give), never
    counts towards k > 1 independent verdicts, and never adds a verdict to a decided or
    disputed item: only an admin's adjudication settles (or overrules) one, whatever k is.
    The reviewer's own leases and expired ones take the copy.
    """
    reached: list[int] = []
    skipped: list[dict[str, Any]] = []
    reviewer = origin.reviewer
    images = list(images)
    matched = set(
        BankMatch.objects.filter(image_id__in=[image.pk for image in images]).values_list(
            "image_id", flat=True
        )
    )
    matched_items = dict(
        ReviewItem.objects.filter(image_id__in=matched).values_list("image_id", "id")
    )
    for image in images:
        if image.pk in matched:
            # Known-bad already: a copy could make it a pending item (k > 1) for a reviewer.
            if image.pk in matched_items:
                reason = "matched to a hash bank"
                skipped.append(
                    {"image_id": image.pk, "item_id": matched_items[image.pk], "reason": reason}
                )
            continue
        # Locked: the holder's lease and verdict are read and written under the same lock.
        target = _item_for_image(image=image, origin=item)
        if _has_live_verdict(item_id=target.pk, reviewer_id=reviewer.pk):
            continue  # their verdict on it stands already
        adjudication = reviewer.is_staff and target.state in (
            ReviewItem.State.DISPUTED,
            ReviewItem.State.DECIDED,
        )
        reason = ""
        if (
            target.leased_by_id not in (None, reviewer.pk)
            and target.lease_expires_at is not None
            and target.lease_expires_at >= now
        ):
            until = target.lease_expires_at.isoformat(timespec="seconds")
            reason = f"held by another reviewer until {until}"
        elif target.state == ReviewItem.State.DISPUTED and not adjudication:
            reason = "disputed; an admin adjudicates it"
        elif target.state == ReviewItem.State.DECIDED and not adjudication:
            # Closed for reviewers, as in review_decision_record: no k+1st verdict.
            reason = "already decided"
        elif rules.required_verdicts > 1 and not adjudication:
            reason = f"needs {rules.required_verdicts} independent verdicts"
        if reason:
            skipped.append({"image_id": image.pk, "item_id": target.pk, "reason": reason})
            continue
        Decision.objects.create(
            item=target, image=image, reviewer=reviewer, verdict=origin.verdict,
            category=origin.category, propagated_from=origin, is_adjudication=adjudication,
        )  # fmt: skip
        review_item_settle(target, required=rules.required_verdicts)
        review_item_save(target)
        reached.append(image.pk)
    return reached, skipped


def review_decision_record(
    *,
    item_id: int,
    reviewer: User,
    verdict: str,
    category: str = "",
    apply_to: Sequence[int] = (),
    bulk_action: uuid.UUID | None = None,
) -> Decision:
    """Append a verdict for an item the reviewer holds (or that nobody holds).

    Skipping releases the lease and keeps the item in the queue for others. A reviewer who
    holds a decided item (leased from the "Decided (second look)" queue) and has not given a
    verdict on it gives a second look: it counts for agreement, and when it disagrees the item
    becomes disputed for an admin to adjudicate (an adjudicated item stays decided); a
    decided item they do not hold is refused (a stale page). An admin's verdict on a decided
    or disputed item is an adjudication: it settles the item. A verdict
    also applies to every image with the same content hash in the dataset, and to the
    near-duplicates listed in apply_to (each must be within the dataset's distance), except
    where another reviewer holds the copy or the dataset needs k > 1 verdicts (see
    _propagate). The returned decision carries `propagated_image_ids` (the copies made) and
    `skipped_propagation` (the images left alone, each with its item and the reason).
    `bulk_action` groups the decisions of one bulk verdict (see review_action_undo).
    """
    if verdict not in Decision.Verdict.values:
        raise ValidationFailed(f"Unknown verdict {verdict!r}.")
    now = timezone.now()
    with transaction.atomic():
        # An unknown id raises ReviewItem.DoesNotExist (the API answers 404).
        item = (
            reviewable_items(reviewer)
            .select_for_update(of=("self",))
            .select_related("image", "dataset", "run", "dataset__review_settings")
            .annotate(
                # Asked along with the lock, so that the common case (a first verdict on a
                # unique file) reads nothing more: this is every reviewer's hot path.
                has_verdicts=Exists(_live_verdicts(OuterRef("pk"))),
                has_twins=Exists(
                    Image.objects.filter(
                        dataset_id=OuterRef("dataset_id"),
                        sha256=OuterRef("image__sha256"),
                        status=Image.Status.OK,
                    ).exclude(pk=OuterRef("image_id"))
                ),
            )
            .get(pk=item_id)
        )
        rules = review_settings_of(item.dataset)
        category = _validate_category(verdict=verdict, category=category, rules=rules)
        if item.state == ReviewItem.State.WITHDRAWN:
            raise StateConflict("This item is no longer in the queue.")
        held_by_other = (
            item.leased_by_id is not None
            and item.leased_by_id != reviewer.pk
            and item.lease_expires_at is not None
            and item.lease_expires_at >= now
        )
        if held_by_other:
            raise StateConflict("Another reviewer holds this item.")
        # A second look is asked for: the reviewer leased the decided item from the queue. A
        # stale page (the item was decided since it was shown) holds no lease on it.
        second_look = item.state == ReviewItem.State.DECIDED and not reviewer.is_staff
        holds_it = item.leased_by_id == reviewer.pk
        if (
            item.state != ReviewItem.State.PENDING
            and verdict == Decision.Verdict.SKIP
            and not (second_look and holds_it)
        ):
            raise StateConflict("This item is already decided.")
        rows = _live_verdict_rows(item) if item.has_verdicts else []
        if any(reviewer_id == reviewer.pk for reviewer_id, _, _ in rows):
            if item.state == ReviewItem.State.PENDING:
                raise StateConflict(
                    "You already gave a verdict on this item; undo it to change it."
                )
            raise StateConflict(
                "You already gave a verdict on this item; a second look must come from a "
                "reviewer who has not."
            )
        if item.state == ReviewItem.State.DISPUTED and not reviewer.is_staff:
            raise StateConflict("This item's verdicts disagree; an admin adjudicates it.")
        if second_look and not holds_it:
            raise StateConflict(
                "This item is already decided; take it from the Decided (second look) queue "
                "to give it a second look."
            )
        targets: list[Image] = []
        if verdict != Decision.Verdict.SKIP:
            targets = list(
                Image.objects.filter(
                    dataset_id=item.dataset_id, sha256=item.image.sha256, status=Image.Status.OK
                )
                .exclude(pk=item.image_id)
                .order_by("id")
            ) if item.image.sha256 and item.has_twins else []  # fmt: skip
            extra = sorted(set(apply_to) - {item.image_id} - {image.pk for image in targets})
            if extra:
                near = {
                    image.pk: image
                    for image, _ in image_near_duplicates(
                        image=item.image, max_distance=rules.near_duplicate_distance
                    )
                }
                unknown = [image_id for image_id in extra if image_id not in near]
                if unknown:
                    raise ValidationFailed(
                        f"Not near-duplicates of this image: {', '.join(map(str, unknown))}."
                    )
                targets += [near[image_id] for image_id in extra]
        elif apply_to:
            raise ValidationFailed("A skip applies to this item only.")
        decision = Decision.objects.create(
            item=item, image_id=item.image_id, reviewer=reviewer, verdict=verdict,
            category=category, is_second_look=second_look, bulk_action=bulk_action,
            is_adjudication=reviewer.is_staff
            and item.state in (ReviewItem.State.DISPUTED, ReviewItem.State.DECIDED),
        )  # fmt: skip
        item.leased_by = None
        item.lease_expires_at = None
        if verdict != Decision.Verdict.SKIP:
            rows.append((reviewer.pk, verdict, decision.is_adjudication))
            review_item_settle(item, required=rules.required_verdicts, rows=rows)
        review_item_save(item)
        reached, skipped = (
            _propagate(origin=decision, item=item, images=targets, rules=rules, now=now)
            if targets
            else ([], [])
        )
        decision.propagated_image_ids = reached  # type: ignore[attr-defined]
        decision.skipped_propagation = skipped  # type: ignore[attr-defined]
        if verdict != Decision.Verdict.SKIP:
            prompt_policy_count_verdicts(
                dataset_id=item.dataset_id,
                count=1 + len(decision.propagated_image_ids),  # type: ignore[attr-defined]
            )
    return decision


def review_decision_bulk(
    *, item_ids: Sequence[int], reviewer: User, verdict: str, category: str = ""
) -> dict[str, list]:
    """Record one verdict on many items (grid view); items that refuse are reported, not fatal."""
    if verdict not in Decision.Verdict.values:
        raise ValidationFailed(f"Unknown verdict {verdict!r}.")
    if not item_ids:
        raise ValidationFailed("Choose at least one item.")
    if len(item_ids) > MAX_BULK:
        raise ValidationFailed(f"At most {MAX_BULK} items at once.")
    if category:
        for dataset_id in set(
            reviewable_items(reviewer).filter(pk__in=item_ids).values_list("dataset_id", flat=True)
        ):
            _validate_category(
                verdict=verdict, category=category,
                rules=review_settings_get(dataset_id=dataset_id),
            )  # fmt: skip
    decided: list[int] = []
    conflicts: list[dict[str, Any]] = []
    # One action: undo retracts every verdict of it together.
    bulk_action = uuid.uuid4()
    for item_id in dict.fromkeys(item_ids):
        try:
            review_decision_record(
                item_id=item_id, reviewer=reviewer, verdict=verdict, category=category,
                bulk_action=bulk_action,
            )  # fmt: skip
        except (StateConflict, ValidationFailed, NotAllowed) as exc:
            conflicts.append({"id": item_id, "detail": exc.message})
        except ReviewItem.DoesNotExist:
            conflicts.append({"id": item_id, "detail": "No such review item."})
        else:
            decided.append(item_id)
    return {"decided": decided, "conflicts": conflicts}


@dataclass(frozen=True)
class UndoneAction:
    """What an undo retracted: the reviewer's decisions of one action (one verdict, or every
    verdict of one bulk verdict) and their items, both in the order they were decided."""

    decisions: list[Decision]
    items: list[ReviewItem]


def _held_by_other(item: ReviewItem, *, reviewer: User, now: datetime) -> bool:
    return (
        item.leased_by_id not in (None, reviewer.pk)
        and item.lease_expires_at is not None
        and item.lease_expires_at >= now
    )


def review_action_undo(*, reviewer: User) -> UndoneAction:
    """Retract the reviewer's latest action: their latest live decision, or all the live
    decisions of the bulk verdict it belongs to, and the copies they made on duplicates.

    The history keeps both; the previous verdicts count again everywhere. Each item is
    re-opened and leased back to the reviewer when it needs their verdict again (pending,
    disputed for an admin, decided after their second look is retracted). If another
    reviewer holds one of the items now, nothing is retracted.
    """
    now = timezone.now()
    with transaction.atomic():
        mine = (
            Decision.objects.select_for_update(of=("self",))
            .filter(reviewer=reviewer, propagated_from__isnull=True, retraction__isnull=True)
            .filter(item__in=reviewable_items(reviewer).values("id"))
        )
        latest = mine.order_by("-created_at", "-id").first()
        if latest is None:
            raise StateConflict("You have nothing to undo.")
        decisions = (
            [latest]
            if latest.bulk_action is None
            else list(mine.filter(bulk_action=latest.bulk_action).order_by("created_at", "id"))
        )
        items = {
            item.pk: item
            for item in ReviewItem.objects.select_for_update(of=("self",))
            .select_related("image", "dataset", "run")
            .filter(pk__in=[decision.item_id for decision in decisions])
        }
        held = [item for item in items.values() if _held_by_other(item, reviewer=reviewer, now=now)]
        if held and len(items) == 1:
            raise StateConflict("Another reviewer holds this item now.")
        if held:
            raise StateConflict(
                f"Another reviewer holds {len(held)} of these {len(items)} items now; nothing "
                "was undone. Undo again when their lease ends."
            )
        rules: dict[int, ReviewSettings] = {}

        def required(dataset_id: int) -> int:
            if dataset_id not in rules:
                rules[dataset_id] = review_settings_get(dataset_id=dataset_id)
            return rules[dataset_id].required_verdicts

        copies = list(
            Decision.objects.filter(
                propagated_from__in=[decision.pk for decision in decisions],
                retraction__isnull=True,
            ).values_list("pk", "item_id")
        )
        DecisionRetraction.objects.bulk_create(
            DecisionRetraction(decision_id=pk, retracted_by=reviewer)
            for pk in [decision.pk for decision in decisions] + [pk for pk, _ in copies]
        )
        for other in (
            ReviewItem.objects.select_for_update(of=("self",))
            .select_related("run")
            .filter(pk__in={item_id for _, item_id in copies} - set(items))
        ):
            review_item_settle(other, required=required(other.dataset_id))
            review_item_save(other)
        for decision in decisions:
            item = items[decision.item_id]
            if (
                item.state == ReviewItem.State.WITHDRAWN
                and decision.verdict == Decision.Verdict.SKIP
            ):
                continue  # a skipped item that has since been withdrawn stays withdrawn
            review_item_settle(item, required=required(item.dataset_id))
            if (
                item.state == ReviewItem.State.PENDING
                or (item.state == ReviewItem.State.DISPUTED and reviewer.is_staff)
                or (item.state == ReviewItem.State.DECIDED and decision.is_second_look)
            ):
                item.leased_by = reviewer
                item.lease_expires_at = now + timedelta(seconds=settings.Q16_LEASE_SECONDS)
            review_item_save(item)
    return UndoneAction(
        decisions=decisions, items=[items[decision.item_id] for decision in decisions]
    )


def review_decision_undo(*, reviewer: User) -> tuple[ReviewItem, Decision]:
    """Retract the reviewer's latest action (see review_action_undo): every decision of a bulk
    verdict, or the one latest decision. Returns the latest retracted decision and its item.
    """
    undone = review_action_undo(reviewer=reviewer)
    return undone.items[-1], undone.decisions[-1]
