"""News sitemaps read as feeds: entries, dates, a sitemap index, and hostile bodies."""

from __future__ import annotations

import random
import tracemalloc
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.errors import ParseError
from monitor.parse import parse_feed
from monitor.sitemap import MAX_DEPTH, MAX_ENTRIES, MAX_ENTRY_ELEMENTS, sitemap_date, sitemap_root

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
URL = "https://www.reuters.example/arc/outboundfeeds/news-sitemap/?outputType=xml"
HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'
    ' xmlns:news="http://www.google.com/schemas/sitemap-news/0.9"'
    ' xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">\n'
)
# A news sitemap as outlets without an RSS feed publish them for search engines.
NEWS = (
    HEAD
    + """<url>
  <loc>https://www.reuters.example/world/uk/met-police-officer-charged-2026-11-20/</loc>
  <news:news>
    <news:publication><news:name>Reuters</news:name><news:language>eng</news:language></news:publication>
    <news:publication_date>2026-11-20T10:15:00+01:00</news:publication_date>
    <news:title>Met Police officer charged &amp; bailed after IOPC inquiry</news:title>
  </news:news>
  <image:image><image:loc>https://www.reuters.example/i/1.jpg</image:loc></image:image>
</url>
<url>
  <loc>https://www.reuters.example/markets/gilts-2026-11-19/</loc>
  <news:news>
    <news:publication><news:name>Reuters</news:name><news:language>eng</news:language></news:publication>
    <news:publication_date>2026-11-19</news:publication_date>
    <news:title>Gilts steady as &lt;b&gt; markets await budget</news:title>
  </news:news>
</url>
<url><loc>https://www.reuters.example/world/older/</loc><lastmod>2026-11-18T08:00Z</lastmod></url>
<url><loc>https://www.reuters.example/world/undated/?utm_source=sitemap</loc></url>
</urlset>
"""
)


def parse(body: str | bytes, limit: int = 200) -> tuple[list[tuple[object, ...]], tuple[str, ...]]:
    data = body.encode() if isinstance(body, str) else body
    parsed = parse_feed(data, {}, URL, NOW, limit)
    return [(i.url, i.title, i.summary, i.guid, i.published) for i in parsed.items], parsed.warnings


def test_a_news_sitemap_gives_each_article_its_address_headline_and_time() -> None:
    parsed = parse_feed(NEWS.encode(), {}, URL, NOW)
    assert parsed.title == "Reuters"
    assert [(i.url, i.title, i.summary, i.guid, i.published) for i in parsed.items] == [
        (
            "https://www.reuters.example/world/uk/met-police-officer-charged-2026-11-20/",
            "Met Police officer charged & bailed after IOPC inquiry",
            "",
            None,
            datetime(2026, 11, 20, 9, 15, tzinfo=UTC),
        ),
        (
            "https://www.reuters.example/markets/gilts-2026-11-19/",
            "Gilts steady as <b> markets await budget",  # a sitemap's title is plain text
            "",
            None,
            datetime(2026, 11, 19, tzinfo=UTC),
        ),
        (
            "https://www.reuters.example/world/older/",
            "",
            "",
            None,
            datetime(2026, 11, 18, 8, tzinfo=UTC),
        ),
        ("https://www.reuters.example/world/undated/", "", "", None, None),
    ]
    assert parsed.warnings == ()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-20", datetime(2026, 11, 20, tzinfo=UTC)),
        ("2026-11-20T10:15:00Z", datetime(2026, 11, 20, 10, 15, tzinfo=UTC)),
        ("2026-11-20T10:15:00.250-05:00", datetime(2026, 11, 20, 15, 15, 0, 250000, tzinfo=UTC)),
        ("2026-11-20T10:15", datetime(2026, 11, 20, 10, 15, tzinfo=UTC)),
        (" 2026-11-20T10:15:00+00:00 ", datetime(2026, 11, 20, 10, 15, tzinfo=UTC)),
        ("20 Nov 2026", None),
        ("0001-01-01T00:00:00+05:00", None),  # before year 1 in UTC: not a date to keep
        ("", None),
        (None, None),
    ],
)
def test_sitemap_dates(text: str | None, expected: datetime | None) -> None:
    assert sitemap_date(text) == expected


