"""Pure decisions about when to poll a feed again.

A failing feed backs off exponentially from its interval up to a day, honours Retry-After
(capped), and is never silently disabled: a feed that answered 410 is still tried once a day
and shown in feed health.
"""

from __future__ import annotations

from datetime import datetime, timedelta

MAX_BACKOFF = 86_400.0  # a day
MAX_RETRY_AFTER = 6 * 3600.0  # a server may ask for a pause, but not for longer than this
GONE_RETRY = 86_400.0


def next_poll_after_success(now: datetime, interval: float) -> datetime:
    """A feed that answered is polled again after its interval."""
    return now + timedelta(seconds=interval)


def backoff_delay(interval: float, failures: int) -> float:
    """Seconds to wait after the n-th consecutive failure: interval, 2x, 4x ... up to a day."""
    exponent = min(max(failures - 1, 0), 32)
    return float(min(interval * (2**exponent), MAX_BACKOFF))


def next_poll_after_failure(
    now: datetime,
    interval: float,
    failures: int,
    retry_after: float | None = None,
    gone: bool = False,
) -> datetime:
    """When a feed that just failed for the n-th time in a row is due again."""
    delay = GONE_RETRY if gone else backoff_delay(interval, failures)
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
    return now + timedelta(seconds=delay)
