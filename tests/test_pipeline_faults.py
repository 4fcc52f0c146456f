"""Faulty feeds and pages in a real poll: each costs its own feed or article, never the cycle.

One site serves healthy outlets beside every kind of fault; the Runtime polls it twice, 16
minutes apart (feeds poll every 15 minutes). Then back-off, and `monitor poll` as a command.
"""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import Result

from monitor.ledger import list_hits
from monitor.loopback import LoopbackSite, Request, Response
from monitor.models import Article, Hit
from monitor.pipeline import NOT_ANNOUNCED, CycleReport
from monitor.sitegen import SiteArticle, add_outlet, render_page
from monitor.sitegen_pages import script_json
from monitor.store import FeedState
from tests.sites import (
    NOW,
    Clock,
    add_feed,
    fixture_articles,
    folder_articles,
    open_runtime,
    run_cli,
    write_config,
    write_watchlist,
)

INTERVAL = 900.0  # the config's default poll interval, 15m
RETRY_AFTER = 7200
ERROR_PAGE = (
    "<!DOCTYPE html><html><head><title>Error</title></head><body><h1>Something went wrong</h1>"
    "<p>Please try again later.</p></body></html>"
)
# A page about the Met whose text needs the right decoding: curly quotes, an accent.
ACCENTED = SiteArticle(
    "khan-cafe",
    "Mayor’s café visit with the commissioner",
    (
        "The mayor met Sir Mark Rowley at a café in Brixton on Tuesday, where they discussed"
        " the Met’s plans for neighbourhood policing and the IOPC’s latest report.",
        "“We want officers back on the streets,” the commissioner said, adding that the"
        " force’s vetting unit had doubled in size since the review.",
        "Residents said they welcomed the visit but wanted to see results before the summer.",
    ),
    NOW - timedelta(hours=2),
)
# The same text under another headline (one feed, so its own GUID and title).
ACCENTED_COPY = replace(ACCENTED, slug="khan-cafe-copy", title="Café talks: the Met’s new promise")
# A page built by scripts: its HTML holds no article, its JSON-LD the whole of it. Title and
# summary say nothing a Met watchlist matches; the body does.
SCRIPTED = SiteArticle(
    "scripted-inquiry",
    "Inquiry findings published",
    (
        "The Independent Office for Police Conduct said on Monday that two Metropolitan Police"
        " officers would face gross misconduct hearings over messages shared in a group chat.",
        "The watchdog's director said the messages showed attitudes that had no place in"
        " policing, and that the force had been told to review its vetting of both officers.",
        "The findings of the inquiry were published after a year-long investigation.",
    ),
    NOW - timedelta(hours=1),
    summary="Findings of an inquiry were published on Monday.",
)


# An entry whose link answers 200 with a cookie wall: the wall is not the article, so its
# summary (which a Met watchlist matches) stands in.
WALLED = SiteArticle(
    "walled-dismissal",
    "Constable dismissed after lying to investigators",
    ("(a cookie wall)",),
    NOW - timedelta(hours=1),
    summary="The IOPC said the Metropolitan Police constable lied about an arrest in Brixton.",
)
COOKIE_WALL_PAGE = (
    "<!DOCTYPE html><html><head><title>Before you continue</title></head><body><main>"
    "<h1>Before you continue</h1><p>We use cookies and data to deliver and maintain our"
    " services, track outages and protect against spam, fraud and abuse, and measure audience"
    " engagement and site statistics to understand how our services are used.</p><p>If you"
    " choose to accept all, we will also use cookies and data to develop and improve new"
    " services, deliver and measure the effectiveness of ads, and show personalised content,"
    " depending on your settings. Select more options to see additional information, including"
    " details about managing your privacy settings.</p><p>Accept all. Reject all.</p>"
    "</main></body></html>"
)


def scripted_page(article: SiteArticle) -> str:
    """An app shell: navigation and a script; the article only in its JSON-LD, with markup."""
    data = {
        "@context": "https://schema.org",
        "@graph": [
            {"@type": "WebSite", "name": "App News"},
            {
                "@type": "NewsArticle",
                "headline": article.title,
                "articleBody": "".join(f"<p>{p}</p>" for p in article.paragraphs),
            },
        ],
    }
    return (
        f"<!DOCTYPE html><html><head><title>{article.title}</title>"
        f'<script type="application/ld+json">{script_json(data)}</script></head><body>'
        '<nav><a href="/">Home</a> <a href="/news">News</a></nav><div id="app"></div>'
        '<script src="/static/app.js"></script></body></html>'
    )


