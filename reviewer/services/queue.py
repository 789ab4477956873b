"""The review queue: which items a reviewer gets, leased to one reviewer at a time.

Modes (score, uncertain, learn, audit, disagreement), filters, batches for the grid view,
lease release, and the size of what is left.

The uncertain queue covers the whole scored dataset, not only its flagged part: images below
the threshold nearest the decision boundary become review items on demand (is_uncertain), a
batch at a time, nearest first, so the queue's head is always the nearest image that is
left, flagged or not. The learn mode interleaves that queue with highest-score-first at the
dataset's learn_uncertain_share."""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models import Count, Exists, Max, Min, OuterRef, Q, QuerySet
from django.utils import timezone

from curation.errors import NotAllowed, ValidationFailed
from curation.models import BankMatch, Dataset, Score
from curation.selectors import dataset_latest_run, visible_dataset_ids
from reviewer.models import (
    Decision,
    ReviewItem,
    ReviewSettings,
)
from reviewer.selectors.verdicts import latest_decision_subquery
from reviewer.services.exposure import exposure_break_check
from reviewer.services.uncertain import uncertain_items_create

# The most items one batch (grid view) leases at once.
MAX_BATCH = 60


QUEUE_MODES = ("score", "uncertain", "learn", "audit", "disagreement")


# States a reviewer may ask the queue for (re-review of decided items, adjudication).
QUEUE_STATES = (ReviewItem.State.PENDING, ReviewItem.State.DECIDED, ReviewItem.State.DISPUTED)


# Unflagged images read per random draw of the audit sample, and draws per wanted item.
AUDIT_WINDOW = 64


AUDIT_TRIES = 4


# Randomness of the audit sample (and of the learn mode's interleaving); tests may seed it.
audit_random = random.Random()


@dataclass(frozen=True)
class QueueFilters:
    dataset: Dataset | None = None
    score_min: float | None = None
    score_max: float | None = None
    state: str | None = None
    category: str = ""
    folder: str = ""
    # ImageFolder imports: the images of one class label.
    class_label: str = ""


def reviewable_items(reviewer: User) -> QuerySet[ReviewItem]:
    """Review items of the datasets this user may review (admins: all). An item outside them
    behaves as if it did not exist (the API answers 404)."""
    ids = visible_dataset_ids(reviewer)
    if ids is None:
        return ReviewItem.objects.all()
    return ReviewItem.objects.filter(dataset_id__in=ids)


def _lease_is_free(now) -> Q:
    return Q(leased_by__isnull=True) | Q(lease_expires_at__lt=now)


def _queue(
    *, mode: str, filters: QueueFilters, reviewer: User
) -> tuple[QuerySet[ReviewItem], tuple[str, ...]]:
    """The items a mode serves (leases aside) and their order."""
    if mode not in QUEUE_MODES:
        raise ValidationFailed(f"Unknown queue mode {mode!r}; use one of {', '.join(QUEUE_MODES)}.")
    items = reviewable_items(reviewer)
    if filters.dataset is not None:
        items = items.filter(dataset=filters.dataset)
    if mode == "disagreement":
        if not reviewer.is_staff:
            raise NotAllowed("Only admins adjudicate disputed items.")
        items = items.filter(state=ReviewItem.State.DISPUTED)
        order: tuple[str, ...] = ("-score", "id")
    elif mode == "audit":
        if filters.dataset is None:
            raise ValidationFailed("The audit queue needs a dataset.")
        items = items.filter(state=ReviewItem.State.PENDING, is_audit=True)
        order = ("id",)
    else:  # score, uncertain, learn
        state = filters.state or ReviewItem.State.PENDING
        if state not in QUEUE_STATES:
            raise ValidationFailed(f"The queue serves items in states {', '.join(QUEUE_STATES)}.")
        if state == ReviewItem.State.DISPUTED and not reviewer.is_staff:
            raise NotAllowed("Only admins adjudicate disputed items.")
        items = items.filter(state=state)
        if state == ReviewItem.State.PENDING:
            items = items.filter(is_audit=False)
        order = ("margin", "id") if mode == "uncertain" else ("-score", "id")
    # Known-bad content is never shown again: a match retires pending items in its own
    # transaction, and this also keeps matched images out of second looks and adjudication.
    items = items.exclude(Exists(BankMatch.objects.filter(image_id=OuterRef("image_id"))))
    if filters.score_min is not None:
        items = items.filter(score__gte=filters.score_min)
    if filters.score_max is not None:
        items = items.filter(score__lte=filters.score_max)
    folder = filters.folder.strip().strip("/")
    if folder:
        items = items.filter(image__relative_path__startswith=f"{folder}/")
    if filters.class_label:
        items = items.filter(image__class_label=filters.class_label)
    if filters.category:
        items = items.annotate(
            latest_category=latest_decision_subquery(
                "category", outer="image_id", settled_only=False
            )
        ).filter(latest_category=filters.category)
    return items, order


