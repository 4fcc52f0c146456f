"""`monitor feeds`: health, `feeds add` (a feed URL or a page that leads to one) and `feeds
export` to OPML and back, against sample news sites on 127.0.0.1 and a real SQLite file."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.config import load_settings
from monitor.discover import sitemaps_in_robots
from monitor.loopback import LoopbackSite
from monitor.models import Feed
from monitor.sitegen import SiteArticle, add_outlet, render_rss, start_demo_site
from monitor.store import from_db
from tests.test_cli import invoke, succeeded, user_error, write_config

NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def demo_site() -> Iterator[tuple[LoopbackSite, list[Feed]]]:
    site, feeds = start_demo_site(NOW)
    yield site, feeds
    site.stop()


@pytest.fixture
def site() -> Iterator[LoopbackSite]:
    """An empty site of the test's own, for pages that do or do not lead to a feed."""
    with LoopbackSite() as s:
        yield s


@pytest.fixture(autouse=True)
def _here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def one_article(slug: str = "pc-dismissed") -> SiteArticle:
    return SiteArticle(
        slug,
        "Met PC dismissed after misconduct hearing",
        ("A Metropolitan Police constable was dismissed on Tuesday.",) * 3,
        NOW - timedelta(hours=2),
    )


# -- feeds: health -------------------------------------------------------------------------------


def test_feeds_shows_each_feeds_health(
    tmp_path: Path, demo_site: tuple[LoopbackSite, list[Feed]]
) -> None:
    site, feeds = demo_site
    gone = site.url("/closed-down/rss.xml")
    config = write_config(
        tmp_path, [(feeds[0].name, feeds[0].url), ("Closed Down", gone), ("Not Yet", gone + "?x")]
    )
    config.write_text(config.read_text() + 'interval = "2h"\n')  # the last feed's own interval
    before = datetime.now(UTC)
    succeeded(
        invoke("--config", str(config), "poll", "--feed", feeds[0].name, "--feed", "Closed Down")
    )
    after = datetime.now(UTC)

    got = {
        f["name"]: f
        for f in json.loads(succeeded(invoke("--config", str(config), "feeds", "--json")).stdout)
    }
    assert list(got) == sorted(got)
    ok, failing, new = got[feeds[0].name], got["Closed Down"], got["Not Yet"]
    for field in ("last_success", "last_error", "consecutive_failures", "next_poll"):
        assert field in ok and field in failing and field in new

    assert ok["status"] == "ok" and ok["last_error"] is None and ok["consecutive_failures"] == 0
    polled_at = from_db(ok["last_success"])
    assert polled_at is not None and before <= polled_at <= after
    next_poll = from_db(ok["next_poll"])
    assert next_poll is not None and next_poll - polled_at == timedelta(seconds=feeds[0].interval)

    assert failing["status"] == "failing" and failing["last_success"] is None
    assert failing["consecutive_failures"] == 1
    assert failing["last_error"] == f"HTTP 404 from {gone}"
    retry = from_db(failing["next_poll"])
    assert retry is not None and retry > before  # backed off, not polled again at once

    assert (
        new["status"] == "new" and new["last_success"] is None and new["consecutive_failures"] == 0
    )

    table = succeeded(invoke("--config", str(config), "feeds")).stdout.splitlines()
    assert table[0].split() == [
        "feed",
        "status",
        "last",
        "success",
        "failures",
        "next",
        "poll",
        "last",
        "error",
    ]
    [row] = [line for line in table if line.startswith("Closed Down ")]
    assert " failing " in row and " never " in row and "HTTP 404" in row
    [row] = [line for line in table if line.startswith(feeds[0].name + " ")]
    assert " ok " in row and " in 14m " in row


