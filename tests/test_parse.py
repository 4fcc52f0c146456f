"""Feed parsing: golden feeds with their expected items, and inputs that are not feeds."""

from __future__ import annotations

import json
import tracemalloc
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import feedparser
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.errors import ParseError
from monitor.models import Item
from monitor.parse import (
    MAX_ATTRIBUTES,
    MAX_ENTRIES_READ,
    MAX_MARKUP,
    MAX_TITLE,
    newest_items,
    parse_feed,
    plain_text,
)

FEEDS = Path(__file__).parent / "data" / "feeds"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
URL = "https://news.example/uk/rss.xml"


def rss(items: str, channel: str = "<title>UK News</title>", declaration: str = "") -> bytes:
    head = declaration or '<?xml version="1.0" encoding="utf-8"?>'
    return f'{head}<rss version="2.0"><channel>{channel}{items}</channel></rss>'.encode()


def item(title: str = "Met officers dismissed", link: str = "/a", extra: str = "") -> str:
    return f"<item><title>{title}</title><link>{link}</link>{extra}</item>"


def as_json(item: Item) -> dict[str, Any]:
    out = asdict(item)
    out["published"] = item.published.isoformat() if item.published else None
    return out


# -- golden feeds ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["rss20", "rdf", "atom"])
def test_golden_feed(name: str) -> None:
    expected = json.loads((FEEDS / f"{name}.json").read_text(encoding="utf-8"))
    parsed = parse_feed(
        (FEEDS / f"{name}.xml").read_bytes(),
        expected["headers"],
        expected["feed_url"],
        datetime.fromisoformat(expected["now"]),
    )
    assert parsed.title == expected["title"]
    assert parsed.link == expected["link"]
    assert parsed.skipped == expected["skipped"]
    assert list(parsed.warnings) == expected["warnings"]
    assert [as_json(i) for i in parsed.items] == expected["items"]


