"""`kill -9` during `monitor poll`, then poll again: no article lost, none duplicated.

The poll runs as a real subprocess (in its own process group, so its extraction processes die
with it, as under a service manager) against a LoopbackSite with latency; it is killed once
the site has answered a seeded random number of requests, so the kill lands at a different
point of the cycle each time.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import threading
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

from monitor.loopback import Handler, LoopbackSite, Request, Response
from monitor.sitegen import add_outlet
from tests import spawn
from tests.sites import NOW, fixture_articles, folder_articles, write_config

# (seed, what triggers the kill): a number of requests answered, or of articles stored
RUNS = ((1, "requests"), (2, "articles"), (3, "articles"))
# uneven outlets, so that they finish at different times: name, format, layout, articles
OUTLETS = (("Ledger", "rss", 0, 4), ("Courier", "atom", 1, 5), ("Gazette", "rdf", 2, 8))
DEADLINE = 60.0  # seconds for a poll subprocess to reach a point or to finish


def run_poll(config: Path) -> subprocess.Popen[bytes]:
    """Start `monitor poll` in its own process group, its output in poll.log."""
    return spawn.start_monitor(config, "poll", "poll.log")


def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Check a condition until it holds, within DEADLINE."""
    spawn.wait_for(condition, what, DEADLINE)


def stored(db: Path) -> int:
    """Articles committed so far (0 before the database exists)."""
    if not db.exists():
        return 0
    try:
        with closing(sqlite3.connect(db, timeout=5)) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM articles").fetchone()[0])
    except sqlite3.OperationalError:  # not created yet
        return 0


def held(release: threading.Event, page: Response) -> Handler:
    """A route answering page only once release is set: no cycle can finish before then."""

    def answer(request: Request) -> Response:
        release.wait(DEADLINE)
        return page

    return answer


@pytest.mark.parametrize(("seed", "trigger"), RUNS)
def test_kill_during_poll_then_poll_again_loses_and_duplicates_nothing(
    tmp_path: Path, seed: int, trigger: str
) -> None:
    rng = random.Random(seed)
    relevant = fixture_articles(NOW) + folder_articles("relevant", NOW)
    articles = relevant + folder_articles("distractors", NOW)
    release = threading.Event()
    with LoopbackSite(latency=rng.uniform(0.02, 0.1)) as site:
        feeds, pages, wanted = {}, set(), set()
        for name, fmt, layout, size in OUTLETS:
            share, articles = articles[:size], articles[size:]
            prefix = f"/{name.lower()}"
            feeds[name] = add_outlet(
                site, name, share, prefix=prefix, feed_format=fmt, layout=layout
            )
            pages |= {site.url(f"{prefix}/{a.slug}") for a in share}
            wanted |= {site.url(f"{prefix}/{a.slug}") for a in share if a in relevant}
        last = f"/gazette/{share[-1].slug}"
        site.routes[last] = held(release, site.routes[last])  # type: ignore[arg-type]
        config = write_config(tmp_path, feeds, fetch={"per_host": 2})
        db = tmp_path / "monitor.db"

        poll = run_poll(config)
        if trigger == "requests":
            after = rng.randint(2, len(pages) + len(feeds) - 2)
            wait_for(lambda: len(site.requests) >= after, f"{after} requests")
        else:
            after = rng.randint(1, OUTLETS[0][3] + OUTLETS[1][3])
            wait_for(lambda: stored(db) >= after, f"{after} articles stored")
        os.killpg(poll.pid, signal.SIGKILL)
        assert poll.wait(DEADLINE) == -signal.SIGKILL
        at_kill = stored(db)
        release.set()

        again = run_poll(config)
        assert again.wait(DEADLINE) == 0, (config.parent / "poll.log").read_text()

    assert at_kill < len(pages)  # the held page kept the first cycle from finishing
    if trigger == "articles":
        assert at_kill >= after  # and some feeds had been stored when it was killed
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        urls = [r[0] for r in conn.execute("SELECT url FROM articles")]
        hits = conn.execute(
            "SELECT a.url, h.watchlist FROM hits h JOIN articles a ON a.id = h.article_id"
        ).fetchall()
        full = conn.execute("SELECT COUNT(*) FROM articles WHERE full_text = 1").fetchone()[0]
        guids = conn.execute("SELECT COUNT(*) FROM article_guids").fetchone()[0]
        etags = conn.execute("SELECT COUNT(*) FROM feeds WHERE etag IS NOT NULL").fetchone()[0]
    assert sorted(urls) == sorted(pages)
    assert full == len(pages)
    assert sorted(hits) == sorted((url, "Met Police") for url in wanted)
    assert guids == len(pages)
    assert etags == len(feeds)