# Pages that cannot be extracted: titles say nothing a Met watchlist matches, summaries do.
PDF = SiteArticle(
    "annual-report",
    "Annual complaints report published",
    ("(a PDF)",),
    NOW - timedelta(hours=3),
    summary="The IOPC published its annual figures on complaints against officers.",
)
BROKEN = SiteArticle(
    "officer-dismissed",
    "Officer dismissed after watchdog inquiry",
    ("(never served)",),
    NOW - timedelta(hours=4),
    summary="A Metropolitan Police constable lied about an arrest, the watchdog found.",
)
DROPPED = SiteArticle(
    "custody-death",
    "Inquest opens into death in custody",
    ("(never served)",),
    NOW - timedelta(hours=5),
    summary="Scotland Yard said the IOPC had been informed of the death.",
)


def page_path(request: Request) -> str:
    return request.path.split("?", 1)[0]


@dataclass
class Faulty:
    """Two poll cycles over healthy and faulty feeds."""

    site: LoopbackSite
    inside: LoopbackSite  # 127.0.0.2: an internal host nobody may reach
    config: Path
    healthy: dict[str, SiteArticle]  # page URL -> article of the healthy outlets
    first: CycleReport
    second: CycleReport
    first_requests: list[str]
    second_requests: list[str]
    states: dict[str, FeedState]  # after the second cycle
    articles: dict[str, Article]
    hits: dict[str, Hit]  # by article URL
    first_poll: datetime


def serve_faults(site: LoopbackSite, inside: LoopbackSite) -> dict[str, str]:
    """Feed name -> URL for every faulty feed."""
    text = {"Content-Type": "text/plain"}
    routes: dict[str, Response] = {
        "/e500.xml": Response(500, b"internal error", text),
        "/e503.xml": Response(503, b"unavailable", text),
        "/limited.xml": Response(429, b"slow down", {**text, "Retry-After": str(RETRY_AFTER)}),
        "/gone.xml": Response(410, b"gone", text),
        # a feed that never finishes: one byte every half second
        "/trickle.xml": Response(
            body=b'<?xml version="1.0"?><rss version="2.0"><channel>' + b" " * 400,
            headers={"Content-Type": "application/rss+xml"},
            trickle=0.5,
        ),
        # 20 MB of zeros in about 20 KB, past the 1MB cap once inflated
        "/bomb.xml": Response(
            body=gzip.compress(b"\0" * 20_000_000),
            headers={"Content-Type": "application/rss+xml", "Content-Encoding": "gzip"},
        ),
        "/inside.xml": Response(302, headers={"Location": inside.url("/feed.xml")}),
        "/moved.xml": Response(301, headers={"Location": site.url("/new/rss.xml")}),
        "/moved-nowhere.xml": Response(301, headers={"Location": site.url("/error.html")}),
    }
    site.routes.update(routes)
    site.add("/error.html", ERROR_PAGE)
    inside.add("/feed.xml", b'<rss version="2.0"><channel></channel></rss>', "application/rss+xml")
    names = {
        "Error 500": "/e500.xml",
        "Error 503": "/e503.xml",
        "Rate limited": "/limited.xml",
        "Gone": "/gone.xml",
        "Trickle": "/trickle.xml",
        "Bomb": "/bomb.xml",
        "Internal redirect": "/inside.xml",
        "Not a feed": "/error.html",
        "Moved": "/moved.xml",
        "Moved nowhere": "/moved-nowhere.xml",
    }
    return {name: site.url(path) for name, path in names.items()}


