"""Article pages of the sample news sites, in several layouts, with the clutter of real ones.

A page carries what extraction must drop: masthead and navigation, breadcrumb, share buttons,
"Read more: <another headline>" links between the paragraphs, a "Most read" sidebar, a newsletter
box, reader comments and a footer. The layouts (sitegen_layouts) use different markup and class
names so that extraction is exercised against variety. Templates are autoescaped; the JSON-LD
block is escaped for a <script> element by hand.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any
from urllib.parse import quote

import jinja2
from markupsafe import Markup

from monitor.sitegen_layouts import LAYOUTS

_SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,199}")
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_SECTIONS = ("News", "UK", "World", "Politics", "Business", "Culture", "Sport", "Weather")

# Neutral headlines for pages with no related articles: they must never match a Met watchlist.
_FILLER_HEADLINES = (
    ("council-backs-cycle-lanes", "Council backs new cycle lanes after two-year consultation"),
    ("rail-fares-cap", "Rail fares cap extended into spring, Treasury confirms"),
    ("library-opening-hours", "Libraries to open on Sundays in pilot scheme"),
    ("house-prices-autumn", "House prices edge up for third month running"),
    ("school-meals-review", "Review of school meals funding published"),
)

_COMMENTS = (
    (
        "riverside_reader",
        "Another report, another round of promises. I'll believe it when I see it",
    ),
    ("J. Okafor", "Good to see this covered properly rather than buried on page twelve."),
    ("harrowgate", "Why did it take so long for any of this to come out?"),
    ("Mags", "The comments on here are always depressing. Read the actual article, people."),
    ("old_fleet_hand", "Worth reading to the end. The last few paragraphs are the real story."),
    ("Tom W", "I have lived here thirty years and nothing surprises me any more."),
    ("cassandra22", "Whoever wrote the headline should have a word with themselves."),
    ("P. Lindqvist", "Thanks for the reporting. Please follow this up in six months."),
)

FEED_TYPES = {
    "rss": "application/rss+xml",
    "atom": "application/atom+xml",
    "rdf": "application/rdf+xml",
}


@dataclass(frozen=True, slots=True)
class SiteArticle:
    """One article of a sample site.

    `met_police` says whether a good Met Police watchlist should match it (None: nobody
    decided); `story` is a label shared by every report of the same event ("" when alone).
    """

    slug: str
    title: str
    paragraphs: tuple[str, ...]
    published: datetime
    author: str = ""
    summary: str = ""
    met_police: bool | None = None
    story: str = ""
    section: str = "UK"

    def __post_init__(self) -> None:
        # Slugs become path segments and relative links, so they must not carry "/" or "..".
        if not _SLUG.fullmatch(self.slug):
            raise ValueError(f"slug must be lower-case letters, digits and hyphens: {self.slug!r}")
        if self.published.tzinfo is None:
            raise ValueError("published must be an aware datetime")

    @property
    def lead(self) -> str:
        """What feeds show as the summary: the given summary, else the first paragraph."""
        return self.summary or (self.paragraphs[0] if self.paragraphs else "")


def format_date(when: datetime) -> str:
    """A page's human date, locale-independent: "Sunday 22 November 2026 09:05 GMT"."""
    utc = when.astimezone(UTC)
    day, month = _DAYS[utc.weekday()], _MONTHS[utc.month - 1]
    return f"{day} {utc.day} {month} {utc.year} {utc:%H:%M} GMT"


def format_iso(when: datetime) -> str:
    """RFC 3339 in UTC with a Z, as feeds and JSON-LD write it."""
    return when.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def layout_count() -> int:
    """How many distinct page layouts there are; render_page takes layout modulo this."""
    return len(LAYOUTS)


def render_page(
    article: SiteArticle,
    outlet: str,
    related: Sequence[SiteArticle] = (),
    layout: int = 0,
    *,
    page_url: str = "",
    feed_url: str = "",
    feed_format: str = "rss",
) -> str:
    """A complete news page for article in one of the layouts (layout modulo layout_count()).

    related articles feed the "Read more" links and the "Most read" box (neutral filler
    headlines when there are none); links to them are relative (their slug), so pages must be
    served side by side. page_url is the canonical URL (default: the slug); feed_url, when
    given, is announced with <link rel="alternate">.
    """
    template = _environment().get_template(str(layout % len(LAYOUTS)))
    return template.render(_context(article, outlet, related, page_url, feed_url, feed_format))


