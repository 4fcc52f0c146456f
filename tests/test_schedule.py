"""The daily digest's schedule, with the clock injected: DST changes, late starts, jumps."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from monitor.policy import MAX_BACKOFF, backoff_delay, next_poll_after_failure
from monitor.schedule import digest_time, due_digest_day, next_digest_check

LONDON = ZoneInfo("Europe/London")
AT = time(7, 0)
CREATED = datetime(2026, 1, 1, tzinfo=UTC)


def simulate(start: datetime, end: datetime, step: timedelta, at: time = AT) -> list[date]:
    """Run the decision every `step` like the daemon's digest job; return the days sent."""
    sent: list[date] = []
    now = start
    while now <= end:
        day = due_digest_day(now, at, LONDON, CREATED, set(sent))
        if day is not None:
            sent.append(day)
        now += step
    return sent


def test_digest_hour_is_local_across_both_changes() -> None:
    # 2026: clocks go forward on 29 March, back on 25 October
    assert digest_time(date(2026, 3, 28), AT, LONDON) == datetime(2026, 3, 28, 7, tzinfo=UTC)
    assert digest_time(date(2026, 3, 29), AT, LONDON) == datetime(2026, 3, 29, 6, tzinfo=UTC)
    assert digest_time(date(2026, 10, 25), AT, LONDON) == datetime(2026, 10, 25, 7, tzinfo=UTC)


def test_one_digest_per_day_across_spring_change() -> None:
    start = datetime(2026, 3, 27, 12, tzinfo=UTC)
    sent = simulate(start, datetime(2026, 3, 31, 12, tzinfo=UTC), timedelta(minutes=1))
    assert sent == [
        date(2026, 3, 27),
        date(2026, 3, 28),
        date(2026, 3, 29),
        date(2026, 3, 30),
        date(2026, 3, 31),
    ]


def test_one_digest_per_day_across_autumn_change_with_digest_in_repeated_hour() -> None:
    at = time(1, 30)  # 01:30 happens twice on 25 October
    start = datetime(2026, 10, 24, 12, tzinfo=UTC)
    sent = simulate(start, datetime(2026, 10, 27, 12, tzinfo=UTC), timedelta(minutes=1), at)
    assert sent == [date(2026, 10, 24), date(2026, 10, 25), date(2026, 10, 26), date(2026, 10, 27)]


def test_digest_time_in_missing_spring_hour_still_sends_once() -> None:
    at = time(1, 30)  # does not exist on 29 March
    start = datetime(2026, 3, 28, 12, tzinfo=UTC)
    sent = simulate(start, datetime(2026, 3, 30, 12, tzinfo=UTC), timedelta(minutes=1), at)
    assert sent == [date(2026, 3, 28), date(2026, 3, 29), date(2026, 3, 30)]


def test_started_late_sends_todays_digest_at_start() -> None:
    now = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)
    assert due_digest_day(now, AT, LONDON, CREATED, set()) == date(2026, 11, 22)
    assert due_digest_day(now, AT, LONDON, CREATED, {date(2026, 11, 22)}) is None


def test_started_before_the_hour_owes_yesterday_only_if_it_existed_then() -> None:
    now = datetime(2026, 11, 22, 5, 0, tzinfo=UTC)
    assert due_digest_day(now, AT, LONDON, CREATED, set()) == date(2026, 11, 21)
    fresh = datetime(2026, 11, 22, 4, 0, tzinfo=UTC)
    assert due_digest_day(now, AT, LONDON, fresh, set()) is None


def test_a_database_made_today_after_the_hour_is_owed_todays_digest_at_start() -> None:
    """`monitor poll` at 12:53, then the daemon at 12:54: started after the digest hour, it
    sends today's digest at start, as it would on any other day."""
    made = datetime(2026, 11, 22, 12, 53, tzinfo=UTC)
    now = made + timedelta(minutes=1)
    assert due_digest_day(now, AT, LONDON, made, set()) == date(2026, 11, 22)
    assert due_digest_day(now, AT, LONDON, made, {date(2026, 11, 22)}) is None
    # the next morning, before the hour, nothing is owed for the day it was made: it had one
    assert (
        due_digest_day(made + timedelta(hours=17), AT, LONDON, made, {date(2026, 11, 22)}) is None
    )
    # a clock stepped back before the day it was made owes nothing either
    back = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    assert due_digest_day(back, AT, LONDON, made, set()) is None


def test_clock_stepped_back_a_day_sends_nothing_twice() -> None:
    sent = {date(2026, 11, 21), date(2026, 11, 22)}
    back = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    assert due_digest_day(back, AT, LONDON, CREATED, sent) is None


def test_laptop_asleep_across_the_hour_sends_on_wake_then_next_day() -> None:
    # asleep from 06:00 on the 21st to 06:00 on the 22nd, then awake
    before = simulate(
        datetime(2026, 11, 20, 12, tzinfo=UTC),
        datetime(2026, 11, 21, 6, tzinfo=UTC),
        timedelta(minutes=1),
    )
    after = simulate(
        datetime(2026, 11, 22, 6, tzinfo=UTC),
        datetime(2026, 11, 22, 12, tzinfo=UTC),
        timedelta(minutes=1),
    )
    assert before == [date(2026, 11, 20)]
    assert after == [date(2026, 11, 21), date(2026, 11, 22)]


def test_clock_stepped_forward_an_hour_across_the_digest_hour_sends_once() -> None:
    sent: set[date] = set()
    for now in (
        datetime(2026, 11, 22, 6, 30, tzinfo=UTC),
        datetime(2026, 11, 22, 7, 30, tzinfo=UTC),
        datetime(2026, 11, 22, 7, 31, tzinfo=UTC),
    ):
        day = due_digest_day(now, AT, LONDON, CREATED, sent)
        if day is not None:
            sent.add(day)
    assert sent == {date(2026, 11, 21), date(2026, 11, 22)}


def test_next_digest_check() -> None:
    now = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
    assert next_digest_check(now, AT, LONDON) == datetime(2026, 11, 23, 7, tzinfo=UTC)


def test_backoff_doubles_to_a_day_and_honours_retry_after() -> None:
    assert [backoff_delay(900, n) for n in (1, 2, 3)] == [900, 1800, 3600]
    assert backoff_delay(900, 40) == MAX_BACKOFF
    now = datetime(2026, 11, 22, tzinfo=UTC)
    assert next_poll_after_failure(now, 60, 1, retry_after=600) == now + timedelta(seconds=600)
    capped = next_poll_after_failure(now, 60, 1, retry_after=10**9)
    assert capped == now + timedelta(hours=6)
    assert next_poll_after_failure(now, 60, 1, gone=True) == now + timedelta(days=1)
