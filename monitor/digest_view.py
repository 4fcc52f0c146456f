"""Pure view building for the digest and alerts: records -> cleaned template variables.

Everything from feeds and pages is hostile: titles, snippets, URLs and error texts are cleaned
of control and bidi-override characters and clipped here, before Jinja2 escapes them; only
http(s) URLs survive as links. Subjects are built from our own words, a date and counts, so
nothing from the web reaches a header. Every variable made here is listed in docs/templates.md.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from monitor.models import Article, Snippet
from monitor.timeutil import in_zone
from monitor.units import plural

if TYPE_CHECKING:
    from monitor.digest import AlertData, DigestData, FeedHealth, StoryEntry, WatchlistSection

TITLE_LIMIT, SNIPPET_LIMIT, TEXT_LIMIT = 300, 600, 300
CHART_HEIGHT = 6  # rows of table cells in the HTML chart
OLD_NEWS = timedelta(days=300)  # published this long before it was first seen: shown with its year
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = (
    *("January", "February", "March", "April", "May", "June", "July"),
    *("August", "September", "October", "November", "December"),
)
_SPARKS = "·▁▂▃▄▅▆▇█"
# C0/C1 controls, DEL and the invisible direction marks and overrides ("Trojan Source"):
# any of them can disguise a headline or smuggle a line break into a layout.
_INVISIBLE = [*range(0x20), 0x7F, *range(0x80, 0xA0), 0x061C, 0x200E, 0x200F]
_INVISIBLE += [*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0xFEFF]
_STRIP = {c: None for c in _INVISIBLE} | {c: " " for c in (0x09, 0x0A, 0x0D, 0x85, 0x2028, 0x2029)}
_SPACES = re.compile(r"\s+")
_UNSAFE_IN_URL = re.compile(r"[\"'<>`\\{}|^]")


# -- cleaning hostile text ----------------------------------------------------------------------


def clean_text(value: str, limit: int = TEXT_LIMIT) -> str:
    """One line of web text: invisible and control characters gone, spaces collapsed, clipped."""
    return _clip(_SPACES.sub(" ", value.translate(_STRIP)).strip(), limit)


def safe_url(url: str) -> str | None:
    """The URL if it may be shown as a link (http or https, a host, no tricks), else None."""
    url = url.strip()
    if len(url) > 2048 or any(c.isspace() or ord(c) in _STRIP for c in url):
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return None
    # userinfo lets "https://www.bbc.co.uk@evil.example/" pose as the BBC
    if parts.scheme.lower() not in ("http", "https") or not host or "@" in parts.netloc:
        return None
    # characters a URL may not hold raw are escaped, not trusted: they could end an attribute
    return _UNSAFE_IN_URL.sub(lambda m: f"%{ord(m[0]):02X}", url)


def _clip(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 1].rstrip() + "…"


def snippet_parts(snippet: Snippet) -> tuple[Part, ...]:
    """The snippet cut at its marks, each piece cleaned and the whole clipped.

    Cut before cleaning, so that removed characters cannot shift the marks.
    """
    raw: list[Part] = []
    pos = 0
    for start, end in snippet.joined_marks():
        raw += [Part(snippet.text[pos:start], False), Part(snippet.text[start:end], True)]
        pos = end
    raw.append(Part(snippet.text[pos:], False))
    parts: list[Part] = []
    budget = SNIPPET_LIMIT
    for part in raw:
        text = _SPACES.sub(" ", part.text.translate(_STRIP))
        if not parts:
            text = text.lstrip()
        if budget <= 0 or not text:
            continue
        parts.append(Part(_clip(text, budget), part.marked))
        budget -= len(text)
    if parts and not parts[-1].marked:
        parts[-1] = Part(parts[-1].text.rstrip(), False)
    return tuple(parts)


# -- what templates receive (documented in docs/templates.md) ----------------------------------


@dataclass(frozen=True, slots=True)
class Part:
    """A piece of a snippet; a marked piece is a run of matched words."""

    text: str
    marked: bool


@dataclass(frozen=True, slots=True)
class OtherView:
    """Another outlet's article of the same story."""

    outlet: str
    title: str
    url: str | None
    when: str


