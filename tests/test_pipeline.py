"""Ingest end to end: the real Runtime polls sample outlets on a LoopbackSite into a SQLite file.

RSS 2.0, RSS 1.0 and Atom feeds over the three page layouts; an article carried by two feeds;
conditional requests on the second poll.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from html import escape
from pathlib import Path

import httpx
import pytest

from monitor.ledger import list_hits
from monitor.loopback import LoopbackSite, Request
from monitor.models import Article
from monitor.pipeline import CycleReport
from monitor.sitegen import SiteArticle, add_outlet, render_page
from monitor.sitegen_pages import _COMMENTS
from monitor.store import Store
from tests.sites import (
    NOW,
    Clock,
    add_feed,
    fixture_articles,
    folder_articles,
    open_runtime,
    write_config,
    write_watchlist,
)

FORMATS = ("rss", "rdf", "atom")  # outlet i uses FORMATS[i] and page layout i
TRACKING = "?utm_source=rss&utm_medium=feed&utm_campaign=news&fbclid=IwAR0x#comments"
# Lines of the syndicated fixture that are its outlet's own promotion, rightly dropped.
PROMO_LINES = {
    "Subscribe here for the latest news where you live",
    "For more stories from where you live, visit InYourArea.",
}
# Page furniture of every layout: navigation, share buttons, sidebars, newsletter, footer.
FURNITURE = (
    "Skip to main content",
    "Share on",
    "Copy link",
    "Most read",
    "Read more",
    "Sign up",
    "Subscribe",
    "newsletter",
    "Advertisement",
    "Log in",
    "Accept all",
    "All rights reserved",
    "Privacy",
    "Topics:",
    "Tags:",
)


def page_path(request: Request) -> str:
    return request.path.split("?", 1)[0]


def norm(text: str) -> str:
    return " ".join(text.split())


@dataclass
class Polled:
    """Three outlets polled once: what was served and what was stored."""

    site: LoopbackSite
    served: dict[str, tuple[SiteArticle, int, str]]  # page URL -> (article, layout, feed)
    stored: list[Article]
    report_statuses: dict[str, str]

    def article(self, url: str) -> Article:
        return next(a for a in self.stored if a.url == url)


@pytest.fixture(scope="module")
def polled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Polled]:
    """Fixtures, relevant texts and distractors shared among three outlets, one per format and
    layout; every feed link carries tracking parameters and a fragment."""
    tmp = tmp_path_factory.mktemp("formats")
    articles = fixture_articles() + folder_articles("relevant") + folder_articles("distractors")
    with LoopbackSite() as site:
        feeds: dict[str, str] = {}
        served: dict[str, tuple[SiteArticle, int, str]] = {}
        for layout, fmt in enumerate(FORMATS):
            name, share = f"Outlet {fmt}", articles[layout::3]
            add_outlet(site, name, share, prefix=f"/{fmt}", feed_format=fmt, layout=layout)
            links = [(a, site.url(f"/{fmt}/{a.slug}{TRACKING}")) for a in share]
            feeds[name] = add_feed(site, f"/{fmt}/tracked.xml", links, feed_format=fmt)
            served |= {site.url(f"/{fmt}/{a.slug}"): (a, layout, name) for a in share}
        config = write_config(tmp, feeds)
        with open_runtime(config, Clock()) as rt:
            report = rt.poll(rt.configured_states())
            stored = list(rt.store.articles())
        yield Polled(site, served, stored, {f.feed: f.status for f in report.feeds})


def test_every_article_of_every_format_is_stored_once(polled: Polled) -> None:
    assert set(polled.report_statuses.values()) == {"ok"}
    assert len(polled.report_statuses) == len(FORMATS)
    urls = Counter(a.url for a in polled.stored)
    assert set(urls) == set(polled.served)
    assert set(urls.values()) == {1}
    pages = Counter(page_path(r) for r in polled.site.requests)
    for url in polled.served:
        assert pages[url.removeprefix(polled.site.base)] == 1


def test_stored_urls_are_canonical(polled: Polled) -> None:
    for article in polled.stored:
        assert "utm_" not in article.url and "fbclid" not in article.url
        assert "#" not in article.url
        assert article.url in polled.served


def test_titles_dates_and_feeds_are_the_feeds_own(polled: Polled) -> None:
    for article in polled.stored:
        source, _, feed = polled.served[article.url]
        assert article.title == source.title
        assert article.published == source.published
        assert article.feed == feed
        assert article.full_text is True
        assert article.extract_error is None


def test_extracted_text_holds_every_paragraph(polled: Polled) -> None:
    for article in polled.stored:
        source = polled.served[article.url][0]
        text = norm(article.text)
        missing = [p for p in source.paragraphs if norm(p) not in text and p not in PROMO_LINES]
        assert not missing, f"{article.url} lost {missing}"


def test_extracted_text_has_no_page_furniture(polled: Polled) -> None:
    titles = {a.title for a, _, _ in polled.served.values()}
    for article in polled.stored:
        source = polled.served[article.url][0]
        found = [word for word in FURNITURE if word.lower() in article.text.lower()]
        # the "Read more" links and the "Most read" box name the outlet's other headlines
        related = [t for t in titles - {source.title} if t in article.text]
        assert not found, f"{article.url}: {found}"
        assert not related, f"{article.url}: {related}"


@pytest.mark.parametrize("layout", [0, 1, 2])
def test_extracted_text_has_no_reader_comments(polled: Polled, layout: int) -> None:
    comments = [text for _, text in _COMMENTS]
    checked = 0
    for article in polled.stored:
        if polled.served[article.url][1] != layout:
            continue
        checked += 1
        kept = [c for c in comments if c in article.text]
        assert not kept, f"{article.url}: {kept}"
    assert checked >= 5


# -- one article, two feeds -------------------------------------------------------------------


@pytest.mark.parametrize("slow_feed", ["A", "B"])
def test_article_in_two_feeds_is_fetched_once_and_linked_to_both(
    tmp_path: Path, slow_feed: str
) -> None:
    """Same page, different utm_ parameters and GUIDs. The slower feed's answer arrives while
    the other feed's page request is still out; a watchlist restricted to feed B must still
    get its hit, in this cycle and without a second fetch."""
    story = fixture_articles()[0]
    with LoopbackSite() as site:
        page = site.add("/news/hotton", render_page(story, "Agency"), delay=0.6)
        feeds = {}
        for name, source in (("A", "a-feed"), ("B", "b-feed")):
            link = f"{page}?utm_source={source}&utm_medium=rss"
            delay = 0.3 if name == slow_feed else 0.0
            feeds[name] = add_feed(site, f"/{name.lower()}/rss.xml", [(story, link)], delay=delay)
        config = write_config(tmp_path, feeds)
        write_watchlist(config, "only-b", 'match = ["IOPC"]\nfeeds = ["B"]\n')
        write_watchlist(config, "only-a", 'match = ["IOPC"]\nfeeds = ["A"]\n')
        clock = Clock()
        with open_runtime(config, clock) as rt:
            first = rt.poll(rt.configured_states())
            clock.advance(3600)
            second = rt.poll(rt.configured_states())
            store = rt.store
            stored = list(store.articles())
            hits = store.read("SELECT watchlist, article_id FROM hits ORDER BY watchlist")
            guids = store.read("SELECT feed_id, article_id FROM article_guids")
            logged = store.read("SELECT SUM(new_articles), SUM(pages_failed) FROM polls")[0]
            hit_feeds = {h.watchlist: h.article.feed for h in list_hits(store)}
        assert [page_path(r) for r in site.requests].count("/news/hotton") == 1
    assert [a.url for a in stored] == [page]
    article_id = stored[0].id
    assert [(h["watchlist"], h["article_id"]) for h in hits] == [
        ("Met Police", article_id),
        ("only-a", article_id),
        ("only-b", article_id),
    ]
    assert len(guids) == 2 and {g["article_id"] for g in guids} == {article_id}
    # each restricted watchlist's hit names the feed that brought it
    assert hit_feeds["only-a"] == "A" and hit_feeds["only-b"] == "B"
    assert first.new_articles == 1 and tuple(logged) == (1, 0)  # counted once, by either feed
    assert first.new_hits == 3
    assert {f.status for f in second.feeds} == {"not_modified"}


def test_article_fetched_by_a_feed_still_busy_is_shared_with_the_next(tmp_path: Path) -> None:
    """Feed A's copy of the page is extracted but A waits for another, slower page when B's
    answer arrives: B takes A's result, stores first, and A links to B's article."""
    shared, slow = fixture_articles()[:2]
    with LoopbackSite() as site:
        page = site.add("/news/shared", render_page(shared, "Agency"))
        other = site.add("/news/slow", render_page(slow, "Agency"), delay=3.0)
        feeds = {
            "A": add_feed(site, "/a/rss.xml", [(shared, page), (slow, other)]),
            "B": add_feed(site, "/b/rss.xml", [(shared, f"{page}?utm_source=b")], delay=2.0),
        }
        config = write_config(tmp_path, feeds)
        write_watchlist(config, "only-b", 'match = ["IOPC"]\nfeeds = ["B"]\n')
        with open_runtime(config, Clock()) as rt:
            report = rt.poll(rt.configured_states())
            stored = {a.url: a for a in rt.store.articles()}
            hits = rt.store.read("SELECT watchlist, article_id FROM hits")
            guids = rt.store.read("SELECT article_id FROM article_guids")
        assert [page_path(r) for r in site.requests].count("/news/shared") == 1
    assert sorted(stored) == [page, other]
    assert stored[page].full_text
    assert ("only-b", stored[page].id) in {(h[0], h[1]) for h in hits}
    assert sorted(g[0] for g in guids) == sorted([stored[page].id] * 2 + [stored[other].id])
    assert report.new_articles == 2


def test_a_google_alert_is_the_article_it_links_to_fetched_from_its_publisher(
    tmp_path: Path, looked_up: list[str]
) -> None:
    """A Google Alerts feed links its entries through google.com/url. The article is fetched
    from its publisher, once, and is the same article as the publisher's own feed entry."""
    story = fixture_articles()[0]
    with LoopbackSite() as site:
        page = site.add("/news/hotton", render_page(story, "Agency"))
        alert = f"https://www.google.com/url?rct=j&sa=t&url={page}&ct=ga&cd=CAIyGTg5&usg=AOvVaw2e"
        feeds = {
            "Alert": add_feed(site, "/alerts/feed", [(story, alert)], feed_format="atom"),
            "Agency": add_feed(site, "/agency/rss.xml", [(story, f"{page}?utm_source=rss")]),
        }
        config = write_config(tmp_path, feeds)
        with open_runtime(config, Clock()) as rt:
            alerted = rt.poll(rt.store.feed_states(["Alert"]))  # the alert brings it first
            report = rt.poll(rt.store.feed_states(["Agency"]))
            stored = list(rt.store.articles())
            guids = rt.store.read("SELECT feed_id, article_id FROM article_guids")
            hits = list_hits(rt.store)
        assert [page_path(r) for r in site.requests].count("/news/hotton") == 1
    assert set(looked_up) == {"127.0.0.1"}
    assert {f.status for f in alerted.feeds + report.feeds} == {"ok"}
    assert [(a.url, a.full_text) for a in stored] == [(page, True)]
    assert (stored[0].feed, stored[0].outlet) == ("Alert", "127.0.0.1")  # the site it leads to
    assert len(guids) == 2 and {g["article_id"] for g in guids} == {stored[0].id}
    assert [(h.watchlist, h.article.url) for h in hits] == [("Met Police", page)]