@pytest.mark.parametrize(
    ("name", "message"), json.loads((FEEDS / "broken.json").read_text(encoding="utf-8")).items()
)
def test_broken_feed_file(name: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_feed((FEEDS / name).read_bytes(), {}, URL, NOW)


# -- not feeds -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "headers", "message"),
    [
        (b"", {}, "body is empty"),
        (b"  \r\n\t ", {}, "body is empty"),
        (
            b"<!DOCTYPE html><html><head><title>404 Not Found</title></head><body>x</body></html>",
            {"content-type": "text/html"},
            "HTML page \\('404 Not Found'\\)",
        ),
        (b"<html><body><h1>Just a moment...</h1></body></html>", {}, "HTML page"),
        (b'{"error": "rate limited"}', {"content-type": "application/json"}, "JSON"),
        (b'[{"title": "x"}]', {}, "JSON"),
        (b"<?xml version='1.0'?><note><to>desk</to></note>", {}, "XML without RSS or Atom"),
        (b"Service temporarily unavailable", {"content-type": "text/plain"}, "no RSS or Atom"),
        (b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><ite', {}, "broken"),
        (b"\x00\x01\x02\xff\xfe binary", {}, "not a feed"),
    ],
)
def test_what_is_not_a_feed_is_a_parse_error(
    body: bytes, headers: dict[str, str], message: str
) -> None:
    with pytest.raises(ParseError, match=message) as caught:
        parse_feed(body, headers, URL, NOW)
    assert "\n" not in str(caught.value)
    assert len(str(caught.value)) < 200


def test_an_empty_but_valid_feed_has_no_items() -> None:
    parsed = parse_feed(rss(""), {"content-type": "application/rss+xml"}, URL, NOW)
    assert parsed.items == ()
    assert parsed.title == "UK News"


def test_truncated_feed_keeps_its_complete_entries() -> None:
    body = rss(item("First", "/1") + item("Second", "/2") + "<item><title>Thi")
    body = body.replace(b"</channel></rss>", b"")
    parsed = parse_feed(body, {}, URL, NOW)
    assert [i.title for i in parsed.items] == ["First", "Second"]
    assert any("not well-formed" in w for w in parsed.warnings)


def test_feed_served_as_html_is_still_read() -> None:
    parsed = parse_feed(rss(item()), {"content-type": "text/html; charset=utf-8"}, URL, NOW)
    assert [i.url for i in parsed.items] == ["https://news.example/a"]


def test_anything_feedparser_raises_becomes_a_parse_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise IndexError("list index out of range")

    monkeypatch.setattr(feedparser, "parse", broken)
    with pytest.raises(ParseError, match="IndexError"):
        parse_feed(rss(item()), {}, URL, NOW)


# -- character references feedparser cannot take ---------------------------------------------------


def test_an_emoji_written_as_its_utf16_halves_is_read_as_the_emoji() -> None:
    summary = "<description>&lt;p&gt;Met &amp;#55357;&amp;#56430; statement&lt;/p&gt;</description>"
    parsed = parse_feed(
        rss(item("Met officer &#55357;&#56430; cleared", "/a", summary) + item("Other", "/b")),
        {},
        URL,
        NOW,
    )
    assert [i.title for i in parsed.items] == ["Met officer \U0001f46e cleared", "Other"]
    assert parsed.items[0].summary == "Met \U0001f46e statement"


@pytest.mark.parametrize(
    "ref",
    ["&#xD800;", "&#56320;", "&#xDE00;&#xD83D;", "&#x110000;", "&#xFFFFFFFF;", "&#99999999999;"],
)
def test_a_reference_to_no_character_costs_that_character_not_the_feed(ref: str) -> None:
    summary = (
        f"<description>&lt;p&gt;IOPC {ref.replace('&', '&amp;')} report&lt;/p&gt;</description>"
    )
    parsed = parse_feed(
        rss(item(f"Met {ref} inquiry", "/a", summary) + item("Other", "/b")), {}, URL, NOW
    )
    first, second = parsed.items
    assert first.title == "Met " + "\ufffd" * ref.count(";") + " inquiry"
    assert first.summary == "IOPC " + "\ufffd" * ref.count(";") + " report"
    assert second.title == "Other"


@pytest.mark.parametrize(
    ("refs", "expected"),
    [
        ("&#" + "9" * 5_000 + ";", "\ufffd"),  # int() refuses over 4,300 digits
        ("&#x" + "0" * 5_000 + "D800;", "\ufffd"),
        ("&#" + "0" * 5_000 + "65;", "A"),
        # a run of zeros with no end: read once, not once for every place it could split
        # (feedparser makes of it what it will)
        ("&#x" + "0" * 300_000, None),
    ],
)
def test_references_of_thousands_of_digits_are_read_in_one_pass(
    refs: str, expected: str | None
) -> None:
    parsed = parse_feed(rss(item(f"Met {refs} inquiry", "/a")), {}, URL, NOW)
    title = parsed.items[0].title
    assert title.startswith("Met ") and title.endswith(" inquiry")
    if expected is not None:
        assert title == f"Met {expected} inquiry"


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.integers(0xD700, 0xE100), st.integers(0x10FF00, 0x110100), st.integers(0, 2**40)
        ),
        min_size=1,
        max_size=6,
    ),
    st.booleans(),
)
def test_any_numeric_references_give_text_a_database_can_store(
    codes: list[int], hex_: bool
) -> None:
    refs = "".join(f"&#x{c:X};" if hex_ else f"&#{c};" for c in codes)
    summary = f"<description>{refs.replace('&', '&amp;')}</description>"
    parsed = parse_feed(rss(item(f"Met {refs}", "/a", summary)), {}, URL, NOW)
    [entry] = parsed.items
    (entry.title + entry.summary).encode("utf-8")  # no lone surrogate


def test_a_georss_location_feedparser_cannot_read_costs_the_location_not_the_feed() -> None:
    where = (
        '<georss:where><gml:Point srsName="EPSG:not-a-number"><gml:pos>51.5 -0.1</gml:pos>'
        "</gml:Point></georss:where>"
    )
    body = rss(item("Met officers dismissed", "/a", where) + item("Other", "/b", "<georss:where/>"))
    body = body.replace(
        b'<rss version="2.0">',
        b'<rss version="2.0" xmlns:georss="http://www.georss.org/georss"'
        b' xmlns:gml="http://www.opengis.net/gml">',
    )
    with pytest.raises(ValueError):  # what feedparser itself does with it
        feedparser.parse(body)
    parsed = parse_feed(body, {}, URL, NOW)
    assert [i.title for i in parsed.items] == ["Met officers dismissed", "Other"]


