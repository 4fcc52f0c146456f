"""Benchmark sites of any size: N feeds x M articles, a pure function of a seed.

Only the routing table is built up front (one small handler per path); headlines, bodies,
pages and feeds are generated on request and kept in bounded caches, so 1,000 feeds x 20
articles builds in well under a second and a few tens of megabytes. Bodies are 600-1,200 words
from a Markov chain trained on the demo's articles, so about a third of the articles talk about
the Met, the IOPC and vetting and the rest carry the distractors.

A fraction of the feeds fail, cycling through FAULT_KINDS: 500, 404, an HTML page instead of a
feed, XML cut in half, headers withheld for `slow` seconds, and a body trickled one byte per
min(slow, 1) seconds.
"""

from __future__ import annotations

import random
import re
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache, lru_cache, partial
from urllib.parse import urlsplit

from monitor.loopback import LoopbackSite, Request, Response
from monitor.models import Feed
from monitor.sitegen_demo import parse_demo_article, read_demo_texts
from monitor.sitegen_feeds import RENDERERS
from monitor.sitegen_pages import SiteArticle, render_page
from monitor.sitegen_text import (
    TextModel,
    build_model,
    generate_paragraph,
    generate_paragraphs,
    generate_title,
)

_PAGE_PATH = re.compile(r"/s(\d{4,})/(story-(\d{3,})-[0-9a-f]{6})")
FAULT_KINDS = ("500", "404", "not-a-feed", "truncated", "slow", "trickle")
FORMATS = ("rss", "atom", "rdf")
MET_SHARE = 0.3  # articles drawn from the Met Police half of the corpus
REFERENCE_NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)  # default "now": keeps bytes stable
_PLACES = [
    "Ashford",
    "Barnet",
    "Camden",
    "Dalston",
    "Ealing",
    "Finchley",
    "Greenwich",
    "Hackney",
    "Islington",
    "Kennington",
    "Lewisham",
    "Merton",
    "Norwood",
    "Orpington",
    "Peckham",
    "Richmond",
    "Stratford",
    "Tooting",
    "Walthamstow",
    "Wembley",
]
_PAPERS = [
    "Gazette",
    "Courier",
    "Chronicle",
    "Herald",
    "Post",
    "Times",
    "Mercury",
    "Echo",
    "Observer",
    "Advertiser",
]
_AUTHORS = (
    "Hannah Okoro",
    "David Pryce",
    "Sunita Bhatt",
    "Tom Ellery",
    "Grace Mwangi",
    "Owen Harcourt",
    "Leah Fischer",
    "Marcus Adebayo",
    "Ruth Callan",
    "Imran Sheikh",
)
_NOT_A_FEED = (
    b"<!DOCTYPE html><html><head><title>Page moved</title></head><body><h1>We have moved</h1>"
    b"<p>Our news pages have a new home. Please update your bookmarks.</p></body></html>"
)
_ERROR_PAGE = (
    b"<html><body><h1>Something went wrong</h1><p>Please try again later.</p></body></html>"
)


@dataclass
class GeneratedSite:
    """A benchmark site, not yet serving: start it with `with generate_site(...) as gen:` (or
    `with gen.site:`), which also stops it. page_urls lists the pages of the healthy feeds, the
    ones a correct poll ends up storing; faulty_feeds holds feed names, faults their kind."""

    site: LoopbackSite
    feeds: list[Feed]
    page_urls: list[str]
    faulty_feeds: set[str] = field(default_factory=set)
    faults: dict[str, str] = field(default_factory=dict)
    generator: _Generator | None = field(default=None, repr=False)

    def article(self, url: str) -> SiteArticle:
        """The article behind one of this site's page URLs, with its text and its met_police
        label (True when drawn from the Met Police corpus); KeyError for any other URL."""
        found = _PAGE_PATH.fullmatch(urlsplit(url).path)
        gen = self.generator
        if found is None or gen is None or not url.startswith(self.site.base + "/"):
            raise KeyError(url)
        f, a = int(found[1]), int(found[3]) - 1
        if f >= len(gen.outlets) or a >= gen.articles or gen.slug(f, a) != found[2]:
            raise KeyError(url)
        return gen.article(f, a)

    def __enter__(self) -> GeneratedSite:
        self.site.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.site.stop()


