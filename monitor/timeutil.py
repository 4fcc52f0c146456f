"""Pure helpers for times users type and read: --since values and local display."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from monitor.units import is_date, parse_duration

EVER = datetime(1, 1, 2, tzinfo=UTC)  # before anything; a day in, so every zone can hold it


def parse_since(text: str, now: datetime, tz: ZoneInfo) -> datetime:
    """'2d', '12h' (that long before now) or '2026-11-01' (local midnight) -> an aware time."""
    if is_date(text):
        try:
            day = datetime.strptime(text, "%Y-%m-%d").date()
        except ValueError as exc:
            raise ValueError(f"{text!r} is not a real date") from exc
        return datetime.combine(day, time(0), tzinfo=tz)
    try:
        return now - timedelta(seconds=parse_duration(text))
    except ValueError:
        msg = f"{text!r} is neither a duration (2d, 12h) nor a date (2026-11-01)"
        raise ValueError(msg) from None
    except OverflowError:  # longer ago than the calendar goes (3000000d): since ever
        return EVER


def local(when: datetime | None, tz: ZoneInfo, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A time as the user's local wall clock ('' for None)."""
    return "" if when is None else in_zone(when, tz).strftime(fmt)


def in_zone(moment: datetime, tz: ZoneInfo) -> datetime:
    """moment in tz (a naive moment is taken as UTC). A moment so near the ends of time that
    tz cannot hold it (year 1, stored by an older version from a feed's default date) stays
    in UTC rather than stop a listing or a digest."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    try:
        return aware.astimezone(tz)
    except OverflowError:
        return aware


def ago(when: datetime | None, now: datetime) -> str:
    """'5m ago', '3h ago', '2d ago', 'in 4m' ('never' for None)."""
    if when is None:
        return "never"
    seconds = (now - when).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            amount = f"{int(seconds // size)}{unit}"
            break
    else:
        amount = f"{int(seconds)}s"
    return f"in {amount}" if future else f"{amount} ago"
