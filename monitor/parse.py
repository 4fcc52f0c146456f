"""Pure: a feed body and its response headers -> ParsedFeed (feedparser does the reading).

feedparser is handed a file object and the response headers, never a URL or a bare string:
given a str that looks like a URL it fetches it, and given bytes it first tries them as a
local file name. Whatever it raises, and whatever is not a feed, becomes one ParseError.
A news sitemap is read by monitor.sitemap instead, and a JSON Feed by monitor.jsonfeed; their
entries go through the same rules.
"""

from __future__ import annotations

import contextlib
import html
import io
import re
import time
import unicodedata
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from functools import partial
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

from monitor.errors import ParseError
from monitor.jsonfeed import json_feed_entries, read_json_feed
from monitor.models import Item, ParsedFeed
from monitor.sitemap import sitemap_root
from monitor.units import plural
from monitor.urls import canonical_url, fetchable, unwrap_redirect

MAX_SOURCE = 100  # characters of an entry's source (its outlet's name)
MAX_TITLE = 1_000  # characters of an entry's title: a headline is a line, not a page
# characters of one field's markup read for its text: a summary or content past a megabyte is
# no article, and reading the markup costs about a second for 5 MB
MAX_MARKUP = 1_000_000
# Entries of a feed handed to feedparser, in document order (feeds list the newest first).
# feedparser takes about a quarter of a millisecond an entry: a feed of 10 MB of small entries
# would hold the poll's interpreter for 20 seconds, every poll.
MAX_ENTRIES_READ = 1_000
_ENTRY_START = re.compile(rb"<(?:item|entry)[\s>/]")  # not RSS 1.0's <items> list
# what closes a feed cut before an entry, by its root element
_ROOT_ENDS = ((b"<rss", b"</channel></rss>"), (b"<rdf:RDF", b"</rdf:RDF>"), (b"<feed", b"</feed>"))
FUTURE_SLACK = timedelta(days=1)  # clocks and time zones differ; beyond a day is a lie
# no news feed dates from before the 1990s: an earlier date is a default value (year 1, the
# epoch) or a mistake, and near year 1 it cannot even be shown in a time zone
EARLIEST_BELIEVED = datetime(1990, 1, 1, tzinfo=UTC)
_BLOCK_TAGS = frozenset(
    {
        "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt",
        "figcaption", "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr",
        "li", "main", "nav", "ol", "p", "pre", "section", "table", "td", "th", "tr", "ul",
    }
)  # fmt: skip
_INVISIBLE_TAGS = frozenset({"script", "style", "template", "noscript"})
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")
# What matters while skipping a DOCTYPE: quotes, brackets, its end, and comments.
_DOCTYPE_TOKENS = re.compile(rb"[\"'\[\]>]|<!--")
# A numeric character reference that may name a surrogate (D800-DFFF, 55296-57343) or pass
# U+10FFFF (six hex digits, seven decimal ones); runs of them, so that pairs are seen whole.
# Leading zeros are taken possessively (0*+): given back, they would let the digits that follow
# be tried at every split, quadratic in a hostile run of zeros.
_SUSPECT_REF = (
    rb"#(?:[xX]0*+(?:[dD][89a-fA-F][0-9a-fA-F]{2}|[0-9a-fA-F]{6,})"
    rb"|0*+(?:5[5-7][0-9]{3}|[0-9]{7,}));"
)
_SUSPECT_CHAR_REFS = re.compile(rb"(&(?:amp;)?)" + _SUSPECT_REF + rb"(?:\1" + _SUSPECT_REF + rb")*")
_CHAR_REF_NUMBER = re.compile(rb"#(?:[xX]([0-9a-fA-F]+)|([0-9]+));")
# feedparser looks each attribute of an element up by a scan of all of them: an element of
# 50,000 attributes (half a megabyte) took a minute, one at the 10 MB cap would take hours.
# No feed writes more than a few on one element; a body with more is refused unread.
MAX_ATTRIBUTES = 100
_LONG_TAG = re.compile(rb"<[^<>]{%d,}>" % (4 * MAX_ATTRIBUTES))  # each takes 4 bytes at least
_ATTRIBUTE = re.compile(rb"=\s*[\"']")
_WIDE_ENTITY = tuple(
    "<!ENTITY".encode(c) for c in ("utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")
)