def test_feeds_shows_names_and_errors_as_written_not_as_markup(tmp_path: Path) -> None:
    """The table is drawn by rich: a name with brackets or an emoji code, and an error that
    names "[fetch] allow_addresses", come out exactly as they are."""
    name = "Wire [bold]Desk[/bold] :thumbs_up:"
    config = write_config(tmp_path, [(name, "http://127.0.0.2:9/rss.xml")])
    succeeded(invoke("--config", str(config), "poll"))
    [state] = json.loads(succeeded(invoke("--config", str(config), "feeds", "--json")).stdout)
    assert "(see [fetch] allow_addresses)" in state["last_error"]
    table = succeeded(invoke("--config", str(config), "feeds")).stdout
    assert name in table
    assert "(see [fetch] allow_addresses)" in table


# -- feeds add -----------------------------------------------------------------------------------


def test_add_a_feed_url_appends_a_table_and_keeps_the_rest(
    tmp_path: Path, demo_site: tuple[LoopbackSite, list[Feed]]
) -> None:
    _site, feeds = demo_site
    config = write_config(tmp_path, [(feeds[0].name, feeds[0].url)])
    config.write_text(config.read_text() + "# keep this comment at the end, no newline after it")
    original = config.read_text()
    result = succeeded(invoke("--config", str(config), "feeds", "add", feeds[1].url))
    assert result.stdout.startswith(f"added {feeds[1].name!r}: {feeds[1].url}")
    text = config.read_text()
    assert text.startswith(original)  # comments, spacing and order untouched
    assert (
        text[len(original) :]
        == f'\n\n[[feeds]]\nname = "{feeds[1].name}"\nurl = "{feeds[1].url}"\n'
    )
    s = load_settings(config)
    assert [(f.name, f.url) for f in s.feeds] == [(f.name, f.url) for f in feeds[:2]]


def test_add_with_a_name_and_config_after_the_command(
    tmp_path: Path, demo_site: tuple[LoopbackSite, list[Feed]]
) -> None:
    _site, feeds = demo_site
    config = write_config(tmp_path, [])
    succeeded(invoke("feeds", "add", feeds[2].url, "--name", "Gazette", "--config", str(config)))
    succeeded(invoke("feeds", "--config", str(config), "add", feeds[3].url, "--name", "Wire"))
    s = load_settings(config)
    assert [(f.name, f.url) for f in s.feeds] == [("Gazette", feeds[2].url), ("Wire", feeds[3].url)]


def test_add_a_page_discovers_its_feed(
    tmp_path: Path, demo_site: tuple[LoopbackSite, list[Feed]]
) -> None:
    site, feeds = demo_site
    config = write_config(tmp_path, [])
    # each outlet's front page announces its feed with <link rel="alternate" type="...">
    for feed, front in zip(feeds, ("/ledger/", "/courier/", "/gazette/"), strict=False):
        result = succeeded(invoke("--config", str(config), "feeds", "add", site.url(front)))
        assert result.stdout.startswith(f"added {feed.name!r}: {feed.url}")
    assert [(f.name, f.url) for f in load_settings(config).feeds] == [
        (f.name, f.url) for f in feeds[:3]
    ]


def test_add_a_page_finds_a_feed_at_a_common_path(tmp_path: Path, site: LoopbackSite) -> None:
    config = write_config(tmp_path, [])
    site.add("/news/", "<html><head><title>Local News</title></head><body><p>Hi</p></body></html>")
    article = one_article()
    site.add(f"/{article.slug}", "<html><body><p>page</p></body></html>")
    site.add(
        "/feed",
        render_rss("Local News", site.url("/"), [(article, site.url(f"/{article.slug}"))]),
        "application/rss+xml",
    )
    result = succeeded(invoke("--config", str(config), "feeds", "add", site.url("/news/")))
    assert result.stdout.startswith(f"added 'Local News': {site.url('/feed')}")
    assert [f.url for f in load_settings(config).feeds] == [site.url("/feed")]


