"""Hostile feeds, pages and URLs served from loopback, in real poll cycles.

One LoopbackSite on 127.0.0.1 serves a healthy outlet beside every parsing case of HAZARDS.md
(JSON, an empty body, XML cut short, billion laughs, external entities, entries without link
or GUID, duplicate and churning GUIDs, bad dates, a legacy charset) and feeds whose entries
link to every spelling of an internal address; a second LoopbackSite on 127.0.0.2 stands for
a host inside the network, and must never be asked anything. The Runtime polls twice, 16
minutes apart. Each bad input must cost its own feed or article, with the reason recorded,
and nothing else.

Pages past the extraction time limit or the memory limit get polls of their own (the two
limits are set apart so that each page meets the one it is about), with the peak resident
memory of every extraction process sampled from /proc while the cycle runs.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor.loopback import LoopbackSite, Request, Response
from monitor.pipeline import NO_LINK, CycleReport
from monitor.sitegen import SiteArticle, add_outlet, render_page
from monitor.store import FeedState
from tests.sites import NOW, Clock, add_feed, folder_articles, open_runtime, write_config

INTERVAL = 900.0
SECRET = "TOPSECRET-4d9a1c"  # the content of a local file an external entity names
MB = 1_000_000

# -- feeds written by hand ---------------------------------------------------------------------


def rss(items: str, head: str = '<?xml version="1.0" encoding="utf-8"?>') -> str:
    return (
        f'{head}<rss version="2.0"><channel><title>Hostile</title>'
        f"<link>http://news.invalid/</link>{items}</channel></rss>"
    )


def item(
    title: str,
    link: str | None,
    guid: str | None = None,
    *,
    date: str | None = "Sun, 22 Nov 2026 08:00:00 GMT",
    description: str = "The IOPC said officers of the Metropolitan Police were investigated.",
) -> str:
    parts = [f"<title>{title}</title>", f"<description>{description}</description>"]
    if link is not None:
        parts.append(f"<link>{link}</link>")
    if guid is not None:
        parts.append(f'<guid isPermaLink="false">{guid}</guid>')
    if date is not None:
        parts.append(f"<pubDate>{date}</pubDate>")
    return "<item>" + "".join(parts) + "</item>"


LAUGHS = ['<!ENTITY l0 "lol">'] + [f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10)]


# -- the site ---------------------------------------------------------------------------------


@dataclass
class Hostile:
    site: LoopbackSite
    inside: LoopbackSite
    healthy: dict[str, SiteArticle]  # page URL -> article
    first: CycleReport
    second: CycleReport
    states: dict[str, FeedState]  # after the first cycle
    articles: dict[str, dict[str, Any]]  # by feed name, then URL or GUID: the stored row
    dump: str  # every text value in the database
    log: list[logging.LogRecord]
    links: dict[str, str]  # what each "Internal links" entry links to, by its GUID


class Kept(logging.Handler):
    """Keeps the monitor's log records while a poll runs."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def serve_feeds(site: LoopbackSite, inside: LoopbackSite, secret: Path) -> dict[str, str]:
    """Feed name -> URL of every hostile feed."""
    # a real page to link to, carried by no other feed (each link below adds a parameter)
    page = site.add("/wire/story", render_page(folder_articles("relevant")[3], "Wire"))
    xml = "application/rss+xml"
    cut = rss(item("Met officer charged", page + "?a=1") + item("Second", page + "?b=2"))
    bodies: dict[str, tuple[str, bytes | str, str]] = {
        "JSON": ("/json", json.dumps({"items": [{"title": "IOPC"}]}), "application/json"),
        "Empty": ("/empty.xml", b"", xml),
        "Cut before any entry": ("/cut-early.xml", cut[: cut.index("<item>") + 20], xml),
        "Cut after one entry": ("/cut-late.xml", cut[: cut.rindex("<item>") + 15], xml),
        "Billion laughs": (
            "/laughs.xml",
            rss(
                item("&l9;", page + "?laughs", description="&l9;&l9;"),
                '<?xml version="1.0"?><!DOCTYPE rss [' + "".join(LAUGHS) + "]>",
            ),
            xml,
        ),
        "External entity": (
            "/xxe.xml",
            rss(
                item("Leak &xxe;", page + "?xxe", description="&xxe;"),
                f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY xxe SYSTEM "file://{secret}">]>',
            ),
            xml,
        ),
        "External DTD": (
            "/dtd.xml",
            rss(
                item("Officers cleared", page + "?dtd"),
                f'<?xml version="1.0"?><!DOCTYPE rss SYSTEM "{inside.url("/evil.dtd")}">',
            ),
            xml,
        ),
        "No link, no GUID": (
            "/anonymous.xml",
            rss(
                item("Nameless one", None)
                + item("Nameless two", None)
                + item("Named", page + "?named")
            ),
            xml,
        ),
        "Duplicate GUIDs": (
            "/duplicates.xml",
            rss(
                item("Met vetting review", page + "?d=1", "urn:same")
                + item("Met vetting review again", page + "?d=2", "urn:same")
                + item("Met vetting review, third", page + "?d=3", "urn:other")
            ),
            xml,
        ),
        "Bad dates": (
            "/dates.xml",
            rss(
                item("Undated", page + "?u=1", "urn:u1", date=None)
                + item("Nonsense date", page + "?u=2", "urn:u2", date="the day after tomorrow")
                + item("Far future", page + "?u=3", "urn:u3", date="Fri, 01 Jan 2100 00:00:00 GMT")
            ),
            xml,
        ),
        # windows-1252 bytes (curly quotes, an accent) under a header that says UTF-8
        "Legacy charset": (
            "/cp1252.xml",
            rss(
                item("Met’s café inquiry “reopened”", page + "?cp"), '<?xml version="1.0"?>'
            ).encode("cp1252"),
            "application/rss+xml; charset=utf-8",
        ),
    }
    feeds = {}
    for name, (path, body, content_type) in bodies.items():
        feeds[name] = site.add(path, body, content_type)
    # a CMS that gives every entry a new GUID and a new tracking parameter at every request
    site.routes["/churn.xml"] = churning_feed(page)
    feeds["GUID churn"] = site.url("/churn.xml")
    inside.add("/evil.dtd", '<!ENTITY xxe "from the internal host">', "application/xml-dtd")
    return feeds


