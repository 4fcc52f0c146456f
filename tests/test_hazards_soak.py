"""Load: the daemon's poll job, 100 cycles over a loopback site of 1,000 feeds, 5% of them faulty.

The real Daemon (built from a config file as `monitor run` builds it) runs its poll job once
per cycle under an injected clock that moves a poll interval and a minute after each cycle,
so every healthy feed is due every cycle; after the first cycle their answers are 304s. The
faulty feeds (500, 404, an HTML page, XML cut in half, headers withheld, a body trickled)
fail and back off. Resident memory and open descriptors of this process are read at cycles
10 and 100, and every log record is kept: no error may escape a job.

Slow (about three minutes): run by `make hazards`.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from monitor.config import load_settings
from monitor.daemon import Daemon
from monitor.logs import LOGGER_NAME
from tests.sites import Clock, write_config

# about three minutes on 2 cores: past the suite's 120 s limit per test
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

FEEDS = 1_000
FAULTY = 0.05
CYCLES = 100
CHECKPOINT = 10
MB = 1024 * 1024
# Memory may grow from cycle 10 to 100 by at most this much beyond what the database grows:
# each SQLite connection keeps up to 64 MB of the pages it touched (cache_size), and every
# cycle appends a poll record per feed, so the page cache grows with the file by design; the
# rest (allocator arenas, the site's bounded caches, thread stacks) must stay flat.
RSS_SLACK = 20 * MB
FD_SLACK = 4  # descriptors other than sockets: files (the database's, logs) must stay flat
CONCURRENCY = 64
# Sockets may number up to both ends (client pool and loopback server, in this one process)
# of every connection the client pool keeps, whatever the cycle, plus the listeners.
SOCKET_BOUND = 2 * CONCURRENCY + 8


@dataclass
class Records(logging.Handler):
    """Keeps every record the monitor logs at INFO and above."""

    records: list[logging.LogRecord] = field(default_factory=list)

    def __post_init__(self) -> None:
        logging.Handler.__init__(self, logging.INFO)

    def __hash__(self) -> int:
        return id(self)

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class QuietFeeds(logging.Filter):
    """Drops the per-feed lines below ERROR: a thousand a cycle, kept by nobody here (and
    pytest's own log capture would keep every one of them, a hundred megabytes by the end)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "feed polled" or record.levelno >= logging.ERROR


@pytest.fixture
def records() -> Iterator[Records]:
    handler = Records()
    log = logging.getLogger(LOGGER_NAME)
    poll_log = logging.getLogger(f"{LOGGER_NAME}.poll")
    quiet = QuietFeeds()
    saved = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    poll_log.addFilter(quiet)
    yield handler
    poll_log.removeFilter(quiet)
    log.removeHandler(handler)
    log.setLevel(saved)


class SoakSite:
    """generate_site(FEEDS, 1, faulty=FAULTY) served by a child process, so that this
    process's memory and CPU are the daemon's own. Use as a context manager."""

    def __init__(self) -> None:
        self.feeds: dict[str, str] = {}
        self.faulty: set[str] = set()
        self._conn: Connection | None = None
        self._process: Any = None

    def __enter__(self) -> SoakSite:
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        self._process = context.Process(target=serve_site, args=(child,), daemon=True)
        self._process.start()
        child.close()
        self._conn = parent
        feeds, faulty = parent.recv()
        self.feeds, self.faulty = dict(feeds), set(faulty)
        return self

    def feed_requests(self) -> tuple[int, int]:
        """Feed requests since the last call: (all, conditional)."""
        assert self._conn is not None
        self._conn.send("requests")
        total, conditional = self._conn.recv()
        return int(total), int(conditional)

    def __exit__(self, *exc: object) -> None:
        if self._conn is not None:
            self._conn.send("stop")
            self._conn.close()
        self._process.join(10)
        if self._process.exitcode is None:
            self._process.kill()
            self._process.join()


def serve_site(conn: Connection) -> None:
    """In the child: serve the site, pages rendered up front, until told to stop."""
    from monitor.loopback import Request
    from monitor.sitegen import generate_site

    # headers withheld for 10 s, or trickled a byte a second: past the 5 s deadline
    generated = generate_site(FEEDS, 1, faulty=FAULTY, slow=10.0)
    site = generated.site
    feed_paths = {urlsplit(f.url).path for f in generated.feeds}
    for path, route in list(site.routes.items()):
        if path not in feed_paths and callable(route):
            site.routes[path] = route(Request("GET", path, {}, "127.0.0.1"))
    # a burst of 64 connections must not overflow the accept queue (a SYN retry takes 1 s)
    site._server.socket.listen(1024)
    with site:
        conn.send(([(f.name, f.url) for f in generated.feeds], sorted(generated.faulty_feeds)))
        while (message := conn.recv()) != "stop":
            assert message == "requests"
            taken, site.requests = site.requests, []
            feeds = [r for r in taken if r.path in feed_paths]
            conditional = sum(1 for r in feeds if "if-none-match" in r.headers)
            conn.send((len(feeds), conditional))


def status(key: str) -> int:
    """A figure of this process from /proc/self/status, in bytes."""
    with open("/proc/self/status", encoding="ascii") as lines:
        line = next(line for line in lines if line.startswith(key + ":"))
    return int(line.split()[1]) * 1024


def open_fds() -> tuple[int, int]:
    """Open descriptors of this process: (sockets, everything else)."""
    kinds = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the listing's own descriptor is gone by now
            kinds.append(os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"))
    return sum(kinds), len(kinds) - sum(kinds)


def database_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob("monitor.db*"))


def test_a_hundred_cycles_of_a_thousand_feeds_keep_memory_and_descriptors_flat(
    tmp_path: Path, records: Records
) -> None:
    with SoakSite() as site:
        config = write_config(
            tmp_path,
            site.feeds,
            fetch={"timeout": "5s", "concurrency": CONCURRENCY, "per_host": CONCURRENCY},
            extract={"workers": 2},
        )
        settings = load_settings(config)
        clock = Clock()
        daemon = Daemon(settings, clock=clock)
        figures: dict[int, tuple[int, tuple[int, int], int]] = {}
        cycles: list[dict[str, int]] = []
        asked: list[tuple[int, int]] = []
        try:
            for cycle in range(1, CYCLES + 1):
                daemon.poll_job()
                asked.append(site.feed_requests())
                done = [r for r in records.records if r.getMessage() == "cycle done"]
                cycles.append(getattr(done[-1], "fields", {}) if done else {})
                bad = [r for r in records.records if r.levelno >= logging.ERROR]
                assert not bad, [r.getMessage() for r in bad]
                records.records.clear()
                if cycle in (CHECKPOINT, CYCLES):
                    figures[cycle] = (status("VmRSS"), open_fds(), database_bytes(tmp_path))
                clock.advance(settings.monitor.poll_interval + 60)
        finally:
            daemon.stop()

    assert len(cycles) == CYCLES and all(c.get("feeds", 0) > 0 for c in cycles)
    # every feed that answers (the healthy ones, and the truncated ones whose first half
    # holds an entry) answers every cycle; after the first, with a 304
    answering = FEEDS - cycles[0]["failed"]
    assert len(site.faulty) == FAULTY * FEEDS and answering >= FEEDS - len(site.faulty)
    assert all(c["feeds"] - c["failed"] == answering for c in cycles), cycles
    assert cycles[0]["new_articles"] >= answering
    assert sum(c["new_articles"] for c in cycles[1:]) == 0
    assert asked[0] == (FEEDS, 0)
    assert all(conditional >= answering for _, conditional in asked[1:]), asked
    (rss_10, fds_10, db_10), (rss_100, fds_100, db_100) = figures[CHECKPOINT], figures[CYCLES]
    print(
        f"\nsoak: RSS {rss_10 / MB:.1f} MB at cycle {CHECKPOINT}, {rss_100 / MB:.1f} MB at"
        f" cycle {CYCLES}; database {db_10 / MB:.1f} -> {db_100 / MB:.1f} MB;"
        f" sockets {fds_10[0]} -> {fds_100[0]}, other descriptors {fds_10[1]} -> {fds_100[1]};"
        f" peak {status('VmHWM') / MB:.1f} MB"
    )
    assert rss_100 - rss_10 < RSS_SLACK + max(db_100 - db_10, 0)
    assert fds_100[1] <= fds_10[1] + FD_SLACK
    assert fds_10[0] <= SOCKET_BOUND and fds_100[0] <= SOCKET_BOUND
