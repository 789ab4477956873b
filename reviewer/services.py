"""The review queue: items leased to one reviewer at a time, append-only verdicts, undo,
duplicate propagation, k independent verdicts with admin adjudication, settings, preferences."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Exists, Max, Min, OuterRef, Q, QuerySet
from django.utils import timezone

from curation.bulk import insert_rows, update_rows
from curation.errors import NotAllowed, StateConflict, ValidationFailed
from curation.models import Dataset, Image, Score, ScoringRun
from reviewer.models import (
    DEFAULT_KEYMAP,
    Decision,
    DecisionRetraction,
    ReviewerPreferences,
    ReviewItem,
    ReviewSettings,
)
from reviewer.selectors import (
    image_near_duplicates,
    latest_decision_subquery,
    review_settings_get,
    review_settings_of,
)

# The most items one batch (grid view) leases at once.
MAX_BATCH = 60
# The most items one bulk decision touches.
MAX_BULK = 200

QUEUE_MODES = ("score", "uncertain", "audit", "disagreement")
# States a reviewer may ask the queue for (re-review of decided items, adjudication).
QUEUE_STATES = (ReviewItem.State.PENDING, ReviewItem.State.DECIDED, ReviewItem.State.DISPUTED)

# Unflagged images read per random draw of the audit sample, and draws per wanted item.
AUDIT_WINDOW = 64
AUDIT_TRIES = 4
# Randomness of the audit sample; tests may seed it.
audit_random = random.Random()


@dataclass(frozen=True)
class QueueFilters:
    dataset: Dataset | None = None
    score_min: float | None = None
    score_max: float | None = None
    state: str | None = None
    category: str = ""
    folder: str = ""


def _clean(instance) -> None:
    try:
        instance.full_clean()
    except ValidationError as exc:
        messages = [f"{field}: {'; '.join(errs)}" for field, errs in exc.message_dict.items()]
        raise ValidationFailed(" ".join(messages)) from exc


# --- Syncing items with scores ---------------------------------------------------------------


def review_items_sync(*, run: ScoringRun, scores: dict[int, float]) -> int:
    """Create or update review items from a chunk's scores; returns how many were flagged.

    Flagged images (score >= threshold) get a pending item, or keep their item with the
    new score. Pending items whose image fell below the threshold are withdrawn (audit
    items excepted: they are below the threshold by design); decided items keep their
    verdicts whatever the new score.

    Plain rows and executemany, not model instances and bulk_update: a rescore of a
    million images passes through here in 20,000-score chunks.
    """
    if not scores:
        return 0
    threshold = run.threshold
    flagged = {image_id for image_id, p in scores.items() if p >= threshold}
    # An id range, not an IN list of thousands of ids (chunks are contiguous id ranges).
    existing = ReviewItem.objects.filter(
        dataset_id=run.dataset_id, image_id__gte=min(scores), image_id__lte=max(scores)
    ).values_list("id", "image_id", "state", "is_audit")
    rescored: list[tuple[int, float, float, int]] = []
    restored: list[int] = []
    withdrawn: list[int] = []
    has_item: set[int] = set()
    for item_id, image_id, state, is_audit in existing:
        p = scores.get(image_id)
        if p is None:
            continue
        has_item.add(image_id)
        rescored.append((item_id, p, abs(p - threshold), run.pk))
        if state == ReviewItem.State.WITHDRAWN and image_id in flagged:
            restored.append(item_id)
        elif state == ReviewItem.State.PENDING and image_id not in flagged and not is_audit:
            withdrawn.append(item_id)

    created_at = connection.ops.adapt_datetimefield_value(timezone.now())
    insert_rows(
        table=ReviewItem._meta.db_table,
        columns=[
            "dataset_id",
            "image_id",
            "score",
            "margin",
            "run_id",
            "is_audit",
            "state",
            "created_at",
        ],
        pg_types=[
            "bigint",
            "bigint",
            "float8",
            "float8",
            "bigint",
            "boolean",
            "text",
            "timestamptz",
        ],
        rows=[
            (
                run.dataset_id,
                image_id,
                scores[image_id],
                abs(scores[image_id] - threshold),
                run.pk,
                False,
                ReviewItem.State.PENDING.value,
                created_at,
            )
            for image_id in sorted(flagged - has_item)
        ],
        on_conflict="ON CONFLICT DO NOTHING",
    )
    update_rows(
        table=ReviewItem._meta.db_table,
        key="id",
        columns=["score", "margin", "run_id"],
        pg_types=["bigint", "float8", "float8", "bigint"],
        rows=rescored,
    )
    for start in range(0, len(restored), 1000):
        ReviewItem.objects.filter(
            id__in=restored[start : start + 1000], state=ReviewItem.State.WITHDRAWN
        ).update(state=ReviewItem.State.PENDING)
    for start in range(0, len(withdrawn), 1000):
        ReviewItem.objects.filter(
            id__in=withdrawn[start : start + 1000], state=ReviewItem.State.PENDING
        ).update(state=ReviewItem.State.WITHDRAWN, leased_by=None, lease_expires_at=None)
    return len(flagged)


# --- The queue ---------------------------------------------------------------------------------


def reviewable_items(reviewer: AbstractBaseUser) -> QuerySet[ReviewItem]:
    """Review items of the datasets this user may review (admins: all). An item outside them
    behaves as if it did not exist (the API answers 404)."""
    from curation.selectors import visible_dataset_ids

    ids = visible_dataset_ids(reviewer)
    if ids is None:
        return ReviewItem.objects.all()
    return ReviewItem.objects.filter(dataset_id__in=ids)


def _lease_is_free(now) -> Q:
    return Q(leased_by__isnull=True) | Q(lease_expires_at__lt=now)


def _queue(
    *, mode: str, filters: QueueFilters, reviewer: AbstractBaseUser
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
    else:
        state = filters.state or ReviewItem.State.PENDING
        if state not in QUEUE_STATES:
            raise ValidationFailed(f"The queue serves items in states {', '.join(QUEUE_STATES)}.")
        if state == ReviewItem.State.DISPUTED and not reviewer.is_staff:
            raise NotAllowed("Only admins adjudicate disputed items.")
        items = items.filter(state=state)
        if state == ReviewItem.State.PENDING:
            items = items.filter(is_audit=False)
        order = ("-score", "id") if mode == "score" else ("margin", "id")
    if filters.score_min is not None:
        items = items.filter(score__gte=filters.score_min)
    if filters.score_max is not None:
        items = items.filter(score__lte=filters.score_max)
    folder = filters.folder.strip().strip("/")
    if folder:
        items = items.filter(image__relative_path__startswith=f"{folder}/")
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
    reviewer: AbstractBaseUser,
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
    *, candidates: QuerySet[ReviewItem], reviewer: AbstractBaseUser, count: int, now, expires
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
    reviewer: AbstractBaseUser,
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


def _order_key(mode: str):
    if mode == "uncertain":
        return lambda item: (item.margin, item.pk)
    if mode == "audit":
        return lambda item: item.pk
    return lambda item: (-item.score, item.pk)


def _audit_items_create(*, dataset: Dataset, count: int) -> int:
    """Add up to count random unflagged images of the dataset's latest run as audit items."""
    from curation.selectors import dataset_latest_run

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
        taken = set(
            ReviewItem.objects.filter(image_id__in=[i for i, _ in rows]).values_list(
                "image_id", flat=True
            )
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


def review_item_batch(
    *,
    reviewer: AbstractBaseUser,
    limit: int = 1,
    mode: str = "score",
    filters: QueueFilters | None = None,
) -> list[ReviewItem]:
    """Lease up to limit items of a queue to this reviewer, in the mode's order.

    Items the reviewer already holds (and that match) come first. Nobody receives an item
    another reviewer holds, nor one they already gave a verdict on (or skipped). The audit
    mode adds random unflagged images of the dataset's latest run when it runs dry.
    """
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
    if limit == 1 and connection.vendor == "postgresql":
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
    reviewer: AbstractBaseUser,
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


def review_lease_release(*, item_id: int, reviewer: AbstractBaseUser) -> None:
    """Give back the reviewer's lease on an item (a no-op if they do not hold it).

    An item of a dataset the reviewer may not review raises ReviewItem.DoesNotExist.
    """
    items = reviewable_items(reviewer).filter(pk=item_id)
    if not items.exists():
        raise ReviewItem.DoesNotExist(f"No review item {item_id}.")
    items.filter(leased_by=reviewer).update(leased_by=None, lease_expires_at=None)


def review_leases_release(
    *, reviewer: AbstractBaseUser, item_ids: Iterable[int] | None = None
) -> int:
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
    *, reviewer: AbstractBaseUser, mode: str = "score", filters: QueueFilters | None = None
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


# --- Verdicts ------------------------------------------------------------------------------------


def _live_verdicts(item: ReviewItem | OuterRef) -> QuerySet[Decision]:
    return (
        Decision.objects.filter(item=item, retraction__isnull=True)
        .exclude(verdict=Decision.Verdict.SKIP)
        .order_by("created_at", "id")
    )


def _live_verdict_rows(item: ReviewItem) -> list[tuple[int, str, bool]]:
    """(reviewer id, verdict, is adjudication) of the item's live verdicts, oldest first."""
    return list(_live_verdicts(item).values_list("reviewer_id", "verdict", "is_adjudication"))


def _item_settle(
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


def _save_item(item: ReviewItem) -> None:
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
    from curation.selectors import dataset_latest_run

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
    for image in images:
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
        _item_settle(target, required=rules.required_verdicts)
        _save_item(target)
        reached.append(image.pk)
    return reached, skipped


def review_decision_record(
    *,
    item_id: int,
    reviewer: AbstractBaseUser,
    verdict: str,
    category: str = "",
    apply_to: Sequence[int] = (),
) -> Decision:
    """Append a verdict for an item the reviewer holds (or that nobody holds).

    Skipping releases the lease and keeps the item in the queue for others. A verdict
    also applies to every image with the same content hash in the dataset, and to the
    near-duplicates listed in apply_to (each must be within the dataset's distance), except
    where another reviewer holds the copy or the dataset needs k > 1 verdicts (see
    _propagate). The returned decision carries `propagated_image_ids` (the copies made) and
    `skipped_propagation` (the images left alone, each with its item and the reason).
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
        if item.state != ReviewItem.State.PENDING and verdict == Decision.Verdict.SKIP:
            raise StateConflict("This item is already decided.")
        rows = _live_verdict_rows(item) if item.has_verdicts else []
        if any(reviewer_id == reviewer.pk for reviewer_id, _, _ in rows):
            raise StateConflict("You already gave a verdict on this item; undo it to change it.")
        if item.state == ReviewItem.State.DISPUTED and not reviewer.is_staff:
            raise StateConflict("This item's verdicts disagree; an admin adjudicates it.")
        # A decided item is closed for reviewers (a stale page must not add a k+1st verdict);
        # only an admin may overrule it, which is recorded as an adjudication.
        if item.state == ReviewItem.State.DECIDED and not reviewer.is_staff:
            raise StateConflict("This item is already decided.")
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
            category=category,
            is_adjudication=reviewer.is_staff
            and item.state in (ReviewItem.State.DISPUTED, ReviewItem.State.DECIDED),
        )  # fmt: skip
        item.leased_by = None
        item.lease_expires_at = None
        if verdict != Decision.Verdict.SKIP:
            rows.append((reviewer.pk, verdict, decision.is_adjudication))
            _item_settle(item, required=rules.required_verdicts, rows=rows)
        _save_item(item)
        reached, skipped = (
            _propagate(origin=decision, item=item, images=targets, rules=rules, now=now)
            if targets
            else ([], [])
        )
        decision.propagated_image_ids = reached  # type: ignore[attr-defined]
        decision.skipped_propagation = skipped  # type: ignore[attr-defined]
        if verdict != Decision.Verdict.SKIP and rules.auto_retrain_every:
            from curation.services.prompts import prompt_policy_count_verdicts

            prompt_policy_count_verdicts(
                dataset_id=item.dataset_id,
                count=1 + len(decision.propagated_image_ids),  # type: ignore[attr-defined]
            )
    return decision


def review_decision_bulk(
    *, item_ids: Sequence[int], reviewer: AbstractBaseUser, verdict: str, category: str = ""
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
    for item_id in dict.fromkeys(item_ids):
        try:
            review_decision_record(
                item_id=item_id, reviewer=reviewer, verdict=verdict, category=category
            )
        except (StateConflict, ValidationFailed, NotAllowed) as exc:
            conflicts.append({"id": item_id, "detail": exc.message})
        except ReviewItem.DoesNotExist:
            conflicts.append({"id": item_id, "detail": "No such review item."})
        else:
            decided.append(item_id)
    return {"decided": decided, "conflicts": conflicts}


def review_decision_undo(*, reviewer: AbstractBaseUser) -> tuple[ReviewItem, Decision]:
    """Retract the reviewer's latest live decision (and the copies it made on duplicates).

    The history keeps both; the previous verdict counts again everywhere. The item is
    re-opened and leased back to the reviewer when it needs a verdict again.
    """
    now = timezone.now()
    with transaction.atomic():
        decision = (
            Decision.objects.select_for_update(of=("self",))
            .filter(reviewer=reviewer, propagated_from__isnull=True, retraction__isnull=True)
            .filter(item__in=reviewable_items(reviewer).values("id"))
            .order_by("-created_at", "-id")
            .first()
        )
        if decision is None:
            raise StateConflict("You have nothing to undo.")
        item = (
            ReviewItem.objects.select_for_update(of=("self",))
            .select_related("image", "dataset", "run")
            .get(pk=decision.item_id)
        )
        if (
            item.leased_by_id not in (None, reviewer.pk)
            and item.lease_expires_at is not None
            and item.lease_expires_at >= now
        ):
            raise StateConflict("Another reviewer holds this item now.")
        rules = review_settings_get(dataset_id=item.dataset_id)
        copies = list(
            Decision.objects.filter(propagated_from=decision, retraction__isnull=True).values_list(
                "pk", "item_id"
            )
        )
        DecisionRetraction.objects.bulk_create(
            DecisionRetraction(decision_id=pk, retracted_by=reviewer)
            for pk in [decision.pk] + [pk for pk, _ in copies]
        )
        for other in (
            ReviewItem.objects.select_for_update(of=("self",))
            .select_related("run")
            .filter(pk__in={item_id for _, item_id in copies} - {item.pk})
        ):
            _item_settle(other, required=rules.required_verdicts)
            _save_item(other)
        if item.state == ReviewItem.State.WITHDRAWN and decision.verdict == Decision.Verdict.SKIP:
            pass  # a skipped item that has since been withdrawn stays withdrawn
        else:
            _item_settle(item, required=rules.required_verdicts)
            if item.state == ReviewItem.State.PENDING or (
                item.state == ReviewItem.State.DISPUTED and reviewer.is_staff
            ):
                item.leased_by = reviewer
                item.lease_expires_at = now + timedelta(seconds=settings.Q16_LEASE_SECONDS)
            _save_item(item)
    return item, decision


# --- Settings and preferences ------------------------------------------------------------------


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
    *, dataset: Dataset, updated_by: AbstractBaseUser | None = None, **fields: Any
) -> ReviewSettings:
    """Change a dataset's review rules; changing k re-settles the items that wait for verdicts.

    `pinned_version` (a PromptVersion or None) goes through prompt_version_pin.
    """
    allowed = {"required_verdicts", "near_duplicate_distance", "categories", "auto_retrain_every"}
    pin_given = "pinned_version" in fields
    pinned = fields.pop("pinned_version", None)
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
        _clean(rules)
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
                _item_settle(item, required=rules.required_verdicts)
                _save_item(item)
        if pin_given and pinned != rules.pinned_version:
            from curation.services.prompts import prompt_version_pin

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


def reviewer_preferences_update(*, user: AbstractBaseUser, **fields: Any) -> ReviewerPreferences:
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
        _clean(prefs)
        prefs.save()
    return prefs


__all__ = [
    "MAX_BATCH",
    "QUEUE_MODES",
    "QueueFilters",
    "review_decision_bulk",
    "review_decision_record",
    "review_decision_undo",
    "review_item_batch",
    "review_item_next",
    "review_items_sync",
    "review_lease_release",
    "review_leases_release",
    "review_queue_size",
    "review_settings_update",
    "reviewer_preferences_update",
]