def _pg_lease_statement(
    *,
    candidates: QuerySet[ReviewItem],
    reviewer: User,
    count: int,
    now,
    expires,
    only_if: str = "TRUE",
) -> tuple[str, list]:
    """PostgreSQL: the UPDATE that claims up to count queue heads (RETURNING their ids).

    The heads are locked FOR UPDATE SKIP LOCKED, so concurrent reviewers skip each other's
    rows instead of waiting, and the lease must still be free when the row is updated.
    `only_if` is an extra SQL condition (no parameters) that must hold for anything to be
    claimed.
    """
    heads = candidates.values("id")[:count]
    heads_sql, heads_params = heads.query.get_compiler(using=heads.db).as_sql()
    table = ReviewItem._meta.db_table
    return (
        f'UPDATE "{table}" SET "leased_by_id" = %s, "lease_expires_at" = %s '
        f'WHERE {only_if} AND "id" IN ({heads_sql} FOR UPDATE OF "{table}" SKIP LOCKED) '
        f'AND ("leased_by_id" IS NULL OR "lease_expires_at" < %s) RETURNING "id"',
        [reviewer.pk, expires, *heads_params, now],
    )


def _lease(
    *, candidates: QuerySet[ReviewItem], reviewer: User, count: int, now, expires
) -> list[int]:
    """Claim up to count queue heads, in queue order; two reviewers never hold the same item.

    PostgreSQL: one UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING, so
    concurrent reviewers skip each other's rows instead of waiting. Elsewhere (SQLite, whose
    write transactions are serialised): select the heads, then a compare-and-set UPDATE.
    """
    if connection.vendor == "postgresql":
        # One statement, atomic on its own: no transaction round trips.
        sql, params = _pg_lease_statement(
            candidates=candidates, reviewer=reviewer, count=count, now=now, expires=expires
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return [row[0] for row in cursor.fetchall()]
    with transaction.atomic():
        ids = list(candidates.values_list("id", flat=True)[:count])
        if not ids:
            return []
        ReviewItem.objects.filter(pk__in=ids).filter(_lease_is_free(now)).update(
            leased_by=reviewer, lease_expires_at=expires
        )
        leased = set(
            ReviewItem.objects.filter(
                pk__in=ids, leased_by=reviewer, lease_expires_at=expires
            ).values_list("id", flat=True)
        )
        return [item_id for item_id in ids if item_id in leased]


def _held_or_lease_one(
    *,
    held_items: QuerySet[ReviewItem],
    candidates: QuerySet[ReviewItem],
    reviewer: User,
    now,
    expires,
) -> tuple[list[int], list[int]]:
    """PostgreSQL, one item: (held, all) ids: the item the reviewer holds, or else the queue
    head leased to them (see _lease), in one statement: this is the next-item hot path."""
    held = held_items.values("id")[:1]
    held_sql, held_params = held.query.get_compiler(using=held.db).as_sql()
    lease_sql, lease_params = _pg_lease_statement(
        candidates=candidates, reviewer=reviewer, count=1, now=now, expires=expires,
        only_if="NOT EXISTS (SELECT 1 FROM held)",
    )  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH held AS ({held_sql}), leased AS ({lease_sql}) "
            'SELECT "id", TRUE FROM held UNION ALL SELECT "id", FALSE FROM leased',
            [*held_params, *lease_params],
        )
        rows = cursor.fetchall()
    return [item_id for item_id, was_held in rows if was_held], [item_id for item_id, _ in rows]