@cache
def _environment() -> jinja2.Environment:
    loader = jinja2.DictLoader({str(i): source for i, source in enumerate(LAYOUTS)})
    # autoescape set explicitly: every string from an article is hostile until escaped.
    return jinja2.Environment(
        loader=loader, autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True
    )


def _context(
    article: SiteArticle,
    outlet: str,
    related: Sequence[SiteArticle],
    page_url: str,
    feed_url: str,
    feed_format: str,
) -> dict[str, Any]:
    url = page_url or article.slug
    links = _related_links(article, related)
    return {
        "title": article.title,
        "outlet": outlet,
        "author": article.author or f"{outlet} reporter",
        "date_text": format_date(article.published),
        "iso": format_iso(article.published),
        "year": article.published.year,
        "lead": article.lead,
        "standfirst": article.summary,
        "section": article.section,
        "sections": _SECTIONS,
        "blocks": _interleave(article.paragraphs, links),
        "most_read": links[:5],
        "comments": _pick_comments(article),
        "shares": _share_links(url, article.title),
        "page_url": url,
        "feed_url": feed_url,
        "feed_type": FEED_TYPES[feed_format],
        "jsonld": _json_ld(article, outlet, url),
    }


def _related_links(article: SiteArticle, related: Sequence[SiteArticle]) -> list[tuple[str, str]]:
    links = [(other.slug, other.title) for other in related if other.slug != article.slug]
    return links or list(_FILLER_HEADLINES)


def _interleave(
    paragraphs: Sequence[str], links: Sequence[tuple[str, str]]
) -> list[tuple[str, str, str]]:
    """Paragraph blocks with a "Read more" block after the second paragraph and every third one
    after it, never after the last, as real sites place them."""
    blocks: list[tuple[str, str, str]] = []
    last = len(paragraphs) - 1
    for i, text in enumerate(paragraphs):
        blocks.append(("p", text, ""))
        if i % 3 == 1 and i < last:
            href, title = links[(i // 3) % len(links)]
            blocks.append(("more", href, title))
    return blocks


def _pick_comments(article: SiteArticle) -> list[tuple[str, str, str]]:
    # A checksum, not hash(): page bytes must not change with PYTHONHASHSEED.
    start = zlib.crc32(article.slug.encode()) % len(_COMMENTS)
    picked = []
    for k in range(3):
        name, text = _COMMENTS[(start + 3 * k) % len(_COMMENTS)]
        minutes = article.published.hour * 60 + article.published.minute + 23 * (k + 1)
        picked.append((name, f"{minutes // 60 % 24:02d}:{minutes % 60:02d}", text))
    return picked


def _share_links(page_url: str, title: str) -> list[tuple[str, str]]:
    url, text = quote(page_url, safe=""), quote(title, safe="")
    return [
        ("Facebook", f"https://www.facebook.com/sharer/sharer.php?u={url}"),
        ("X", f"https://twitter.com/intent/tweet?url={url}&text={text}"),
        ("WhatsApp", f"https://wa.me/?text={text}%20{url}"),
        ("Email", f"mailto:?subject={text}&body={url}"),
    ]


def _json_ld(article: SiteArticle, outlet: str, url: str) -> Markup:
    data = {
        "@context": "https://schema.org",
        "@type": "NewsArticle",
        "headline": article.title,
        "description": article.lead,
        "datePublished": format_iso(article.published),
        "dateModified": format_iso(article.published),
        "author": {"@type": "Person", "name": article.author or f"{outlet} reporter"},
        "publisher": {"@type": "Organization", "name": outlet},
        "mainEntityOfPage": url,
        "articleSection": article.section,
    }
    return script_json(data)


def script_json(data: Any) -> Markup:
    """data as JSON fit to sit inside a <script> element."""
    text = json.dumps(data, ensure_ascii=False)
    # Inside <script> only the tokenizer's view matters: no "<", ">" or "&" may appear raw, so
    # a headline holding "</script>" cannot end the element.
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(raw, escaped)
    return Markup(text)  # noqa: S704 - escaped above for the script context