def poll_twice(
    tmp_path: Path, site: LoopbackSite, url: str
) -> tuple[CycleReport, CycleReport, dict[str, Article], set[str], Counter[str]]:
    """Poll a config of the one feed "Courier" twice, an hour apart: both reports, the stored
    articles by URL, the URLs of the hits, and how often the site served each path."""
    config = write_config(tmp_path, {"Courier": url})
    clock = Clock()
    with open_runtime(config, clock) as rt:
        first = rt.poll(rt.configured_states())
        clock.advance(3600)
        second = rt.poll(rt.configured_states())
        stored = {a.url: a for a in rt.store.articles()}
        hits = {h.article.url for h in list_hits(rt.store)}
    return first, second, stored, hits, Counter(page_path(r) for r in site.requests)


@pytest.mark.parametrize("packed", [False, True], ids=["xml", "xml.gz"])
def test_a_news_sitemap_is_polled_as_a_feed(tmp_path: Path, packed: bool) -> None:
    """An outlet with no RSS feed but a news sitemap (or a gzip file of one): its articles
    are fetched once, matched on their text, headed by the sitemap's titles (or else their
    pages'), and the second poll is a conditional request answered 304."""
    named, untitled, other = (
        fixture_articles()[0],
        fixture_articles()[1],
        folder_articles("distractors")[0],
    )
    with LoopbackSite() as site:
        pages = {
            a.slug: site.add(f"/news/{a.slug}", render_page(a, "Courier"))
            for a in (named, untitled, other)
        }

        def entry(article: SiteArticle, title: bool) -> str:
            headline = f"<news:title>{escape(article.title)}</news:title>" if title else ""
            return (
                f"<url><loc>{pages[article.slug]}</loc><news:news><news:publication><news:name>"
                "Capital Courier</news:name><news:language>en</news:language></news:publication>"
                f"<news:publication_date>{article.published.isoformat()}</news:publication_date>"
                f"{headline}</news:news></url>"
            )

        sitemap = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'
            ' xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">'
            + entry(named, True)
            + entry(untitled, False)
            + entry(other, True)
            + "</urlset>"
        )
        if packed:
            url = site.add(
                "/news-sitemap.xml.gz", gzip.compress(sitemap.encode()), "application/gzip"
            )
        else:
            url = site.add("/news-sitemap.xml", sitemap, "application/xml; charset=utf-8")
        first, second, stored, hits, fetched = poll_twice(tmp_path, site, url)
    assert [f.status for f in first.feeds] == ["ok"] and first.new_articles == 3
    assert [f.status for f in second.feeds] == ["not_modified"]
    assert all(fetched[f"/news/{a.slug}"] == 1 for a in (named, untitled, other))
    assert {a.title for a in stored.values()} == {named.title, untitled.title, other.title}
    assert all(a.full_text and a.feed == "Courier" for a in stored.values())
    assert stored[pages[named.slug]].published == named.published
    assert hits == {pages[named.slug], pages[untitled.slug]}