@pytest.mark.parametrize(
    ("body", "left"),
    [
        (b"a<georss:where/>b", b"ab"),
        (b'a<georss:where x="1"><gml:Point/></georss:where >b', b"ab"),
        (b"<georss:where>1</georss:where><georss:where/>z", b"z"),
        (b"x<georss:where>y</georss:where", b"x<georss:where>y</georss:where"),  # cut short
        (b"<georss:where " * 100_000, b"<georss:where " * 100_000),  # one pass, not one each
        (b"<georss:where>" * 100_000, b"<georss:where>" * 100_000),
    ],
)
def test_georss_locations_are_cut_out_whole_or_not_at_all(body: bytes, left: bytes) -> None:
    from monitor.parse import _without_georss_where

    assert _without_georss_where(body) == left


# -- hostile XML -----------------------------------------------------------------------------------


def test_a_body_that_names_a_local_file_is_not_read(tmp_path: Path) -> None:
    # feedparser opens bytes as a file name when it can; the body must only ever be data.
    secret = tmp_path / "secret.xml"
    secret.write_bytes(rss(item("SECRET-CONTENT", "https://news.example/secret")))
    with pytest.raises(ParseError) as caught:
        parse_feed(str(secret).encode(), {}, URL, NOW)
    assert "SECRET" not in str(caught.value)


@pytest.mark.parametrize(
    "doctype",
    [
        '<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file://{path}">]>',
        '<!DOCTYPE rss [<!ENTITY % p SYSTEM "file://{path}"> %p;]>',
        '<!DOCTYPE rss SYSTEM "file://{path}">',
    ],
)
def test_external_entities_never_reach_an_item(tmp_path: Path, doctype: str) -> None:
    secret = tmp_path / "passwd"
    secret.write_text("root:x:0:0:TOPSECRET")
    head = '<?xml version="1.0"?>' + doctype.format(path=secret)
    body = rss(item("Leak &xxe; here", extra="<description>&xxe;</description>"), declaration=head)
    try:
        parsed = parse_feed(body, {}, URL, NOW)
    except ParseError as exc:
        assert "TOPSECRET" not in str(exc)
        return
    assert "TOPSECRET" not in repr(parsed)


LAUGHS = ['<!ENTITY l0 "lol">'] + [f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10)]


@pytest.mark.parametrize(
    "doctype",
    [
        "<!DOCTYPE rss [" + "".join(LAUGHS) + "]>",
        "<!DOCTYPE rss [\n" + "\n".join(LAUGHS) + "\n]>",
        "<!DOCTYPE a><!DOCTYPE rss [" + "".join(LAUGHS) + "]>",  # a decoy first
        '<!DOCTYPE rss [<!ENTITY q "]>">' + "".join(LAUGHS) + "]>",  # "]>" inside quotes
        "<!DOCTYPE rss [<!-- ]> -->" + "".join(LAUGHS) + "]>",  # "]>" inside a comment
    ],
)
def test_billion_laughs_is_bounded(doctype: str) -> None:
    head = '<?xml version="1.0"?>' + doctype
    body = rss(item("&l9;", extra="<description>&l9;&l9;</description>"), declaration=head)
    tracemalloc.start()
    try:
        try:
            parsed = parse_feed(body, {}, URL, NOW)
        except ParseError:
            parsed = None
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000
    assert parsed is None or all(len(i.title) + len(i.summary) < 1000 for i in parsed.items)


def test_parameter_entities_in_an_unclosed_subset_are_bounded() -> None:
    laughs = "".join(LAUGHS).replace("ENTITY l", "ENTITY % l").replace("&l", "%l")
    body = f'<?xml version="1.0"?><!DOCTYPE rss [{laughs} %l9;'.encode()
    with pytest.raises(ParseError):
        parse_feed(body + rss(item()), {}, URL, NOW)


def test_a_plain_doctype_is_kept() -> None:
    netscape = (
        '<?xml version="1.0"?><!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN"'
        ' "http://my.netscape.com/publish/formats/rss-0.91.dtd">'
    )
    body = rss(item(), declaration=netscape).replace(b'version="2.0"', b'version="0.91"')
    parsed = parse_feed(body, {}, URL, NOW)
    assert [i.title for i in parsed.items] == ["Met officers dismissed"]