def serve_healthy(site: LoopbackSite) -> tuple[dict[str, str], dict[str, SiteArticle]]:
    """Healthy outlets (one with awkward pages); feed name -> URL, page URL -> article."""
    relevant = folder_articles("relevant")
    feeds = {
        "Healthy": add_outlet(site, "Healthy", relevant[:2], prefix="/healthy"),
        "New home": add_outlet(site, "New home", relevant[2:3], prefix="/new"),
    }
    pages = {site.url(f"/healthy/{a.slug}"): a for a in relevant[:2]}
    pages[site.url(f"/new/{relevant[2].slug}")] = relevant[2]
    # the same page twice, with wrong charset headers: UTF-8 called Latin-1, cp1252 called UTF-8
    utf8 = render_page(ACCENTED, "Charset").encode("utf-8")
    cp1252 = render_page(ACCENTED_COPY, "Charset").replace('<meta charset="utf-8">', "")
    site.add("/charset/as-latin1", utf8, "text/html; charset=iso-8859-1")
    site.add("/charset/as-utf8", cp1252.encode("cp1252"), "text/html; charset=utf-8")
    site.add("/charset/scripted", scripted_page(SCRIPTED))
    site.add("/charset/walled", COOKIE_WALL_PAGE)
    links = [
        (ACCENTED, site.url("/charset/as-latin1")),
        (ACCENTED_COPY, site.url("/charset/as-utf8")),
        (SCRIPTED, site.url("/charset/scripted")),
        (WALLED, site.url("/charset/walled")),
    ]
    feeds["Charset"] = add_feed(site, "/charset/rss.xml", links)
    site.add(
        "/docs/annual-report.pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + bytes(500), "application/pdf"
    )
    site.routes["/docs/officer-dismissed"] = Response(500, b"error", {"Content-Type": "text/plain"})
    site.routes["/docs/custody-death"] = Response(drop=True)
    docs = [
        (PDF, site.url("/docs/annual-report.pdf")),
        (BROKEN, site.url("/docs/officer-dismissed")),
        (DROPPED, site.url("/docs/custody-death")),
    ]
    feeds["Documents"] = add_feed(site, "/docs/rss.xml", docs)
    return feeds, pages


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Faulty]:
    tmp = tmp_path_factory.mktemp("faults")
    with LoopbackSite() as site, LoopbackSite("127.0.0.2") as inside:
        healthy_feeds, healthy = serve_healthy(site)
        # "New home" is only reached through "Moved": keep it out of the config
        healthy_feeds.pop("New home")
        feeds = {**healthy_feeds, **serve_faults(site, inside)}
        config = write_config(tmp, feeds, fetch={"timeout": "2s", "max_bytes": "1MB"})
        clock = Clock()
        with open_runtime(config, clock) as rt:
            first = rt.poll(rt.configured_states())
            first_requests = [page_path(r) for r in site.requests]
            site.requests.clear()
            clock.advance(INTERVAL + 60)
            second = rt.poll(rt.due_states())
            second_requests = [page_path(r) for r in site.requests]
            states = {s.name: s for s in rt.store.feed_states()}
            articles = {a.url: a for a in rt.store.articles()}
            hits = {h.article.url: h for h in list_hits(rt.store)}
        yield Faulty(
            site,
            inside,
            config,
            healthy,
            first,
            second,
            first_requests,
            second_requests,
            states,
            articles,
            hits,
            NOW,
        )


def report_of(cycle: CycleReport, name: str) -> str:
    return next(f.status for f in cycle.feeds if f.feed == name)


# -- the cycle goes on ------------------------------------------------------------------------


def test_every_feed_is_reported_and_healthy_articles_are_stored(faulty: Faulty) -> None:
    assert len(faulty.first.feeds) == len(faulty.states) == 13
    for url, source in faulty.healthy.items():
        stored = faulty.articles[url]
        assert stored.full_text and source.paragraphs[0] in stored.text
        assert url in faulty.hits  # every healthy article is about the Met
    for name in ("Healthy", "Charset", "Documents", "Moved"):
        assert report_of(faulty.first, name) == "ok"


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("Error 500", "HTTP 500"),
        ("Error 503", "HTTP 503"),
        ("Rate limited", "HTTP 429"),
        ("Gone", "HTTP 410"),
        ("Trickle", "no complete answer within 2s"),
        ("Bomb", "cap"),
        ("Internal redirect", "127.0.0.2"),
        ("Not a feed", "not a feed"),
        ("Moved nowhere", "not a feed"),
    ],
)
def test_each_fault_is_its_feeds_recorded_failure(faulty: Faulty, name: str, error: str) -> None:
    assert report_of(faulty.first, name) == "failed"
    state = faulty.states[name]
    assert state.last_error is not None and error in state.last_error
    assert state.failures >= 1
    assert state.failing_since == faulty.first_poll
    assert state.last_success is None


