"""Full disk: SQLite's max_page_count makes the database's writes fail with SQLITE_FULL.

Every connection the monitor opens (the daemon's poll job, its digest job) goes through
Store.open; the test wraps it so that each connection gets the `max_page_count` of a disk that
is full, or has a little room left, or has room again. The daemon's jobs are driven directly
under an injected clock against a LoopbackSite and an aiosmtpd server, as in test_daemon.py.

What must hold: a feed whose write fails is rolled back whole (no article, hit, GUID, poll
record or validator of it stored), the cycle goes on with the other feeds, the job logs and
the daemon keeps running, and once there is room again the next cycle stores everything; a
digest that cannot be written loses no hit and goes out once when there is room.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from monitor.config import Settings, load_settings
from monitor.daemon import Daemon
from monitor.loopback import LoopbackSite
from monitor.sitegen import SiteArticle, add_outlet
from monitor.store import Store
from tests.sites import fixture_articles, folder_articles
from tests.smtpservers import Recorder
from tests.test_outbox import (
    MET_WATCHLIST,
    NOW,
    Clock,
    Serve,
    backdate,
    default_logging,
    messages,
    parts,
    rows,
    write_config,
)

__all__ = ["default_logging"]

SQLITE_MAX_PAGES = 1_073_741_823  # SQLite's default max_page_count: room again
OUTLETS = (("Ledger", "rss", 0), ("Courier", "atom", 1), ("Gazette", "rdf", 2))


@dataclass
class Disk:
    """The room SQLite has, applied to every connection Store.open gives out."""

    room: int | None = None  # pages a connection may add to the file; None: no limit
    stores: list[Store] = field(default_factory=list)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        original = Store.open.__func__  # type: ignore[attr-defined]

        def open_on_this_disk(cls: type[Store], path: Path) -> Store:
            store: Store = original(cls, path)
            self.stores.append(store)
            self._limit(store)
            return store

        monkeypatch.setattr(Store, "open", classmethod(open_on_this_disk))

    def fill(self, room: int = 0) -> None:
        """From now on each connection may add only `room` pages to the file."""
        self.room = room
        for store in self.stores:
            self._limit(store)

    def free(self) -> None:
        self.room = None
        for store in self.stores:
            self._limit(store)

    def _limit(self, store: Store) -> None:
        try:
            pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
            limit = SQLITE_MAX_PAGES if self.room is None else pages + self.room
            store.conn.execute(f"PRAGMA max_page_count = {limit}")
        except sqlite3.ProgrammingError:  # a connection closed since
            pass


@dataclass
class Log(logging.Handler):
    """Keeps the monitor's log records."""

    records: list[logging.LogRecord] = field(default_factory=list)

    def __post_init__(self) -> None:
        logging.Handler.__init__(self, logging.DEBUG)

    def __hash__(self) -> int:
        return id(self)

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self, level: int = logging.WARNING) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno >= level]

    def fields(self, message: str) -> list[dict[str, object]]:
        return [getattr(r, "fields", {}) for r in self.records if r.getMessage() == message]


@pytest.fixture
def log() -> Iterator[Log]:
    handler = Log()
    logger = logging.getLogger("monitor")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)


@pytest.fixture
def disk(monkeypatch: pytest.MonkeyPatch) -> Disk:
    disk = Disk()
    disk.install(monkeypatch)
    return disk


@dataclass
class World:
    site: LoopbackSite
    settings: Settings
    mail: Recorder
    pages: dict[str, str]  # page URL -> feed name
    relevant: set[str]
    clock: Clock


@pytest.fixture
def world(tmp_path: Path, serve: Serve) -> Iterator[World]:
    """Three outlets on a LoopbackSite, a config with [email], the database made."""
    relevant = fixture_articles(NOW) + folder_articles("relevant", NOW)
    articles: list[SiteArticle] = relevant + folder_articles("distractors", NOW)
    with LoopbackSite() as site:
        feeds, pages = {}, {}
        for index, (name, fmt, layout) in enumerate(OUTLETS):
            share = articles[index::3]
            prefix = f"/{name.lower()}"
            feeds[name] = add_outlet(
                site, name, share, prefix=prefix, feed_format=fmt, layout=layout
            )
            pages |= {site.url(f"{prefix}/{a.slug}"): name for a in share}
        wanted = {u for u in pages if u.rsplit("/", 1)[1] in {a.slug for a in relevant}}
        mail = Recorder()
        config = write_config(tmp_path, mail=serve(mail), feeds=feeds)
        (tmp_path / "watchlists" / MET_WATCHLIST.name).write_bytes(MET_WATCHLIST.read_bytes())
        settings = load_settings(config)
        backdate(settings, NOW - timedelta(days=2))
        with Store.open(settings.monitor.database) as store:
            store.sync_feeds(settings.feeds)
        yield World(site, settings, mail, pages, wanted, Clock(NOW))


def stored(settings: Settings) -> dict[str, int]:
    """Row counts of what a poll writes, from a connection of our own."""
    tables = ("articles", "hits", "article_guids", "polls", "story_article")
    return {t: int(rows(settings, f"SELECT COUNT(*) FROM {t}")[0][0]) for t in tables}  # type: ignore[call-overload]