def test_entities_declared_in_utf16_are_refused() -> None:
    head = '<?xml version="1.0" encoding="utf-16"?><!DOCTYPE rss [<!ENTITY a "b">]>'
    body = rss(item("&a;"), declaration=head).decode().encode("utf-16")
    with pytest.raises(ParseError, match="UTF-16"):
        parse_feed(body, {}, URL, NOW)


def test_one_big_entity_repeated_is_not_expanded() -> None:
    head = f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "{"x" * 10_000}">]>'
    body = rss(item(extra=f"<description>{'&a;' * 5000}</description>"), declaration=head)
    parsed = parse_feed(body, {}, URL, NOW)
    assert len(parsed.items[0].summary) < len(body)


# -- charsets --------------------------------------------------------------------------------------


def test_wrong_charset_header_still_decodes() -> None:
    latin = rss(item("Café owner’s complaint")).decode().encode("cp1252")
    parsed = parse_feed(latin, {"content-type": "application/xml; charset=utf-8"}, URL, NOW)
    assert parsed.items[0].title == "Café owner’s complaint"
    assert any("charset" in w for w in parsed.warnings)


def test_undecodable_bytes_become_replacement_characters_at_worst() -> None:
    body = rss(item("Bad XX bytes")).replace(b"XX", b"\xff\xfe\x81")
    parsed = parse_feed(body, {"content-type": "text/xml; charset=x-no-such-charset"}, URL, NOW)
    assert parsed.items[0].title.startswith("Bad ")
    assert parsed.items[0].title.endswith(" bytes")


def test_utf16_feed_with_bom() -> None:
    body = rss(item("Vetting review")).decode().replace("utf-8", "utf-16").encode("utf-16")
    assert parse_feed(body, {}, URL, NOW).items[0].title == "Vetting review"


_fragments = st.sampled_from(
    [b"<item>", b"</item>", b"<title>", b"</title>", b"<link>", b"</link>", b"&amp;", b"&#0;",
     b"<![CDATA[", b"]]>", b"<!DOCTYPE x [", b"<!ENTITY a 'b'>", b"\xff", b"\x00", b"http://x/"]
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(_fragments, st.binary(max_size=12)), max_size=25))
def test_any_bytes_give_a_feed_or_a_parse_error(parts: list[bytes]) -> None:
    body = rss("").replace(b"</channel>", b"".join(parts) + b"</channel>")
    try:
        parsed = parse_feed(body, {}, URL, NOW)
    except ParseError:
        return
    for entry in parsed.items:
        assert entry.url == "" or entry.url.startswith(("http://", "https://"))


# -- entries ---------------------------------------------------------------------------------------


def test_dates_more_than_a_day_ahead_are_not_believed() -> None:
    def dated(hours: int) -> str:
        when = (NOW + timedelta(hours=hours)).strftime("%a, %d %b %Y %H:%M:%S +0000")
        return item(f"in {hours}h", f"/{hours}", f"<pubDate>{when}</pubDate>")

    parsed = parse_feed(rss(dated(-5) + dated(23) + dated(25)), {}, URL, NOW)
    published = {i.title: i.published for i in parsed.items}
    assert published["in -5h"] == NOW - timedelta(hours=5)
    assert published["in 23h"] == NOW + timedelta(hours=23)
    assert published["in 25h"] is None


@pytest.mark.parametrize(
    ("date", "believed"),
    [
        ("<pubDate>Sat, 01 Jan 0001 00:00:00 GMT</pubDate>", False),  # a CMS's empty date
        ("<pubDate>Thu, 01 Jan 1970 00:00:00 GMT</pubDate>", False),  # the epoch
        ("<pubDate>Sun, 31 Dec 1989 23:59:59 GMT</pubDate>", False),
        ("<dc:date>0001-01-01T00:00:00+05:00</dc:date>", False),
        ("<pubDate>Mon, 01 Jan 1990 00:00:00 GMT</pubDate>", True),
        ("<pubDate>Thu, 19 Nov 2026 08:00:00 GMT</pubDate>", True),
    ],
)
def test_dates_before_news_feeds_existed_are_not_believed(date: str, believed: bool) -> None:
    """A date in year 1 was stored as given, and then no digest could be made: showing it in
    the reader's time zone overflowed, every time, for every watchlist."""
    channel = "<title>UK News</title>"
    body = rss(item(extra=date), channel).replace(
        b'<rss version="2.0">', b'<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">'
    )
    [entry] = parse_feed(body, {}, URL, NOW).items
    assert (entry.published is not None) == believed


