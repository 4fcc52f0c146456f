"""Pure: a news sitemap read as a feed.

Some outlets publish no RSS or Atom feed but keep a Google News sitemap for search engines:
a `<urlset>` whose `<url>` entries give each article's address (`<loc>`), and with the news
extension its headline (`<news:title>`) and publication time (`<news:publication_date>`),
else a `<lastmod>`. Such a sitemap is polled like a feed: conditional requests, the newest
200 entries, each new page fetched and extracted once. It has no summaries, so an article
whose page cannot be read is matched on its headline alone.

The body is read by the standard library's expat parser, incrementally: the document type
declaration's internal subset is cut out before (parse.remove_internal_subsets), so no entity
is ever expanded and none is fetched, and each entry is dropped once read. A body cut short
or broken keeps the entries read before the break. A sitemap index (`<sitemapindex>`) lists
other sitemaps rather than articles: it is refused with the first of them named, so the user
can give the news sitemap itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast
from xml.etree.ElementTree import Element, XMLPullParser
from xml.etree.ElementTree import ParseError as XMLError

from monitor.errors import ParseError

# what may stand before the root element: white space, the XML declaration, processing
# instructions, comments and a document type declaration (its internal subset removed)
_PROLOG = re.compile(rb"\s*(?:<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>]*>)", re.DOTALL)
_ROOT = re.compile(rb"\s*<(urlset|sitemapindex)[\s>/]")
_PROLOG_LIMIT = 64 * 1024  # a root element further in than this is not a sitemap's
_SHOWN_SITEMAPS = 3  # of a sitemap index, named in the error
_CHUNK = 64 * 1024
MAX_DEPTH = 16  # <urlset><url><news:news><news:publication><news:name> is 5 deep
MAX_ENTRIES = 50_000  # the sitemap protocol's own limit
MAX_ENTRY_ELEMENTS = 5_000  # an entry may list up to 1,000 images of 2 or more elements


def sitemap_root(content: bytes) -> str | None:
    """The name of the body's root element when it is a sitemap's (urlset, or sitemapindex
    for a sitemap index), else None."""
    head = content[:_PROLOG_LIMIT].removeprefix(b"\xef\xbb\xbf")
    pos = 0
    while (prolog := _PROLOG.match(head, pos)) is not None and prolog.end() > pos:
        pos = prolog.end()
    root = _ROOT.match(head, pos)
    return root[1].decode() if root else None


Entry = tuple[str, str, "str | None"]  # loc, title, date text


@dataclass(frozen=True, slots=True)
class Sitemap:
    """What a sitemap gives: its entries in order, the publication the news extension names
    ("" without it), and what stopped the reading of a body that is not well-formed or not
    shaped like a sitemap (None when all of it was read)."""

    entries: list[Entry]
    publication: str
    problem: str | None


class SitemapIndex(ParseError):
    """A sitemap index: it lists sitemaps (`sitemaps`, in its order) rather than articles."""

    def __init__(self, message: str, sitemaps: list[str]) -> None:
        super().__init__(message)
        self.sitemaps = sitemaps


def read_sitemap(content: bytes) -> Sitemap:
    """Read a sitemap's entries: (loc, title, date text) of every `<url>`. Raises
    SitemapIndex for a sitemap index, naming the first sitemaps it lists."""
    reader = _Reader()
    problem = None
    try:
        for start in range(0, len(content), _CHUNK):
            reader.feed(content[start : start + _CHUNK])
        reader.close()
    except (XMLError, _Unlike) as exc:
        problem = str(exc)
    if reader.listed:
        shown = ", ".join(reader.listed[:_SHOWN_SITEMAPS])
        left = len(reader.listed) - _SHOWN_SITEMAPS
        more = f" and {left} more" if left > 0 else ""
        raise SitemapIndex(
            f"a sitemap index, which lists sitemaps rather than articles: {shown}{more};"
            " give the news sitemap among them as the feed",
            reader.listed,
        )
    return Sitemap(reader.entries, reader.publication, problem)


class _Unlike(Exception):
    """The body stops being shaped like a sitemap: what was read before stands."""


class _Reader:
    """Reads a sitemap as it arrives, keeping one entry's elements at a time: each child of
    the root is read when it ends and then dropped, so memory holds one entry however long
    the body. An element nested deeper than MAX_DEPTH, an entry of more than
    MAX_ENTRY_ELEMENTS elements (a sitemap entry is a handful of them) or more than MAX_ENTRIES
    entries stop the reading."""

    def __init__(self) -> None:
        self._parser: XMLPullParser[Element] = XMLPullParser(events=("start", "end"))
        self._root: Element | None = None
        self._depth = 0
        self._size = 0  # elements of the current entry
        self._count = 0  # children of the root read
        self.entries: list[Entry] = []
        self.listed: list[str] = []
        self.publication = ""

    def feed(self, data: bytes) -> None:
        self._parser.feed(data)
        self._take()

    def close(self) -> None:
        self._parser.close()
        self._take()

    def _take(self) -> None:
        for event in self._parser.read_events():
            kind, element = cast("tuple[str, Element]", event)
            if kind == "start":
                self._start(element)
            else:
                self._end(element)

    def _start(self, element: Element) -> None:
        self._depth += 1
        if self._depth == 1:
            self._root = element
            return
        self._size += 1
        if self._depth > MAX_DEPTH:
            raise _Unlike(f"elements nested more than {MAX_DEPTH} deep")
        if self._size > MAX_ENTRY_ELEMENTS:
            raise _Unlike(f"an entry of more than {MAX_ENTRY_ELEMENTS} elements")

    def _end(self, element: Element) -> None:
        self._depth -= 1
        if self._depth != 1 or self._root is None:
            return
        name = _local(element.tag)
        if name == "url":
            self.entries.append(_entry(element))
            if not self.publication:
                named = _child(_child(_child(element, "news"), "publication"), "name")
                self.publication = _text(named)
        elif name == "sitemap":
            self.listed.append(_text(_child(element, "loc")))
        self._root.remove(element)  # read: dropped, so the root holds one entry at most
        self._size = 0
        self._count += 1
        if self._count >= MAX_ENTRIES:
            raise _Unlike(f"more than {MAX_ENTRIES:,} entries; the rest was not read")


def _entry(url: Element) -> Entry:
    news = _child(url, "news")  # None without the news extension: _child and _text take it
    when = _text(_child(news, "publication_date")) or _text(_child(url, "lastmod")) or None
    return _text(_child(url, "loc")), _text(_child(news, "title")), when


def _child(element: Element | None, name: str) -> Element | None:
    """The first child of element with this local name, in any namespace."""
    if element is None:
        return None
    return next((c for c in element if _local(c.tag) == name), None)


def _text(element: Element | None) -> str:
    return " ".join("".join(element.itertext()).split()) if element is not None else ""


def _local(tag: object) -> str:
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def sitemap_date(text: str | None) -> datetime | None:
    """A W3C date or date-time ("2026-11-20", "2026-11-20T11:02:20Z", with an offset or
    fractions of a second), aware UTC; None when missing or not a date. A date alone is
    taken as its midnight UTC; a time without a zone as UTC."""
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.strip())
        return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: year 1 with a zone east of UTC
        return None
