"""Pure: a JSON Feed body (https://www.jsonfeed.org/version/1.1/) -> entries shaped as
feedparser gives them, so parse.py reads them by the same rules as RSS and Atom.

Only fields of the expected type are read; anything else counts as missing. Plain-text fields
are escaped, because parse.py reads titles and summaries as HTML. A body that says it is a
JSON Feed but cannot be read as one is a ParseError, like a broken RSS feed.
"""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime
from typing import Any

from monitor.errors import ParseError

VERSION_PREFIX = ("https://jsonfeed.org/version/", "http://jsonfeed.org/version/")
MAX_ITEMS = 10_000  # far more than any feed holds; the newest 200 of them are kept
# Objects, arrays, list elements and strings a body may hold. json.loads builds all of them at
# once, at up to 40 bytes of memory per byte of input for `[{},{},...]`; this many cost at
# most some 60 MB, while a feed of 200 long articles holds tens of thousands.
MAX_VALUES = 500_000
_OPENING = re.compile(rb"(?:\xef\xbb\xbf)?[ \t\r\n]*\{")  # a byte order mark, blanks, an object


def read_json_feed(content: bytes) -> dict[str, Any] | None:
    """The JSON Feed object of a body, or None when the body is not a JSON Feed (RSS, Atom,
    other JSON: those are for feedparser, which says what they are)."""
    if not _OPENING.match(content) or b"jsonfeed.org/version/" not in content:
        return None
    values = sum(map(content.count, (b"{", b"[", b","))) + content.count(b'"') // 2
    if values > MAX_VALUES:
        raise ParseError(f"JSON Feed refused: more than {MAX_VALUES:,} values")
    try:
        feed = json.loads(content.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ParseError(f"broken JSON Feed: {type(exc).__name__}: {exc}"[:200]) from None
    if not isinstance(feed, dict) or not _string(feed.get("version")).startswith(VERSION_PREFIX):
        return None
    return feed


def json_feed_entries(feed: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, str], str]:
    """(entries, the feed's title and home page, a warning when items were left out)."""
    items = feed.get("items")
    if not isinstance(items, list):
        raise ParseError("broken JSON Feed: it has no list of items")
    dropped = ""
    if len(items) > MAX_ITEMS:
        dropped = f"read the first {MAX_ITEMS:,} of {len(items):,} items"
        items = items[:MAX_ITEMS]
    entries = [_entry(item) for item in items if isinstance(item, dict)]
    about = {
        "title": html.escape(_string(feed.get("title")), quote=False),
        "link": _string(feed.get("home_page_url")),
    }
    return entries, about, dropped


def _entry(item: dict[str, Any]) -> dict[str, Any]:
    """One item as a feedparser entry: id, link, title and summary as HTML, content, date."""
    ident = item.get("id")
    if isinstance(ident, int | float) and not isinstance(ident, bool):
        ident = str(ident)  # version 1.0 feeds were allowed numbers here; some still send them
    text = _string(item.get("content_text"))
    content = _string(item.get("content_html")) or html.escape(text, quote=False)
    return {
        "id": _string(ident),
        # url is the item's own page; external_url the page a link post points at
        "link": _string(item.get("url")) or _string(item.get("external_url")),
        "title": html.escape(_string(item.get("title")), quote=False),
        "summary": html.escape(_string(item.get("summary")), quote=False),
        "content": [{"value": content}] if content else [],
        "published_parsed": _utc_time(item.get("date_published"))
        or _utc_time(item.get("date_modified")),
    }


def _string(value: object) -> str:
    return value if isinstance(value, str) else ""


def _utc_time(value: object) -> Any:
    """An RFC 3339 date as a UTC time tuple (what feedparser gives), or None."""
    try:
        when = datetime.fromisoformat(_string(value).strip())
        if when.tzinfo is None:  # RFC 3339 requires an offset; without one, take it as UTC
            when = when.replace(tzinfo=UTC)
        return when.astimezone(UTC).utctimetuple()
    except (ValueError, OverflowError):  # not a date, or year 1 or 9999 moved past the range
        return None