def test_link_with_unusable_scheme_but_a_guid_keeps_the_entry() -> None:
    body = rss(item(link="data:text/html,hi", extra="<guid isPermaLink='false'>g-1</guid>"))
    parsed = parse_feed(body, {}, URL, NOW)
    assert [(i.guid, i.url, i.link) for i in parsed.items] == [("g-1", "", "")]
    assert parsed.skipped == 0


def test_link_with_userinfo_is_not_usable() -> None:
    parsed = parse_feed(rss(item(link="http://user@news.example/a")), {}, URL, NOW)
    assert parsed.items == ()
    assert parsed.skipped == 1


def test_link_with_a_raw_space_is_made_fetchable() -> None:
    parsed = parse_feed(rss(item(link="https://news.example/met police")), {}, URL, NOW)
    assert parsed.items[0].link == "https://news.example/met%20police"


def test_limit_keeps_the_newest_entries_in_feed_order() -> None:
    def dated(day: int) -> str:
        return item(f"day {day}", f"/{day}", f"<pubDate>{day:02d} Nov 2026 10:00:00 GMT</pubDate>")

    body = rss(dated(3) + item("undated", "/u") + dated(9) + dated(1) + dated(7))
    parsed = parse_feed(body, {}, URL, NOW, limit=3)
    assert [i.title for i in parsed.items] == ["day 3", "day 9", "day 7"]
    assert "kept the 3 newest of 5 entries" in parsed.warnings


def test_newest_items_counts_undated_as_oldest() -> None:
    def made(title: str, day: int | None) -> Item:
        when = datetime(2026, 11, day, tzinfo=UTC) if day else None
        return Item(None, f"https://n.example/{title}", "", title, "", when)

    items = [made("a", None), made("b", 2), made("c", None), made("d", 1)]
    assert [i.title for i in newest_items(items, 2)] == ["b", "d"]
    assert [i.title for i in newest_items(items, 3)] == ["a", "b", "d"]


@pytest.mark.parametrize(
    ("markup", "text"),
    [
        ("<p>Met&nbsp;officer</p><p>dismissed</p>", "Met officer dismissed"),
        ("Po<b>lice</b> &amp; <i>IOPC</i>", "Police & IOPC"),
        ("a<br>b<br/>c", "a b c"),
        ("<script>alert(1)</script>Casey<style>p{}</style> review", "Casey review"),
        ("  lots \n\t of   space  ", "lots of space"),
        ("Met \u202eeciloP\u202c said", "Met eciloP said"),
        ("bell\x07 and nul\x00", "bell and nul"),
        ("Met\x00Police\x1b[31m, the Met\x92s", "Met Police [31m, the Met s"),
        ("profits < 5% & rising", "profits < 5% & rising"),
        ("", ""),
    ],
)
def test_plain_text(markup: str, text: str) -> None:
    assert plain_text(markup) == text


# -- links that pass the reader on ------------------------------------------------------------