def parse_feed(
    content: bytes, headers: Mapping[str, str], url: str, now: datetime, limit: int = 200
) -> ParsedFeed:
    """Read a feed body (RSS, Atom, JSON Feed or a news sitemap); ParseError when it is not a
    usable one."""
    if not content.strip():
        raise ParseError("not a feed: the body is empty")
    json_feed = read_json_feed(content)
    if json_feed is not None:
        entries, feed, unread = json_feed_entries(json_feed)
        # JSON is read whole or not at all: nothing to warn about but what was left unread
        return _parsed(entries, feed, url, now, limit, lambda usable: [], unread)
    body = usable_char_refs(remove_internal_subsets(content))
    if sitemap_root(body) is None:
        body, unread = _first_entries(body)
        _refuse_crowded_tags(body)
        result = _run_feedparser(body, headers, url)
        entries, feed = result.entries, result.feed
        check = partial(_check_feed, result, content)
    else:  # a news sitemap, read as a feed without summaries
        entries, feed, problem, unread = _sitemap_entries(body, limit)
        check = partial(_check_sitemap, problem)
    return _parsed(entries, feed, url, now, limit, check, unread)


def _parsed(
    entries: list[Any],
    feed: Mapping[str, Any],
    url: str,
    now: datetime,
    limit: int,
    check: Callable[..., list[str]],
    unread: str,
) -> ParsedFeed:
    """The feed's usable items (the newest `limit`) and what to warn about, from its entries
    in feedparser's shape, whichever format they were read from: what its format's check
    finds, then `unread` (entries left unread, "" when none were)."""
    items, skipped, duplicates = _collect_items(entries, url, now)
    warnings = check(usable=bool(items))
    if unread:
        warnings.append(unread)
    if skipped:
        warnings.append(f"{plural(skipped, 'entry', 'entries')} skipped: no link and no GUID")
    if duplicates:
        warnings.append(f"{plural(duplicates, 'duplicate entry', 'duplicate entries')} dropped")
    if len(items) > limit:
        warnings.append(f"kept the {limit} newest of {len(items)} entries")
        items = newest_items(items, limit)
    return ParsedFeed(
        title=plain_text(feed.get("title", "")),
        link=_absolute_link(feed.get("link"), url) or "",
        items=tuple(items),
        skipped=skipped,
        warnings=tuple(warnings),
    )


def plain_text(markup: str) -> str:
    """Text of an HTML fragment (its first MAX_MARKUP characters): tags dropped, entities
    decoded, whitespace collapsed."""
    if not markup:
        return ""
    collector = _TextCollector()
    collector.feed(markup[:MAX_MARKUP])
    collector.close()
    return one_line("".join(collector.parts))


def one_line(text: str) -> str:
    """text on one line, as a terminal or a digest may show it: control characters (a
    terminal's escape sequences among them) made spaces, bidi overrides dropped, spaces
    collapsed. A space, not nothing: "Met\x00Police" is two words, and so is "Met\x92s" (a
    Windows-1252 apostrophe read as Latin-1), which joined would no longer hold "Met"."""
    text = "".join(" " if unicodedata.category(c) == "Cc" else c for c in text)
    return " ".join(_BIDI_CONTROLS.sub("", text).split())


def newest_items(items: list[Item], limit: int) -> list[Item]:
    """The `limit` newest items in their feed order; undated ones count as oldest."""
    return [items[i] for i in _newest([item.published for item in items], limit)]


def _newest(dates: list[datetime | None], limit: int) -> list[int]:
    """The indices of the `limit` newest dates, in order; None counts as oldest."""
    oldest = datetime.min.replace(tzinfo=UTC)
    ranked = sorted(range(len(dates)), key=lambda i: dates[i] or oldest, reverse=True)
    return sorted(ranked[:limit])


def usable_char_refs(content: bytes) -> bytes:
    """content with every numeric character reference feedparser cannot take made one it can.

    feedparser turns `&#55357;` into a lone surrogate and `&#x110000;` into an exception, and
    either fails the whole feed (kurtmckee/feedparser#591). Some publishing systems write an
    emoji as its two UTF-16 halves, `&#55357;&#56832;`: such a pair becomes the one character
    it spells, and any other surrogate or out-of-range reference U+FFFD, as a browser shows
    it. References escaped once more inside an HTML summary (`&amp;#55357;`) are mended alike.
    """
    if b"&#" not in content and b"&amp;#" not in content:
        return content
    return _SUSPECT_CHAR_REFS.sub(_mend_char_refs, content)


def _mend_char_refs(match: re.Match[bytes]) -> bytes:
    prefix = match[1]  # b"&" or b"&amp;"
    codes = [_char_ref_value(ref) for ref in _CHAR_REF_NUMBER.findall(match[0])]
    out: list[int] = []
    for code in codes:
        if out and 0xD800 <= out[-1] < 0xDC00 and 0xDC00 <= code < 0xE000:  # a UTF-16 pair
            out[-1] = 0x10000 + ((out[-1] - 0xD800) << 10) + (code - 0xDC00)
        else:
            out.append(code)
    usable = [0xFFFD if 0xD800 <= c < 0xE000 or c > 0x10FFFF else c for c in out]
    return b"".join(prefix + b"#x%X;" % c for c in usable)