def test_add_a_page_that_declares_a_json_feed(tmp_path: Path, site: LoopbackSite) -> None:
    config = write_config(tmp_path, [])
    site.add(
        "/blog/",
        '<html><head><title>Beat notes</title><link rel="alternate"'
        ' type="application/feed+json" href="/blog/feed.json"></head><body><p>Hi</p></body></html>',
    )
    feed = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "Beat notes",
        "items": [{"id": "1", "url": site.url("/blog/1"), "title": "Met vetting failures"}],
    }
    site.add("/blog/feed.json", json.dumps(feed), "application/feed+json")
    result = succeeded(invoke("--config", str(config), "feeds", "add", site.url("/blog/")))
    assert result.stdout.startswith(f"added 'Beat notes': {site.url('/blog/feed.json')}")
    assert [f.url for f in load_settings(config).feeds] == [site.url("/blog/feed.json")]


def test_add_a_page_with_no_feed_is_a_clear_error(tmp_path: Path, site: LoopbackSite) -> None:
    config = write_config(tmp_path, [])
    original = config.read_text()
    site.add("/about/", "<html><head><title>About us</title></head><body><p>We</p></body></html>")
    line = user_error(invoke("--config", str(config), "feeds", "add", site.url("/about/")), 1)
    assert f"no feed found at {site.url('/about/')}" in line
    assert "give the feed's own URL" in line
    assert "/rss.xml" in line  # the common places that were tried
    assert config.read_text() == original
    assert "robots.txt names no news sitemap" in line
    tried = {r.path for r in site.requests}
    assert {"/about/", "/feed", "/rss", "/rss.xml", "/atom.xml", "/robots.txt"} <= tried


def test_add_tries_only_the_first_few_feeds_a_page_declares(
    tmp_path: Path, site: LoopbackSite
) -> None:
    """A page of hundreds of feed links to a server that never answers kept `feeds add`
    waiting a timeout for each, for hours."""
    config = write_config(tmp_path, [])
    links = "".join(
        f'<link rel="alternate" type="application/rss+xml" href="/feeds/{n}.xml">'
        for n in range(300)
    )
    site.add("/", f"<html><head>{links}<title>Links</title></head><body>x</body></html>")
    line = user_error(invoke("--config", str(config), "feeds", "add", site.url("/")), 1)
    assert "the feeds the page links to do not work" in line
    tried = [r.path for r in site.requests if r.path.startswith("/feeds/")]
    assert tried == [f"/feeds/{n}.xml" for n in range(5)]  # in the page's order


@pytest.mark.parametrize(
    "path, body, content_type, expected",
    [
        ("/data.json", b'{"items": []}', "application/json", "neither a feed nor a web page"),
        ("/missing", None, None, "HTTP 404"),
    ],
)
def test_add_something_else_is_a_clear_error(
    tmp_path: Path,
    site: LoopbackSite,
    path: str,
    body: bytes | None,
    content_type: str | None,
    expected: str,
) -> None:
    config = write_config(tmp_path, [])
    original = config.read_text()
    if body is not None and content_type is not None:
        site.add(path, body, content_type)
    line = user_error(invoke("--config", str(config), "feeds", "add", site.url(path)), 1)
    assert site.url(path) in line and expected in line
    assert config.read_text() == original


@pytest.mark.parametrize(
    "typed", ["www.example-news.co.uk/london", "example.org", "127.0.0.1:8080/feed"]
)
def test_add_an_address_without_its_scheme_says_what_to_write(tmp_path: Path, typed: str) -> None:
    config = write_config(tmp_path, [])
    original = config.read_text()
    line = user_error(invoke("--config", str(config), "feeds", "add", typed), 2)
    assert line == (
        f"error: {typed!r} has no scheme; give the address as your browser shows it,"
        f" e.g. https://{typed}"
    )
    assert config.read_text() == original


def test_add_a_news_sitemap_names_it_after_its_publication(
    tmp_path: Path, site: LoopbackSite
) -> None:
    config = write_config(tmp_path, [])
    url = site.add(
        "/sitemaps/news.xml",
        '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'
        ' xmlns:news="http://www.google.com/schemas/sitemap-news/0.9"><url>'
        "<loc>https://news.example/a</loc><news:news><news:publication><news:name>Evening"
        " Courier</news:name></news:publication></news:news></url></urlset>",
        "application/xml",
    )
    result = succeeded(invoke("--config", str(config), "feeds", "add", url))
    assert result.stdout.startswith(f"added 'Evening Courier': {url}")
    assert [(f.name, f.url) for f in load_settings(config).feeds] == [("Evening Courier", url)]