# A Google Alerts feed, as Google serves it: every link goes through google.com/url, and titles
# and snippets are HTML with the alert's words in bold.
GOOGLE_ALERT = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:idx="urn:atom-extension:indexing">
<id>tag:google.com,2005:reader/user/00717897562899784977/state/com.google/alerts/113879825991</id>
<title>Google Alert - Metropolitan Police</title>
<link href="https://www.google.com/alerts/feeds/00717897562899784977/113879825991" rel="self"/>
<updated>2026-11-20T11:02:20Z</updated>
<entry>
<id>tag:google.com,2013:googlealerts/feed:4282476652342308031</id>
<title type="html">&lt;b&gt;Met Police&lt;/b&gt; officer sacked after vetting review</title>
<link href="https://www.google.com/url?rct=j&amp;sa=t&amp;url=https://www.standard.co.uk/news/crime/met-officer-sacked-b1234567.html&amp;ct=ga&amp;cd=CAIyGTg5YTNj&amp;usg=AOvVaw2enY9i"/>
<published>2026-11-20T11:02:20Z</published>
<updated>2026-11-20T11:02:20Z</updated>
<content type="html">A &lt;b&gt;Metropolitan Police&lt;/b&gt; officer was dismissed</content>
<author><name/></author>
</entry>
</feed>
"""


ARTICLE_HTML = (
    "&lt;p&gt;Officers were filmed on the estate.&lt;/p&gt;"
    "&lt;p&gt;The IOPC is investigating five Metropolitan Police officers.&lt;/p&gt;"
)


@pytest.mark.parametrize(
    ("entry", "summary"),
    [
        (  # RSS: a one-line description beside the whole article
            "<item><title>Estate arrest</title><link>/a</link>"
            "<description>A boy was handcuffed.</description>"
            f"<content:encoded>{ARTICLE_HTML}</content:encoded></item>",
            "Officers were filmed on the estate. The IOPC is investigating five Metropolitan"
            " Police officers.",
        ),
        (  # the description is the longer: it stays
            "<item><title>Estate arrest</title><link>/a</link>"
            f"<description>{ARTICLE_HTML}</description>"
            "<content:encoded>A boy was handcuffed.</content:encoded></item>",
            "Officers were filmed on the estate. The IOPC is investigating five Metropolitan"
            " Police officers.",
        ),
        (  # a content that is one picture: the description stays
            "<item><title>Estate arrest</title><link>/a</link>"
            "<description>The IOPC is investigating five Met officers.</description>"
            "<content:encoded>&lt;figure&gt;&lt;img src='https://cdn.example/"
            + "x" * 120
            + ".jpg'/&gt;&lt;/figure&gt;</content:encoded></item>",
            "The IOPC is investigating five Met officers.",
        ),
        (  # no description at all
            f"<item><title>Estate arrest</title><link>/a</link>"
            f"<content:encoded>{ARTICLE_HTML}</content:encoded></item>",
            "Officers were filmed on the estate. The IOPC is investigating five Metropolitan"
            " Police officers.",
        ),
    ],
)
def test_the_summary_is_the_fullest_text_the_entry_carries(entry: str, summary: str) -> None:
    body = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"'
        ' xmlns:content="http://purl.org/rss/1.0/modules/content/">'
        f"<channel><title>UK News</title>{entry}</channel></rss>"
    )
    (parsed,) = parse_feed(body.encode(), {}, URL, NOW).items
    assert parsed.summary == summary


def test_an_atom_entry_s_full_content_is_its_summary_when_longer() -> None:
    body = f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>T</title><id>urn:x</id>
<updated>2026-11-20T09:00:00Z</updated>
<entry><id>urn:a</id><title>Estate arrest</title><updated>2026-11-20T09:00:00Z</updated>
<link href="https://news.example/a"/><summary>A boy was handcuffed.</summary>
<content type="html">{ARTICLE_HTML}</content></entry></feed>"""
    (parsed,) = parse_feed(body.encode(), {}, URL, NOW).items
    assert "The IOPC is investigating" in parsed.summary


def test_a_google_alert_entry_is_the_article_it_links_to() -> None:
    parsed = parse_feed(GOOGLE_ALERT.encode(), {}, "https://www.google.com/alerts/feeds/1/2", NOW)
    (entry,) = parsed.items
    article = "https://www.standard.co.uk/news/crime/met-officer-sacked-b1234567.html"
    assert (entry.link, entry.url) == (article, article)
    assert entry.guid == "tag:google.com,2013:googlealerts/feed:4282476652342308031"
    assert entry.title == "Met Police officer sacked after vetting review"
    assert entry.summary == "A Metropolitan Police officer was dismissed"
    assert entry.source == "standard.co.uk"  # the site it leads to: the alert names no outlet


def test_an_entry_a_feed_passes_on_names_its_source() -> None:
    google_news = item(
        "Met officer charged - The Guardian",
        "https://news.google.com/rss/articles/CBMiWmh0dHBzOi8v?oc=5",
        '<source url="https://www.theguardian.com">The &lt;Guardian&gt;</source>',
    )
    own = item("Met officer charged", "/uk/met-officer-charged")
    sources = [i.source for i in parse_feed(rss(google_news + own), {}, URL, NOW).items]
    assert sources == ["The <Guardian>", ""]