def _char_ref_value(ref: tuple[bytes, bytes]) -> int:
    hex_digits, decimal = ref
    digits = (hex_digits or decimal).lstrip(b"0") or b"0"
    if len(digits) > 8:  # past U+10FFFF either way; int() refuses thousands of digits
        return 0x110000
    return int(digits, 16 if hex_digits else 10)


def remove_internal_subsets(content: bytes) -> bytes:
    """content without any DOCTYPE that has an internal subset, where entities are declared.

    expat expands declared entities and its billion-laughs guard only trips after megabytes of
    output, each piece a Python call inside feedparser: seconds of CPU and tens of megabytes
    per feed. Without the declarations, entity references are merely undefined and feedparser
    reads the feed leniently. A DOCTYPE without a subset (RSS 0.91's) is left alone.
    """
    if any(marker in content for marker in _WIDE_ENTITY):
        raise ParseError("feed declares XML entities in UTF-16 or UTF-32; refused")
    kept: list[bytes] = []
    done = 0  # content[:done] is decided
    start = content.find(b"<!DOCTYPE")
    while start >= 0:
        has_subset, end = _doctype_extent(content, start)
        if has_subset:
            kept.append(content[done:start])
            done = end
        start = content.find(b"<!DOCTYPE", end)
    if not kept:
        return content
    kept.append(content[done:])
    return b"".join(kept)


def _doctype_extent(content: bytes, start: int) -> tuple[bool, int]:
    """Whether the DOCTYPE at start has an internal subset, and where it ends."""
    quote: bytes | None = None
    in_subset = has_subset = False
    pos = start + len(b"<!DOCTYPE")
    while match := _DOCTYPE_TOKENS.search(content, pos):
        token, pos = match[0], match.end()
        if quote is not None:
            quote = None if token == quote else quote
        elif token == b"<!--":
            close = content.find(b"-->", pos)
            pos = len(content) if close < 0 else close + 3
        elif token in (b'"', b"'"):
            quote = token
        elif token == b"[":
            in_subset = has_subset = True
        elif token == b"]":
            in_subset = False
        elif not in_subset:  # ">" outside the subset ends the DOCTYPE
            return has_subset, pos
    return has_subset, len(content)  # never closed: all of it is DOCTYPE


def _refuse_crowded_tags(body: bytes) -> None:
    """ParseError when an element holds more than MAX_ATTRIBUTES attributes (see there)."""
    for tag in _LONG_TAG.finditer(body):
        attributes = len(_ATTRIBUTE.findall(tag.group()))
        if attributes > MAX_ATTRIBUTES:
            raise ParseError(
                f"not a feed anyone writes: an element with {attributes:,} attributes (more "
                f"than {MAX_ATTRIBUTES}), which would take minutes to read"
            )


def _run_feedparser(content: bytes, headers: Mapping[str, str], url: str) -> Any:
    # imported on the first feed body: a poll whose every answer is 304 never pays for it
    import feedparser

    response_headers = {k.lower(): v for k, v in headers.items()}
    # feedparser resolves relative links against Content-Location; without it they stay
    # relative, so the feed's own URL stands in.
    response_headers.setdefault("content-location", url)

    def read(body: bytes) -> Any:
        # Entries' HTML is neither cleaned nor its links resolved by feedparser: plain_text
        # keeps only its text (script and style dropped), and those passes took over a second
        # a megabyte (a hostile 10 MB description held a poll for half a minute)
        return feedparser.parse(
            io.BytesIO(body),
            response_headers=response_headers,
            resolve_relative_uris=False,
            sanitize_html=False,
        )

    try:
        return read(content)
    except Exception as exc:  # feedparser raises odd things on hostile input (#591, #599)
        # GeoRSS locations feedparser cannot read (an EPSG code that is not a number, #599)
        # are of no use here: the feed is read again without them
        without = _without_georss_where(content)
        if without != content:
            with contextlib.suppress(Exception):
                return read(without)
        raise ParseError(f"feed could not be read: {type(exc).__name__}: {exc}"[:200]) from exc