def test_a_redirect_into_an_internal_address_never_reaches_it(faulty: Faulty) -> None:
    assert "/inside.xml" in faulty.first_requests
    assert faulty.inside.requests == []


def test_retry_after_is_honoured_by_the_next_poll(faulty: Faulty) -> None:
    limited = faulty.states["Rate limited"]
    assert limited.next_poll == faulty.first_poll + timedelta(seconds=RETRY_AFTER)
    assert "/limited.xml" in faulty.first_requests
    assert "/limited.xml" not in faulty.second_requests  # 16 minutes later: not yet
    assert "/e500.xml" in faulty.second_requests  # while a plain failure is retried


def test_410_marks_the_feed_gone_and_it_stays_listed(faulty: Faulty) -> None:
    gone = faulty.states["Gone"]
    assert gone.gone
    assert gone.next_poll == faulty.first_poll + timedelta(days=1)  # still tried daily
    assert "/gone.xml" not in faulty.second_requests
    result = run_cli(faulty.config, "feeds", "--json")
    assert result.exit_code == 0, result.output
    listed = {f["name"]: f for f in json.loads(result.stdout)}
    assert set(listed) == set(faulty.states)
    assert listed["Gone"]["gone"] is True
    assert listed["Gone"]["status"] == "gone"
    assert "HTTP 410" in listed["Gone"]["last_error"]
    assert listed["Error 500"]["status"] == "failing"
    assert listed["Healthy"]["status"] == "ok"


def test_a_301_moves_the_feed_once_the_new_url_parses(faulty: Faulty) -> None:
    moved = faulty.states["Moved"]
    new_home = faulty.site.url("/new/rss.xml")
    assert moved.url == new_home
    assert moved.config_url == faulty.site.url("/moved.xml")
    assert "/moved.xml" in faulty.first_requests
    # the second poll goes straight to the new address
    assert "/new/rss.xml" in faulty.second_requests
    assert "/moved.xml" not in faulty.second_requests
    assert report_of(faulty.second, "Moved") == "not_modified"
    nowhere = faulty.states["Moved nowhere"]
    assert nowhere.url == nowhere.config_url == faulty.site.url("/moved-nowhere.xml")


def test_a_wrong_charset_header_still_gives_readable_text(faulty: Faulty) -> None:
    for path in ("/charset/as-latin1", "/charset/as-utf8"):
        article = faulty.articles[faulty.site.url(path)]
        assert article.full_text
        for paragraph in ACCENTED.paragraphs:
            assert paragraph in article.text
        assert "\ufffd" not in article.text and "â€" not in article.text
        assert faulty.site.url(path) in faulty.hits


def test_a_page_built_by_scripts_is_matched_on_the_body_its_json_ld_states(
    faulty: Faulty,
) -> None:
    url = faulty.site.url("/charset/scripted")
    article = faulty.articles[url]
    assert article.full_text is True and article.extract_error is None
    assert article.text == "\n".join(SCRIPTED.paragraphs)  # no markup, no navigation
    hit = faulty.hits[url]
    assert '"metropolitan police"' in hit.matched
    assert "Metropolitan Police" in hit.snippet.text


def test_a_cookie_wall_is_not_taken_for_the_article_and_its_summary_is_matched(
    faulty: Faulty,
) -> None:
    url = faulty.site.url("/charset/walled")
    article = faulty.articles[url]
    assert article.full_text is False and article.text == ""
    assert article.extract_error == NOT_ANNOUNCED
    hit = faulty.hits[url]
    assert hit.matched == ('"metropolitan police"', "IOPC")
    assert "cookies" not in hit.snippet.text


def test_a_pdf_is_not_extracted_and_its_summary_is_matched(faulty: Faulty) -> None:
    url = faulty.site.url("/docs/annual-report.pdf")
    article = faulty.articles[url]
    assert article.full_text is False
    assert article.text == ""
    assert article.extract_error is not None and "application/pdf" in article.extract_error
    assert article.document.text == PDF.summary
    hit = faulty.hits[url]
    assert hit.matched == ("IOPC",)
    assert "IOPC" in hit.snippet.text