def test_a_feedburner_entry_is_the_publishers_own_link() -> None:
    origin = "https://news.example/uk/met-officers-dismissed?utm_source=feedburner"
    extra = (
        f'<feedburner:origLink xmlns:feedburner="http://rssnamespace.org/feedburner/ext/1.0">'
        f"{origin.replace('&', '&amp;')}</feedburner:origLink>"
    )
    body = rss(item(link="http://feedproxy.google.com/~r/ukn/~3/Xb2c/", extra=extra))
    (entry,) = parse_feed(body, {}, URL, NOW).items
    assert entry.link == origin
    assert entry.url == "https://news.example/uk/met-officers-dismissed"


def test_a_source_name_carries_no_terminal_escape_or_bidi_override() -> None:
    """`monitor hits` prints the outlet's name to a terminal: a hostile feed must not be able
    to send it escape sequences or turn its text around."""
    named = item(extra='<source url="https://x.example/">Evil&#x1b;[31m \u202eName\n</source>')
    (entry,) = parse_feed(rss(named), {}, URL, NOW).items
    assert entry.source == "Evil [31m Name"


@pytest.mark.parametrize("stray", ["", "\x01"], ids=["well-formed", "read leniently"])
def test_a_source_name_is_text_with_its_entities_read(stray: str) -> None:
    """A feed with one stray control byte is read by feedparser's lenient parser, which left
    a <source>'s entities as they were: "AT&amp;T" reached the digest, escaped once more."""
    named = item(
        title=f"Met officer dismissed{stray}",
        extra='<source url="https://x.example/">AT&amp;T &amp; Sons</source>',
    )
    (entry,) = parse_feed(rss(named), {}, URL, NOW).items
    assert (entry.title, entry.source) == ("Met officer dismissed", "AT&T & Sons")


def test_a_redirect_link_carrying_no_usable_address_is_kept_as_it_is() -> None:
    link = "https://www.google.com/url?rct=j&amp;sa=t&amp;url=javascript:alert(1)"
    (entry,) = parse_feed(rss(item(link=link)), {}, URL, NOW).items
    assert entry.link == link.replace("&amp;", "&")


# -- a feed of more entries than are read -------------------------------------------------------


def _dated(n: int) -> str:
    """Entry n of a feed listing the newest first: n hours before NOW."""
    return (NOW - timedelta(hours=n)).strftime("%a, %d %b %Y %H:%M:%S +0000")


LONG_FEEDS = {
    "rss": lambda count: rss(
        "".join(
            item(f"Story {n}", f"/a/{n}", f"<pubDate>{_dated(n)}</pubDate>") for n in range(count)
        )
    ),
    "atom": lambda count: (
        '<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>T</title>'
        + "".join(
            f"<entry><title>Story {n}</title><id>urn:story:{n}</id>"
            f'<link href="https://news.example/a/{n}"/>'
            f"<updated>{(NOW - timedelta(hours=n)).isoformat()}</updated></entry>"
            for n in range(count)
        )
        + "</feed>"
    ).encode(),
    "rdf": lambda count: (  # RSS 1.0: an <items> list in the channel, the items beside it
        '<?xml version="1.0"?><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"'
        ' xmlns="http://purl.org/rss/1.0/"><channel rdf:about="https://news.example/"><title>T'
        "</title><items><rdf:Seq><rdf:li resource='https://news.example/a/0'/></rdf:Seq></items>"
        "</channel>"
        + "".join(
            f'<item rdf:about="https://news.example/a/{n}"><title>Story {n}</title>'
            f"<link>https://news.example/a/{n}</link></item>"
            for n in range(count)
        )
        + "</rdf:RDF>"
    ).encode(),
}


@pytest.mark.parametrize("kind", sorted(LONG_FEEDS))
def test_a_feed_of_thousands_of_entries_is_read_for_its_first_thousand(kind: str) -> None:
    """feedparser takes about a quarter of a millisecond an entry: a feed of 10 MB of small
    entries would hold a poll for seconds every time. Feeds list the newest first; the cut
    body is closed again, so what is read is well-formed."""
    parsed = parse_feed(LONG_FEEDS[kind](MAX_ENTRIES_READ + 1500), {}, URL, NOW)
    assert (
        parsed.warnings[0]
        == f"read the first {MAX_ENTRIES_READ:,} of {MAX_ENTRIES_READ + 1500:,} entries"
    )
    assert not any("well-formed" in w for w in parsed.warnings), parsed.warnings
    numbers = sorted(int(i.title.split()[1]) for i in parsed.items)
    assert len(numbers) == 200 and numbers[-1] < MAX_ENTRIES_READ
    if kind != "rdf":  # RSS 1.0 items carry no date here: the first 200 in feed order
        assert numbers == list(range(200))  # the newest