def test_a_json_feed_is_polled_as_a_feed(tmp_path: Path) -> None:
    """An outlet that publishes a JSON Feed: its articles are fetched once and matched on
    their text, a relevant one a hit and a distractor not, and the second poll is a
    conditional request answered 304."""
    relevant, distractor = fixture_articles()[0], folder_articles("distractors")[0]
    with LoopbackSite() as site:
        pages = {
            a.slug: site.add(f"/news/{a.slug}", render_page(a, "Courier"))
            for a in (relevant, distractor)
        }
        items = [
            {
                "id": f"courier-{a.slug}",
                "url": pages[a.slug],
                "title": a.title,
                "summary": "Read the full story on our website.",  # the page says what counts
                "date_published": a.published.isoformat(),
            }
            for a in (relevant, distractor)
        ]
        body = json.dumps({"version": "https://jsonfeed.org/version/1.1", "items": items})
        url = site.add("/feed.json", body, "application/feed+json")
        first, second, stored, hits, fetched = poll_twice(tmp_path, site, url)
    assert [f.status for f in first.feeds] == ["ok"] and first.new_articles == 2
    assert [f.status for f in second.feeds] == ["not_modified"]
    assert all(fetched[f"/news/{a.slug}"] == 1 for a in (relevant, distractor))
    assert all(a.full_text and a.feed == "Courier" for a in stored.values())
    assert stored[pages[relevant.slug]].published == relevant.published
    assert hits == {pages[relevant.slug]}


