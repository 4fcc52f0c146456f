"""Sample news sites served from loopback: for the demo, the integration tests and the benchmarks.

An outlet is a set of article pages (sitegen_pages) and one feed (sitegen_feeds) mounted on a
LoopbackSite under a path prefix. The demo's articles are package data (demo_site/*.txt), each
labelled with whether a Met Police watchlist should match it. Benchmark sites of any size come
from generate_site (sitegen_bench).
See sitegen_demo for the demo's file format.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime

from monitor.loopback import LoopbackSite
from monitor.models import Feed
from monitor.sitegen_bench import GeneratedSite, generate_site
from monitor.sitegen_demo import DEMO_OUTLETS, load_demo_articles, parse_demo_article
from monitor.sitegen_feeds import RENDERERS, render_atom, render_rdf, render_rss
from monitor.sitegen_pages import FEED_TYPES, SiteArticle, render_page

__all__ = [
    "DEMO_OUTLETS",
    "GeneratedSite",
    "SiteArticle",
    "add_outlet",
    "generate_site",
    "load_demo_articles",
    "parse_demo_article",
    "render_atom",
    "render_page",
    "render_rdf",
    "render_rss",
    "start_demo_site",
]

RELATED_LINKS = 4  # other articles of the outlet linked from each page

DEMO_INTERVAL = 900.0  # seconds: the config's default poll interval


def _clean_prefix(prefix: str) -> str:
    if not prefix.startswith("/") or "?" in prefix or "#" in prefix or ".." in prefix:
        raise ValueError(f"prefix must be an absolute path: {prefix!r}")
    return prefix.rstrip("/")


def add_outlet(
    site: LoopbackSite,
    outlet: str,
    articles: Sequence[SiteArticle],
    *,
    prefix: str,
    feed_format: str = "rss",
    layout: int = 0,
) -> str:
    """Serve an outlet on site: each article at PREFIX/SLUG, an index page at PREFIX/ and the
    feed (PREFIX/rss.xml, atom.xml or index.rdf), newest first; returns the feed's URL."""
    base = _clean_prefix(prefix)
    render, filename, content_type = RENDERERS[feed_format]
    ordered = sorted(articles, key=lambda a: a.published, reverse=True)
    feed_url = site.url(f"{base}/{filename}")
    for article in ordered:
        related = [other for other in ordered if other.slug != article.slug][:RELATED_LINKS]
        page_url = site.url(f"{base}/{article.slug}")
        page = render_page(
            article,
            outlet,
            related,
            layout,
            page_url=page_url,
            feed_url=feed_url,
            feed_format=feed_format,
        )
        site.add(f"{base}/{article.slug}", page)
    items = [(a, site.url(f"{base}/{a.slug}")) for a in ordered]
    site.add(f"{base}/", render_index(outlet, items, feed_url, feed_format))
    site.add(f"{base}/{filename}", render(outlet, site.url(f"{base}/"), items), content_type)
    return feed_url


def render_index(
    outlet: str, items: Sequence[tuple[SiteArticle, str]], feed_url: str, feed_format: str
) -> str:
    """An outlet's front page: its headlines, and its feed announced for discovery."""
    e = html.escape
    links = "\n".join(f'<li><a href="{e(url)}">{e(a.title)}</a></li>' for a, url in items)
    return (
        f'<!DOCTYPE html>\n<html lang="en-GB"><head><meta charset="utf-8">'
        f"<title>{e(outlet)}</title>\n"
        f'<link rel="alternate" type="{FEED_TYPES[feed_format]}" title="{e(outlet)}"'
        f' href="{e(feed_url)}"></head>\n'
        f"<body><h1>{e(outlet)}</h1>\n<ul>\n{links}\n</ul></body></html>\n"
    )


def start_demo_site(now: datetime) -> tuple[LoopbackSite, list[Feed]]:
    """Start the demo's sample site on 127.0.0.1 (the caller stops it) and return it with one
    feed per outlet, named after the outlet."""
    # Started first: stopping a server that never served would wait forever.
    site = LoopbackSite("127.0.0.1")
    site.start()
    try:
        feeds = []
        for outlet, articles in load_demo_articles(now).items():
            prefix, feed_format, layout = DEMO_OUTLETS[outlet]
            url = add_outlet(
                site, outlet, articles, prefix=prefix, feed_format=feed_format, layout=layout
            )
            feeds.append(Feed(outlet, url, DEMO_INTERVAL))
    except BaseException:
        site.stop()
        raise
    return site, feeds