def churning_feed(page: str) -> Any:
    def answer(request: Request) -> Response:
        churn = uuid.uuid4().hex
        body = rss(
            item("Met commissioner apologises", f"{page}?utm_source={churn}", f"urn:{churn}")
            + item("IOPC report due", f"{page}?n=2&fbclid={churn}", f"urn:{churn}-2")
        )
        return Response(body=body.encode(), headers={"Content-Type": "application/rss+xml"})

    return answer


def internal_spellings(inside: LoopbackSite) -> dict[str, str]:
    """Ways a URL can name 127.0.0.2 (the internal host), or something never fetched."""
    port = inside.port
    spellings = {
        "dotted": f"http://127.0.0.2:{port}",
        "decimal": f"http://2130706434:{port}",
        "hex": f"http://0x7f000002:{port}",
        "octal": f"http://0177.0.0.2:{port}",
        "short": f"http://127.2:{port}",
        "ipv6-mapped": f"http://[::ffff:127.0.0.2]:{port}",
        "ipv6-mapped-hex": f"http://[::ffff:7f00:2]:{port}",
        "userinfo": f"http://news.example@127.0.0.2:{port}",
        "file": "file://",
        "ftp": f"ftp://127.0.0.2:{port}",
        "gopher": f"gopher://127.0.0.2:{port}",
    }
    # each its own path, so that spellings of one address stay separate entries
    return {name: f"{prefix}/admin/{name}" for name, prefix in spellings.items()}