def _sitemap_entries(
    content: bytes, limit: int
) -> tuple[list[dict[str, Any]], dict[str, str], str | None, str]:
    """The newest `limit` entries of a sitemap as feedparser would give them (link, title as
    HTML, published time), the feed's own details (its title: the publication named), what
    stopped the reading of a body that is not well-formed, and a warning when older entries
    were left out ("" when none were). A site's whole sitemap may list 50,000 pages: only
    those kept are checked and made items."""
    from monitor.sitemap import read_sitemap, sitemap_date

    sitemap = read_sitemap(content)
    dated = [(loc, title, sitemap_date(when)) for loc, title, when in sitemap.entries]
    dropped = ""
    if len(dated) > limit:
        dropped = f"kept the {limit} newest of {len(dated):,} entries"
        dated = [dated[i] for i in _newest([when for _, _, when in dated], limit)]
    entries = [
        {
            "link": loc,
            "title": html.escape(title, quote=False),
            "published_parsed": published.utctimetuple() if published else None,
        }
        for loc, title, published in dated
    ]
    feed = {"title": html.escape(sitemap.publication, quote=False)}
    return entries, feed, sitemap.problem, dropped


def _check_sitemap(problem: str | None, usable: bool) -> list[str]:
    """Raise ParseError for a broken sitemap that gave nothing; a warning for one read in
    part."""
    if problem is None:
        return []
    if not usable:
        raise ParseError(f"broken sitemap and no usable entries: {problem}"[:200])
    return [f"sitemap read only in part: {problem}"[:200]]


def _without_georss_where(content: bytes) -> bytes:
    """content without its <georss:where> elements; one pass, however they are nested or cut."""
    kept: list[bytes] = []
    pos = 0
    while (start := content.find(b"<georss:where", pos)) >= 0:
        end = content.find(b">", start) + 1
        if end and content[end - 2 : end - 1] != b"/":  # not <georss:where/>: find its end
            close = content.find(b"</georss:where", end)
            end = content.find(b">", close) + 1 if close >= 0 else 0
        if not end:  # cut short: the rest is left as it is
            break
        kept.append(content[pos:start])
        pos = end
    kept.append(content[pos:])
    return b"".join(kept)


def _first_entries(body: bytes) -> tuple[bytes, str]:
    """The body cut before its entry past MAX_ENTRIES_READ and closed again as its root
    needs, with a warning saying so; the body itself when it holds no more than that."""
    starts = _ENTRY_START.finditer(body)
    for count, found in enumerate(starts):
        if count == MAX_ENTRIES_READ:
            total = count + 1 + sum(1 for _ in starts)
            head = body[: found.start()]
            ends = next((end for root, end in _ROOT_ENDS if root in head[:4096]), b"")
            return head + ends, f"read the first {MAX_ENTRIES_READ:,} of {total:,} entries"
    return body, ""


def _check_feed(result: Any, content: bytes, usable: bool) -> list[str]:
    """Raise ParseError for what is not a feed; warnings for a feed read despite errors."""
    import feedparser  # already imported by _run_feedparser, which made result

    version = result.get("version") or ""
    problem = result.get("bozo_exception") if result.get("bozo") else None
    benign = isinstance(problem, feedparser.ThingsNobodyCaresAboutButMe)
    if not version and not result.entries:
        raise ParseError(f"not a feed: {_describe_body(content)}")
    if problem is not None and not benign and not usable:
        # A cut-off or mangled body that yields nothing is a failure to record, not an
        # empty feed: otherwise a broken feed would look like a quiet one.
        raise ParseError(f"broken feed XML and no usable entries: {_describe_problem(problem)}")
    if problem is None:
        return []
    if isinstance(problem, feedparser.CharacterEncodingOverride):
        return [f"charset: {problem}"[:200]]
    if benign:
        return []
    return [f"feed XML is not well-formed ({_describe_problem(problem)}); read leniently"]


def _describe_body(content: bytes) -> str:
    head = content[:2048].lstrip(b"\xef\xbb\xbf \t\r\n")
    lower = head.lower()
    if head[:1] in (b"{", b"["):
        return "the server sent JSON, not RSS or Atom"
    if lower.startswith((b"<!doctype html", b"<html")) or b"<body" in lower:
        title = re.search(rb"<title[^>]*>(.*?)</title", head, re.DOTALL | re.IGNORECASE)
        named = plain_text(title[1].decode("utf-8", "replace"))[:80] if title else ""
        return "the server sent an HTML page" + (f" ({named!r})" if named else "")
    if lower.startswith(b"<"):
        return "XML without RSS or Atom entries"
    return "no RSS or Atom found"


def _describe_problem(problem: BaseException) -> str:
    line = getattr(problem, "getLineNumber", None)
    where = f" at line {line()}" if callable(line) else ""
    text = (getattr(problem, "getMessage", None) or (lambda: str(problem)))()
    return f"{text}{where}"[:160]