def test_add_a_site_with_no_feed_finds_the_news_sitemap_its_robots_txt_names(
    tmp_path: Path, site: LoopbackSite
) -> None:
    """Sitemaps named in robots.txt are tried news ones first; an index is passed over."""
    config = write_config(tmp_path, [])
    site.add("/", "<html><head><title>The Wire</title></head><body><p>News</p></body></html>")
    site.add(
        "/robots.txt",
        "User-agent: *\nDisallow: /search\n\nSitemap: /sitemap-index.xml\n"
        "sitemap:  /sitemaps/news.xml \nSitemap: javascript:alert(1)\n",
        "text/plain",
    )
    site.add(
        "/sitemap-index.xml",
        "<sitemapindex xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'><sitemap>"
        f"<loc>{site.url('/sitemaps/news.xml')}</loc></sitemap></sitemapindex>",
        "application/xml",
    )
    news = site.add(
        "/sitemaps/news.xml",
        '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'
        ' xmlns:news="http://www.google.com/schemas/sitemap-news/0.9"><url>'
        f"<loc>{site.url('/a')}</loc><news:news><news:publication><news:name>The Wire"
        "</news:name></news:publication></news:news></url></urlset>",
        "application/xml",
    )
    result = succeeded(invoke("--config", str(config), "feeds", "add", site.url("/")))
    assert result.stdout.startswith(f"added 'The Wire': {news}")
    assert [f.url for f in load_settings(config).feeds] == [news]
    assert "/sitemap-index.xml" not in {r.path for r in site.requests}  # news ones first


def test_add_a_site_whose_robots_txt_names_a_gzip_news_sitemap(
    tmp_path: Path, site: LoopbackSite
) -> None:
    config = write_config(tmp_path, [])
    site.add("/", "<html><head><title>The Wire</title></head><body><p>News</p></body></html>")
    site.add("/robots.txt", "User-agent: *\nSitemap: /news-sitemap.xml.gz\n", "text/plain")
    sitemap = (
        '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'
        ' xmlns:news="http://www.google.com/schemas/sitemap-news/0.9"><url>'
        f"<loc>{site.url('/a')}</loc><news:news><news:publication><news:name>The Wire"
        "</news:name></news:publication></news:news></url></urlset>"
    )
    news = site.add("/news-sitemap.xml.gz", gzip.compress(sitemap.encode()), "application/x-gzip")
    result = succeeded(invoke("--config", str(config), "feeds", "add", site.url("/")))
    assert result.stdout.startswith(f"added 'The Wire': {news}")
    assert [f.url for f in load_settings(config).feeds] == [news]


def serve_news_sitemap(site: LoopbackSite, path: str, publication: str) -> str:
    return site.add(
        path,
        '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'
        ' xmlns:news="http://www.google.com/schemas/sitemap-news/0.9"><url>'
        f"<loc>{site.url('/a')}</loc><news:news><news:publication><news:name>{publication}"
        "</news:name></news:publication></news:news></url></urlset>",
        "application/xml",
    )


def serve_index(site: LoopbackSite, path: str, listed: list[str]) -> str:
    entries = "".join(f"<sitemap><loc>{site.url(p)}</loc></sitemap>" for p in listed)
    body = f"<sitemapindex xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>{entries}</sitemapindex>"
    return site.add(path, body, "application/xml")