# why each spelling is never fetched: refused at connect time, refused as a malformed URL, or
# never a usable link at all (the entry is kept by its GUID and matched on its summary)
LOOPBACK = "(127.0.0.2) is a loopback address; refused"
REFUSALS = {
    "dotted": "127.0.0.2 is a loopback address; refused",
    "decimal": LOOPBACK,
    "hex": LOOPBACK,
    "octal": "malformed URL",
    "short": LOOPBACK,
    "ipv6-mapped": "::ffff:7f00:2 is a loopback (IPv4 inside IPv6) address; refused",
    "ipv6-mapped-hex": "::ffff:7f00:2 is a loopback (IPv4 inside IPv6) address; refused",
    "userinfo": NO_LINK,
    "file": NO_LINK,
    "ftp": NO_LINK,
    "gopher": NO_LINK,
}
REDIRECT_REFUSALS = {
    "file": "only http and https URLs are fetched, not file: URLs",
    "gopher": "only http and https URLs are fetched, not gopher: URLs",
}


def serve_internal_links(site: LoopbackSite, inside: LoopbackSite) -> tuple[str, dict[str, str]]:
    """A feed whose entries link to the internal host, directly or by a redirect from the
    public site; its URL, and each entry's link by GUID."""
    links = internal_spellings(inside)
    for name, target in list(links.items()):
        if name in ("dotted", "decimal", "file", "gopher"):
            site.routes[f"/go/{name}"] = Response(302, headers={"Location": target})
            links[f"redirect-{name}"] = site.url(f"/go/{name}")
    # a page that sends the reader on with a meta refresh: extracted, never followed
    refresh = render_page(folder_articles("relevant")[1], "Refresh").replace(
        "<head>", f'<head><meta http-equiv="refresh" content="0; url={links["dotted"]}">'
    )
    links["meta-refresh"] = site.add("/refresh", refresh)
    items = "".join(
        item(f"Internal {name}", link.replace("&", "&amp;"), f"urn:internal:{name}")
        for name, link in links.items()
    )
    return site.add("/internal.xml", rss(items), "application/rss+xml"), links


def serve_hostile_pages(site: LoopbackSite) -> str:
    """A feed whose pages are hostile in ways fetching or extraction must survive."""
    article = folder_articles("relevant")[2]
    text_page = render_page(article, "Controls").replace("officers", "offi\x00cers\x07\x1b")
    site.add("/pages/controls", text_page)
    site.add("/pages/picture", b"\x89PNG\r\n\x1a\n" + bytes(2000), "image/png")
    site.routes["/pages/bomb"] = Response(
        body=gzip.compress(b"<p>" + b"\0" * 20_000_000),
        headers={"Content-Type": "text/html", "Content-Encoding": "gzip"},
    )
    site.routes["/pages/trickle"] = Response(
        body=b"<html><body>" + b" " * 200, headers={"Content-Type": "text/html"}, trickle=0.5
    )
    pages = [
        SiteArticle(name, f"Hostile page {name}", ("(served as is)",), NOW - timedelta(hours=1),
                    summary="The Metropolitan Police said the IOPC was informed.")
        for name in ("controls", "picture", "bomb", "trickle")
    ]  # fmt: skip
    return add_feed(site, "/pages/rss.xml", [(p, site.url(f"/pages/{p.slug}")) for p in pages])


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hostile]:
    tmp = tmp_path_factory.mktemp("hostile")
    secret = tmp / "passwd"
    secret.write_text(f"root:x:0:0:{SECRET}\n", encoding="utf-8")
    kept = Kept()
    logger = logging.getLogger("monitor")
    logger.addHandler(kept)
    level = logger.level
    logger.setLevel(logging.DEBUG)
    relevant = folder_articles("relevant")
    with LoopbackSite() as site, LoopbackSite("127.0.0.2") as inside:
        inside.add("/admin", "internal secrets", "text/plain")
        feeds = {"Healthy": add_outlet(site, "Healthy", relevant, prefix="/healthy")}
        healthy = {site.url(f"/healthy/{a.slug}"): a for a in relevant}
        feeds |= serve_feeds(site, inside, secret)
        feeds["Internal links"], links = serve_internal_links(site, inside)
        feeds["Hostile pages"] = serve_hostile_pages(site)
        feeds["Internal feed"] = inside.url("/admin")
        site.routes["/to-file.xml"] = Response(302, headers={"Location": f"file://{secret}"})
        feeds["Redirect to a file"] = site.url("/to-file.xml")
        config = write_config(tmp, feeds, fetch={"timeout": "3s", "max_bytes": "2MB"})
        clock = Clock()
        try:
            with open_runtime(config, clock) as rt:
                first = rt.poll(rt.configured_states())
                states = {s.name: s for s in rt.store.feed_states()}
                clock.advance(INTERVAL + 60)
                second = rt.poll(rt.due_states())
                rows = rt.store.read(
                    "SELECT a.*, f.name AS feed_name FROM articles a JOIN feeds f"
                    " ON f.id = a.feed_id"
                )
                articles: dict[str, dict[str, Any]] = {}
                for row in rows:
                    record = dict(row)
                    articles.setdefault(row["feed_name"], {})[row["url"] or row["guid"]] = record
                dump = "\n".join(
                    str(value)
                    for table in ("articles", "feeds", "hits", "polls", "article_guids")
                    for row in rt.store.read(f"SELECT * FROM {table}")
                    for value in tuple(row)
                )
        finally:
            logger.removeHandler(kept)
            logger.setLevel(level)
        yield Hostile(
            site, inside, healthy, first, second, states, articles, dump, kept.records, links
        )


