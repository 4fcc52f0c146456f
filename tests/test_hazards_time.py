"""Time: the daemon's digest job under a clock that jumps, sleeps and changes with the seasons.

The jobs are driven directly under an injected clock (as in test_daemon.py), with a real
SQLite file and aiosmtpd on 127.0.0.1. Beside the fixed cases of test_daemon.py (both
daylight-saving changes, a late start, a clock set back a day), a laptop asleep across the
digest hour and a clock stepped forward an hour across it; then seeded random walks of the
clock through each daylight-saving change: ticks, steps of an hour either way, a day back,
sleeps of up to two days, hits arriving on the way.

The rule checked on every walk: the daemon sends one daily digest for each local day whose
digest hour it saw pass while awake (the latest such day at each tick, as `due_digest_day`
promises), never one for any other day, never two for one day, never before the hour; every
hit goes out in exactly one digest.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from monitor.config import Settings, load_settings
from monitor.daemon import Daemon
from monitor.store import from_db
from tests.smtpservers import Recorder
from tests.test_outbox import (
    Clock,
    Serve,
    add_watchlist,
    backdate,
    default_logging,
    messages,
    parts,
    rows,
    store_hits,
    write_config,
)

__all__ = ["default_logging"]

LONDON = ZoneInfo("Europe/London")
AT = clock_time(7, 0)
SEASONS = {"spring": date(2026, 3, 25), "autumn": date(2026, 10, 21)}  # changes: 29 Mar, 25 Oct
WALK_DAYS = 8


def london(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, clock_time(hour, minute), tzinfo=LONDON).astimezone(UTC)


def latest_due_day(now: datetime) -> date:
    """The local day whose digest hour passed last, as of now (the oracle of the walks)."""
    local = now.astimezone(LONDON)
    return local.date() if local.time() >= AT else local.date() - timedelta(days=1)


@dataclass
class Desk:
    """A config sending every day's digest (send_empty) to aiosmtpd, a daemon on a clock."""

    settings: Settings
    daemon: Daemon
    clock: Clock
    mail: Recorder

    def at(self, when: datetime) -> None:
        """The clock reads `when` and the digest job runs, as at each of its ticks."""
        self.clock.set(when)
        self.daemon.digest_job()


@pytest.fixture
def desk(tmp_path: Path, serve: Serve) -> Iterator[Callable[[datetime], Desk]]:
    made: list[Daemon] = []

    def make(created: datetime) -> Desk:
        mail = Recorder()
        config = write_config(tmp_path, mail=serve(mail), at="07:00", send_empty=True)
        add_watchlist(config, "Met Police")
        settings = load_settings(config)
        backdate(settings, created)
        clock = Clock(created)
        daemon = Daemon(settings, clock=clock)
        made.append(daemon)
        daemon.poll_job()  # as at start: loads the watchlists (no feed to poll)
        return Desk(settings, daemon, clock, mail)

    yield make
    for daemon in made:
        daemon.stop()


def daily(settings: Settings) -> list[tuple[str, datetime]]:
    """(day, created) of each daily digest, in the order made."""
    found = rows(settings, "SELECT day, created FROM digests WHERE kind = 'daily' ORDER BY id")
    return [(str(day), from_db(str(created))) for day, created in found]  # type: ignore[misc]


def test_a_laptop_asleep_across_the_digest_hour_sends_that_days_digest_on_waking_once(
    desk: Callable[[datetime], Desk],
) -> None:
    day, next_day = date(2026, 11, 23), date(2026, 11, 24)
    d = desk(london(day - timedelta(days=1), 8))  # made after the previous day's digest
    store_hits(d.settings, london(day, 6, 30), ["Met officer suspended"])
    d.at(london(day, 6, 30))
    assert daily(d.settings) == []
    woke = london(next_day, 10, 15)  # the lid closed at 06:30, opened the next morning
    store_hits(d.settings, woke, ["IOPC criticises Met custody checks"])
    for minutes in range(0, 600, 30):  # awake for the rest of the day
        d.at(woke + timedelta(minutes=minutes))
    assert [day for day, _ in daily(d.settings)] == [next_day.isoformat()]
    [(_, message)] = messages(d.mail)
    text = parts(message)[0]
    assert "Met officer suspended" in text and "IOPC criticises" in text  # both, once
    d.at(london(next_day + timedelta(days=1), 7))
    assert len(daily(d.settings)) == 2


def test_a_clock_stepped_forward_an_hour_across_the_digest_hour_sends_once(
    desk: Callable[[datetime], Desk],
) -> None:
    day = date(2026, 11, 23)
    d = desk(london(day - timedelta(days=1), 8))  # made after the previous day's digest
    d.at(london(day, 6, 40))
    assert daily(d.settings) == []
    d.at(london(day, 7, 40))  # 06:40 -> 07:40 in one step: 07:00 itself never seen
    d.at(london(day, 6, 50))  # and back again: the day is done
    d.at(london(day, 7, 50))
    assert [day for day, _ in daily(d.settings)] == [day.isoformat()]
    assert len(d.mail.received) == 1


def walk(rng: random.Random, start: datetime) -> Iterator[tuple[str, datetime]]:
    """(event, clock) steps of a seeded random walk over WALK_DAYS days from start."""
    now = start
    end = start + timedelta(days=WALK_DAYS)
    while now < end:
        roll = rng.random()
        if roll < 0.70:
            event, now = "tick", now + timedelta(minutes=rng.randint(5, 59))
        elif roll < 0.76:
            event, now = "forward an hour", now + timedelta(hours=1)
        elif roll < 0.82:
            event, now = "back an hour", now - timedelta(hours=1)
        elif roll < 0.86:
            event, now = "back a day", now - timedelta(days=1)
        else:
            event, now = "asleep", now + timedelta(hours=rng.randint(3, 48))
        yield event, now


@pytest.mark.parametrize("season", sorted(SEASONS))
@pytest.mark.parametrize("seed", [1, 2])
def test_random_clock_walks_give_one_digest_for_each_day_seen_past_its_hour(
    desk: Callable[[datetime], Desk], season: str, seed: int
) -> None:
    rng = random.Random(f"{season}/{seed}")
    created = london(SEASONS[season], 5)
    d = desk(created)
    settings = d.settings
    expected: set[date] = set()
    events: dict[str, int] = {}
    hits = owed_at_last_digest = 0
    for event, now in walk(rng, created):
        events[event] = events.get(event, 0) + 1
        if rng.random() < 0.15:
            hits += len(store_hits(settings, now, [f"IOPC item {hits} of walk {seed}"]))
        before = len(d.mail.received)
        d.at(now)
        if len(d.mail.received) > before:
            owed_at_last_digest = hits
        day = latest_due_day(now)
        if london(day, 7) >= created:
            expected.add(day)

    made = daily(settings)
    days = [d for d, _ in made]
    assert sorted(days) == sorted(d.isoformat() for d in expected), events
    assert len(days) == len(set(days))  # never two
    for day_text, when in made:  # never before the hour
        assert when >= london(date.fromisoformat(day_text), 7)
    received = messages(d.mail)
    assert len(received) == len(days)
    assert len({m["Message-ID"] for _, m in received}) == len(days)
    # every hit found before the last digest went out in exactly one digest
    carried = rows(settings, "SELECT hit_id FROM digest_hits")
    assert len(carried) == len(set(carried)) == owed_at_last_digest
    assert set(events) >= {"tick", "asleep", "back a day", "forward an hour"}, events
