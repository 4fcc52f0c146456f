"""Script redirects, the write transaction and the network, on real servers and a real file.

A page that sends its reader on by script and by meta refresh is polled with the target host
allowed, so that only not following keeps the target unasked. The store's write transaction
takes the database's write lock when it begins, and two writers contending for it wait for
each other (busy timeout) rather than fail or lose an update. While the poller has a request
in flight it holds no write transaction: each request, as the server answers it, tries to take
the write lock itself from a connection of its own that will not wait.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from monitor.errors import StoreError
from monitor.loopback import LoopbackSite, Request, Response
from monitor.sitegen import SiteArticle, add_outlet, render_page
from monitor.store import Store
from tests.sites import Clock, add_feed, folder_articles, open_runtime, write_config

INTERVAL = 900.0  # the poll interval write_config gives every feed
INCREMENTS = 50  # read-then-write transactions per thread


# -- script redirects --------------------------------------------------------------------------


def test_a_page_that_redirects_by_script_or_meta_refresh_is_extracted_and_never_followed(
    tmp_path: Path,
) -> None:
    relevant = folder_articles("relevant")
    with LoopbackSite() as site, LoopbackSite("127.0.0.2") as inside:
        inside.add("/secret", "internal secrets", "text/plain")
        inside.add("/refreshed", "internal secrets", "text/plain")
        inside.add("/moved-here", render_page(relevant[1], "Inside"))
        script = (
            f"<script>window.location='{inside.url('/secret')}'</script>"
            f'<meta http-equiv="refresh" content="0; url={inside.url("/refreshed")}">'
        )
        site.add("/story", render_page(relevant[0], "Outlet").replace("<head>", "<head>" + script))
        # the same host reached by an HTTP redirect: proves the allowed host can be asked
        site.routes["/moved"] = Response(302, headers={"Location": inside.url("/moved-here")})
        feed = add_feed(
            site, "/rss.xml", [(relevant[0], site.url("/story")), (relevant[1], site.url("/moved"))]
        )
        config = write_config(tmp_path, {"Outlet": feed}, allow=("127.0.0.1", "127.0.0.2"))
        with open_runtime(config, Clock()) as rt:
            report = rt.poll(rt.configured_states())
            rows = {
                row["title"]: dict(row)
                for row in rt.store.read("SELECT title, full_text, extract_error FROM articles")
            }
    assert [(f.feed, f.status) for f in report.feeds] == [("Outlet", "ok")]
    assert [r.path for r in inside.requests] == ["/moved-here"]  # neither script nor refresh
    assert len(site.hits("/story")) == 1
    story = rows[relevant[0].title]
    assert story["full_text"] == 1 and story["extract_error"] is None, story
    assert rows[relevant[1].title]["full_text"] == 1


# -- BEGIN IMMEDIATE ---------------------------------------------------------------------------


def try_to_write(path: Path) -> str | None:
    """Take the write lock of the database at path from a new connection that will not wait,
    and let it go at once; None if it was free, else SQLite's message."""
    conn = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return None
    except sqlite3.OperationalError as exc:
        return str(exc)
    finally:
        conn.close()


def test_a_write_takes_the_write_lock_as_it_begins(tmp_path: Path) -> None:
    path = tmp_path / "monitor.db"
    with Store.open(path) as store:
        assert try_to_write(path) is None  # free between transactions
        with store.write():
            during = try_to_write(path)  # before the transaction has run any statement
        assert try_to_write(path) is None
    assert during == "database is locked"