@dataclass(frozen=True, slots=True)
class StoryView:
    """A story as the templates show it; every string already cleaned."""

    title: str
    url: str | None  # None when the article's URL is not http(s): show the title as text
    outlet: str
    when: str
    matched: tuple[str, ...]
    snippet: tuple[Part, ...]
    snippet_text: str  # the snippet with matched words in [brackets]
    summary_only: bool
    headline_only: bool  # summary_only, and the feed gave no summary (a news sitemap)
    others: tuple[OtherView, ...]
    also: tuple[str, ...]  # other feeds that carried the lead article itself


@dataclass(frozen=True, slots=True)
class DayView:
    """One day of the hits-per-day chart."""

    day: date
    label: str  # day of month, "22"
    count: int
    level: int  # 0..CHART_HEIGHT, bar height in cells


@dataclass(frozen=True, slots=True)
class SectionView:
    """One watchlist's part of the digest."""

    name: str
    anchor: str
    stories: tuple[StoryView, ...]
    story_count: int
    hits: int
    alerted: int
    days: tuple[DayView, ...]
    chart_height: int
    most: int
    sparkline: str
    chart_range: str  # "9 Nov – 22 Nov"


@dataclass(frozen=True, slots=True)
class FeedView:
    """A feed that needs attention, with one sentence saying why."""

    name: str
    url: str | None
    problem: str


def format_day(moment: datetime, tz: ZoneInfo) -> str:
    """'Sunday 22 November 2026' in tz, the same in every locale."""
    t = in_zone(moment, tz)
    return f"{_DAYS[t.weekday()]} {t.day} {_MONTHS[t.month - 1]} {t.year}"


def format_moment(moment: datetime, tz: ZoneInfo, year: bool = False) -> str:
    """'Sun 22 Nov 06:40' in tz ('Sun 22 Nov 2026 06:40' with year)."""
    t = in_zone(moment, tz)
    y = f" {t.year}" if year else ""
    return f"{_DAYS[t.weekday()][:3]} {t.day} {_MONTHS[t.month - 1][:3]}{y} {t:%H:%M}"


def article_moment(article: Article, tz: ZoneInfo) -> str:
    """When an article was published (else first seen), with the year when it was published
    long before a feed brought it: an old article must not read as today's news."""
    published = article.published
    old = published is not None and article.first_seen - published > OLD_NEWS
    return format_moment(published or article.first_seen, tz, year=old)


def _story_view(entry: StoryEntry, tz: ZoneInfo) -> StoryView:
    lead = entry.lead.article
    parts = snippet_parts(entry.lead.snippet)
    others = tuple(
        OtherView(
            clean_text(o.article.outlet, 100),
            clean_text(o.article.title, TITLE_LIMIT),
            safe_url(o.article.url),
            article_moment(o.article, tz),
        )
        for o in entry.others
    )
    listed = {o.outlet for o in others} | {clean_text(lead.outlet, 100), clean_text(lead.feed, 100)}
    also = tuple(dict.fromkeys(clean_text(f, 100) for f in entry.lead.outlets))
    return StoryView(
        title=clean_text(lead.title, TITLE_LIMIT) or "(no title)",
        url=safe_url(lead.url),
        outlet=clean_text(lead.outlet, 100),
        when=article_moment(lead, tz),
        matched=tuple(clean_text(q, 200) for q in entry.lead.matched),
        snippet=parts,
        snippet_text="".join(f"[{p.text}]" if p.marked else p.text for p in parts),
        summary_only=not lead.full_text,
        headline_only=not lead.full_text and not lead.summary.strip(),
        others=others,
        also=tuple(a for a in also if a and a not in listed),
    )