@pytest.mark.parametrize(
    ("path", "source", "matched"),
    [
        ("/docs/officer-dismissed", BROKEN, ('"metropolitan police"',)),
        ("/docs/custody-death", DROPPED, ('"Scotland Yard"', "IOPC")),
    ],
)
def test_a_page_that_cannot_be_fetched_is_matched_on_its_summary(
    faulty: Faulty, path: str, source: SiteArticle, matched: tuple[str, ...]
) -> None:
    url = faulty.site.url(path)
    article = faulty.articles[url]
    assert article.full_text is False
    assert article.summary == source.summary
    assert article.extract_error is not None and "page not fetched" in article.extract_error
    assert faulty.hits[url].matched == matched
    assert faulty.first_requests.count(path) == 1
    documents = next(f for f in faulty.first.feeds if f.feed == "Documents")
    assert documents.pages_failed == 3  # the PDF and these two


def test_failures_count_up_in_the_second_cycle(faulty: Faulty) -> None:
    assert faulty.states["Error 500"].failures == 2
    assert faulty.states["Not a feed"].failures == 2
    assert faulty.states["Rate limited"].failures == 1  # not yet polled again
    assert faulty.states["Healthy"].failures == 0
    assert report_of(faulty.second, "Healthy") == "not_modified"


# -- back-off ---------------------------------------------------------------------------------


def test_a_failing_feed_backs_off_exponentially_and_is_never_disabled(tmp_path: Path) -> None:
    with LoopbackSite() as site:
        site.routes["/down.xml"] = Response(500, b"down", {"Content-Type": "text/plain"})
        config = write_config(tmp_path, {"Down": site.url("/down.xml")}, intervals={"Down": "10m"})
        clock = Clock()
        delays = []
        with open_runtime(config, clock) as rt:
            for failures in range(1, 11):
                started = clock()
                assert [s.name for s in rt.due_states()] == ["Down"]
                rt.poll(rt.due_states())
                state = rt.store.feed_states()[0]
                assert state.failures == failures
                assert state.next_poll is not None
                delays.append((state.next_poll - started).total_seconds())
                clock.advance(delays[-1] - 1)
                assert rt.due_states() == []  # not a second early
                clock.advance(1)
            requests = len(site.hits("/down.xml"))
            add_outlet(site, "Down", folder_articles("relevant")[:1], prefix="/back")
            site.routes["/down.xml"] = site.routes["/back/rss.xml"]  # it recovers
            report = rt.poll(rt.due_states())
            recovered = rt.store.feed_states()[0]
    assert delays == [600, 1200, 2400, 4800, 9600, 19200, 38400, 76800, 86400, 86400]
    assert requests == 10
    assert report.new_articles == 1
    assert recovered.failures == 0
    assert recovered.failing_since is None
    assert recovered.next_poll == clock() + timedelta(minutes=10)


# -- `monitor poll` ---------------------------------------------------------------------------


def test_monitor_poll_with_a_failing_feed_exits_0_with_a_summary(tmp_path: Path) -> None:
    relevant = folder_articles("relevant")
    with LoopbackSite() as site:
        feeds = {
            "Ledger": add_outlet(site, "Ledger", relevant[:3], prefix="/ledger"),
            "Courier": add_outlet(site, "Courier", relevant[3:], prefix="/c", feed_format="atom"),
            "Broken": site.url("/missing.xml"),  # 404
        }
        config = write_config(tmp_path, feeds)
        result = run_cli(config, "poll")
        again = run_cli(config, "poll")
    assert result.exit_code == 0, result.output
    summary = re.search(
        r"polled 3 feeds in (\d+\.\d)s: 2 ok, 0 not modified, 1 failed\n"
        rf"new articles: {len(relevant)}\nnew hits: {len(relevant)}\n$",
        result.stdout,
    )
    assert summary, result.stdout
    assert re.search(r"failed +Broken: HTTP 404", result.stdout)
    assert again.exit_code == 0, again.output
    assert "polled 3 feeds" in again.stdout  # `monitor poll` polls every feed, due or not
    assert "2 not modified, 1 failed" in again.stdout and "new articles: 0" in again.stdout
    with open_runtime(config, Clock()) as rt:
        stored = {a.url for a in rt.store.articles()}
    assert stored == {site.url(f"/ledger/{a.slug}") for a in relevant[:3]} | {
        site.url(f"/c/{a.slug}") for a in relevant[3:]
    }