def _uncertain_wanted(*, mode: str, filters: QueueFilters) -> bool:
    """Whether the queue reaches below the threshold: the uncertain and learn modes over one
    dataset's pending items, unnarrowed (a score range, folder or category narrows the queue
    to existing items)."""
    if mode not in ("uncertain", "learn") or filters.dataset is None:
        return False
    narrowed = (
        filters.score_min is not None
        or filters.score_max is not None
        or filters.folder.strip().strip("/")
        or filters.category
    )
    return not narrowed and (filters.state or ReviewItem.State.PENDING) == ReviewItem.State.PENDING


def _lease_learn(
    *,
    candidates: QuerySet[ReviewItem],
    held_items: QuerySet[ReviewItem],
    dataset: Dataset,
    reviewer: User,
    limit: int,
    now,
    expires,
) -> tuple[list[int], list[int]]:
    """(held, all) ids of a learn batch: each new slot comes from the uncertain queue with
    probability learn_uncertain_share, else from the highest-score-first queue (and the other
    queue fills what one runs short of)."""
    share = (
        ReviewSettings.objects.filter(dataset=dataset)
        .values_list("learn_uncertain_share", flat=True)
        .first()
    )
    share = 0.5 if share is None else share
    held = list(held_items.values_list("id", flat=True)[:limit])
    ids = list(held)
    wanted = sum(audit_random.random() < share for _ in range(limit - len(ids)))
    if wanted:
        uncertain_items_create(dataset=dataset, wanted=wanted)
        ids += _lease(
            candidates=candidates.order_by("margin", "id"), reviewer=reviewer, count=wanted,
            now=now, expires=expires,
        )  # fmt: skip
    if len(ids) < limit:
        ids += _lease(
            candidates=candidates.order_by("-score", "id"), reviewer=reviewer,
            count=limit - len(ids), now=now, expires=expires,
        )  # fmt: skip
    if len(ids) < limit and uncertain_items_create(dataset=dataset, wanted=limit - len(ids)):
        # The flagged part is done: the rest of the batch comes from below the threshold.
        ids += _lease(
            candidates=candidates.order_by("margin", "id"), reviewer=reviewer,
            count=limit - len(ids), now=now, expires=expires,
        )  # fmt: skip
    return held, ids


def _order_key(mode: str):
    if mode == "uncertain":
        return lambda item: (item.margin, item.pk)
    if mode == "audit":
        return lambda item: item.pk
    return lambda item: (-item.score, item.pk)