def test_a_date_more_than_a_day_ahead_is_not_believed() -> None:
    body = HEAD + "<url><loc>https://a.example/x</loc><lastmod>2026-11-29</lastmod></url></urlset>"
    assert parse(body)[0][0][4] is None


@pytest.mark.parametrize(
    ("body", "root"),
    [
        (NEWS, "urlset"),
        (
            "\ufeff"
            + NEWS.replace("<?xml", "<!-- made by hand -->\n<?xml-stylesheet href='s.xsl'?><?xml"),
            "urlset",
        ),
        ('<?xml version="1.0"?>\n<!DOCTYPE urlset>\n<urlset>', "urlset"),
        ("<sitemapindex xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>", "sitemapindex"),
        ('<?xml version="1.0"?><rss version="2.0"><channel><title><urlset></title>', None),
        ("<urlsets>", None),
        ("<html><body><urlset>", None),
        ("<!-- " + "x" * 70_000 + " --><urlset>", None),  # a root that far in is not a sitemap's
    ],
)
def test_a_sitemap_is_told_by_its_root_element(body: str, root: str | None) -> None:
    assert sitemap_root(body.encode()) == root


def test_a_sitemap_index_names_the_sitemaps_to_give_instead() -> None:
    listed = "".join(
        f"<sitemap><loc>https://a.example/{name}.xml</loc></sitemap>"
        for name in ("news", "sections", "2026-11", "2026-10")
    )
    body = (
        f"<sitemapindex xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>{listed}</sitemapindex>"
    )
    with pytest.raises(ParseError) as caught:
        parse(body)
    message = str(caught.value)
    assert message.startswith("a sitemap index, which lists sitemaps rather than articles: ")
    assert "https://a.example/news.xml, https://a.example/sections.xml, " in message
    assert "and 1 more; give the news sitemap among them as the feed" in message


def test_a_sitemap_cut_short_keeps_its_complete_entries() -> None:
    cut = NEWS[: NEWS.index("<url><loc>https://www.reuters.example/world/older/") + 40]
    items, warnings = parse(cut)
    assert [i[0] for i in items] == [
        "https://www.reuters.example/world/uk/met-police-officer-charged-2026-11-20/",
        "https://www.reuters.example/markets/gilts-2026-11-19/",
    ]
    assert len(warnings) == 1 and warnings[0].startswith("sitemap read only in part: ")


def test_a_broken_sitemap_with_no_entry_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match=r"^broken sitemap and no usable entries: "):
        parse(HEAD + "<url><loc>https://a.example/x</lo")


def test_an_empty_sitemap_is_an_empty_feed() -> None:
    assert parse(HEAD + "</urlset>") == ([], ())


def test_entries_without_a_usable_address_are_skipped_and_relative_ones_resolved() -> None:
    body = HEAD + "".join(
        f"<url><loc>{loc}</loc></url>"
        for loc in (
            "javascript:alert(1)",
            "",
            "/world/relative/",
            "https://user@a.example/x",
            "http://[bad/",  # urljoin raises on it
        )
    )
    items, warnings = parse(body + "</urlset>")
    assert [i[0] for i in items] == ["https://www.reuters.example/world/relative/"]
    assert warnings == ("4 entries skipped: no link and no GUID",)


def test_a_whole_sites_sitemap_gives_its_newest_entries_in_its_order() -> None:
    ages = list(range(3_000))  # hours before NOW
    random.Random(7).shuffle(ages)
    urls = "".join(
        f"<url><loc>https://a.example/{age}</loc>"
        f"<lastmod>{NOW - timedelta(hours=age):%Y-%m-%dT%H:%MZ}</lastmod></url>"
        for age in ages
    )
    items, warnings = parse(HEAD + urls + "</urlset>", limit=50)
    assert [i[0] for i in items] == [f"https://a.example/{age}" for age in ages if age < 50]
    assert warnings == ("kept the 50 newest of 3,000 entries",)


# -- hostile bodies ---------------------------------------------------------------------------

LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE urlset [\n<!ENTITY a "aaaaaaaaaaaaaaaaaaaa">\n'
    + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 20}">\n' for i in range(8))
    + "]>\n<urlset><url><loc>https://a.example/x</loc><news:news xmlns:news='n'>"
    "<news:title>&i;</news:title></news:news></url><url><loc>https://a.example/y</loc></url></urlset>"
)
OUTSIDE = (
    '<?xml version="1.0"?>\n<!DOCTYPE urlset [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
    "<urlset><url><loc>https://a.example/y</loc></url><url><loc>https://a.example/&x;</loc></url>"
    "</urlset>"
)
EXTERNAL_DTD = (
    '<?xml version="1.0"?>\n<!DOCTYPE urlset SYSTEM "http://127.0.0.1:9/urlset.dtd">\n'
    "<urlset><url><loc>https://a.example/y</loc></url></urlset>"
)


