"""Watchlists and config edited while the daemon runs: broken edits, half-written files, an
empty watchlist.

The daemon's poll job is driven directly under an injected clock against a LoopbackSite (as
in test_daemon.py); between ticks the test edits the files the way an editor does. What must
hold: an edit that breaks a file keeps the last good version in use and logs the problem with
its place; a file caught half-written is read again once it is whole; an empty watchlist loads
with a warning in the daemon's log, so that its silence is not taken for "no news".
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from monitor.config import load_settings
from monitor.daemon import Daemon
from monitor.loopback import LoopbackSite
from monitor.sitegen import SiteArticle, add_outlet
from monitor.store import Store
from tests.sites import (
    MET_WATCHLIST,
    NOW,
    Clock,
    folder_articles,
    write_config,
    write_watchlist,
)

INTERVAL = 900.0
GOOD = MET_WATCHLIST.read_text(encoding="utf-8")
IOPC = "  'IOPC',\n"
IOPC_LINE = GOOD.splitlines(keepends=True).index(IOPC) + 1


@dataclass
class Log(logging.Handler):
    records: list[logging.LogRecord] = field(default_factory=list)

    def __post_init__(self) -> None:
        logging.Handler.__init__(self, logging.INFO)

    def __hash__(self) -> int:
        return id(self)

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def lines(self, level: int = logging.INFO) -> list[str]:
        """Each record's message and fields, as one line."""
        return [
            f"{r.getMessage()} {getattr(r, 'fields', {})}"
            for r in self.records
            if r.levelno >= level
        ]


@pytest.fixture
def log() -> Iterator[Log]:
    handler = Log()
    logger = logging.getLogger("monitor")
    saved = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(saved)


@dataclass
class Newsroom:
    site: LoopbackSite
    config: Path
    watchlist: Path
    daemon: Daemon
    clock: Clock
    articles: list[SiteArticle]

    def publish(self, count: int) -> None:
        """The outlet's feed lists its first `count` articles from now on."""
        add_outlet(self.site, "Ledger", self.articles[:count], prefix="/ledger")

    def tick(self) -> None:
        """A poll interval later, the poll job runs."""
        self.clock.advance(INTERVAL + 60)
        self.daemon.poll_job()

    def hits(self) -> set[str]:
        """Slugs of the articles with a hit, read from a connection of our own."""
        with Store.open(self.config.parent / "monitor.db") as store:
            rows = store.read("SELECT a.url FROM hits h JOIN articles a ON a.id = h.article_id")
        return {str(r[0]).rsplit("/", 1)[1] for r in rows}