def _audit_items_create(*, dataset: Dataset, count: int) -> int:
    """Add up to count random unflagged images of the dataset's latest run as audit items."""
    run = dataset_latest_run(dataset=dataset)
    if run is None:
        return 0
    below = Score.objects.filter(run=run, p_inappropriate__lt=run.threshold)
    bounds = Score.objects.filter(run=run).aggregate(lo=Min("image_id"), hi=Max("image_id"))
    if bounds["lo"] is None:
        return 0
    picked: dict[int, float] = {}
    for _ in range(count * AUDIT_TRIES):
        if len(picked) >= count:
            break
        # The first unflagged image without a review item at or after a random image id
        # (wrapping around): index range reads, no anti-join over the whole run.
        start = audit_random.randint(bounds["lo"], bounds["hi"])
        rows = list(
            below.filter(image_id__gte=start)
            .order_by("image_id")
            .values_list("image_id", "p_inappropriate")[:AUDIT_WINDOW]
        )
        if len(rows) < AUDIT_WINDOW:
            rows += list(
                below.filter(image_id__lt=start)
                .order_by("image_id")
                .values_list("image_id", "p_inappropriate")[: AUDIT_WINDOW - len(rows)]
            )
        if not rows:
            break
        window = [i for i, _ in rows]
        taken = set(
            ReviewItem.objects.filter(image_id__in=window).values_list("image_id", flat=True)
        )
        # Images matched to a hash bank are never sampled for review either.
        taken |= set(
            BankMatch.objects.filter(image_id__in=window).values_list("image_id", flat=True)
        )
        free = [(i, p) for i, p in rows if i not in taken and i not in picked]
        if free:
            picked[free[0][0]] = free[0][1]
        elif len(rows) < AUDIT_WINDOW and not any(i not in taken for i, _ in rows):
            break  # every unflagged image already has an item
    ReviewItem.objects.bulk_create(
        [
            ReviewItem(
                dataset=dataset,
                image_id=image_id,
                score=p,
                margin=abs(p - run.threshold),
                run=run,
                is_audit=True,
            )  # fmt: skip
            for image_id, p in picked.items()
        ],
        ignore_conflicts=True,
    )
    return len(picked)


def _audit_share(*, mode: str, filters: QueueFilters) -> float:
    """The dataset's audit share where a queue mixes audit items in: the score and uncertain
    modes over one dataset's pending items, unnarrowed (a reviewer who asks for a score range,
    a folder or a category gets exactly that); 0 elsewhere."""
    if mode not in ("score", "uncertain") or filters.dataset is None:
        return 0.0
    narrowed = (
        filters.score_min is not None
        or filters.score_max is not None
        or filters.folder.strip().strip("/")
        or filters.category
    )
    if narrowed or (filters.state or ReviewItem.State.PENDING) != ReviewItem.State.PENDING:
        return 0.0
    share = (
        ReviewSettings.objects.filter(dataset=filters.dataset)
        .values_list("audit_share", flat=True)
        .first()
    )
    return share or 0.0


def _lease_with_audit_share(
    *,
    candidates: QuerySet[ReviewItem],
    held_items: QuerySet[ReviewItem],
    share: float,
    dataset: Dataset,
    reviewer: User,
    limit: int,
    now,
    expires,
) -> tuple[list[int], list[int]]:
    """(held, all) ids of a batch where each new slot is an audit item with probability
    `share` (sampled as the audit mode does when none is waiting), the rest flagged items.

    Audit items the reviewer holds count as held. Once the flagged queue has nothing left
    to lease, no audit item is mixed in either: the queue is done, not an audit queue.
    """
    audit = reviewable_items(reviewer).filter(
        dataset=dataset, state=ReviewItem.State.PENDING, is_audit=True
    )
    held = list(held_items.values_list("id", flat=True)[:limit])
    held += list(
        audit.filter(leased_by=reviewer, lease_expires_at__gte=now)
        .order_by("id")
        .values_list("id", flat=True)[: limit - len(held)]
    )
    ids = list(held)
    wanted = sum(audit_random.random() < share for _ in range(limit - len(ids)))
    if wanted and (held or candidates.exists()):
        mine = Decision.objects.filter(
            item_id=OuterRef("pk"), reviewer=reviewer, retraction__isnull=True
        )
        free_audit = audit.filter(_lease_is_free(now)).exclude(Exists(mine)).order_by("id")
        leased = _lease(
            candidates=free_audit, reviewer=reviewer, count=wanted, now=now, expires=expires
        )
        if len(leased) < wanted and _audit_items_create(
            dataset=dataset, count=wanted - len(leased)
        ):
            leased += _lease(
                candidates=free_audit, reviewer=reviewer, count=wanted - len(leased), now=now,
                expires=expires,
            )  # fmt: skip
        ids += leased
    if len(ids) < limit:
        ids += _lease(
            candidates=candidates, reviewer=reviewer, count=limit - len(ids), now=now,
            expires=expires,
        )  # fmt: skip
    return held, ids