def status(cycle: CycleReport, feed: str) -> tuple[str, str | None]:
    report = next(f for f in cycle.feeds if f.feed == feed)
    return report.status, report.error


# -- the cycle goes on ------------------------------------------------------------------------


def test_the_healthy_outlet_is_stored_and_matched_beside_every_hostile_feed(
    hostile: Hostile,
) -> None:
    assert len(hostile.first.feeds) == len(hostile.states)  # every feed reported
    assert status(hostile.first, "Healthy") == ("ok", None)
    stored = hostile.articles["Healthy"]
    assert set(stored) == set(hostile.healthy)
    assert all(row["full_text"] == 1 and row["extract_error"] is None for row in stored.values())
    assert hostile.first.new_hits >= len(hostile.healthy)


@pytest.mark.parametrize(
    ("feed", "error"),
    [
        ("JSON", "the server sent JSON"),
        ("Empty", "the body is empty"),
        ("Cut before any entry", "broken feed XML and no usable entries"),
        ("Internal feed", "127.0.0.2 is a loopback address"),
        ("Redirect to a file", "file"),
    ],
)
def test_what_is_not_a_feed_is_that_feeds_recorded_failure(
    hostile: Hostile, feed: str, error: str
) -> None:
    state = hostile.states[feed]
    assert status(hostile.first, feed)[0] == "failed"
    assert state.failures == 1 and state.last_error is not None and error in state.last_error
    assert state.next_poll is not None and state.next_poll > NOW  # backed off, not disabled
    assert feed not in hostile.articles


def test_xml_cut_short_keeps_its_complete_entries(hostile: Hostile) -> None:
    assert status(hostile.first, "Cut after one entry") == ("ok", None)
    [stored] = hostile.articles["Cut after one entry"].values()
    assert stored["title"] == "Met officer charged"


def test_entities_are_never_expanded_nor_fetched(hostile: Hostile) -> None:
    for feed in ("Billion laughs", "External entity", "External DTD"):
        assert status(hostile.first, feed)[0] in ("ok", "failed"), feed
        for row in hostile.articles.get(feed, {}).values():
            assert len(row["title"]) + len(row["summary"]) < 1000
    assert "lollollol" not in hostile.dump
    assert SECRET not in hostile.dump
    assert not any(SECRET in r.getMessage() for r in hostile.log)
    assert hostile.inside.requests == []  # nor the DTD on the internal host