@pytest.mark.parametrize("by", ["its address", "robots.txt"])
def test_add_a_sitemap_index_takes_the_news_sitemap_it_lists(
    tmp_path: Path, site: LoopbackSite, by: str
) -> None:
    config = write_config(tmp_path, [])
    site.add("/", "<html><head><title>Wire</title></head><body><p>News</p></body></html>")
    site.add("/robots.txt", "Sitemap: /sitemap.xml\n", "text/plain")
    index = serve_index(site, "/sitemap.xml", ["/sitemaps/pages.xml", "/sitemaps/news-1.xml"])
    site.add(
        "/sitemaps/pages.xml", "<urlset><url><loc>/about</loc></url></urlset>", "application/xml"
    )
    news = serve_news_sitemap(site, "/sitemaps/news-1.xml", "The Wire")
    given = index if by == "its address" else site.url("/")
    result = succeeded(invoke("--config", str(config), "feeds", "add", given))
    assert result.stdout.startswith(f"added 'The Wire': {news}")
    assert "/sitemaps/pages.xml" not in {r.path for r in site.requests}  # news ones first


def test_add_a_sitemap_index_with_no_working_sitemap_says_so(
    tmp_path: Path, site: LoopbackSite
) -> None:
    config = write_config(tmp_path, [])
    index = serve_index(site, "/sitemap.xml", ["/sitemaps/missing.xml", "/sitemaps/inner.xml"])
    serve_index(site, "/sitemaps/inner.xml", ["/sitemaps/news.xml"])  # one level down only
    serve_news_sitemap(site, "/sitemaps/news.xml", "Too deep")
    line = user_error(invoke("--config", str(config), "feeds", "add", index), 1)
    assert line.startswith(f"error: {index}: a sitemap index, which lists sitemaps rather than")
    assert "/sitemaps/news.xml" not in {r.path for r in site.requests}


@pytest.mark.parametrize(
    ("robots", "expected"),
    [
        (
            "Sitemap: https://a.example/sitemap.xml\nSITEMAP: /news/sitemap.xml\n"
            "Sitemap: https://a.example/sitemap-news-2.xml",
            [
                "https://a.example/news/sitemap.xml",
                "https://a.example/sitemap-news-2.xml",
                "https://a.example/sitemap.xml",
            ],
        ),
        ("Sitemap: ftp://a.example/s.xml\nSitemap:\nAllow: /sitemap.xml", []),
        (
            "\n".join(f"Sitemap: /s{n}.xml" for n in range(9)),
            [f"https://a.example/s{n}.xml" for n in range(3)],
        ),
        ("Sitemap: /s.xml\nSitemap: https://a.example/s.xml#top", ["https://a.example/s.xml"]),
    ],
)
def test_sitemaps_in_robots(robots: str, expected: list[str]) -> None:
    assert sitemaps_in_robots(robots, "https://a.example/robots.txt") == expected


def test_add_refuses_private_addresses_unless_allowed(tmp_path: Path, site: LoopbackSite) -> None:
    config = write_config(tmp_path, [])
    config.write_text(config.read_text().replace('allow_addresses = ["127.0.0.1"]', ""))
    original = config.read_text()
    site.add("/rss.xml", render_rss("X", site.url("/"), []), "application/rss+xml")
    line = user_error(invoke("--config", str(config), "feeds", "add", site.url("/rss.xml")), 1)
    assert "127.0.0.1" in line and "allow_addresses" in line
    assert config.read_text() == original
    assert site.requests == []


def test_add_refuses_duplicates(tmp_path: Path, demo_site: tuple[LoopbackSite, list[Feed]]) -> None:
    site, feeds = demo_site
    config = write_config(tmp_path, [(feeds[0].name, feeds[0].url)])
    original = config.read_text()
    same_url = user_error(invoke("--config", str(config), "feeds", "add", feeds[0].url), 1)
    assert feeds[0].url in same_url and f"already in the config as {feeds[0].name!r}" in same_url
    via_page = user_error(invoke("--config", str(config), "feeds", "add", site.url("/ledger/")), 1)
    assert f"already in the config as {feeds[0].name!r}" in via_page
    tracked = feeds[0].url + "?utm_source=newsletter&utm_medium=email"
    same_feed = user_error(invoke("--config", str(config), "feeds", "add", tracked), 1)
    assert f"already in the config as {feeds[0].name!r}" in same_feed
    same_name = user_error(
        invoke("--config", str(config), "feeds", "add", feeds[1].url, "--name", feeds[0].name), 1
    )
    assert f"already named {feeds[0].name!r}" in same_name and "--name" in same_name
    assert config.read_text() == original