def _section_view(section: WatchlistSection, tz: ZoneInfo, index: int) -> SectionView:
    most = max((n for _, n in section.per_day), default=0)
    days = tuple(
        DayView(d, str(d.day), n, math.ceil(CHART_HEIGHT * n / most) if most else 0)
        for d, n in section.per_day
    )
    spark = "".join(_SPARKS[math.ceil(8 * d.count / most) if most else 0] for d in days)
    first, last = (days[0].day, days[-1].day) if days else (None, None)
    span = f"{first.day} {_MONTHS[first.month - 1][:3]} – " if first else ""
    span += f"{last.day} {_MONTHS[last.month - 1][:3]}" if last else ""
    return SectionView(
        name=clean_text(section.name, 100),
        anchor=f"w{index}",
        stories=tuple(_story_view(s, tz) for s in section.stories),
        story_count=len(section.stories),
        hits=sum(1 + len(s.others) for s in section.stories),
        alerted=section.alerted,
        days=days,
        chart_height=CHART_HEIGHT,
        most=most,
        sparkline=spark,
        chart_range=span,
    )


def _feed_view(feed: FeedHealth, now: datetime, tz: ZoneInfo) -> FeedView | None:
    """Only feeds failing for a day or more, or silent: the rest is noise in a digest."""
    problems = []
    if feed.failing_since is not None and now - feed.failing_since >= timedelta(days=1):
        error = clean_text(feed.last_error or "unknown error", 200)
        since = format_moment(feed.failing_since, tz)
        problems.append(f"failing since {since} ({feed.failures} failed polls): {error}")
    if feed.silent_since is not None:
        problems.append(f"no new items since {format_moment(feed.silent_since, tz)}")
    if not problems:
        return None
    return FeedView(clean_text(feed.name, 100), safe_url(feed.url), "; ".join(problems))


def hit_total(sections: Iterable[WatchlistSection]) -> int:
    """How many new hits the sections carry (every outlet's article counts)."""
    return sum(1 + len(s.others) for section in sections for s in section.stories)


def digest_subject(data: DigestData) -> str:
    """The fixed subject template: only our own words, a date and a count."""
    n = hit_total(data.sections)
    count = plural(n, "new hit") if n else "no new hits"
    return f"monitor digest: {format_day(data.generated_at, data.timezone)}, {count}"


def alert_subject(data: AlertData) -> str:
    """The alert subject: the watchlist name (the user's own words, cleaned) and a count."""
    n = sum(1 + len(s.others) for s in data.stories)
    name = clean_text(data.watchlist, 60)
    return f"monitor alert: {name}, {plural(n, 'new hit')}"


def digest_context(data: DigestData) -> dict[str, Any]:
    """The variables the digest templates receive."""
    tz, now = data.timezone, data.generated_at
    sections = tuple(_section_view(s, tz, i) for i, s in enumerate(data.sections, 1))
    end = format_moment(data.window_end, tz, year=True)
    start = format_moment(data.window_start, tz, year=True) if data.window_start else None
    feeds = (_feed_view(f, now, tz) for f in data.feed_health)
    return {
        "subject": digest_subject(data),
        "day": format_day(now, tz),
        "generated": format_moment(now, tz, year=True),
        "window": f"{start} – {end}" if start else f"up to {end}",
        "timezone": tz.key,
        "recipient": clean_text(data.recipient, 200),
        "sections": sections,
        "hits": sum(s.hits for s in sections),
        "stories": sum(s.story_count for s in sections),
        "alerted": sum(s.alerted for s in sections),
        "feed_health": tuple(f for f in feeds if f is not None),
        "failed_polls": data.failed_polls,
        "polls": data.polls,
        "not_extracted": data.not_extracted,
        "to_fetch_again": data.to_fetch_again,
        "notices": (),
    }


def alert_context(data: AlertData) -> dict[str, Any]:
    """The variables the alert templates receive."""
    stories = tuple(_story_view(s, data.timezone) for s in data.stories)
    return {
        "subject": alert_subject(data),
        "generated": format_moment(data.generated_at, data.timezone, year=True),
        "timezone": data.timezone.key,
        "watchlist": clean_text(data.watchlist, 100),
        "recipient": clean_text(data.recipient, 200),
        "stories": stories,
        "hits": sum(1 + len(s.others) for s in stories),
        "notices": (),
    }