def test_monitor_poll_with_an_invalid_watchlist_exits_1_before_any_request(
    tmp_path: Path,
) -> None:
    with LoopbackSite() as site:
        feeds = {"Ledger": add_outlet(site, "Ledger", folder_articles("relevant"), prefix="/l")}
        config = write_config(tmp_path, feeds)
        write_watchlist(config, "broken", 'match = ["IOPC NEAR/5 (NOT vetting)"]\n')
        result = run_cli(config, "poll")
        assert site.requests == []
    assert result.exit_code == 1
    assert "broken.toml:1:" in result.stderr
    assert "Traceback" not in result.output
    assert "polled" not in result.stdout


# -- pages fetched again ----------------------------------------------------------------------

BANTER = replace(
    fixture_articles()[0],
    slug="banter",
    title="Officers defended their messages as banter, watchdog finds",
    summary="A review of thousands of messages found language officers called banter.",
)


def test_a_page_that_failed_in_a_way_that_passes_is_fetched_again_and_matched(
    tmp_path: Path,
) -> None:
    """A page that answers 503 while its entry is new is matched on the summary, which names
    no one; the next poll of its feed half an hour on fetches it again, and its text (the
    Metropolitan Police, the IOPC) makes the hit. A page that keeps failing is fetched again
    after each of PAGE_RETRY_DELAYS, then left; a 404 is never fetched again."""
    stubborn = replace(BANTER, slug="stubborn", title="Messages under review", summary="More.")
    lost = replace(BANTER, slug="lost", title="Messages lost", summary="Gone.")
    with LoopbackSite() as site:
        busy = Response(status=503, body=b"busy", headers={"Content-Type": "text/plain"})
        for path in ("/news/banter", "/news/stubborn"):
            site.routes[path] = busy
        links = [(a, site.url(f"/news/{a.slug}")) for a in (BANTER, stubborn, lost)]
        config = write_config(tmp_path, {"Agency": add_feed(site, "/rss.xml", links)})
        clock = Clock()
        with open_runtime(config, clock) as rt:
            first = rt.poll(rt.configured_states())
            site.add("/news/banter", render_page(BANTER, "Agency"))
            polls = {}
            for minutes in (10, 30, 120, 150, 630, 2000):  # since the first poll
                clock.now = NOW + timedelta(minutes=minutes)
                polls[minutes] = rt.poll(rt.configured_states())
            stored = {a.url.rsplit("/", 1)[1]: a for a in rt.store.articles()}
            rows = rt.store.read("SELECT url, page_retries, page_retry_at FROM articles")
            hits = list_hits(rt.store)
        fetched = Counter(r.path for r in site.requests if r.path.startswith("/news/"))
    assert (first.new_articles, first.new_hits) == (3, 0)
    assert (first.pages_failed, first.pages_to_retry) == (3, 2)  # not the 404
    assert polls[10].new_hits == 0 and polls[30].new_hits == 1
    retried = {m: (r.pages_retried, r.pages_recovered) for m, r in polls.items()}
    assert retried == {10: (0, 0), 30: (2, 1), 120: (0, 0), 150: (1, 0), 630: (1, 0), 2000: (0, 0)}
    assert [h.article.url for h in hits] == [links[0][1]]
    assert {"IOPC", '"metropolitan police"'} <= set(hits[0].matched)
    assert stored["banter"].full_text and stored["banter"].extract_error is None
    assert stored["banter"].text.startswith(BANTER.paragraphs[0])  # the page's text, stored
    # the first fetch, then 30 minutes, 2 and 8 hours after the first failure; never a 404
    assert fetched == {"/news/banter": 2, "/news/stubborn": 4, "/news/lost": 1}
    assert "HTTP 503" in (stored["stubborn"].extract_error or "")
    assert "HTTP 404" in (stored["lost"].extract_error or "")
    retries = {r["url"].rsplit("/", 1)[1]: (r["page_retries"], r["page_retry_at"]) for r in rows}
    assert retries == {"banter": (1, None), "stubborn": (3, None), "lost": (0, None)}