def test_add_a_feed_whose_title_needs_escaping(tmp_path: Path, site: LoopbackSite) -> None:
    config = write_config(tmp_path, [])
    title = 'Tom & Jerry\'s "Daily"\n\t News \\ Views'
    article = one_article()
    site.add(
        "/rss.xml",
        render_rss(title, site.url("/"), [(article, site.url(f"/{article.slug}"))]),
        "application/rss+xml",
    )
    succeeded(invoke("--config", str(config), "feeds", "add", site.url("/rss.xml")))
    [feed] = load_settings(config).feeds
    assert feed.name == 'Tom & Jerry\'s "Daily" News \\ Views'  # one line, spaces collapsed
    assert feed.url == site.url("/rss.xml")


# -- feeds export, and back ----------------------------------------------------------------------

AWKWARD = [
    ("Tom & Jerry <News>", "http://127.0.0.1:9/a.xml?x=1&y=2"),
    ('The "Daily" Post', "http://127.0.0.1:9/b.xml"),
    ("O'Brien's Wire", "http://127.0.0.1:9/c.xml"),
    ("Gazette – Café", "http://127.0.0.1:9/d.xml"),
]


def test_export_and_load_back_the_same_feeds(tmp_path: Path) -> None:
    config = write_config(tmp_path / "first", AWKWARD)
    exported = tmp_path / "second" / "exported.opml"
    exported.parent.mkdir()
    result = succeeded(invoke("--config", str(config), "feeds", "export", "-o", str(exported)))
    assert result.stdout == ""
    assert f"wrote {len(AWKWARD)} feeds to" in result.stderr

    second = write_config(tmp_path / "second", [], extra='opml = "exported.opml"')
    # a top-level key must come before any table
    text = second.read_text().replace('\nopml = "exported.opml"', "")
    second.write_text('opml = "exported.opml"\n' + text)
    assert [(f.name, f.url) for f in load_settings(second).feeds] == AWKWARD


def test_export_to_stdout_is_opml(tmp_path: Path) -> None:
    config = write_config(tmp_path, AWKWARD)
    out = succeeded(invoke("--config", str(config), "feeds", "export")).stdout
    root = ET.fromstring(out.encode())
    assert root.tag == "opml" and root.get("version") == "2.0"
    outlines = [(o.get("text"), o.get("xmlUrl")) for o in root.iter("outline")]
    assert outlines == AWKWARD
    assert "<News>" not in out and "&lt;News&gt;" in out


@pytest.mark.parametrize("command", [["export"], ["add", "https://a.example/"]])
def test_json_given_to_a_feeds_subcommand_is_refused_not_ignored(
    tmp_path: Path, command: list[str]
) -> None:
    config = write_config(tmp_path, AWKWARD)
    before = config.read_text()
    line = user_error(invoke("--config", str(config), "feeds", "--json", *command), 2)
    assert line == f"error: --json is for the feed list; feeds {command[0]} has none"
    assert config.read_text() == before


def test_export_with_no_feeds_is_still_opml(tmp_path: Path) -> None:
    config = write_config(tmp_path, [])
    out = succeeded(invoke("--config", str(config), "feeds", "export")).stdout
    assert list(ET.fromstring(out.encode()).iter("outline")) == []


def test_added_feed_is_polled(tmp_path: Path, site: LoopbackSite) -> None:
    """The whole path a newcomer takes: add a site, poll it, see the hit."""
    config = write_config(tmp_path, [])
    feed_url = add_outlet(site, "Borough Bugle", [one_article()], prefix="/bugle")
    succeeded(invoke("--config", str(config), "feeds", "add", site.url("/bugle/")))
    polled = succeeded(invoke("--config", str(config), "poll")).stdout
    assert "ok            Borough Bugle: 1 new article, 1 new hit" in polled
    hits = json.loads(succeeded(invoke("--config", str(config), "hits", "--json")).stdout)
    assert [(h["feed"], h["title"]) for h in hits] == [("Borough Bugle", one_article().title)]
    assert feed_url in config.read_text()


