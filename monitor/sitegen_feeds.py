"""Feeds of the sample news sites: RSS 2.0, Atom 1.0 and RSS 1.0 (RDF).

Each takes the outlet's name, its home URL and (article, page URL) pairs, newest first, and
returns UTF-8 XML. Summaries are the article's summary or its first paragraph. Identifiers
differ by format as they do in the wild: WordPress-style `?p=N` GUIDs in RSS, tag: URIs in
Atom, the page URL as rdf:about in RSS 1.0. Characters XML 1.0 forbids are dropped.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import urlsplit

from monitor.sitegen_pages import SiteArticle, format_iso

FeedItems = Sequence[tuple[SiteArticle, str]]

# XML 1.0 Char production: tab, LF, CR and everything from U+0020 except surrogates, FFFE, FFFF.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _x(text: str) -> str:
    """Text escaped for XML content and double-quoted attributes."""
    text = _NOT_XML.sub("", text)
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


def _rfc822(when: datetime) -> str:
    return format_datetime(when.astimezone(UTC).replace(microsecond=0), usegmt=True)


def rss_guid(site_url: str, article: SiteArticle) -> str:
    """The GUID render_rss gives an article: a WordPress-style `?p=N` address."""
    return f"{site_url.rstrip('/')}/?p={zlib.crc32(article.slug.encode())}"


def atom_id(site_url: str, article: SiteArticle) -> str:
    """The id render_atom gives an article: a tag: URI (RFC 4151)."""
    host = urlsplit(site_url).hostname or "example.org"
    return f"tag:{host},{article.published:%Y-%m-%d}:{article.slug}"


def _updated(items: FeedItems) -> datetime:
    # A fixed date for an empty feed keeps the bytes (and so the ETag) stable.
    return max((a.published for a, _ in items), default=datetime(2000, 1, 1, tzinfo=UTC))


def render_rss(outlet: str, site_url: str, items: FeedItems) -> bytes:
    """An RSS 2.0 feed of items ((article, page URL) pairs, in the order given)."""
    out = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">',
        "<channel>",
        f"<title>{_x(outlet)}</title>",
        f"<link>{_x(site_url)}</link>",
        f"<description>The latest news from {_x(outlet)}</description>",
        "<language>en-gb</language>",
        f"<lastBuildDate>{_rfc822(_updated(items))}</lastBuildDate>",
    ]
    for article, url in items:
        out += [
            "<item>",
            f"<title>{_x(article.title)}</title>",
            f"<link>{_x(url)}</link>",
            f"<description>{_x(article.lead)}</description>",
            f'<guid isPermaLink="false">{_x(rss_guid(site_url, article))}</guid>',
            f"<pubDate>{_rfc822(article.published)}</pubDate>",
            f"<dc:creator>{_x(article.author or outlet)}</dc:creator>",
            f"<category>{_x(article.section)}</category>",
            "</item>",
        ]
    out += ["</channel>", "</rss>", ""]
    return "\n".join(out).encode("utf-8")


def render_atom(outlet: str, site_url: str, items: FeedItems) -> bytes:
    """An Atom 1.0 feed of items; summaries are HTML (one escaped <p>)."""
    out = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en-GB">',
        f"<title>{_x(outlet)}</title>",
        f'<link rel="alternate" type="text/html" href="{_x(site_url)}"/>',
        f"<id>{_x(site_url)}</id>",
        f"<updated>{format_iso(_updated(items))}</updated>",
        f"<author><name>{_x(outlet)}</name></author>",
    ]
    for article, url in items:
        summary = "<p>" + _x(article.lead) + "</p>"
        out += [
            "<entry>",
            f'<title type="text">{_x(article.title)}</title>',
            f'<link rel="alternate" type="text/html" href="{_x(url)}"/>',
            f"<id>{_x(atom_id(site_url, article))}</id>",
            f"<published>{format_iso(article.published)}</published>",
            f"<updated>{format_iso(article.published)}</updated>",
            f"<author><name>{_x(article.author or outlet)}</name></author>",
            f'<summary type="html">{_x(summary)}</summary>',
            "</entry>",
        ]
    out += ["</feed>", ""]
    return "\n".join(out).encode("utf-8")


def render_rdf(outlet: str, site_url: str, items: FeedItems) -> bytes:
    """An RSS 1.0 (RDF) feed of items; the page URL is each item's rdf:about."""
    out = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"'
        ' xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">',
        f'<channel rdf:about="{_x(site_url)}">',
        f"<title>{_x(outlet)}</title>",
        f"<link>{_x(site_url)}</link>",
        f"<description>The latest news from {_x(outlet)}</description>",
        f"<dc:date>{format_iso(_updated(items))}</dc:date>",
        "<items><rdf:Seq>",
        *(f'<rdf:li rdf:resource="{_x(url)}"/>' for _, url in items),
        "</rdf:Seq></items>",
        "</channel>",
    ]
    for article, url in items:
        out += [
            f'<item rdf:about="{_x(url)}">',
            f"<title>{_x(article.title)}</title>",
            f"<link>{_x(url)}</link>",
            f"<description>{_x(article.lead)}</description>",
            f"<dc:date>{format_iso(article.published)}</dc:date>",
            f"<dc:creator>{_x(article.author or outlet)}</dc:creator>",
            f"<dc:subject>{_x(article.section)}</dc:subject>",
            "</item>",
        ]
    out += ["</rdf:RDF>", ""]
    return "\n".join(out).encode("utf-8")


FeedRenderer = Callable[[str, str, FeedItems], bytes]

RENDERERS: dict[str, tuple[FeedRenderer, str, str]] = {
    # format: (renderer, file name, content type)
    "rss": (render_rss, "rss.xml", "application/rss+xml; charset=utf-8"),
    "atom": (render_atom, "atom.xml", "application/atom+xml; charset=utf-8"),
    "rdf": (render_rdf, "index.rdf", "application/rdf+xml; charset=utf-8"),
}