def test_monitor_poll_says_how_many_failed_pages_it_fetched_again(tmp_path: Path) -> None:
    with LoopbackSite() as site:
        site.routes["/news/banter"] = Response(status=503, body=b"busy")
        links = [(BANTER, site.url("/news/banter"))]
        config = write_config(tmp_path, {"Agency": add_feed(site, "/rss.xml", links)})
        first = run_cli(config, "poll")
        site.add("/news/banter", render_page(BANTER, "Agency"))
        tested = run_cli(config, "test", "met-police", site.url("/news/banter"))
        with open_runtime(config, Clock()) as rt, rt.store.write() as conn:  # due now
            conn.execute("UPDATE articles SET page_retry_at = '2000-01-01T00:00:00+00:00'")
        again = run_cli(config, "poll")
    assert first.exit_code == 0 and "fetched again:" not in first.stdout, first.output
    assert "1 new article, 0 new hits, 1 page not extracted, 1 to fetch again (" in first.stdout
    assert "new articles: 1 (1 page not extracted, 1 to fetch again)\n" in first.stdout
    assert tested.exit_code == 0 and tested.stdout.startswith("Met Police: HIT\n"), tested.output
    assert "; only its feed summary was matched (page not fetched: HTTP 503 from " in tested.stdout
    assert tested.stdout.endswith("); its page will be fetched again; no hit stored\n")
    assert again.exit_code == 0, again.output
    assert again.stdout.endswith(
        "new articles: 0\nfetched again: 1 page that had failed, 1 extracted now\nnew hits: 1\n"
    ), again.stdout


def missing_part(result: Result) -> str:
    """The "may have missed" part of the digest a `digest` command printed the path of."""
    assert result.exit_code == 0, result.output
    path = Path(result.stdout.strip().splitlines()[-1].split(": ")[-1]).with_suffix(".txt")
    text = path.read_text(encoding="utf-8")
    return " ".join(text.split("What this digest may have missed")[1].split())


def test_a_digest_says_when_no_feed_was_polled_in_its_window(tmp_path: Path) -> None:
    """ "Every poll succeeded" is not said of a window in which no poll ran at all."""
    with LoopbackSite() as site:
        page = site.add("/news/named", render_page(BANTER, "Agency"))
        config = write_config(tmp_path, {"Agency": add_feed(site, "/rss.xml", [(BANTER, page)])})
        with config.open("a", encoding="utf-8") as f:  # an idle window's digest goes out too
            f.write("\n[digest]\nsend_empty = true\n")
        assert run_cli(config, "poll").exit_code == 0
        polled = missing_part(run_cli(config, "digest", "--dry-run"))
        assert run_cli(config, "digest").exit_code == 0  # archived: the window starts again
        idle = missing_part(run_cli(config, "digest", "--dry-run"))
    assert "Nothing we know of: every poll succeeded" in polled
    assert "No feed was polled in this window (was the daemon running?)" in idle
    assert "every poll succeeded" not in idle


def test_the_digest_says_how_many_unread_pages_will_be_fetched_again(tmp_path: Path) -> None:
    named = replace(BANTER, slug="named", title="IOPC finds officers shared messages", summary=".")

    with LoopbackSite() as site:
        site.routes["/news/banter"] = Response(status=503, body=b"busy")
        site.add("/news/named", render_page(named, "Agency"))
        links = [(BANTER, site.url("/news/banter")), (named, site.url("/news/named"))]
        config = write_config(tmp_path, {"Agency": add_feed(site, "/rss.xml", links)})
        assert run_cli(config, "poll").exit_code == 0
        before = missing_part(run_cli(config, "digest", "--dry-run"))
        site.add("/news/banter", render_page(BANTER, "Agency"))
        with open_runtime(config, Clock()) as rt, rt.store.write() as conn:  # due now
            conn.execute("UPDATE articles SET page_retry_at = '2000-01-01T00:00:00+00:00'")
        assert run_cli(config, "poll").exit_code == 0
        after = missing_part(run_cli(config, "digest", "--dry-run"))
    assert "Article pages that could not be read: 1." in before
    assert "1 of them will be fetched again; a hit their text makes comes in a later" in before
    assert "could not be read" not in after and "fetched again" not in after


# -- a feed's answer that meets a bug ----------------------------------------------------------