def _collect_items(entries: list[Any], url: str, now: datetime) -> tuple[list[Item], int, int]:
    """Items in feed order; counts of entries skipped and of duplicates dropped."""
    items: list[Item] = []
    guids: set[str] = set()
    urls: set[str] = set()
    skipped = duplicates = 0
    for entry in entries:
        item = _read_entry(entry, url, now)
        if item is None:
            skipped += 1
        elif (item.guid and item.guid in guids) or (item.url and item.url in urls):
            duplicates += 1
        else:
            items.append(item)
            guids.add(item.guid or "")
            urls.add(item.url)
    return items, skipped, duplicates


def _read_entry(entry: Any, url: str, now: datetime) -> Item | None:
    guid = " ".join(str(entry.get("id") or "").split()) or None
    # FeedBurner gives the publisher's own address beside its tracking redirect
    link = _absolute_link(entry.get("feedburner_origlink"), url)
    link = link or _absolute_link(entry.get("link"), url)
    if link is None and guid is not None:
        link = _absolute_link(guid, None)  # a GUID that is itself an http(s) URL
    if link is None and guid is None:
        return None
    passed_on = link is not None and (target := unwrap_redirect(link)) != link
    if passed_on:
        link = target  # a Google Alerts or Bing News link: the article's own address
    return Item(
        guid=guid,
        url=canonical_url(link) if link else "",
        link=link or "",
        title=plain_text(entry.get("title", ""))[:MAX_TITLE].rstrip(),
        summary=_summary_text(entry),
        published=_entry_date(entry, now),
        source=_source(entry, link if passed_on else None),
    )


def _source(entry: Any, target: str | None) -> str:
    """The outlet that wrote an entry the feed only passes on: its <source> (Google News
    names it so), else the site its redirect link led to ("standard.co.uk"); "" when the
    entry is the feed's own."""
    source = entry.get("source")
    raw = str(source.get("title") or "") if isinstance(source, Mapping) else ""
    # text, not markup ("The <Guardian>" stays so), less what no line may carry; entities are
    # decoded, as feedparser's lenient parser (a feed with one stray control byte) leaves
    # them in a source's name ("AT&amp;T")
    named = one_line(html.unescape(raw))
    if named:
        return named[:MAX_SOURCE]
    if target is None:
        return ""
    host = (urlsplit(target).hostname or "").removeprefix("www.")
    return host[:MAX_SOURCE]


def _absolute_link(raw: object, base: str | None) -> str | None:
    """raw made absolute against base, when it is an http(s) URL we would fetch."""
    if not isinstance(raw, str) or not raw.strip():
        return None
    try:
        absolute = urljoin(base, raw.strip()) if base else raw.strip()
    except ValueError:  # an unclosed "[" in the host: not a URL anything can fetch
        return None
    return fetchable(absolute)


def _summary_text(entry: Any) -> str:
    """The entry's fullest text: its summary, or its content where that holds more text.

    Many feeds carry a one-line description beside the whole article (RSS content:encoded,
    Atom content). When the page cannot be had (a 403 to robots, a cookie wall), the summary
    is what is matched, and a one-line description would miss what only the article says.
    """
    markups = [str(entry.get("summary") or "")]
    markups += [str(c.get("value") or "") for c in entry.get("content") or ()]
    # by the text, not the markup: a content that is one <img> must not beat a description
    return max(map(plain_text, filter(None, markups)), key=len, default="")  # ties: summary


def _entry_date(entry: Any, now: datetime) -> datetime | None:
    """Published (or else updated) time, aware UTC; None if missing, invalid, in the future
    or before EARLIEST_BELIEVED."""
    # dict.get: feedparser's own get() maps a missing updated_parsed to published_parsed
    # with a DeprecationWarning.
    parsed: time.struct_time | None = dict.get(entry, "published_parsed") or dict.get(
        entry, "updated_parsed"
    )
    if parsed is None:
        return None
    try:
        when = datetime(*parsed[:6], tzinfo=UTC)
    except (TypeError, ValueError, OverflowError):
        return None
    reference = now if now.tzinfo else now.replace(tzinfo=UTC)
    if when > reference + FUTURE_SLACK or when < EARLIEST_BELIEVED:
        return None
    return when


class _TextCollector(HTMLParser):
    """Collects the text of an HTML fragment; block elements become spaces."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _INVISIBLE_TAGS:
            self._hidden += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _INVISIBLE_TAGS:
            self._hidden = max(0, self._hidden - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)