def review_item_batch(
    *,
    reviewer: User,
    limit: int = 1,
    mode: str = "score",
    filters: QueueFilters | None = None,
) -> list[ReviewItem]:
    """Lease up to limit items of a queue to this reviewer, in the mode's order.

    Items the reviewer already holds (and that match) come first. Nobody receives an item
    another reviewer holds, nor one they already gave a verdict on (or skipped). The audit
    mode adds random unflagged images of the dataset's latest run when it runs dry; the score
    and uncertain modes of a dataset mix audit items in by its review settings' audit_share.
    The uncertain mode of a dataset reaches below the threshold (see the module docstring);
    the learn mode interleaves it with highest score first.
    """
    # A due break (reviewer protection) leases nothing new: BreakDue, a 429.
    exposure_break_check(reviewer=reviewer)
    filters = filters or QueueFilters()
    if not 1 <= limit <= MAX_BATCH:
        raise ValidationFailed(f"The batch size must be between 1 and {MAX_BATCH}.")
    items, order = _queue(mode=mode, filters=filters, reviewer=reviewer)
    now = timezone.now()
    expires = now + timedelta(seconds=settings.Q16_LEASE_SECONDS)
    # NOT EXISTS per queue head, not NOT IN over the reviewer's whole history: that list
    # grows with every verdict they give (1.7 ms of hashing at 1,700 verdicts).
    mine = Decision.objects.filter(
        item_id=OuterRef("pk"), reviewer=reviewer, retraction__isnull=True
    )
    candidates = items.filter(_lease_is_free(now)).exclude(Exists(mine)).order_by(*order)
    held_items = items.filter(leased_by=reviewer, lease_expires_at__gte=now).order_by(*order)
    share = _audit_share(mode=mode, filters=filters)
    uncertain = _uncertain_wanted(mode=mode, filters=filters)
    if uncertain and mode == "uncertain" and filters.dataset is not None:
        uncertain_items_create(dataset=filters.dataset, wanted=limit)
    if mode == "learn" and uncertain and filters.dataset is not None:
        held, ids = _lease_learn(
            candidates=candidates, held_items=held_items, dataset=filters.dataset,
            reviewer=reviewer, limit=limit, now=now, expires=expires,
        )  # fmt: skip
    elif share > 0 and filters.dataset is not None:
        held, ids = _lease_with_audit_share(
            candidates=candidates, held_items=held_items, share=share, dataset=filters.dataset,
            reviewer=reviewer, limit=limit, now=now, expires=expires,
        )  # fmt: skip
    elif limit == 1 and connection.vendor == "postgresql":
        held, ids = _held_or_lease_one(
            held_items=held_items, candidates=candidates, reviewer=reviewer, now=now,
            expires=expires,
        )  # fmt: skip
    else:
        held = list(held_items.values_list("id", flat=True)[:limit])
        ids = list(held)
        if len(ids) < limit:
            ids += _lease(
                candidates=candidates, reviewer=reviewer, count=limit - len(ids), now=now,
                expires=expires,
            )  # fmt: skip
    if (
        len(ids) < limit
        and mode == "audit"
        and filters.dataset is not None
        and _audit_items_create(dataset=filters.dataset, count=limit - len(ids))
    ):
        ids += _lease(
            candidates=candidates, reviewer=reviewer, count=limit - len(ids), now=now,
            expires=expires,
        )  # fmt: skip
    held_set = set(held)
    fetched = list(
        ReviewItem.objects.select_related("image", "dataset", "dataset__review_settings").filter(
            pk__in=ids
        )
    )
    key = _order_key(mode)
    # Held items first (the reviewer's current work), then new ones, each in queue order.
    return sorted((item for item in fetched if item.pk in held_set), key=key) + sorted(
        (item for item in fetched if item.pk not in held_set), key=key
    )