def test_two_writers_reading_then_writing_wait_for_each_other(tmp_path: Path) -> None:
    path = tmp_path / "monitor.db"
    with Store.open(path) as store, store.write() as conn:
        conn.execute("CREATE TABLE tally (n INTEGER NOT NULL)")
        conn.execute("INSERT INTO tally VALUES (0)")
    start = threading.Barrier(2)
    errors: list[StoreError] = []

    def count_up() -> None:
        with Store.open(path) as mine:  # a connection of its own, as a second process has
            start.wait()
            try:
                for _ in range(INCREMENTS):
                    with mine.write() as conn:
                        [(n,)] = conn.execute("SELECT n FROM tally").fetchall()
                        conn.execute("UPDATE tally SET n = ?", (n + 1,))
            except StoreError as exc:
                errors.append(exc)

    threads = [threading.Thread(target=count_up) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with Store.open(path) as store:
        total = store.read("SELECT n FROM tally")[0][0]
    assert errors == []
    assert total == 2 * INCREMENTS


# -- no network I/O inside a transaction -------------------------------------------------------


@dataclass
class Probe:
    """Wraps a site's routes: each request, while the server answers it, tries to take the
    database's write lock; what each attempt met is kept by path, in order."""

    database: Path
    attempts: list[tuple[str, str | None]] = field(default_factory=list)
    # pages are requested side by side: two probes must not meet each other
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wrap(self, site: LoopbackSite, path: str) -> None:
        route = site.routes[path]

        def answer(request: Request) -> Response:
            with self.lock:
                self.attempts.append((request.path, try_to_write(self.database)))
            return route(request) if callable(route) else route

        site.routes[path] = answer

    def seen(self) -> list[str]:
        return [path for path, _ in self.attempts]


def test_no_request_is_in_flight_while_the_poller_holds_a_write_transaction(
    tmp_path: Path,
) -> None:
    # one feed a cycle: with two, one feed's write rightly runs while the other's requests
    # are in flight on the fetch threads; here a write can only meet a request it wraps
    relevant = folder_articles("relevant")
    first, later = relevant[:4], relevant[4]
    probe = Probe(tmp_path / "monitor.db")
    with LoopbackSite() as site:

        def serve(articles: list[SiteArticle]) -> str:
            feed = add_outlet(site, "Outlet", articles, prefix="/outlet")
            for path in list(site.routes):
                probe.wrap(site, path)
            return feed

        config = write_config(tmp_path, {"Outlet": serve(first)})
        clock = Clock()
        with open_runtime(config, clock) as rt:
            statuses = [rt.poll(rt.configured_states()).feeds[0].status]  # feed and pages
            clock.advance(INTERVAL + 60)
            statuses.append(rt.poll(rt.due_states()).feeds[0].status)  # 304
            serve([*first, later])  # a new entry beside the known ones: only its page is new
            clock.advance(INTERVAL + 60)
            statuses.append(rt.poll(rt.due_states()).feeds[0].status)
            site.routes["/outlet/rss.xml"] = Response(503, b"busy", {"Retry-After": "60"})
            probe.wrap(site, "/outlet/rss.xml")  # a failure is recorded too
            clock.advance(INTERVAL + 60)
            statuses.append(rt.poll(rt.due_states()).feeds[0].status)
            stored = len(rt.store.read("SELECT id FROM articles"))
    assert statuses == ["ok", "not_modified", "ok", "failed"]
    assert stored == len(first) + 1
    pages = sorted(f"/outlet/{a.slug}" for a in first)
    seen = probe.seen()
    assert seen[0] == "/outlet/rss.xml" and sorted(seen[1 : len(pages) + 1]) == pages
    assert seen[len(pages) + 1 :] == [
        "/outlet/rss.xml",
        "/outlet/rss.xml",
        f"/outlet/{later.slug}",
        "/outlet/rss.xml",
    ]
    assert [(path, met) for path, met in probe.attempts if met is not None] == []


def test_the_probe_sees_a_write_transaction_held_across_a_request(tmp_path: Path) -> None:
    path = tmp_path / "monitor.db"
    probe = Probe(path)
    with LoopbackSite() as site, Store.open(path) as store:
        site.routes["/page"] = Response(body=b"page")
        probe.wrap(site, "/page")
        with store.write():
            httpx.get(site.url("/page"), trust_env=False)
        httpx.get(site.url("/page"), trust_env=False)
    assert probe.attempts == [("/page", "database is locked"), ("/page", None)]