def feed_rows(settings: Settings) -> dict[str, tuple[object, ...]]:
    """name -> (etag, last_success, next_poll, article count) of every configured feed."""
    found = rows(
        settings,
        "SELECT f.name, f.etag, f.last_success, f.next_poll,"
        " (SELECT COUNT(*) FROM articles a WHERE a.feed_id = f.id) FROM feeds f",
    )
    return {str(r[0]): tuple(r[1:]) for r in found}


def london_seven(day_offset: int) -> datetime:
    """07:00 in London (UTC in winter), day_offset days after NOW's day."""
    day = NOW.date() + timedelta(days=day_offset)
    return datetime(day.year, day.month, day.day, 7, 0, tzinfo=NOW.tzinfo)


def test_a_full_disk_rolls_each_feed_back_and_room_again_stores_everything(
    world: World, disk: Disk, log: Log
) -> None:
    settings, clock = world.settings, world.clock
    disk.fill()
    daemon = Daemon(settings, clock=clock)
    try:
        daemon.poll_job()
        assert stored(settings) == dict.fromkeys(stored(settings), 0)
        for etag, last_success, next_poll, articles in feed_rows(settings).values():
            assert (etag, last_success, next_poll, articles) == (None, None, None, 0)
        polled = {str(f["feed"]): f for f in log.fields("feed polled")}
        assert set(polled) == {name for name, _, _ in OUTLETS}  # every feed was tried
        for fields in polled.values():
            assert fields["status"] == "failed"
            assert "not stored" in str(fields["error"]) and "full" in str(fields["error"])
        [cycle] = log.fields("cycle done")
        assert cycle["failed"] == len(OUTLETS)
        assert not any("crashed" in m for m in log.messages())
        asked = len(world.site.requests)

        clock.advance(seconds=30)  # the next tick: every feed is due, but its write failed a
        daemon.poll_job()  # moment ago: not fetched again, pages and all, at every tick
        assert len(world.site.requests) == asked
        clock.advance(seconds=31)  # a minute on: tried again
        disk.free()
        daemon.poll_job()
        world.site.requests[:asked] = []
        # validators were never stored, so the feeds were asked for in full again
        again = [r for r in world.site.requests if r.path.endswith((".xml", ".rdf"))]
        assert len(again) == len(OUTLETS)
        assert not any("if-none-match" in r.headers for r in again)
    finally:
        daemon.stop()
    urls = {str(r[0]) for r in rows(settings, "SELECT url FROM articles")}
    assert urls == set(world.pages)
    hits = {
        str(r[0])
        for r in rows(settings, "SELECT a.url FROM hits h JOIN articles a ON a.id = h.article_id")
    }
    assert hits == world.relevant
    for name, (etag, last_success, _, articles) in feed_rows(settings).items():
        assert etag and last_success, name
        assert articles == sum(1 for feed in world.pages.values() if feed == name)


@pytest.mark.parametrize("room", [4, 8, 16])
def test_a_disk_that_fills_mid_cycle_stores_each_feed_whole_or_not_at_all(
    world: World, disk: Disk, log: Log, room: int
) -> None:
    settings, clock = world.settings, world.clock
    disk.fill(room)
    daemon = Daemon(settings, clock=clock)
    try:
        daemon.poll_job()
        first = feed_rows(settings)
        statuses = {str(f["feed"]): f["status"] for f in log.fields("feed polled")}
        for name, (etag, last_success, _, articles) in first.items():
            expected = sum(1 for feed in world.pages.values() if feed == name)
            if statuses[name] == "ok":
                assert etag and last_success and articles == expected, name
            else:
                assert (etag, last_success, articles) == (None, None, 0), name
        disk.free()
        clock.advance(seconds=61)  # a feed whose write failed is tried again a minute later
        daemon.poll_job()
    finally:
        daemon.stop()
    assert {str(r[0]) for r in rows(settings, "SELECT url FROM articles")} == set(world.pages)
    assert not any("crashed" in m for m in log.messages())


def test_a_digest_on_a_full_disk_loses_no_hit_and_goes_out_once_there_is_room(
    world: World, disk: Disk, log: Log
) -> None:
    settings, clock = world.settings, world.clock
    daemon = Daemon(settings, clock=clock)
    try:
        daemon.poll_job()
        hits = int(rows(settings, "SELECT COUNT(*) FROM hits")[0][0])  # type: ignore[call-overload]
        assert hits == len(world.relevant)

        disk.fill()
        clock.set(london_seven(1))
        daemon.digest_job()
        assert rows(settings, "SELECT * FROM digests") == []
        assert world.mail.received == []
        assert any("digest job failed" in m and "full" in m for m in log.messages())
        clock.advance(minutes=1)
        daemon.digest_job()  # still full: tried again, still nothing half-made
        assert rows(settings, "SELECT * FROM digests") == []

        disk.free()
        clock.advance(minutes=1)
        daemon.digest_job()
        clock.advance(minutes=1)
        daemon.digest_job()
    finally:
        daemon.stop()
    [(_, message)] = messages(world.mail)
    assert message["Subject"].endswith(f", {hits} new hits")
    carried = rows(
        settings,
        "SELECT COUNT(DISTINCT dh.hit_id) FROM digest_hits dh JOIN digests d"
        " ON d.id = dh.digest_id WHERE d.status = 'sent' AND d.kind = 'daily'",
    )
    assert carried == [(hits,)]
    assert "IOPC" in parts(message)[0]
    assert not any("crashed" in m for m in log.messages())