def test_a_poll_with_every_feed_unchanged_imports_no_feed_parser(
    tmp_path: Path, site: LoopbackSite
) -> None:
    """A steady-state poll reads no feed body, so it does not pay for importing the feed
    parser, the extraction pool or the matcher: start-up is most of such a poll's time. Nor
    does any poll import httpx's command-line client, which would bring rich and pygments, or
    the mail outbox when no watchlist alerts at once."""
    feed_url = add_outlet(site, "Borough Bugle", [one_article()], prefix="/bugle")
    config = write_config(tmp_path, [("Borough Bugle", feed_url)])
    after = (
        "heavy = ('feedparser', 'monitor.parse', 'monitor.workers', 'monitor.match',"
        " 'monitor.storyindex', 'monitor.stories', 'monitor.outbox', 'trafilatura', 'rich',"
        " 'pygments')\n"
        "print('imported:', *(m for m in heavy if m in sys.modules))\n"
    )

    def poll() -> tuple[str, str]:
        lines = poll_in_a_fresh_process(config, after=after)
        return lines[0], lines[-1]

    feed, imported = poll()
    assert feed.startswith("ok            Borough Bugle: 1 new article, 1 new hit")
    # the extractor itself runs in worker processes
    assert imported == (
        "imported: feedparser monitor.parse monitor.workers monitor.match monitor.storyindex"
        " monitor.stories"
    )
    assert poll() == ("not modified  Borough Bugle", "imported:")


def test_a_poll_not_on_a_terminal_does_not_ask_the_terminal_again_for_each_feed(
    tmp_path: Path, site: LoopbackSite
) -> None:
    """Each question is a system call; a steady-state poll prints a line a feed."""
    before = (
        "import click._compat\n"
        "asked = []\n"
        "ask = click._compat.isatty\n"
        "click._compat.isatty = lambda stream: asked.append(stream) or ask(stream)\n"
    )
    after = "print('asked:', len(asked))\n"
    counts = []
    for feeds in (1, 4):
        listed = [
            (f"Bugle {n}", add_outlet(site, f"Bugle {n}", [one_article()], prefix=f"/f{feeds}b{n}"))
            for n in range(feeds)
        ]
        lines = poll_in_a_fresh_process(write_config(tmp_path / str(feeds), listed), before, after)
        assert sum("1 new article" in line for line in lines) == feeds
        counts.append(lines[-1])
    assert counts[0] == counts[1]  # the summary's lines may ask; the feeds' lines do not


def test_a_poll_starts_reading_the_ca_certificates_before_the_rest_of_its_start_up(
    tmp_path: Path, site: LoopbackSite
) -> None:
    """The certificates load on a thread while the HTTP client is imported and the
    watchlists and feed states load, so an https feed need not wait for them."""
    feed_url = add_outlet(site, "Borough Bugle", [one_article()], prefix="/bugle")
    config = write_config(tmp_path, [("Borough Bugle", feed_url)])
    before = (
        "import monitor.trust, monitor.watchlist\n"
        "seen = []\n"
        "made, load = monitor.trust.TrustStore.__init__, monitor.watchlist.load_watchlists\n"
        "def init(self, *a, **k):\n"
        "    seen.append('certificates, httpx imported: %s' % ('httpx' in sys.modules))\n"
        "    made(self, *a, **k)\n"
        "def watchlists(*a, **k):\n"
        "    seen.append('watchlists')\n"
        "    return load(*a, **k)\n"
        "monitor.trust.TrustStore.__init__ = init\n"
        "monitor.watchlist.load_watchlists = watchlists\n"
    )
    lines = poll_in_a_fresh_process(config, before, "print('order:', ' / '.join(seen))\n")
    assert lines[-1] == "order: certificates, httpx imported: False / watchlists"