def edit(path: Path, text: str) -> None:
    """Write the file as an editor saves it, its modification time moved on a second so that
    the change is seen whatever the file system's clock resolution."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(before + 1_000_000_000, before + 1_000_000_000))


@pytest.fixture
def newsroom(tmp_path: Path) -> Iterator[Newsroom]:
    articles = folder_articles("relevant", NOW) + folder_articles("distractors", NOW)
    with LoopbackSite() as site:
        feed = add_outlet(site, "Ledger", articles[:1], prefix="/ledger")
        config = write_config(tmp_path, {"Ledger": feed}, watchlists=())
        watchlist = write_watchlist(config, "met-police", GOOD)
        clock = Clock(NOW)
        daemon = Daemon(load_settings(config), clock=clock)
        try:
            daemon.poll_job()
            yield Newsroom(site, config, watchlist, daemon, clock, articles)
        finally:
            daemon.stop()


def test_a_broken_watchlist_edit_keeps_the_last_good_version_and_says_where(
    newsroom: Newsroom, log: Log
) -> None:
    assert newsroom.hits() == {newsroom.articles[0].slug}
    edit(newsroom.watchlist, GOOD.replace(IOPC, "  'IOPC AND (',\n"))
    newsroom.publish(3)
    newsroom.tick()
    errors = log.lines(logging.ERROR)
    assert any(
        "watchlist error, keeping the last good version" in e
        and f"met-police.toml:{IOPC_LINE}:" in e
        for e in errors
    ), errors
    # the new stories were matched by the last good version, not dropped with the bad one
    assert len(newsroom.hits()) > 1

    log.records.clear()
    newsroom.tick()  # unchanged since: the problem is not logged again
    assert log.lines(logging.ERROR) == []

    edit(newsroom.watchlist, GOOD.replace("'IOPC'", "'\"Scotland Yard\"'"))
    newsroom.publish(len(newsroom.articles))
    newsroom.tick()
    assert any("watchlist loaded" in line for line in log.lines())
    assert "scotland-yard-only" in newsroom.hits()


def test_a_watchlist_caught_half_written_is_read_again_once_whole(
    newsroom: Newsroom, log: Log
) -> None:
    whole = GOOD.replace(IOPC, "  'IOPC', 'Khan',\n")
    cut = whole.index("'Khan'") + 3  # the editor has written up to the middle of a query
    edit(newsroom.watchlist, whole[:cut])
    newsroom.tick()
    assert any("keeping the last good version" in e for e in log.lines(logging.ERROR))
    [watchlist] = newsroom.daemon.watch.watchlists
    assert "Khan" not in [q.source for q in watchlist.match]
    edit(newsroom.watchlist, whole)  # and now the rest
    newsroom.tick()
    assert any("watchlist loaded" in line for line in log.lines())
    [watchlist] = newsroom.daemon.watch.watchlists
    assert "Khan" in [q.source for q in watchlist.match]


def test_a_new_watchlist_caught_half_written_is_not_used_until_whole(
    newsroom: Newsroom, log: Log
) -> None:
    path = newsroom.watchlist.with_name("yard.toml")
    whole = 'name = "Yard"\nmatch = [\'"Scotland Yard"\']\n'
    edit(path, whole[:20])
    newsroom.tick()
    assert any("not in use" in e and "yard.toml" in e for e in log.lines(logging.ERROR))
    assert [w.name for w in newsroom.daemon.watch.watchlists] == ["Met Police"]
    edit(path, whole)
    newsroom.publish(len(newsroom.articles))
    newsroom.tick()
    assert sorted(w.name for w in newsroom.daemon.watch.watchlists) == ["Met Police", "Yard"]


def test_a_broken_config_edit_keeps_the_running_config(newsroom: Newsroom, log: Log) -> None:
    good = newsroom.config.read_text(encoding="utf-8")
    edit(newsroom.config, good.replace("[fetch]", "[fetch]\nconcurency = 3"))  # a typo
    newsroom.publish(3)
    newsroom.tick()
    errors = log.lines(logging.ERROR)
    assert any(
        "config error, keeping the running config" in e and "concurency" in e for e in errors
    )
    assert len(newsroom.hits()) >= 2  # still polling, on the running config
    edit(newsroom.config, good.replace('timeout = "10s"', 'timeout = "12s"'))
    newsroom.tick()
    assert any("config reloaded" in line for line in log.lines())
    assert newsroom.daemon.config.settings.fetch.timeout == 12.0


def test_an_empty_watchlist_loads_with_a_warning_in_the_daemons_log(
    newsroom: Newsroom, log: Log
) -> None:
    edit(newsroom.watchlist, "# the Met watchlist, to be written\n")
    newsroom.tick()  # an editor saving in place empties the file first: read once more first
    assert not [line for line in log.lines(logging.WARNING) if "matches nothing" in line]
    newsroom.publish(3)
    newsroom.tick()
    warnings = [line for line in log.lines(logging.WARNING) if "matches nothing" in line]
    assert len(warnings) == 1 and "met-police.toml" in warnings[0], log.lines()
    assert newsroom.hits() == {newsroom.articles[0].slug}  # nothing new matched: and it says so
    newsroom.tick()  # unchanged: said once
    assert len([line for line in log.lines(logging.WARNING) if "matches nothing" in line]) == 1


def test_a_watchlist_emptied_by_a_save_in_progress_keeps_matching(
    newsroom: Newsroom, log: Log
) -> None:
    """An editor saving in place truncates the file, then writes it: a poll caught between
    the two still matches with the last good version (it matched nothing, and the articles
    it stored were never matched again)."""
    edit(newsroom.watchlist, "")
    newsroom.publish(3)
    newsroom.tick()
    assert len(newsroom.hits()) > 1
    assert not [line for line in log.lines(logging.WARNING) if "matches nothing" in line]
    edit(newsroom.watchlist, GOOD)  # the save completes
    newsroom.tick()
    [watchlist] = newsroom.daemon.watch.watchlists
    assert watchlist.match


def test_a_config_edit_that_moves_the_database_keeps_the_running_one(
    newsroom: Newsroom, log: Log
) -> None:
    """The lock and the digest record are on the running database; polling into another one
    split the daemon's state in two and let a second daemon start on the new file."""
    good = newsroom.config.read_text(encoding="utf-8")
    edit(newsroom.config, good.replace('database = "monitor.db"', 'database = "other.db"'))
    newsroom.publish(3)
    newsroom.tick()
    assert any("restart monitor to use it" in e for e in log.lines(logging.ERROR))
    assert newsroom.daemon.config.settings.monitor.database == newsroom.config.parent / "monitor.db"
    assert len(newsroom.hits()) > 1  # polled into the running database
    assert not (newsroom.config.parent / "other.db").exists()


def test_no_watchlist_left_is_a_warning(newsroom: Newsroom, log: Log) -> None:
    newsroom.watchlist.unlink()
    newsroom.tick()
    assert any("no watchlist in use" in line for line in log.lines(logging.WARNING))


def test_an_edit_of_the_opml_file_is_picked_up(newsroom: Newsroom, log: Log) -> None:
    """A config that takes its feeds from an OPML file: editing that file is editing the
    config."""
    url = newsroom.daemon.config.settings.feeds[0].url
    opml = newsroom.config.parent / "feeds.opml"

    def outlines(*names: str) -> str:
        listed = "".join(f'<outline text="{n}" xmlUrl="{url}?{n}"/>' for n in names)
        return f'<opml version="2.0"><body>{listed}</body></opml>'

    opml.write_text(outlines("Ledger"), encoding="utf-8")
    good = newsroom.config.read_text(encoding="utf-8")
    feeds = good.index("[[feeds]]")
    edit(newsroom.config, 'opml = "feeds.opml"\n' + good[:feeds])
    newsroom.tick()
    assert [f.name for f in newsroom.daemon.config.settings.feeds] == ["Ledger"]
    edit(opml, outlines("Ledger", "Courier"))
    newsroom.tick()
    assert [f.name for f in newsroom.daemon.config.settings.feeds] == ["Ledger", "Courier"]


def test_a_config_emptied_by_a_save_in_progress_keeps_the_running_one(
    newsroom: Newsroom, log: Log
) -> None:
    """Caught between the truncate and the write of an in-place save, config.toml is valid
    TOML with no feeds, no [email] and default folders: read once more before it counts."""
    good = newsroom.config.read_text(encoding="utf-8")
    edit(newsroom.config, "")
    newsroom.publish(3)
    newsroom.tick()
    assert [f.name for f in newsroom.daemon.config.settings.feeds] == ["Ledger"]
    assert len(newsroom.hits()) > 1  # still polling, on the running config
    edit(newsroom.config, good)  # the save completes
    newsroom.tick()
    assert [f.name for f in newsroom.daemon.config.settings.feeds] == ["Ledger"]
    assert not any("lists no feeds" in line for line in log.lines())
