"""Reviewer protection (issue 11), services and selectors: reveal records (start, end, bounds,
ownership), the daily cap, the enforced break, per-reviewer settings and the daily totals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from curation.errors import StateConflict, ValidationFailed
from curation.models import DatasetAssignment, Image
from reviewer.models import Decision, ExposureSettings, Reveal, ReviewItem
from reviewer.selectors.exposure import (
    continuous_since,
    exposure_daily_totals,
    exposure_page,
    exposure_rules_get,
    exposure_status_get,
)
from reviewer.services.exposure import (
    BreakDue,
    DailyCapReached,
    exposure_break_check,
    exposure_settings_update,
    reveal_end,
    reveal_start,
)
from reviewer.services.queue import review_item_batch, review_item_next
from tests.reviewer.factories import item_of, make_dataset

pytestmark = pytest.mark.django_db

NOON = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def flagged(reviewer_user):
    dataset, _, images = make_dataset([0.9, 0.8, 0.7, 0.6])
    return dataset, images, [item_of(image) for image in images]


def verdict_at(reviewer, item, moment, verdict="appropriate"):
    decision = Decision.objects.create(
        item=item, image_id=item.image_id, reviewer=reviewer, verdict=verdict
    )
    Decision.objects.filter(pk=decision.pk).update(created_at=moment)
    return decision


# --- reveal_start / reveal_end -----------------------------------------------------------


def test_a_reveal_is_recorded_with_its_item_image_and_view(reviewer_user, flagged):
    _, images, items = flagged
    reveal = reveal_start(reviewer=reviewer_user, item_id=items[0].pk, view="grid", now=NOON)
    assert (reveal.reviewer, reveal.item, reveal.image_id) == (
        reviewer_user,
        items[0],
        images[0].pk,
    )
    assert reveal.view == "grid" and reveal.revealed_at == NOON
    assert reveal.hidden_at is None and reveal.duration_ms is None


def test_a_duplicates_image_is_revealed_by_image_id(reviewer_user, flagged):
    _, images, _ = flagged
    reveal = reveal_start(reviewer=reviewer_user, image_id=images[2].pk, now=NOON)
    assert reveal.item is None and reveal.image_id == images[2].pk and reveal.view == "single"


def test_a_reveal_names_something(reviewer_user, flagged):
    with pytest.raises(ValidationFailed):
        reveal_start(reviewer=reviewer_user, now=NOON)
    _, images, items = flagged
    with pytest.raises(ValidationFailed):
        reveal_start(reviewer=reviewer_user, item_id=items[0].pk, image_id=images[1].pk)
    with pytest.raises(ValidationFailed):
        reveal_start(reviewer=reviewer_user, item_id=items[0].pk, view="sideways")
    assert not Reveal.objects.exists()


def test_outside_the_reviewers_datasets_nothing_is_revealed(reviewer_user, flagged):
    dataset, images, items = flagged
    DatasetAssignment.objects.filter(user=reviewer_user, dataset=dataset).delete()
    with pytest.raises(ReviewItem.DoesNotExist):
        reveal_start(reviewer=reviewer_user, item_id=items[0].pk)
    with pytest.raises(Image.DoesNotExist):
        reveal_start(reviewer=reviewer_user, image_id=images[0].pk)
    with pytest.raises(ReviewItem.DoesNotExist):
        reveal_start(reviewer=reviewer_user, item_id=10**12)
    assert not Reveal.objects.exists()


def test_an_item_another_reviewer_holds_is_not_revealed(reviewer_user, flagged, django_user_model):
    _, _, items = flagged
    other = django_user_model.objects.create_user(username="otto", password="x")
    ReviewItem.objects.filter(pk=items[0].pk).update(
        leased_by=other, lease_expires_at=timezone.now() + timedelta(minutes=2)
    )
    with pytest.raises(StateConflict):
        reveal_start(reviewer=reviewer_user, item_id=items[0].pk)
    # Once that lease ran out, or on the reviewer's own lease, it is.
    ReviewItem.objects.filter(pk=items[0].pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert reveal_start(reviewer=reviewer_user, item_id=items[0].pk).pk
    ReviewItem.objects.filter(pk=items[1].pk).update(
        leased_by=reviewer_user, lease_expires_at=timezone.now() + timedelta(minutes=2)
    )
    assert reveal_start(reviewer=reviewer_user, item_id=items[1].pk).pk


def test_the_end_sets_the_duration_once(reviewer_user, flagged):
    _, _, items = flagged
    reveal = reveal_start(reviewer=reviewer_user, item_id=items[0].pk, now=NOON)
    ended = reveal_end(reviewer=reviewer_user, reveal_id=reveal.pk, now=NOON + timedelta(seconds=7))
    assert ended.duration_ms == 7000 and ended.hidden_at == NOON + timedelta(seconds=7)
    # Idempotent: a second end (a beacon after a fetch) changes nothing.
    again = reveal_end(reviewer=reviewer_user, reveal_id=reveal.pk, now=NOON + timedelta(minutes=3))
    assert again.duration_ms == 7000
    reveal.refresh_from_db()
    assert reveal.duration_ms == 7000


def test_the_pages_shorter_measure_wins_and_durations_stay_in_bounds(
    reviewer_user, flagged, settings
):
    _, _, items = flagged
    settings.Q16_EXPOSURE_MAX_REVEAL_SECONDS = 600
    starts = [reveal_start(reviewer=reviewer_user, item_id=items[0].pk, now=NOON) for _ in range(4)]
    later = NOON + timedelta(seconds=10)
    assert (
        reveal_end(
            reviewer=reviewer_user, reveal_id=starts[0].pk, duration_ms=4200, now=later
        ).duration_ms
        == 4200
    )
    # A page's measure longer than the server's elapsed time is not believed.
    assert (
        reveal_end(
            reviewer=reviewer_user, reveal_id=starts[1].pk, duration_ms=99_000, now=later
        ).duration_ms
        == 10_000
    )
    # An end before the start (clock trouble) is 0, never negative.
    assert (
        reveal_end(
            reviewer=reviewer_user, reveal_id=starts[2].pk, now=NOON - timedelta(seconds=5)
        ).duration_ms
        == 0
    )
    # A reveal left open for hours counts the longest one reveal may last.
    long = reveal_end(reviewer=reviewer_user, reveal_id=starts[3].pk, now=NOON + timedelta(hours=3))
    assert long.duration_ms == 600_000 and long.hidden_at == NOON + timedelta(minutes=10)


def test_only_the_owner_ends_a_reveal(reviewer_user, flagged, admin_user):
    _, _, items = flagged
    reveal = reveal_start(reviewer=reviewer_user, item_id=items[0].pk, now=NOON)
    with pytest.raises(Reveal.DoesNotExist):
        reveal_end(reviewer=admin_user, reveal_id=reveal.pk)
    with pytest.raises(Reveal.DoesNotExist):
        reveal_end(reviewer=reviewer_user, reveal_id=reveal.pk + 1000)
    reveal.refresh_from_db()
    assert reveal.hidden_at is None


# --- the daily cap ------------------------------------------------------------------------


def test_the_daily_cap_counts_different_images(reviewer_user, flagged, settings):
    _, images, items = flagged
    settings.Q16_EXPOSURE_DAILY_CAP = 2
    reveal_start(reviewer=reviewer_user, item_id=items[0].pk, now=NOON)
    reveal_start(reviewer=reviewer_user, item_id=items[0].pk, now=NOON + timedelta(minutes=1))
    reveal_start(reviewer=reviewer_user, item_id=items[1].pk, now=NOON + timedelta(minutes=2))
    with pytest.raises(DailyCapReached) as refused:
        reveal_start(reviewer=reviewer_user, item_id=items[2].pk, now=NOON + timedelta(minutes=3))
    assert refused.value.status_code == 429 and refused.value.reason == "cap"
    assert "Daily limit reached" in refused.value.message
    assert refused.value.status.images_today == 2 and refused.value.status.images_left_today == 0
    # An image already revealed today may be looked at again; nothing else.
    assert reveal_start(
        reviewer=reviewer_user, image_id=images[1].pk, now=NOON + timedelta(minutes=4)
    )
    with pytest.raises(DailyCapReached):
        reveal_start(reviewer=reviewer_user, image_id=images[3].pk, now=NOON + timedelta(minutes=5))
    assert Reveal.objects.count() == 4
    # The next day (server time zone) starts again.
    tomorrow = NOON + timedelta(days=1)
    assert reveal_start(reviewer=reviewer_user, item_id=items[2].pk, now=tomorrow)


def test_the_day_is_the_servers_time_zone(reviewer_user, flagged, settings):
    _, _, items = flagged
    settings.Q16_EXPOSURE_DAILY_CAP = 1
    settings.TIME_ZONE = "Europe/Berlin"
    late = datetime(2026, 3, 10, 22, 30, tzinfo=UTC)  # 23:30 in Berlin
    reveal_start(reviewer=reviewer_user, item_id=items[0].pk, now=late)
    with pytest.raises(DailyCapReached):
        reveal_start(reviewer=reviewer_user, item_id=items[1].pk, now=late + timedelta(minutes=20))
    # 00:20 in Berlin is the next day, though still the 10th in UTC.
    assert reveal_start(
        reviewer=reviewer_user, item_id=items[1].pk, now=late + timedelta(minutes=50)
    )


def test_a_reviewers_own_cap_wins_over_the_default(reviewer_user, flagged, settings, admin_user):
    _, _, items = flagged
    settings.Q16_EXPOSURE_DAILY_CAP = 1
    exposure_settings_update(reviewer=reviewer_user, updated_by=admin_user, daily_reveal_cap=0)
    for index in range(3):
        reveal_start(reviewer=reviewer_user, item_id=items[index].pk, now=NOON)
    exposure_settings_update(reviewer=reviewer_user, updated_by=admin_user, daily_reveal_cap=None)
    with pytest.raises(DailyCapReached):
        reveal_start(reviewer=reviewer_user, item_id=items[3].pk, now=NOON)
    assert exposure_rules_get(reviewer=reviewer_user).daily_cap == 1


# --- the enforced break -------------------------------------------------------------------


@pytest.fixture
def breaks(settings):
    settings.Q16_EXPOSURE_BREAK_AFTER_MINUTES = 50
    settings.Q16_EXPOSURE_BREAK_MINUTES = 10
    return settings


def work(reviewer, items, *, start, minutes, every=4):
    """Verdicts every `every` minutes from `start` for `minutes`; returns the last time."""
    moment = start
    for step in range(0, minutes + 1, every):
        moment = start + timedelta(minutes=step)
        verdict_at(reviewer, items[step % len(items)], moment)
    return moment


def test_a_break_is_due_after_continuous_reviewing(reviewer_user, flagged, breaks):
    _, _, items = flagged
    last = work(reviewer_user, items, start=NOON, minutes=52)
    now = last + timedelta(minutes=1)
    status = exposure_status_get(reviewer=reviewer_user, now=now)
    assert status.state == "break" and status.reviewing_since == NOON
    assert status.break_ends_at == last + timedelta(minutes=10)
    assert status.break_seconds_left == 9 * 60
    with pytest.raises(BreakDue) as refused:
        reveal_start(reviewer=reviewer_user, item_id=items[0].pk, now=now)
    assert refused.value.status_code == 429 and "Time for a break" in refused.value.message
    with pytest.raises(BreakDue):
        exposure_break_check(reviewer=reviewer_user, now=now)
    assert not Reveal.objects.exists()
    # Waiting is the break: 10 minutes after the last activity, reviewing goes on.
    after = last + timedelta(minutes=10)
    assert exposure_status_get(reviewer=reviewer_user, now=after).state == "ok"
    assert reveal_start(reviewer=reviewer_user, item_id=items[0].pk, now=after)


def test_the_queue_leases_nothing_during_a_break(reviewer_user, flagged, breaks):
    dataset, _, items = flagged
    last = timezone.now() - timedelta(minutes=1)
    work(reviewer_user, items[3:], start=last - timedelta(minutes=52), minutes=52)
    with pytest.raises(BreakDue) as refused:
        review_item_next(reviewer=reviewer_user, dataset=dataset)
    assert refused.value.status_code == 429
    with pytest.raises(BreakDue):
        review_item_batch(reviewer=reviewer_user, limit=3)
    assert not ReviewItem.objects.filter(leased_by=reviewer_user).exists()


def test_a_pause_as_long_as_the_break_counts_as_one(reviewer_user, flagged, breaks):
    _, _, items = flagged
    first = work(reviewer_user, items, start=NOON, minutes=28)
    # An 11-minute pause, then 28 more minutes: never 50 minutes without a break.
    second = work(reviewer_user, items, start=first + timedelta(minutes=11), minutes=28)
    status = exposure_status_get(reviewer=reviewer_user, now=second + timedelta(seconds=30))
    assert status.state == "ok" and status.reviewing_since == first + timedelta(minutes=11)
    assert status.break_due_at == status.reviewing_since + timedelta(minutes=50)


def test_an_image_left_revealed_is_reviewing_too(reviewer_user, flagged, breaks):
    _, _, items = flagged
    breaks.Q16_EXPOSURE_MAX_REVEAL_SECONDS = 600
    reveal_start(reviewer=reviewer_user, item_id=items[0].pk, now=NOON)
    # Open since noon (its end never arrived): activity until now, at most 10 minutes; so
    # 15 minutes after noon the reviewer paused for only 5.
    status = exposure_status_get(reviewer=reviewer_user, now=NOON + timedelta(minutes=15))
    assert status.reviewing_since == NOON
    assert (
        exposure_status_get(
            reviewer=reviewer_user, now=NOON + timedelta(minutes=21)
        ).reviewing_since
        is None
    )


def test_breaks_off_for_one_reviewer(reviewer_user, flagged, breaks, admin_user):
    _, _, items = flagged
    exposure_settings_update(reviewer=reviewer_user, updated_by=admin_user, break_after_minutes=0)
    last = work(reviewer_user, items, start=NOON, minutes=80)
    assert exposure_status_get(reviewer=reviewer_user, now=last).state == "ok"
    exposure_break_check(reviewer=reviewer_user, now=last)


def test_continuous_since_walks_back_to_the_last_pause():
    t = [NOON + timedelta(minutes=m) for m in (0, 5, 30, 35, 39)]
    spans = [(moment, moment) for moment in t]
    pause = timedelta(minutes=10)
    assert continuous_since(spans, now=NOON + timedelta(minutes=40), pause=pause) == t[2]
    assert continuous_since(spans, now=NOON + timedelta(minutes=49), pause=pause) is None
    assert continuous_since([], now=NOON, pause=pause) is None
    # A long reveal bridges what would otherwise be a pause.
    bridged = [*spans[:2], (t[1], t[2]), *spans[2:]]
    assert continuous_since(bridged, now=NOON + timedelta(minutes=40), pause=pause) == NOON


# --- per-reviewer settings ----------------------------------------------------------------


def test_admin_changes_are_audited(reviewer_user, admin_user):
    own = exposure_settings_update(
        reviewer=reviewer_user, updated_by=admin_user, daily_reveal_cap=300, break_after_minutes=45
    )
    assert (own.daily_reveal_cap, own.break_after_minutes, own.break_minutes) == (300, 45, None)
    event = AuditEvent.objects.get(action="exposure_settings.update")
    assert event.actor == admin_user and event.target_id == own.pk
    assert event.before == {
        "daily_reveal_cap": None,
        "break_after_minutes": None,
        "break_minutes": None,
    }
    assert event.after == {
        "daily_reveal_cap": 300,
        "break_after_minutes": 45,
        "break_minutes": None,
    }
    assert event.details == {"reviewer": "reviewer"}
    # Saving the same values again records nothing.
    exposure_settings_update(reviewer=reviewer_user, updated_by=admin_user, daily_reveal_cap=300)
    assert AuditEvent.objects.filter(action="exposure_settings.update").count() == 1


def test_bad_settings_are_refused_and_change_nothing(reviewer_user, admin_user):
    with pytest.raises(ValidationFailed):
        exposure_settings_update(reviewer=reviewer_user, updated_by=admin_user, break_minutes=0)
    with pytest.raises(ValidationFailed):
        exposure_settings_update(
            reviewer=reviewer_user, updated_by=admin_user, daily_reveal_cap=10**6
        )
    with pytest.raises(ValidationFailed):
        exposure_settings_update(reviewer=reviewer_user, updated_by=admin_user, colour="red")
    assert not ExposureSettings.objects.exclude(daily_reveal_cap=None).exists()
    assert not AuditEvent.objects.filter(action="exposure_settings.update").exists()


# --- daily totals ---------------------------------------------------------------------------


def test_daily_totals_per_reviewer_per_day(reviewer_user, flagged, admin_user):
    _, _, items = flagged
    yesterday = NOON - timedelta(days=1)
    for start, seconds, item in (
        (yesterday, 30, items[0]),
        (NOON, 20, items[0]),
        (NOON, 40, items[1]),
    ):
        reveal = reveal_start(reviewer=reviewer_user, item_id=item.pk, now=start)
        reveal_end(
            reviewer=reviewer_user, reveal_id=reveal.pk, now=start + timedelta(seconds=seconds)
        )
    # Today: verdicts at +2 and +4 minutes, then a 30-minute pause, then two a minute apart.
    for minutes in (2, 4, 34, 35):
        verdict_at(reviewer_user, items[2], NOON + timedelta(minutes=minutes))
    totals = exposure_daily_totals(days=14, now=NOON + timedelta(hours=1))
    today = totals[(reviewer_user.pk, NOON.date())]
    assert (today.reveals, today.images, today.revealed_seconds) == (2, 2, 60)
    # Sessions: noon to +4 min (the reveals and two verdicts), and +34 to +35 min.
    assert today.sessions == 2
    assert today.reviewing_seconds == 5 * 60
    assert today.longest_session_seconds == 4 * 60
    before = totals[(reviewer_user.pk, yesterday.date())]
    assert (before.reveals, before.images, before.revealed_seconds) == (1, 1, 30)
    assert before.reviewing_seconds == 30 and before.sessions == 1
    # Beyond the range: nothing.
    assert (reviewer_user.pk, yesterday.date()) not in exposure_daily_totals(days=1, now=NOON)


def test_an_open_reveal_counts_until_now_at_most_the_longest(reviewer_user, flagged, settings):
    _, _, items = flagged
    settings.Q16_EXPOSURE_MAX_REVEAL_SECONDS = 120
    reveal_start(reviewer=reviewer_user, item_id=items[0].pk, now=NOON)
    assert (
        exposure_status_get(
            reviewer=reviewer_user, now=NOON + timedelta(seconds=50)
        ).revealed_seconds_today
        == 50
    )
    totals = exposure_daily_totals(days=1, now=NOON + timedelta(hours=1))
    assert totals[(reviewer_user.pk, NOON.date())].revealed_seconds == 120


def test_a_session_over_midnight_is_split_between_the_days(reviewer_user, flagged):
    _, _, items = flagged
    midnight = datetime(2026, 3, 11, 0, 0, tzinfo=UTC)
    for minutes in (-3, -1, 1, 2):
        verdict_at(reviewer_user, items[0], midnight + timedelta(minutes=minutes))
    totals = exposure_daily_totals(days=2, now=midnight + timedelta(hours=1))
    before, after = (
        totals[(reviewer_user.pk, (midnight - timedelta(days=1)).date())],
        totals[(reviewer_user.pk, midnight.date())],
    )
    assert before.reviewing_seconds == 3 * 60 and after.reviewing_seconds == 2 * 60
    assert before.sessions == 1 and before.longest_session_seconds == 5 * 60 and after.sessions == 0


def test_the_page_lists_reviewers_with_and_without_activity(
    reviewer_user, flagged, admin_user, django_user_model
):
    _, _, items = flagged
    idle = django_user_model.objects.create_user(username="ida", password="x")
    reveal_start(reviewer=admin_user, item_id=items[0].pk, now=NOON)
    page = exposure_page(days=14, now=NOON + timedelta(minutes=1))
    names = [entry.reviewer.username for entry in page.reviewers]
    assert names == ["admin", "ida", "reviewer"]  # admins only with activity
    assert [(entry.reviewer.username, day.images) for entry, day in page.rows] == [("admin", 1)]
    assert idle.pk in {entry.reviewer.pk for entry in page.reviewers}