def test_a_sitemap_entry_that_says_nothing_is_still_a_new_article_at_a_new_address(
    tmp_path: Path,
) -> None:
    """A plain sitemap gives addresses and dates only: the entry added later is an article of
    its own, not taken for the first one because neither says anything."""
    first, later = fixture_articles()[:2]
    with LoopbackSite() as site:
        pages = [site.add(f"/news/{a.slug}", render_page(a, "Courier")) for a in (first, later)]

        def sitemap(urls: list[str]) -> str:
            entries = "".join(
                f"<url><loc>{u}</loc><lastmod>2026-11-22</lastmod></url>" for u in urls
            )
            return f"<urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>{entries}</urlset>"

        url = site.add("/sitemap.xml", sitemap(pages[:1]), "application/xml")
        config = write_config(tmp_path, {"Courier": url})
        clock = Clock()
        with open_runtime(config, clock) as rt:
            rt.poll(rt.configured_states())
            site.add("/sitemap.xml", sitemap(pages), "application/xml")
            clock.advance(3600)
            second = rt.poll(rt.configured_states())
            stored = {a.url: a.title for a in rt.store.articles()}
    assert second.new_articles == 1
    assert stored == {pages[0]: first.title, pages[1]: later.title}  # titles from the pages


# -- an entry revised after it was stored -----------------------------------------------------