def test_entries_without_link_or_guid_are_skipped_with_a_warning(hostile: Hostile) -> None:
    assert [r["title"] for r in hostile.articles["No link, no GUID"].values()] == ["Named"]
    [polled] = [
        getattr(r, "fields", {})
        for r in hostile.log
        if r.getMessage() == "feed polled"
        and getattr(r, "fields", {}).get("feed") == "No link, no GUID"
        and r.levelno == logging.WARNING
    ]
    assert polled["warnings"] == ["2 entries skipped: no link and no GUID"]


def test_duplicate_guids_in_one_feed_give_one_article(hostile: Hostile) -> None:
    titles = sorted(r["title"] for r in hostile.articles["Duplicate GUIDs"].values())
    assert titles == ["Met vetting review", "Met vetting review, third"]


def test_a_cms_that_changes_every_guid_does_not_flood(hostile: Hostile) -> None:
    assert len(hostile.articles["GUID churn"]) == 2
    assert status(hostile.second, "GUID churn") == ("ok", None)
    assert next(f for f in hostile.second.feeds if f.feed == "GUID churn").new_articles == 0


def test_missing_invalid_and_future_dates_fall_back_to_first_seen(hostile: Hostile) -> None:
    rows = hostile.articles["Bad dates"].values()
    assert sorted(r["title"] for r in rows) == ["Far future", "Nonsense date", "Undated"]
    assert all(r["published"] is None for r in rows)
    assert {r["first_seen"] for r in rows} == {NOW.isoformat(timespec="microseconds")}


def test_a_legacy_charset_under_a_wrong_header_is_read(hostile: Hostile) -> None:
    [row] = hostile.articles["Legacy charset"].values()
    assert "caf" in row["title"] and "inquiry" in row["title"]


def test_no_spelling_of_an_internal_address_is_ever_requested(hostile: Hostile) -> None:
    assert hostile.inside.requests == []
    rows = {r["guid"]: r for r in hostile.articles["Internal links"].values()}
    assert set(rows) == {f"urn:internal:{name}" for name in hostile.links}
    for name in hostile.links:
        row = rows[f"urn:internal:{name}"]
        if name == "meta-refresh":  # the page itself is extracted; its refresh is not followed
            assert row["full_text"] == 1, row
            continue
        assert row["full_text"] == 0, (name, row)
        why = REFUSALS.get(name, "")
        if name.startswith("redirect-"):
            target = name.removeprefix("redirect-")
            why = REDIRECT_REFUSALS.get(target, REFUSALS[target])
        assert why in row["extract_error"], (name, row)
    # matched on the feed's summary all the same
    assert status(hostile.first, "Internal links") == ("ok", None)


@pytest.mark.parametrize(
    ("page", "error"),
    [
        ("picture", "not an HTML page (image/png)"),
        ("bomb", "page not fetched"),
        ("trickle", "page not fetched"),
    ],
)
def test_a_page_that_cannot_be_used_is_that_articles_recorded_failure(
    hostile: Hostile, page: str, error: str
) -> None:
    row = hostile.articles["Hostile pages"][hostile.site.url(f"/pages/{page}")]
    assert row["full_text"] == 0 and error in row["extract_error"]
    assert "IOPC" in row["summary"]  # matched on the summary instead


def test_control_characters_in_a_page_do_not_stop_its_extraction(hostile: Hostile) -> None:
    row = hostile.articles["Hostile pages"][hostile.site.url("/pages/controls")]
    assert row["full_text"] == 1 and "\x00" not in row["text"]


def test_the_second_cycle_backs_the_failures_off_and_repolls_nothing_healthy(
    hostile: Hostile,
) -> None:
    polled = {f.feed for f in hostile.second.feeds}
    assert "Healthy" in polled and status(hostile.second, "Healthy")[0] == "not_modified"
    assert hostile.second.new_articles == 0


# -- extraction limits: time and memory --------------------------------------------------------


class PeakWatch:
    """Samples the peak resident memory (VmHWM) of every process descended from this one,
    every few milliseconds while a poll runs; peaks by process id."""

    def __init__(self, period: float = 0.005) -> None:
        self.period = period
        self.peaks: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeakWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            for pid in descendants(os.getpid()):
                peak = vm_hwm(pid)
                if peak:
                    self.peaks[pid] = max(peak, self.peaks.get(pid, 0))