@cache
def _models() -> tuple[TextModel, TextModel]:
    """(Met Police model, everything-else model), trained once on the demo's articles."""
    met: list[str] = []
    other: list[str] = []
    for slug, text in read_demo_texts().items():
        _, article = parse_demo_article(text, slug, REFERENCE_NOW)
        (met if article.met_police else other).append("\n".join(article.paragraphs))
    return build_model(met), build_model(other)


def feed_name(index: int) -> str:
    """The invented outlet name of feed `index`, unique for any index."""
    place = _PLACES[index % len(_PLACES)]
    paper = _PAPERS[index // len(_PLACES) % len(_PAPERS)]
    lap = index // (len(_PLACES) * len(_PAPERS))
    return f"{place} {paper}" + (f" {lap + 1}" if lap else "")


@dataclass(frozen=True, slots=True)
class _Outlet:
    name: str
    prefix: str
    feed_format: str
    layout: int
    fault: str | None


class _Generator:
    """Generates a site's articles, pages and feeds on demand; the same seed, the same bytes."""

    def __init__(
        self, site: LoopbackSite, seed: int, articles: int, now: datetime, slow: float
    ) -> None:
        self.site, self.seed, self.articles, self.now, self.slow = site, seed, articles, now, slow
        self.outlets: list[_Outlet] = []
        self.head = lru_cache(maxsize=8192)(self._head)
        self.feed = lru_cache(maxsize=1024)(self._feed)
        self.page = lru_cache(maxsize=256)(self._page)

    def slug(self, f: int, a: int) -> str:
        """Known without generating any text, so the routing table is cheap."""
        return f"story-{a + 1:03d}-{zlib.crc32(f'{self.seed}/{f}/{a}'.encode()) & 0xFFFFFF:06x}"

    def page_url(self, f: int, a: int) -> str:
        """Where article a of feed f is served."""
        return self.site.url(f"{self.outlets[f].prefix}/{self.slug(f, a)}")

    def _head(self, f: int, a: int) -> SiteArticle:
        """Headline, first paragraph, date and author: all a feed needs."""
        rng = random.Random(f"{self.seed}/{f}/{a}/head")  # noqa: S311 - text, not secrets
        model = _models()[0 if rng.random() < MET_SHARE else 1]
        title = generate_title(model, rng)
        lead = generate_paragraph(model, rng, rng.randint(30, 60))
        published = self.now - timedelta(minutes=rng.randint(5, 48 * 60))
        return SiteArticle(
            self.slug(f, a),
            title,
            (lead,),
            published.replace(microsecond=0),
            author=rng.choice(_AUTHORS),
            met_police=model is _models()[0],
        )

    def article(self, f: int, a: int) -> SiteArticle:
        """The whole article: the head's paragraph then 600-1,200 words in all."""
        head = self.head(f, a)
        rng = random.Random(f"{self.seed}/{f}/{a}/body")  # noqa: S311
        model = _models()[0 if head.met_police else 1]
        lead_words = len(head.paragraphs[0].split())
        body = generate_paragraphs(model, rng, 600 - lead_words, 1200 - lead_words)
        return SiteArticle(
            head.slug,
            head.title,
            head.paragraphs + body,
            head.published,
            author=head.author,
            met_police=head.met_police,
        )

    def _feed(self, f: int) -> bytes:
        outlet = self.outlets[f]
        heads = sorted(
            (self.head(f, a) for a in range(self.articles)),
            key=lambda h: h.published,
            reverse=True,
        )
        items = [(h, self.site.url(f"{outlet.prefix}/{h.slug}")) for h in heads]
        render = RENDERERS[outlet.feed_format][0]
        return render(outlet.name, self.site.url(f"{outlet.prefix}/"), items)

    def _page(self, f: int, a: int) -> bytes:
        outlet = self.outlets[f]
        others = dict.fromkeys((a + k) % self.articles for k in range(1, 5))
        related = [self.head(f, b) for b in others if b != a]
        html = render_page(
            self.article(f, a),
            outlet.name,
            related,
            outlet.layout,
            page_url=self.page_url(f, a),
            feed_format=outlet.feed_format,
            feed_url=self.site.url(f"{outlet.prefix}/{RENDERERS[outlet.feed_format][1]}"),
        )
        return html.encode("utf-8")

    def serve_page(self, f: int, a: int, request: Request) -> Response:
        """The route handler of one page."""
        return Response(body=self.page(f, a), headers={"Content-Type": "text/html; charset=utf-8"})

    def serve_feed(self, f: int, request: Request) -> Response:
        """The route handler of one feed, healthy or faulty as the outlet says."""
        outlet = self.outlets[f]
        content_type = RENDERERS[outlet.feed_format][2]
        headers = {"Content-Type": content_type}
        if outlet.fault == "500":
            return Response(500, _ERROR_PAGE, {"Content-Type": "text/html"})
        if outlet.fault == "404":
            return Response(404, _ERROR_PAGE, {"Content-Type": "text/html"})
        if outlet.fault == "not-a-feed":
            return Response(200, _NOT_A_FEED, {"Content-Type": "text/html; charset=utf-8"})
        body = self.feed(f)
        if outlet.fault == "truncated":
            return Response(200, body[: len(body) // 2], headers)
        if outlet.fault == "slow":
            return Response(200, body, headers, delay=self.slow)
        if outlet.fault == "trickle":
            return Response(200, body, headers, trickle=min(self.slow, 1.0))
        return Response(200, body, headers)


def _plan_outlets(feeds: int, seed: int, faulty: float) -> list[_Outlet]:
    rng = random.Random(f"{seed}/outlets")  # noqa: S311
    broken = sorted(rng.sample(range(feeds), round(feeds * faulty)))
    kinds = {f: FAULT_KINDS[k % len(FAULT_KINDS)] for k, f in enumerate(broken)}
    return [
        _Outlet(
            feed_name(f),
            f"/s{f:04d}",
            FORMATS[f % len(FORMATS)],
            rng.randrange(3),
            kinds.get(f),
        )
        for f in range(feeds)
    ]


def generate_site(
    feeds: int,
    articles: int,
    *,
    seed: int = 1,
    latency: float = 0.0,
    faulty: float = 0.0,
    host: str = "127.0.0.1",
    slow: float = 30.0,
    now: datetime | None = None,
) -> GeneratedSite:
    """A site of `feeds` feeds x `articles` articles, deterministic for seed (and now, default
    REFERENCE_NOW), answering every request after `latency` seconds; round(feeds * faulty) feeds
    fail (see FAULT_KINDS). The site is returned unstarted: use it as a context manager."""
    if not 0.0 <= faulty <= 1.0 or feeds < 0 or articles < 1:
        raise ValueError("need feeds >= 0, articles >= 1 and 0 <= faulty <= 1")
    site = LoopbackSite(host, latency=latency)
    gen = _Generator(site, seed, articles, now or REFERENCE_NOW, slow)
    gen.outlets = _plan_outlets(feeds, seed, faulty)
    result = GeneratedSite(site, [], [], generator=gen)
    for f, outlet in enumerate(gen.outlets):
        feed_path = f"{outlet.prefix}/{RENDERERS[outlet.feed_format][1]}"
        site.routes[feed_path] = partial(gen.serve_feed, f)
        result.feeds.append(Feed(outlet.name, site.url(feed_path), 900.0))
        for a in range(articles):
            site.routes[f"{outlet.prefix}/{gen.slug(f, a)}"] = partial(gen.serve_page, f, a)
        if outlet.fault:
            result.faulty_feeds.add(outlet.name)
            result.faults[outlet.name] = outlet.fault
        else:
            result.page_urls += [gen.page_url(f, a) for a in range(articles)]
    return result
