"""Reviewer protection (issue 11): every reveal of an image is recorded on the server, and the
server refuses a reveal (and, during a break, new work) when the reviewer's rules say so.

The rules (reviewer/selectors/exposure.py): an optional daily cap on the different images a
reviewer reveals, and an enforced break after a stretch of continuous reviewing. The review
page only displays what the server decides.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from curation.errors import DomainError, StateConflict, ValidationFailed, full_clean_or_fail
from curation.models import Image
from curation.selectors import visible_dataset_ids
from reviewer.models import ExposureSettings, Reveal, ReviewItem
from reviewer.selectors.exposure import (
    RULE_FIELDS,
    ExposureStatus,
    break_ends_at,
    exposure_status_get,
    image_revealed_today,
    max_reveal,
)


class ExposureRefused(DomainError):
    """The reviewer's exposure rules refuse this now (HTTP 429: come back later)."""

    status_code = 429
    reason = "refused"

    def __init__(self, message: str, *, status: ExposureStatus | None = None) -> None:
        super().__init__(message)
        self.status = status


class BreakDue(ExposureRefused):
    reason = "break"


class DailyCapReached(ExposureRefused):
    reason = "cap"


def _minutes(seconds: int) -> str:
    minutes, rest = divmod(max(0, seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"


def break_message(*, break_after_minutes: int, break_minutes: int, seconds_left: int) -> str:
    return (
        f"Time for a break: after {break_after_minutes} minutes of reviewing, new images and "
        f"reveals pause for {break_minutes} minutes ({_minutes(seconds_left)} left)."
    )


def cap_message(*, cap: int) -> str:
    images = "image" if cap == 1 else "different images"
    return (
        f"Daily limit reached: you have revealed {cap} {images} today, your limit. New images "
        "stay blurred until tomorrow (server time); those you revealed today can be revealed "
        "again."
    )


def exposure_break_check(*, reviewer: User, now: datetime | None = None) -> None:
    """Raise BreakDue while the reviewer's enforced break is due (the queue asks before it
    leases anything; reveal_start asks too)."""
    now = now or timezone.now()
    ends_at = break_ends_at(reviewer=reviewer, now=now)
    if ends_at is None:
        return
    status = exposure_status_get(reviewer=reviewer, now=now)
    raise BreakDue(
        break_message(
            break_after_minutes=status.rules.break_after_minutes,
            break_minutes=status.rules.break_minutes,
            seconds_left=status.break_seconds_left,
        ),
        status=status,
    )


def _revealed_image(
    *, reviewer: User, item_id: int | None, image_id: int | None, now: datetime
) -> tuple[ReviewItem | None, int]:
    """(item, image id) the reveal is of. Outside the reviewer's datasets, an item or image
    does not exist (DoesNotExist: 404); an item another reviewer holds is a 409."""
    visible = visible_dataset_ids(reviewer)
    if item_id is None:
        if image_id is None:
            raise ValidationFailed("A reveal needs an item_id or an image_id.")
        images = Image.objects.filter(pk=image_id)
        if visible is not None:
            images = images.filter(dataset_id__in=visible)
        if not images.exists():
            raise Image.DoesNotExist(f"No image {image_id}.")
        return None, image_id
    items = ReviewItem.objects.filter(pk=item_id)
    if visible is not None:
        items = items.filter(dataset_id__in=visible)
    item = items.first()
    if item is None:
        raise ReviewItem.DoesNotExist(f"No review item {item_id}.")
    if image_id is not None and image_id != item.image_id:
        raise ValidationFailed(f"Image {image_id} is not the image of item {item_id}.")
    held_by_other = (
        item.leased_by_id not in (None, reviewer.pk)
        and item.lease_expires_at is not None
        and item.lease_expires_at >= now
    )
    if held_by_other:
        raise StateConflict("This item is leased to another reviewer.")
    return item, item.image_id


def reveal_start(
    *,
    reviewer: User,
    view: str = Reveal.View.SINGLE,
    item_id: int | None = None,
    image_id: int | None = None,
    now: datetime | None = None,
) -> Reveal:
    """Record that the reviewer reveals an image (of an item, or a duplicate's image); the
    page unblurs it only once this succeeded.

    Refused (ExposureRefused, 429) while a break is due, or when the daily cap is reached and
    the image is not one the reviewer already revealed today. A reviewer's starts are
    serialised (their user row is locked), so concurrent reveals cannot pass the cap.
    """
    if view not in Reveal.View.values:
        raise ValidationFailed(
            f"Unknown view {view!r}; use one of {', '.join(Reveal.View.values)}."
        )
    now = now or timezone.now()
    item, revealed_image_id = _revealed_image(
        reviewer=reviewer, item_id=item_id, image_id=image_id, now=now
    )
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=reviewer.pk).first()
        status = exposure_status_get(reviewer=reviewer, now=now)
        if status.on_break:
            raise BreakDue(
                break_message(
                    break_after_minutes=status.rules.break_after_minutes,
                    break_minutes=status.rules.break_minutes,
                    seconds_left=status.break_seconds_left,
                ),
                status=status,
            )
        if status.cap_reached and not image_revealed_today(
            reviewer=reviewer, image_id=revealed_image_id, now=now
        ):
            raise DailyCapReached(cap_message(cap=status.rules.daily_cap), status=status)
        return Reveal.objects.create(
            reviewer=reviewer, image_id=revealed_image_id, item=item, view=view, revealed_at=now
        )


def reveal_end(
    *,
    reviewer: User,
    reveal_id: int,
    duration_ms: int | None = None,
    now: datetime | None = None,
) -> Reveal:
    """Record that the image was hidden again. Idempotent: a reveal already ended stays as it
    was. Only the reviewer's own reveals (another's is DoesNotExist: 404).

    The duration is the time since the start, or the page's own measure when that is shorter
    (it stops counting when the image goes); never negative, never over
    Q16_EXPOSURE_MAX_REVEAL_SECONDS.
    """
    now = now or timezone.now()
    with transaction.atomic():
        reveal = Reveal.objects.select_for_update().filter(pk=reveal_id, reviewer=reviewer).first()
        if reveal is None:
            raise Reveal.DoesNotExist(f"No reveal {reveal_id}.")
        if reveal.hidden_at is not None:
            return reveal
        elapsed_ms = max(0, int((now - reveal.revealed_at).total_seconds() * 1000))
        measured = elapsed_ms if duration_ms is None else min(max(0, duration_ms), elapsed_ms)
        longest_ms = int(max_reveal().total_seconds() * 1000)
        reveal.duration_ms = min(measured, longest_ms)
        reveal.hidden_at = reveal.revealed_at + timedelta(milliseconds=reveal.duration_ms)
        reveal.save(update_fields=["duration_ms", "hidden_at"])
    return reveal


def exposure_settings_update(
    *, reviewer: User, updated_by: User | None, **fields: Any
) -> ExposureSettings:
    """Set a reviewer's own exposure rules (None: follow the default; 0: off), recorded in the
    audit trail when something changed."""
    unknown = set(fields) - set(RULE_FIELDS)
    if unknown:
        raise ValidationFailed(f"Unknown exposure settings: {', '.join(sorted(unknown))}.")
    with transaction.atomic():
        own, _ = ExposureSettings.objects.select_for_update().get_or_create(reviewer=reviewer)
        before = {name: getattr(own, name) for name in RULE_FIELDS}
        for name, value in fields.items():
            setattr(own, name, value)
        full_clean_or_fail(own)
        after = {name: getattr(own, name) for name in RULE_FIELDS}
        if after != before:
            own.updated_by = updated_by
            own.save()
            audit_record(
                actor=updated_by,
                action="exposure_settings.update",
                target=own,
                before=before,
                after=after,
                details={"reviewer": reviewer.get_username()},
            )
    return own