@pytest.mark.parametrize("body", [LAUGHS, OUTSIDE, EXTERNAL_DTD], ids=["laughs", "xxe", "dtd"])
def test_no_entity_is_expanded_and_nothing_is_fetched(body: str) -> None:
    tracemalloc.start()
    try:
        try:
            items, _ = parse(body)
        except ParseError as exc:
            items, error = [], str(exc)
            assert "undefined entity" in error
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000
    assert all("aaaa" not in str(i) and "root:" not in str(i) for i in items)
    assert [i[0] for i in items] in (
        [],
        ["https://a.example/y"],
        ["https://a.example/x", "https://a.example/y"],
    )


@pytest.mark.parametrize(
    ("tail", "why"),
    [
        ("<x>" * 3_000_000, f"elements nested more than {MAX_DEPTH} deep"),
        (
            "<url>" + "<x/>" * 2_500_000 + "</url>",
            f"an entry of more than {MAX_ENTRY_ELEMENTS} elements",
        ),
        ("<x/>" * 2_500_000, f"more than {MAX_ENTRIES:,} entries; the rest was not read"),
    ],
    ids=["deep", "wide entry", "many entries"],
)
def test_a_body_unlike_a_sitemap_stops_the_reading_in_bounded_memory(tail: str, why: str) -> None:
    body = (HEAD + "<url><loc>https://a.example/first</loc></url>" + tail).encode()
    assert len(body) > 9_000_000
    tracemalloc.start()
    try:
        items, warnings = parse(body)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [i[0] for i in items] == ["https://a.example/first"]
    assert warnings == (f"sitemap read only in part: {why}",)
    assert peak < 2.5 * len(body)  # the body and its decoded chunks, not a tree of it


_pieces = st.sampled_from(
    [b"<url>", b"</url>", b"<loc>", b"</loc>", b"&amp;", b"&#0;", b"&#xD800;", b"&bogus;",
     b"<![CDATA[", b"]]>", b"<!-- ", b" -->", b"<?pi x?>", b"\xff", b"\x00", b"<x:y xmlns:x='u'>",
     b"<sitemap>", b"</sitemap>", b"</urlset>"]
)  # fmt: skip
_locs = st.sampled_from(
    ["https://a.example/x", "/rel/a", "javascript:alert(1)", "", "https://a.example/a b",
     "https://www.google.com/url?url=https://b.example/y", "http://[bad/", "x" * 300]
)  # fmt: skip
_dates = st.sampled_from(
    ["2026-11-20", "2026-11-20T10:15:00Z", "2026-13-45T99:99", "2100-01-01", "", "yesterday",
     "2026-11-20T10:15:00+14:00", "0001-01-01T00:00:00-23:59"]
)  # fmt: skip
_titles = st.sampled_from(["Met officer charged", "", "Tom &amp; Jerry &lt;b&gt;", "&#x1F600;"])


@st.composite
def _entries(draw: st.DrawFn) -> bytes:
    loc, when, title = draw(_locs), draw(_dates), draw(_titles)
    news = (
        f"<news:news><news:publication_date>{when}</news:publication_date>"
        f"<news:title>{title}</news:title></news:news>"
    )
    dated = news if draw(st.booleans()) else f"<lastmod>{when}</lastmod>"
    return f"<url><loc>{loc}</loc>{dated}</url>".encode()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_entries(), _entries(), _pieces, st.binary(max_size=10)), max_size=12))
def test_any_body_that_starts_as_a_sitemap_gives_items_or_a_parse_error(
    parts: list[bytes],
) -> None:
    body = HEAD.encode() + b"".join(parts)
    assert sitemap_root(body) == "urlset"
    try:
        parsed = parse_feed(body, {}, URL, NOW)
    except ParseError:
        return
    for entry in parsed.items:
        assert entry.url.startswith(("http://", "https://")) and entry.summary == ""
        assert entry.published is None or entry.published <= NOW + timedelta(days=1)