STUB = (
    "A man has died after being stabbed in east London on Saturday evening.",
    "Paramedics were called to a street in Stratford shortly after 9pm and found the man with"
    " stab wounds. He died at the scene a short time later.",
    "His family have been told. Road closures around the scene are expected to stay in place"
    " until Sunday afternoon, and anyone with dashcam footage is asked to come forward.",
)


def test_a_revised_headline_or_summary_is_matched_without_fetching_the_page_again(
    tmp_path: Path,
) -> None:
    """Breaking news is rewritten as it develops: the headline of a stored article, then the
    summary of one whose page could not be fetched, come to name the IOPC. Each is a hit on
    the next poll, the page is not fetched again, and the stored entry is the new one."""
    stub = SiteArticle("stabbing", "Man dies after stabbing in east London", STUB, NOW)
    crash = SiteArticle(
        "crash",
        "Woman hurt in Barnet crash",
        ("Unused.",),
        NOW,
        summary="A woman was taken to hospital after a crash in Barnet.",
    )
    later = replace(stub, title="IOPC told after man dies following stabbing in east London")
    told = " The Independent Office for Police Conduct has been told."
    later_crash = replace(crash, summary=crash.summary + told)
    with LoopbackSite() as site:
        page = site.add("/news/stabbing", render_page(stub, "Agency"))
        missing = site.url("/news/crash")  # answers 404: the summary stands in
        versions = [[(stub, page), (crash, missing)], [(later, page), (later_crash, missing)]]
        config = write_config(tmp_path, {"Agency": add_feed(site, "/rss.xml", versions[0])})
        clock = Clock()
        with open_runtime(config, clock) as rt:
            first = rt.poll(rt.configured_states())
            add_feed(site, "/rss.xml", versions[1])
            clock.advance(900)
            second = rt.poll(rt.configured_states())
            clock.advance(900)
            third = rt.poll(rt.configured_states())
            stored = {a.url: a for a in rt.store.articles()}
            hits = {h.article.url: h for h in list_hits(rt.store)}
        assert len(site.hits("/news/stabbing")) == 1
    assert (first.new_articles, first.new_hits) == (2, 0)
    assert (second.new_articles, second.new_hits) == (0, 2)
    assert (third.new_articles, third.new_hits) == (0, 0)
    assert hits[page].matched == ("IOPC",) and hits[missing].matched == (
        '"Independent Office for Police Conduct"',
    )
    assert stored[page].title == later.title and stored[page].full_text
    assert norm(stored[page].text).startswith(STUB[0])  # the text extracted the first time
    assert stored[missing].summary == later_crash.summary and not stored[missing].full_text


# -- conditional requests ---------------------------------------------------------------------


