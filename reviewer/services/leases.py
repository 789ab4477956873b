"""Renewing review leases: the open review page's heartbeat.

Leases are short (settings.Q16_LEASE_SECONDS, 120 s by default) so that the items of a tab
that crashed or was closed without saying so come back to the queue soon; the page renews
the leases of the items it shows while the reviewer works (static/js/review/leases.js)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from reviewer.models import ReviewItem
from reviewer.services.queue import reviewable_items

HELD_BY_OTHER = "held by another reviewer"
NOT_LEASED = "not leased to you"


@dataclass(frozen=True)
class LeaseRenewal:
    renewed: list[int]
    # (item id, why it was not renewed): HELD_BY_OTHER or NOT_LEASED.
    refused: list[tuple[int, str]]
    expires_at: datetime


def review_leases_renew(*, reviewer: User, item_ids: Iterable[int] | None = None) -> LeaseRenewal:
    """Extend the reviewer's leases on these items (item_ids None: every lease they hold) to
    Q16_LEASE_SECONDS from now.

    Only leases that are still the reviewer's are renewed: live ones, and ones that ran out
    while nobody else leased the item (taking an item over writes its leased_by, a verdict or
    a release clears it). Another reviewer's lease is never touched (HELD_BY_OTHER while it is
    live); an item that is not leased to the reviewer, or does not exist, or lies outside the
    datasets they may review, is NOT_LEASED alike, so ids of other datasets do not leak.
    """
    now = timezone.now()
    expires = now + timedelta(seconds=settings.Q16_LEASE_SECONDS)
    visible = reviewable_items(reviewer)
    mine = visible.filter(leased_by=reviewer)
    wanted = None if item_ids is None else list(dict.fromkeys(item_ids))
    if wanted is not None:
        mine = mine.filter(pk__in=wanted)
    with transaction.atomic():
        # Locked first: a reviewer leasing an expired one meanwhile skips it or waits.
        renewed = sorted(mine.select_for_update().values_list("id", flat=True))
        ReviewItem.objects.filter(pk__in=renewed, leased_by=reviewer).update(
            lease_expires_at=expires
        )
    if wanted is None:
        return LeaseRenewal(renewed=renewed, refused=[], expires_at=expires)
    done = set(renewed)
    rest = [item_id for item_id in wanted if item_id not in done]
    held = set(
        visible.filter(pk__in=rest, leased_by__isnull=False, lease_expires_at__gte=now)
        .exclude(leased_by=reviewer)
        .values_list("id", flat=True)
    )
    refused = [(item_id, HELD_BY_OTHER if item_id in held else NOT_LEASED) for item_id in rest]
    return LeaseRenewal(renewed=renewed, refused=refused, expires_at=expires)
