"""Feed discovery over the network: is this URL a feed, or a page that names one?"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from monitor.config import FetchSettings
from monitor.discover import (
    COMMON_PATHS,
    find_feed_links,
    guess_feed_urls,
    news_first,
    robots_url,
    sitemaps_in_robots,
)
from monitor.errors import FetchError, MonitorError, ParseError
from monitor.sitemap import SitemapIndex

if TYPE_CHECKING:
    from monitor.fetch import Fetcher


MAX_DECLARED_TRIED = 5  # feed links of a page tried, in the page's order


@dataclass(frozen=True, slots=True)
class FoundFeed:
    url: str
    title: str
    entries: int


def discover_feed(settings: FetchSettings, url: str) -> FoundFeed:
    """The feed at url, or the first working feed the page at url declares (or, failing that,
    one at a common location on the same site, or a sitemap the site's robots.txt names)."""
    from monitor.extract import decode_html
    from monitor.fetch import Fetcher, is_html
    from monitor.parse import parse_feed

    with Fetcher(settings) as fetcher:
        try:
            first = fetcher.fetch(url)
        except FetchError as exc:
            raise MonitorError(f"cannot fetch {url}: {exc}") from exc
        now = datetime.now(UTC)
        try:
            parsed = parse_feed(first.content, first.headers, first.url, now, 200)
            return FoundFeed(first.url, parsed.title, len(parsed.items))
        except SitemapIndex as index:  # the news sitemap it lists, if one works
            found = _first_feed(fetcher, news_first(index.sitemaps), now, [], nested=False)
            if found is None:
                raise MonitorError(f"{url}: {index}") from None
            return found
        except ParseError:
            if not is_html(first):
                raise MonitorError(f"{url} is neither a feed nor a web page") from None
        page = decode_html(first.content, first.headers)
        # the first few the page declares: a page of hundreds of links to a server that never
        # answers would keep `feeds add` waiting for hours, a timeout each
        declared = find_feed_links(page, first.url)[:MAX_DECLARED_TRIED]
        failures: list[str] = []
        found = _first_feed(fetcher, declared or guess_feed_urls(first.url), now, failures)
        if found is None and not declared:  # no feed at all: a sitemap robots.txt names
            found = _first_feed(fetcher, _named_sitemaps(fetcher, first.url), now, [])
        if found is not None:
            return found
    if declared:
        why = f"the feeds the page links to do not work ({'; '.join(failures[:2])})"
    else:
        why = (
            f"the page links to none, there is none at {', '.join(COMMON_PATHS)}, and its"
            " robots.txt names no news sitemap that works"
        )
    raise MonitorError(f"no feed found at {url}: {why}; give the feed's own URL")


def _first_feed(
    fetcher: Fetcher,
    candidates: list[str],
    now: datetime,
    failures: list[str],
    nested: bool = True,
) -> FoundFeed | None:
    """The first of the candidates that is a working feed, or (when nested) a sitemap index's
    news sitemap, one level down; why each before it was not."""
    from monitor.parse import parse_feed

    for candidate in candidates:
        try:
            got = fetcher.fetch(candidate)
            parsed = parse_feed(got.content, got.headers, got.url, now, 200)
        except SitemapIndex as index:
            listed = news_first(index.sitemaps)
            found = _first_feed(fetcher, listed, now, failures, False) if nested else None
            if found is not None:
                return found
            failures.append(f"{candidate}: {index}")
            continue
        except (FetchError, ParseError) as exc:
            failures.append(f"{candidate}: {exc}")
            continue
        return FoundFeed(got.url, parsed.title, len(parsed.items))
    return None


def _named_sitemaps(fetcher: Fetcher, page_url: str) -> list[str]:
    """The sitemaps the robots.txt of the page's site names, news ones first."""
    try:
        robots = fetcher.fetch(robots_url(page_url))
    except FetchError:
        return []
    return sitemaps_in_robots(robots.content.decode("utf-8", "replace"), robots.url)
