"""Reviewer exposure (issue 11): the rules that apply to a reviewer, where they stand today
(images revealed, the daily cap, an enforced break) and the per-day totals of the admins'
Exposure page. Days are calendar days in the server's TIME_ZONE.

Definitions (docs/review.md, "Reviewer protection"):

* a reviewer's *activity* is their reveals (from start to end) and their verdicts (instants);
  a reveal whose end was never recorded lasts until now, at most
  Q16_EXPOSURE_MAX_REVEAL_SECONDS;
* *continuous reviewing* is activity without a pause as long as the break: once it has lasted
  `break_after_minutes`, a break is due, which ends `break_minutes` after the last activity
  (refused requests are not activity, so waiting is the break);
* a *session* is a run of activity without a gap of Q16_EXPOSURE_IDLE_MINUTES or longer;
  *time reviewing* is the sessions' length (shorter gaps count, longer ones are pauses).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth.models import User
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from reviewer.models import Decision, ExposureSettings, Reveal

RULE_FIELDS = ("daily_reveal_cap", "break_after_minutes", "break_minutes")


@dataclass(frozen=True)
class ExposureRules:
    """The rules in force for one reviewer: their own where an admin set them, else the
    defaults. 0 means off (no cap; no enforced break)."""

    daily_cap: int
    break_after_minutes: int
    break_minutes: int
    # The fields the reviewer's own settings decide (the rest follow the defaults).
    own: frozenset[str] = frozenset()

    @property
    def breaks_enforced(self) -> bool:
        return self.break_after_minutes > 0


@dataclass(frozen=True)
class ExposureStatus:
    """Where a reviewer stands now: today's reveals and what the rules allow next."""

    rules: ExposureRules
    now: datetime
    reveals_today: int
    images_today: int
    revealed_seconds_today: int
    # Start of the continuous reviewing that reaches now (None: not reviewing, or no breaks).
    reviewing_since: datetime | None
    # When a break becomes due if reviewing goes on; while one is due, when it ends.
    break_due_at: datetime | None
    break_ends_at: datetime | None

    @property
    def on_break(self) -> bool:
        return self.break_ends_at is not None

    @property
    def cap_reached(self) -> bool:
        return self.rules.daily_cap > 0 and self.images_today >= self.rules.daily_cap

    @property
    def state(self) -> str:
        """One of "break" (nothing new until it ends), "cap" (no new image today), "ok"."""
        if self.on_break:
            return "break"
        return "cap" if self.cap_reached else "ok"

    @property
    def images_left_today(self) -> int | None:
        if self.rules.daily_cap <= 0:
            return None
        return max(0, self.rules.daily_cap - self.images_today)

    @property
    def break_seconds_left(self) -> int:
        if self.break_ends_at is None:
            return 0
        return max(1, int((self.break_ends_at - self.now).total_seconds() + 0.999))

    @property
    def reviewing_minutes(self) -> int:
        if self.reviewing_since is None:
            return 0
        return int((self.now - self.reviewing_since).total_seconds() // 60)

    @property
    def revealed_minutes_today(self) -> float:
        return self.revealed_seconds_today / 60


@dataclass
class DailyExposure:
    """One reviewer's day: reveals, different images, seconds revealed, time reviewing."""

    reviewer_id: int
    day: date
    reveals: int = 0
    images: int = 0
    revealed_seconds: float = 0.0
    reviewing_seconds: float = 0.0
    longest_session_seconds: float = 0.0
    sessions: int = 0

    @property
    def revealed_minutes(self) -> float:
        return self.revealed_seconds / 60

    @property
    def reviewing_minutes(self) -> float:
        return self.reviewing_seconds / 60

    @property
    def longest_session_minutes(self) -> float:
        return self.longest_session_seconds / 60


@dataclass
class ReviewerExposure:
    """A row of the Exposure page: the reviewer, their rules and status, their days."""

    reviewer: User
    settings: ExposureSettings | None
    rules: ExposureRules
    status: ExposureStatus
    days: list[DailyExposure] = field(default_factory=list)

    @property
    def total_images(self) -> int:
        """Different images per day, added up over the days."""
        return sum(day.images for day in self.days)

    @property
    def total_revealed_minutes(self) -> float:
        return sum(day.revealed_seconds for day in self.days) / 60

    @property
    def total_reviewing_minutes(self) -> float:
        return sum(day.reviewing_seconds for day in self.days) / 60


@dataclass
class ExposurePage:
    """What the admins' Exposure page shows: the defaults, every reviewer, and their days
    (latest first, then by reviewer name) over `days` days from `first_day`."""

    defaults: ExposureRules
    days: int
    first_day: date
    time_zone: str
    # Q16_EXPOSURE_IDLE_MINUTES: a gap this long ends a session.
    idle_minutes: int
    reviewers: list[ReviewerExposure]
    rows: list[tuple[ReviewerExposure, DailyExposure]]


def server_zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def day_start(moment: datetime) -> datetime:
    """Midnight (server TIME_ZONE) of the day `moment` falls on."""
    local = moment.astimezone(server_zone())
    return datetime.combine(local.date(), time.min, tzinfo=server_zone())


def day_start_after(moment: datetime, days: int) -> datetime:
    """Midnight (server TIME_ZONE) `days` calendar days after (negative: before) the day
    `moment` falls on; by dates, so that a daylight-saving change moves no boundary."""
    local = moment.astimezone(server_zone())
    return datetime.combine(local.date() + timedelta(days=days), time.min, tzinfo=server_zone())


def next_day_start(moment: datetime) -> datetime:
    return day_start_after(moment, 1)


def max_reveal() -> timedelta:
    return timedelta(seconds=settings.Q16_EXPOSURE_MAX_REVEAL_SECONDS)


def exposure_defaults() -> ExposureRules:
    return ExposureRules(
        daily_cap=settings.Q16_EXPOSURE_DAILY_CAP,
        break_after_minutes=settings.Q16_EXPOSURE_BREAK_AFTER_MINUTES,
        break_minutes=settings.Q16_EXPOSURE_BREAK_MINUTES,
    )


def exposure_rules_of(own: ExposureSettings | None) -> ExposureRules:
    """The defaults with the reviewer's own settings (None fields follow the defaults)."""
    defaults = exposure_defaults()
    if own is None:
        return defaults
    cap, after, length = own.daily_reveal_cap, own.break_after_minutes, own.break_minutes
    return ExposureRules(
        daily_cap=defaults.daily_cap if cap is None else cap,
        break_after_minutes=defaults.break_after_minutes if after is None else after,
        break_minutes=defaults.break_minutes if length is None else length,
        own=frozenset(name for name in RULE_FIELDS if getattr(own, name) is not None),
    )


def exposure_settings_get(*, reviewer: User) -> ExposureSettings | None:
    return ExposureSettings.objects.filter(reviewer=reviewer).first()


def exposure_rules_get(*, reviewer: User) -> ExposureRules:
    return exposure_rules_of(exposure_settings_get(reviewer=reviewer))


def _reveal_end(revealed_at: datetime, hidden_at: datetime | None, now: datetime) -> datetime:
    """When a reveal ended; one still open counts until now, at most the longest reveal."""
    if hidden_at is not None:
        return hidden_at
    return max(revealed_at, min(now, revealed_at + max_reveal()))


Span = tuple[datetime, datetime]


def _activity(*, reviewer_ids: Iterable[int] | None, since: datetime, now: datetime):
    """Reviewer id -> the (start, end) spans of their activity within [since, now], by start:
    a reveal from its start to its end (clipped to the window), a verdict as an instant."""
    reveals = Reveal.objects.filter(revealed_at__gte=since - max_reveal(), revealed_at__lte=now)
    # Copies of a verdict (identical images) carry its time: the verdict alone is enough.
    decisions = Decision.objects.filter(
        created_at__gte=since, created_at__lte=now, propagated_from__isnull=True
    )
    if reviewer_ids is not None:
        reveals = reveals.filter(reviewer_id__in=list(reviewer_ids))
        decisions = decisions.filter(reviewer_id__in=list(reviewer_ids))
    spans: dict[int, list[Span]] = defaultdict(list)
    for reviewer_id, revealed_at, hidden_at in reveals.values_list(
        "reviewer_id", "revealed_at", "hidden_at"
    ).iterator():
        end = min(now, _reveal_end(revealed_at, hidden_at, now))
        if end >= since:
            spans[reviewer_id].append((max(since, revealed_at), end))
    for reviewer_id, created_at in decisions.values_list("reviewer_id", "created_at").iterator():
        spans[reviewer_id].append((created_at, created_at))
    for entries in spans.values():
        entries.sort()
    return spans


def activity_runs(spans: list[Span], *, pause: timedelta) -> Iterator[Span]:
    """Merge activity spans (sorted by start) into runs: a gap shorter than `pause` joins
    two spans, a longer one (a pause) separates them."""
    if not spans:
        return
    start, end = spans[0]
    for span_start, span_end in spans[1:]:
        if span_start - end >= pause:
            yield start, end
            start = span_start
        end = max(end, span_end)
    yield start, end


def continuous_since(spans: list[Span], *, now: datetime, pause: timedelta) -> datetime | None:
    """Start of the run of activity that reaches now without a pause of `pause` or longer;
    None when the last activity ended that long ago (or there is none)."""
    runs = list(activity_runs(spans, pause=pause))
    if not runs or now - runs[-1][1] >= pause:
        return None
    return runs[-1][0]


def _break_state(*, spans: list[Span], rules: ExposureRules, now: datetime):
    """(reviewing since, break due at, break ends at) from activity that covers at least
    break_after + break_minutes back from now."""
    if not rules.breaks_enforced:
        return None, None, None
    pause = timedelta(minutes=rules.break_minutes)
    since = continuous_since(spans, now=now, pause=pause)
    if since is None:
        return None, None, None
    due_at = since + timedelta(minutes=rules.break_after_minutes)
    if due_at <= now:
        last = max(end for _, end in spans)
        return since, due_at, last + pause
    return since, due_at, None


def _today_reveals(*, reviewer: User, now: datetime) -> tuple[int, int, int]:
    """(reveals, different images, seconds revealed) of the reviewer today."""
    today = Reveal.objects.filter(
        reviewer=reviewer, revealed_at__gte=day_start(now), revealed_at__lte=now
    )
    totals = today.aggregate(
        reveals=Count("id"), images=Count("image_id", distinct=True), ms=Sum("duration_ms")
    )
    seconds = (totals["ms"] or 0) / 1000
    for revealed_at in today.filter(hidden_at__isnull=True).values_list("revealed_at", flat=True):
        seconds += (_reveal_end(revealed_at, None, now) - revealed_at).total_seconds()
    return totals["reveals"], totals["images"], int(seconds)


def exposure_status_get(
    *, reviewer: User, now: datetime | None = None, rules: ExposureRules | None = None
) -> ExposureStatus:
    """Today's reveals of the reviewer and whether a break is due (and until when)."""
    now = now or timezone.now()
    rules = rules or exposure_rules_get(reviewer=reviewer)
    reveals, images, seconds = _today_reveals(reviewer=reviewer, now=now)
    spans: list[Span] = []
    if rules.breaks_enforced:
        window = timedelta(minutes=rules.break_after_minutes + rules.break_minutes)
        spans = _activity(reviewer_ids=[reviewer.pk], since=now - window, now=now)[reviewer.pk]
    since, due_at, ends_at = _break_state(spans=spans, rules=rules, now=now)
    return ExposureStatus(
        rules=rules, now=now, reveals_today=reveals, images_today=images,
        revealed_seconds_today=seconds, reviewing_since=since, break_due_at=due_at,
        break_ends_at=ends_at,
    )  # fmt: skip


def break_ends_at(*, reviewer: User, now: datetime | None = None) -> datetime | None:
    """When the reviewer's due break ends; None when none is due (the queue's check: it reads
    nothing but the rules when breaks are off)."""
    now = now or timezone.now()
    rules = exposure_rules_get(reviewer=reviewer)
    if not rules.breaks_enforced:
        return None
    window = timedelta(minutes=rules.break_after_minutes + rules.break_minutes)
    spans = _activity(reviewer_ids=[reviewer.pk], since=now - window, now=now)[reviewer.pk]
    return _break_state(spans=spans, rules=rules, now=now)[2]


def image_revealed_today(*, reviewer: User, image_id: int, now: datetime) -> bool:
    return Reveal.objects.filter(
        reviewer=reviewer, image_id=image_id, revealed_at__gte=day_start(now)
    ).exists()


def exposure_daily_totals(
    *, days: int, now: datetime | None = None, reviewer_ids: Iterable[int] | None = None
) -> dict[tuple[int, date], DailyExposure]:
    """(reviewer id, day) -> totals for the last `days` days (today included) with activity.

    Reveals count on the day they started. A session counts on the day it started; its
    time reviewing is split over the days it spans.
    """
    now = now or timezone.now()
    zone = server_zone()
    first = day_start_after(now, 1 - days)
    ids = list(reviewer_ids) if reviewer_ids is not None else None
    rows: dict[tuple[int, date], DailyExposure] = {}

    def row(reviewer_id: int, day: date) -> DailyExposure:
        key = (reviewer_id, day)
        if key not in rows:
            rows[key] = DailyExposure(reviewer_id=reviewer_id, day=day)
        return rows[key]

    reveals = Reveal.objects.filter(revealed_at__gte=first, revealed_at__lte=now)
    if ids is not None:
        reveals = reveals.filter(reviewer_id__in=ids)
    per_day = (
        reveals.annotate(day=TruncDate("revealed_at", tzinfo=zone))
        .values("reviewer_id", "day")
        .annotate(
            reveals=Count("id"), images=Count("image_id", distinct=True), ms=Sum("duration_ms")
        )
    )
    for entry in per_day:
        day_row = row(entry["reviewer_id"], entry["day"])
        day_row.reveals = entry["reveals"]
        day_row.images = entry["images"]
        day_row.revealed_seconds = (entry["ms"] or 0) / 1000
    for reviewer_id, revealed_at in reveals.filter(hidden_at__isnull=True).values_list(
        "reviewer_id", "revealed_at"
    ):
        seconds = (_reveal_end(revealed_at, None, now) - revealed_at).total_seconds()
        row(reviewer_id, revealed_at.astimezone(zone).date()).revealed_seconds += seconds

    idle = timedelta(minutes=settings.Q16_EXPOSURE_IDLE_MINUTES)
    for reviewer_id, spans in _activity(reviewer_ids=ids, since=first, now=now).items():
        for start, end in activity_runs(spans, pause=idle):
            start_row = row(reviewer_id, start.astimezone(zone).date())
            start_row.sessions += 1
            length = (end - start).total_seconds()
            start_row.longest_session_seconds = max(start_row.longest_session_seconds, length)
            # Split the session's time over the days it spans (midnight in the server zone).
            cursor = start
            while cursor < end:
                boundary = min(end, next_day_start(cursor))
                row(reviewer_id, cursor.astimezone(zone).date()).reviewing_seconds += (
                    boundary - cursor
                ).total_seconds()
                cursor = boundary
    return rows


def exposure_reviewers(*, days: int, now: datetime | None = None) -> list[ReviewerExposure]:
    """The Exposure page: every active reviewer (and any admin with activity in the range),
    their rules and status now, and their days with activity, latest first."""
    now = now or timezone.now()
    totals = exposure_daily_totals(days=days, now=now)
    active_ids = {reviewer_id for reviewer_id, _ in totals}
    users = User.objects.filter(Q(is_staff=False, is_active=True) | Q(pk__in=active_ids)).order_by(
        "username"
    )
    own = {row.reviewer_id: row for row in ExposureSettings.objects.filter(reviewer__in=users)}
    result = []
    for user in users:
        rules = exposure_rules_of(own.get(user.pk))
        days_of_user = sorted(
            (entry for (reviewer_id, _), entry in totals.items() if reviewer_id == user.pk),
            key=lambda entry: entry.day,
            reverse=True,
        )
        result.append(
            ReviewerExposure(
                reviewer=user,
                settings=own.get(user.pk),
                rules=rules,
                status=exposure_status_get(reviewer=user, now=now, rules=rules),
                days=days_of_user,
            )  # fmt: skip
        )
    return result


def exposure_page(*, days: int, now: datetime | None = None) -> ExposurePage:
    now = now or timezone.now()
    reviewers = exposure_reviewers(days=days, now=now)
    rows = [(entry, day) for entry in reviewers for day in entry.days]
    rows.sort(key=lambda row: row[0].reviewer.get_username())
    rows.sort(key=lambda row: row[1].day, reverse=True)
    return ExposurePage(
        defaults=exposure_defaults(), days=days, time_zone=settings.TIME_ZONE,
        idle_minutes=settings.Q16_EXPOSURE_IDLE_MINUTES,
        first_day=day_start_after(now, 1 - days).date(), reviewers=reviewers,
        rows=rows,
    )  # fmt: skip