@pytest.mark.parametrize("kind", sorted(LONG_FEEDS))
def test_a_feed_of_no_more_entries_than_are_read_is_read_whole(kind: str) -> None:
    parsed = parse_feed(LONG_FEEDS[kind](MAX_ENTRIES_READ), {}, URL, NOW)
    assert parsed.warnings == (f"kept the 200 newest of {MAX_ENTRIES_READ} entries",)


# -- an element of too many attributes ------------------------------------------------------------


def _crowded_item(attributes: int) -> str:
    names = " ".join(f'a{n}="{n}"' for n in range(attributes))
    return f"<item {names}><title>Crowded</title><link>https://news.example/c</link></item>"


def test_an_element_of_thousands_of_attributes_is_refused_unread() -> None:
    """feedparser scans an element's attributes once for each of them: 50,000 attributes (half
    a megabyte) took a minute to read, a body at the byte cap would take hours."""
    body = rss(item("Kept", "/kept") + _crowded_item(5_000))
    with pytest.raises(ParseError) as info:
        parse_feed(body, {}, URL, NOW)
    assert str(info.value) == (
        f"not a feed anyone writes: an element with 5,000 attributes (more than "
        f"{MAX_ATTRIBUTES}), which would take minutes to read"
    )


def test_elements_of_a_few_attributes_and_long_links_are_read() -> None:
    """Only attributes count: '=' in a long link's query, or in text, is no attribute."""
    query = "&amp;".join(f"p{n}=v{n}" for n in range(300))
    enclosure = f'<enclosure url="https://news.example/e.jpg?{query}" type="image/jpeg"/>'
    body = rss(
        _crowded_item(MAX_ATTRIBUTES)
        + item("Enclosed", "/e", enclosure)
        + f"<item><title>Sums</title><link>https://news.example/s</link><description>"
        f"<![CDATA[<p>{' '.join(f'x{n} = y' for n in range(300))}</p>]]></description></item>"
    )
    parsed = parse_feed(body, {}, URL, NOW)
    assert sorted(i.title for i in parsed.items) == ["Crowded", "Enclosed", "Sums"]


def test_a_description_of_megabytes_is_read_for_its_first_megabyte_of_markup() -> None:
    """No article needs a megabyte of markup; reading 8 MB of it held a poll for seconds."""
    words = "<p>The Met said officers arrested a man.</p>" * (2 * MAX_MARKUP // 44)
    body = rss(item("Big", "/big", f"<description><![CDATA[{words}<p>Zebra</p>]]></description>"))
    (entry,) = parse_feed(body, {}, URL, NOW).items
    assert entry.summary.startswith("The Met said officers arrested a man.")
    assert "Zebra" not in entry.summary
    assert MAX_MARKUP // 2 < len(entry.summary) < MAX_MARKUP


def test_a_title_is_cut_at_a_thousand_characters() -> None:
    (entry,) = parse_feed(rss(item("Met " * 5_000, "/long-title")), {}, URL, NOW).items
    assert entry.title == ("Met " * 250).strip()
    assert len(entry.title) <= MAX_TITLE


def test_an_entrys_html_is_read_for_its_text_without_scripts_or_styles() -> None:
    """feedparser neither cleans an entry's HTML nor resolves its links (those passes took a
    second a megabyte): the summary keeps only the text, so nothing they did is missed."""
    html_part = (
        "<script>document.write('Gala')</script><p>The <a href='/tag/met'>Met</a> said</p>"
        "<style>p { color: red }</style><!-- Met Office --><p>two &amp; more</p>"
    )
    body = rss(item("Met", "/a", f"<description><![CDATA[{html_part}]]></description>"))
    (entry,) = parse_feed(body, {}, URL, NOW).items
    assert entry.summary == "The Met said two & more"