def test_validators_past_ascii_do_not_stop_later_polls(tmp_path: Path) -> None:
    """A feed answering with a UTF-8 ETag and a Latin-1 date: the next poll sends them back
    (it raised UnicodeEncodeError, and the poll of every feed died with it) and gets a 304."""
    first, second = fixture_articles()[:2]
    with LoopbackSite() as site:
        odd = {"ETag": '"caf\u00c3\u00a9"', "Last-Modified": "Mon, 01 Jan 2024 \u00e9"}
        links = [(first, site.add(f"/news/{first.slug}", render_page(first, "Odd")))]
        feeds = {"Odd": add_feed(site, "/odd.xml", links, headers=odd)}
        links = [(second, site.add(f"/news/{second.slug}", render_page(second, "Plain")))]
        feeds["Plain"] = add_feed(site, "/plain.xml", links)
        config = write_config(tmp_path, feeds)
        clock = Clock()
        with open_runtime(config, clock) as rt:
            polls = [rt.poll(rt.configured_states())]
            clock.advance(INTERVAL)
            polls.append(rt.poll(rt.configured_states()))
            stored = len(list(rt.store.articles()))
    statuses = [{f.feed: f.status for f in p.feeds} for p in polls]
    assert statuses == [
        {"Odd": "ok", "Plain": "ok"},
        {"Odd": "not_modified", "Plain": "not_modified"},
    ]
    assert stored == 2


def test_an_unexpected_error_in_one_feeds_answer_is_that_feeds_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug met by one feed's answer (here a parser that raises what it never should) fails
    that feed, logged with its traceback; every other feed of the cycle is stored."""
    import monitor.runtime

    first, second = fixture_articles()[:2]
    with LoopbackSite() as site:
        feeds = {
            "Broken": add_feed(site, "/broken.xml", [(first, site.url("/news/a"))]),
            "Fine": add_feed(
                site, "/fine.xml", [(second, site.add("/news/b", render_page(second, "Fine")))]
            ),
        }
        real = monitor.runtime._parse_feed

        def parse(content: bytes, headers: object, url: str, *args: object) -> object:
            if url.endswith("/broken.xml"):
                raise RuntimeError("a bug")
            return real(content, headers, url, *args)  # type: ignore[arg-type]

        monkeypatch.setattr(monitor.runtime, "_parse_feed", parse)
        config = write_config(tmp_path, feeds)
        with open_runtime(config, Clock()) as rt:
            report = rt.poll(rt.configured_states())
            states = {s.name: s for s in rt.configured_states()}
            stored = [a.url for a in rt.store.articles()]
    by_feed = {f.feed: f for f in report.feeds}
    assert by_feed["Broken"].status == "failed" and by_feed["Fine"].status == "ok"
    assert by_feed["Broken"].error == "unexpected error: RuntimeError: a bug"
    assert states["Broken"].last_error == "unexpected error: RuntimeError: a bug"
    assert states["Broken"].failures == 1
    assert stored == [site.url("/news/b")]
    [logged] = [r for r in caplog.records if r.getMessage() == "unexpected error: feed Broken"]
    assert logged.exc_info is not None


def test_an_unexpected_error_with_one_page_is_that_pages_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug met by one page's extraction: that article stands on its summary, its feed and
    the cycle go on."""
    from concurrent.futures import Future

    import monitor.runtime

    first, second = fixture_articles()[:2]
    real = monitor.runtime._WhenNeeded.submit

    def submit(self: object, url: str, *args: object) -> object:
        if url.endswith("/news/a"):
            failed: Future[object] = Future()
            failed.set_exception(RuntimeError("a bug"))
            return failed
        return real(self, url, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(monitor.runtime._WhenNeeded, "submit", submit)
    with LoopbackSite() as site:
        links = [
            (first, site.add("/news/a", render_page(first, "Wire"))),
            (second, site.add("/news/b", render_page(second, "Wire"))),
        ]
        config = write_config(tmp_path, {"Wire": add_feed(site, "/rss.xml", links)})
        with open_runtime(config, Clock()) as rt:
            report = rt.poll(rt.configured_states())
            stored = {a.url: a.full_text for a in rt.store.articles()}
    assert [(f.feed, f.status, f.new_articles) for f in report.feeds] == [("Wire", "ok", 2)]
    assert stored == {site.url("/news/a"): False, site.url("/news/b"): True}