def test_second_poll_sends_validators_back_and_fetches_no_page(tmp_path: Path) -> None:
    articles = folder_articles("relevant")
    # validators as a server may write them: weak, with spaces and a semicolon, an old date
    odd = {"ETag": 'W/"met 42;v=2"', "Last-Modified": "Tue, 14 Nov 2023 22:13:20 GMT"}
    with LoopbackSite() as site:
        feeds = {
            "Plain": add_outlet(site, "Plain", articles[:3], prefix="/plain"),
            "Odd": add_outlet(site, "Odd", articles[3:], prefix="/odd", feed_format="atom"),
        }
        site.routes["/odd/atom.xml"].headers.update(odd)  # type: ignore[union-attr]
        plain = httpx.get(
            feeds["Plain"], trust_env=False
        ).headers  # what the server sends for that one
        site.requests.clear()
        config = write_config(tmp_path, feeds)
        clock = Clock()
        with open_runtime(config, clock) as rt:
            rt.poll(rt.configured_states())
            first = list(site.requests)
            site.requests.clear()
            clock.advance(3600)
            report = rt.poll(rt.configured_states())
            stored = len(list(rt.store.articles()))
        second = list(site.requests)
    assert stored == len(articles)
    assert {f.status for f in report.feeds} == {"not_modified"}
    assert report.new_articles == 0
    assert sorted(r.path for r in second) == ["/odd/atom.xml", "/plain/rss.xml"]
    sent = {"/odd/atom.xml": odd, "/plain/rss.xml": plain}
    for request in second:
        assert request.headers["if-none-match"] == sent[request.path]["ETag"]
        assert request.headers["if-modified-since"] == sent[request.path]["Last-Modified"]
    assert all("if-none-match" not in r.headers for r in first)


def test_validators_are_stored_with_the_articles(tmp_path: Path) -> None:
    articles = folder_articles("relevant")
    with LoopbackSite() as site:
        feeds = {"Plain": add_outlet(site, "Plain", articles, prefix="/plain")}
        config = write_config(tmp_path, feeds)
        with open_runtime(config, Clock()) as rt:
            rt.poll(rt.configured_states())
        feed_request = site.hits("/plain/rss.xml")[0]
    assert "if-none-match" not in feed_request.headers
    with Store.open(tmp_path / "monitor.db") as store:
        row = store.read("SELECT etag, last_modified FROM feeds")[0]
        count = store.read("SELECT COUNT(*) FROM articles")[0][0]
    assert row["etag"] and row["etag"].startswith('"')
    assert row["last_modified"].endswith(" GMT")
    assert count == len(articles)


def test_unchanged_feeds_are_recorded_together_and_a_failed_write_fails_each(
    tmp_path: Path,
) -> None:
    """A steady-state poll is a long run of 304s: they are written in batches, not one
    transaction a feed; if a batch cannot be written, each of its feeds is a failure (polled
    again next time), and nothing of it is half-stored."""
    count = 60
    with LoopbackSite() as site:
        feeds = {
            f"Outlet {i}": add_outlet(site, f"Outlet {i}", [], prefix=f"/o{i}")
            for i in range(count)
        }
        config = write_config(tmp_path, feeds)
        clock = Clock()
        with open_runtime(config, clock) as rt:
            assert {f.status for f in rt.poll(rt.configured_states()).feeds} == {"ok"}
            statements: list[str] = []
            rt.store.conn.set_trace_callback(statements.append)
            clock.advance(3600)
            second = rt.poll(rt.configured_states())
            rt.store.conn.set_trace_callback(None)
            rt.store.conn.execute(  # every poll record now fails, as on a full disk
                "CREATE TEMP TRIGGER no_room BEFORE INSERT ON polls"
                " BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
            )
            clock.advance(3600)
            rows = "SELECT name, last_poll, next_poll FROM feeds ORDER BY name"
            before = [tuple(r) for r in rt.store.read(rows)]
            third = rt.poll(rt.configured_states())
            after = [tuple(r) for r in rt.store.read(rows)]
            polls = rt.store.read("SELECT status, COUNT(*) FROM polls GROUP BY status")
    assert [f.status for f in second.feeds] == ["not_modified"] * count
    assert statements.count("BEGIN IMMEDIATE") <= count // 2
    assert {
        (f.status, f.error is not None and f.error.startswith("not stored")) for f in third.feeds
    } == {("failed", True)}
    assert dict((str(r[0]), int(r[1])) for r in polls) == {"ok": count, "not_modified": count}
    assert after == before  # no feed's row changed: each is due again
