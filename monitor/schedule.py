"""Pure decisions about when the daily digest is due.

The decision comes from the outbox (which local days already have a daily digest), never from
the scheduler's memory, so restarts, sleeps, clock jumps and daylight-saving changes all give
one digest per local day.
"""

from __future__ import annotations

from collections.abc import Container
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def digest_time(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The moment the digest for a local day is due.

    A time skipped by a spring change (01:30 in a missing hour) maps forward by the gap; a
    time that occurs twice in autumn means the first occurrence.
    """
    return datetime.combine(day, at, tzinfo=tz)


def due_digest_day(
    now: datetime, at: time, tz: ZoneInfo, created: datetime, sent_days: Container[date]
) -> date | None:
    """The local day whose daily digest should be made now, or None.

    That is the latest day whose digest time has passed, if no daily digest exists for it and
    the database already existed at that time (a fresh install does not owe yesterday's), or
    it is today and the database was made today: a daemon started after the digest hour
    sends today's digest at start, on its first day as on any other. A daemon asleep across
    the digest hour sends that day's digest when it wakes, once.
    """
    local_now = now.astimezone(tz)
    day = local_now.date()
    if digest_time(day, at, tz) > now:
        day -= timedelta(days=1)
    if day in sent_days:
        return None
    made_today = created.astimezone(tz).date() == day == local_now.date()
    if digest_time(day, at, tz) < created and not made_today:
        return None
    return day


def next_digest_check(now: datetime, at: time, tz: ZoneInfo) -> datetime:
    """The next digest time after now (for telling the user when the digest goes out)."""
    day = now.astimezone(tz).date()
    due = digest_time(day, at, tz)
    while due <= now:
        day += timedelta(days=1)
        due = digest_time(day, at, tz)
    return due