def poll_in_a_fresh_process(config: Path, before: str = "", after: str = "") -> list[str]:
    """`monitor poll` in a new interpreter, with code run before and after it; the lines it
    printed. The code sees `sys`."""
    code = (
        "import sys\n"
        f"{before}"
        "from monitor.cli import main\n"
        f"sys.argv = ['monitor', '--config', {str(config)!r}, 'poll']\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        f"{after}"
    )
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()


def test_add_writes_a_name_of_one_clean_line(
    tmp_path: Path, demo_site: tuple[LoopbackSite, list[Feed]]
) -> None:
    """A --name or a feed title with control characters (a terminal escape, DEL) is written
    with spaces for them; bytes that are not UTF-8 are refused, where they ended in a traceback."""
    _site, feeds = demo_site
    config = write_config(tmp_path, [])
    added = invoke(
        "--config", str(config), "feeds", "add", feeds[0].url, "--name", "Wire\x1b[31m\x7f Desk"
    )
    succeeded(added)
    assert [f.name for f in load_settings(config).feeds] == ["Wire [31m Desk"]
    original = config.read_text()
    bad = invoke("--config", str(config), "feeds", "add", feeds[1].url, "--name", "bad\udcff")
    assert "--name is not valid UTF-8 text" in user_error(bad, 2)
    assert config.read_text() == original


def test_a_feed_name_with_a_control_character_is_a_config_error(tmp_path: Path) -> None:
    """It would reach a terminal as an escape sequence, and an OPML export as XML that no
    reader (this one included) can load."""
    config = write_config(tmp_path, [("Wire\u001b[31m", "http://127.0.0.1:9/rss")])
    line = user_error(invoke("--config", str(config), "feeds"), 1)
    assert "name: must not hold control characters" in line


def test_add_keeps_the_files_line_endings(
    tmp_path: Path, demo_site: tuple[LoopbackSite, list[Feed]]
) -> None:
    """A config saved with CRLF (a Windows editor) keeps them all, the new table's too."""
    _site, feeds = demo_site
    config = write_config(tmp_path, [])
    original = config.read_bytes().replace(b"\n", b"\r\n")
    config.write_bytes(original)
    succeeded(invoke("--config", str(config), "feeds", "add", feeds[0].url, "--name", "Wire"))
    after = config.read_bytes()
    assert after.startswith(original)
    assert after.count(b"\n") == after.count(b"\r\n") > original.count(b"\n")
    assert [f.name for f in load_settings(config).feeds] == ["Wire"]


def test_feeds_added_at_the_same_time_are_all_kept(
    tmp_path: Path, demo_site: tuple[LoopbackSite, list[Feed]]
) -> None:
    """Each `feeds add` reads the file, appends and renames a copy over it: two at once lost
    one feed while both said "added". They take turns now."""
    _site, feeds = demo_site
    config = write_config(tmp_path, [])
    names = [f"Wire {n}" for n in range(6)]
    add = [sys.executable, "-m", "monitor", "--config", str(config), "feeds", "add"]
    runs = [
        subprocess.Popen(
            [*add, f"{feeds[0].url}?copy={n}", "--name", name],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for n, name in enumerate(names)
    ]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0] * len(names), outputs
    assert sorted(f.name for f in load_settings(config).feeds) == names


def test_add_never_leaves_a_config_that_does_not_load(
    tmp_path: Path, demo_site: tuple[LoopbackSite, list[Feed]]
) -> None:
    _site, feeds = demo_site
    config = write_config(tmp_path, [])
    original = config.read_text()
    # a character the cleaning keeps (not a control character) and the config refuses
    result = invoke(
        "--config", str(config), "feeds", "add", feeds[0].url, "--name", "Bad\ufffeName"
    )
    line = user_error(result, 1)
    assert "would not load with this feed" in line and "nothing was changed" in line
    assert config.read_text() == original
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml", "watchlists"]