def review_item_next(
    *,
    reviewer: User,
    dataset: Dataset | None = None,
    mode: str = "score",
    filters: QueueFilters | None = None,
) -> ReviewItem | None:
    """Lease the next item to this reviewer, or None if the queue is empty (see review_item_batch).

    A reviewer who already holds a live lease gets that item again.
    """
    if filters is None:
        filters = QueueFilters(dataset=dataset)
    items = review_item_batch(reviewer=reviewer, limit=1, mode=mode, filters=filters)
    return items[0] if items else None


def review_lease_release(*, item_id: int, reviewer: User) -> None:
    """Give back the reviewer's lease on an item (a no-op if they do not hold it).

    An item of a dataset the reviewer may not review raises ReviewItem.DoesNotExist.
    """
    items = reviewable_items(reviewer).filter(pk=item_id)
    if not items.exists():
        raise ReviewItem.DoesNotExist(f"No review item {item_id}.")
    items.filter(leased_by=reviewer).update(leased_by=None, lease_expires_at=None)


def review_leases_release(*, reviewer: User, item_ids: Iterable[int] | None = None) -> int:
    """Give back the reviewer's leases in one UPDATE: all of them (item_ids None) or those on
    these items; returns how many were given back (expired ones included).

    Leases of other reviewers are never touched; items outside the datasets the reviewer may
    review are ignored, not reported (their ids must not leak).
    """
    items = reviewable_items(reviewer).filter(leased_by=reviewer)
    if item_ids is not None:
        items = items.filter(pk__in=list(item_ids))
    return items.update(leased_by=None, lease_expires_at=None)


def review_queue_size(
    *, reviewer: User, mode: str = "score", filters: QueueFilters | None = None
) -> dict[str, int]:
    """How many items a queue (mode and filters, as review_item_batch reads them) holds.

    `queue`: the items it serves, leases aside; `queue_remaining`: those of them this reviewer
    has not given a verdict on (nor skipped) yet. Raises like review_item_batch for a mode the
    reviewer may not use.
    """
    items, _ = _queue(mode=mode, filters=filters or QueueFilters(), reviewer=reviewer)
    queue = items.count()
    # The reviewer's verdicts on the queue's items, subtracted: a NOT EXISTS per queue item
    # cost 0.8 s at 100,000 pending items, and the page asks after verdicts.
    decided = (
        Decision.objects.filter(reviewer=reviewer, retraction__isnull=True, item__in=items)
        .values("item_id")
        .distinct()
        .count()
    )
    return {"queue": queue, "queue_remaining": queue - decided}


@dataclass(frozen=True)
class HeldByOthers:
    """Items of a queue still waiting for this reviewer that other reviewers hold right now."""

    count: int
    first_lease_ends_at: datetime | None


def review_queue_held_by_others(
    *, reviewer: User, mode: str = "score", filters: QueueFilters | None = None
) -> HeldByOthers:
    """How many items of a queue (as review_queue_size reads it) without this reviewer's
    verdict other reviewers hold on live leases, and when the first of those leases ends:
    why a queue can be empty for this reviewer while items are left."""
    items, _ = _queue(mode=mode, filters=filters or QueueFilters(), reviewer=reviewer)
    mine = Decision.objects.filter(
        item_id=OuterRef("pk"), reviewer=reviewer, retraction__isnull=True
    )
    # Few rows are leased at any time: the leased_by index finds them.
    held = (
        items.filter(leased_by__isnull=False, lease_expires_at__gte=timezone.now())
        .exclude(leased_by=reviewer)
        .exclude(Exists(mine))
        .aggregate(count=Count("id"), first=Min("lease_expires_at"))
    )
    return HeldByOthers(count=held["count"], first_lease_ends_at=held["first"])