def descendants(root: int) -> list[int]:
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as f:
                    children = [int(c) for c in f.read().split()]
            except OSError:
                continue
            found += children
            todo += children
    return found


def vm_hwm(pid: int) -> int:
    """A process's peak resident memory in bytes (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            line = next((line for line in status if line.startswith("VmHWM:")), "")
    except OSError:
        return 0
    return int(line.split()[1]) * 1024 if line else 0


def slow_page() -> str:
    """A page trafilatura spends over a minute on (its time grows with the square of the
    number of sibling blocks), in little memory."""
    return "<html><body>" + "<div><span>w</span></div>" * 80_000 + "</body></html>"


def greedy_page() -> str:
    """A page whose extraction asks for far more memory than the limit, quickly."""
    return (
        "<html><body><article>"
        + "<p>Met police officer said IOPC</p>" * 250_000
        + "</article></body></html>"
    )


@dataclass
class Limited:
    report: CycleReport
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    peaks: dict[int, int] = field(default_factory=dict)


def poll_with_limits(tmp: Path, path: str, body: str, extract: dict[str, object]) -> Limited:
    """One poll of a feed with two healthy pages and a hostile one (at path)."""
    relevant = folder_articles("relevant")[:2]
    with LoopbackSite() as site:
        feed = add_outlet(site, "Limits", relevant, prefix="/limits")
        hostile = SiteArticle(
            path.strip("/").rsplit("/", 1)[-1],
            "A hostile page",
            ("(served as is)",),
            NOW - timedelta(hours=3),
            summary="The IOPC said it was informed.",
        )
        site.add(path, body)
        links = [(a, site.url(f"/limits/{a.slug}")) for a in relevant]
        feed = add_feed(site, "/limits/all.xml", [*links, (hostile, site.url(path))])
        config = write_config(tmp, {"Limits": feed}, extract={"workers": 1, **extract})
        with PeakWatch() as watch, open_runtime(config, Clock()) as rt:
            report = rt.poll(rt.configured_states())
            rows = {r["url"]: dict(r) for r in rt.store.read("SELECT * FROM articles")}
    return Limited(report, rows, watch.peaks)


def test_a_page_past_the_time_limit_is_killed_and_costs_only_itself(tmp_path: Path) -> None:
    limited = poll_with_limits(tmp_path, "/limits/slow", slow_page(), {"timeout": "3s"})
    [feed] = limited.report.feeds
    assert (feed.status, feed.new_articles, feed.pages_failed) == ("ok", 3, 1)
    slow = next(r for url, r in limited.rows.items() if url.endswith("/slow"))
    assert slow["full_text"] == 0
    assert slow["extract_error"] == "not extracted: extraction took longer than 3s"
    assert sum(r["full_text"] for r in limited.rows.values()) == 2
    assert limited.peaks and max(limited.peaks.values()) < 1000 * MB  # the default limit


def test_a_page_past_the_memory_limit_fails_within_the_limit(tmp_path: Path) -> None:
    limit = 150_000_000
    limited = poll_with_limits(
        tmp_path, "/limits/greedy", greedy_page(), {"timeout": "120s", "max_memory": "150MB"}
    )
    [feed] = limited.report.feeds
    assert (feed.status, feed.new_articles, feed.pages_failed) == ("ok", 3, 1)
    greedy = next(r for url, r in limited.rows.items() if url.endswith("/greedy"))
    assert greedy["full_text"] == 0 and "out of memory" in greedy["extract_error"]
    assert sum(r["full_text"] for r in limited.rows.values()) == 2
    # RLIMIT_DATA bounds the heap; resident memory adds the mapped code (about 30 MB)
    peak = max(limited.peaks.values())
    print(f"\nworker peak {peak / MB:.0f} MB under a {limit / MB:.0f} MB limit")
    assert limit * 0.5 < peak < limit + 64 * MB
