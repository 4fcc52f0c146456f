"""Pure rendering: hits -> the digest and alert emails (subject, plain text, HTML).

Callers hand in frozen records (DigestData, AlertData); digest_view cleans every web-sourced
string and builds the template variables; Jinja2 renders them with autoescape on and
StrictUndefined, and css-inline moves the stylesheet into style attributes for Gmail and
Outlook. Templates in a user folder override the built-in ones file by file. A user template
that fails falls back to the built-in one with a notice in the mail: a digest that never
arrives is the worst outcome, and the notice tells the user what to fix.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import css_inline
from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
    TemplateSyntaxError,
)
from jinja2.sandbox import SandboxedEnvironment

from monitor.digest_view import alert_context, digest_context
from monitor.errors import ConfigError, Location
from monitor.models import Article, Hit, Snippet
from monitor.timeutil import in_zone
from monitor.units import plural

BUILTIN = Path(__file__).resolve().parent / "templates"
TEMPLATE_NAMES = ("digest.html.j2", "digest.txt.j2", "alert.html.j2", "alert.txt.j2")
CHART_DAYS = 14


# -- what callers hand in ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoryEntry:
    """One story: the article shown, and other outlets' articles of the same story."""

    lead: Hit
    others: tuple[Hit, ...] = ()


@dataclass(frozen=True, slots=True)
class WatchlistSection:
    """One watchlist's part of a digest; per_day is oldest first, in local days."""

    name: str
    stories: tuple[StoryEntry, ...]
    per_day: tuple[tuple[date, int], ...] = ()
    alerted: int = 0  # hits already sent as immediate alerts: only counted


@dataclass(frozen=True, slots=True)
class FeedHealth:
    """How one feed is doing; the digest shows those failing for a day or silent."""

    name: str
    url: str
    failing_since: datetime | None = None
    last_error: str | None = None
    failures: int = 0
    silent_since: datetime | None = None  # set by the caller when unusually long


@dataclass(frozen=True, slots=True)
class DigestData:
    """Everything one recipient's digest shows."""

    generated_at: datetime
    window_start: datetime | None  # None: the first digest, carrying every hit so far
    window_end: datetime
    timezone: ZoneInfo
    sections: tuple[WatchlistSection, ...]
    feed_health: tuple[FeedHealth, ...]
    failed_polls: int
    not_extracted: int
    recipient: str
    to_fetch_again: int = 0  # of not_extracted, the pages that will be fetched again
    polls: int | None = None  # feed polls recorded in the window (None: not counted)


@dataclass(frozen=True, slots=True)
class AlertData:
    """An immediate alert: new stories of one watchlist."""

    generated_at: datetime
    timezone: ZoneInfo
    watchlist: str
    stories: tuple[StoryEntry, ...]
    recipient: str


@dataclass(frozen=True, slots=True)
class Rendered:
    """A rendered message: a fixed-template subject and the two bodies, and what went wrong
    with the user's templates (each replaced by the built-in one), for the operator's log."""

    subject: str
    text: str
    html: str
    template_errors: tuple[str, ...] = ()


# -- helpers for callers ------------------------------------------------------------------------


def _when(hit: Hit) -> datetime:
    return hit.article.published or hit.article.first_seen


def group_stories(hits: Iterable[Hit]) -> tuple[StoryEntry, ...]:
    """One watchlist's hits -> stories, newest first.

    Hits whose articles share a story id form one entry. The lead is the earliest full-text
    article (the original report, readable in full); the others follow in time order.
    """
    groups: dict[tuple[str, int], list[Hit]] = {}
    for hit in hits:
        story = hit.article.story
        key = ("story", story) if story is not None else ("hit", hit.id)
        groups.setdefault(key, []).append(hit)
    entries = []
    for members in groups.values():
        members.sort(key=lambda h: (not h.article.full_text, _when(h), h.id))
        others = sorted(members[1:], key=lambda h: (_when(h), h.id))
        entries.append(StoryEntry(members[0], tuple(others)))
    entries.sort(key=lambda e: (_when(e.lead), e.lead.id), reverse=True)
    return tuple(entries)


def count_per_day(
    moments: Iterable[datetime], end: datetime, timezone: ZoneInfo, days: int = CHART_DAYS
) -> tuple[tuple[date, int], ...]:
    """Hits per local day for the `days` days ending on end's local day, oldest first."""
    last = in_zone(end, timezone).date()
    counts = {last - timedelta(days=i): 0 for i in range(days - 1, -1, -1)}
    for moment in moments:
        day = in_zone(moment, timezone).date()
        if day in counts:
            counts[day] += 1
    return tuple(counts.items())


# -- rendering ----------------------------------------------------------------------------------


def render_digest(data: DigestData, templates: Path | None = None) -> Rendered:
    """Render one recipient's digest with the user's templates, falling back to the built-in."""
    context = digest_context(data)
    return Rendered(context["subject"], *_render_pair("digest", context, templates))


def render_alert(data: AlertData, templates: Path | None = None) -> Rendered:
    """Render an immediate alert with the user's templates, falling back to the built-in."""
    context = alert_context(data)
    return Rendered(context["subject"], *_render_pair("alert", context, templates))


def _environment(folder: Path | None, html: bool) -> Environment:
    loaders: list[BaseLoader] = [FileSystemLoader(folder)] if folder is not None else []
    loaders.append(FileSystemLoader(BUILTIN))
    env = _make_environment(ChoiceLoader(loaders), html)
    env.globals["plural"] = plural
    return env


def _make_environment(loader: BaseLoader, html: bool) -> Environment:
    # sandboxed: a user's template reaches no Python internals (cycler.__init__.__globals__
    # ran shell commands) and range() is capped, so range(10**9) is an error, not a digest
    # that fills memory; the built-in templates need nothing the sandbox refuses
    if html:
        # set explicitly: select_autoescape() would not recognise a ".html.j2" name
        return SandboxedEnvironment(
            loader=loader,
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
    # plain text is not HTML: escaping would print "&amp;" in the reader's mail
    return SandboxedEnvironment(
        loader=loader,
        autoescape=False,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _render(name: str, context: dict[str, Any], folder: Path | None) -> str:
    html = ".html." in name
    out = _environment(folder, html).get_template(name).render(context)
    if html:
        # no network from a pure function, whatever a user template links to
        out = css_inline.inline(out, load_remote_stylesheets=False)
    return out


def _render_pair(
    kind: str, context: dict[str, Any], folder: Path | None
) -> tuple[str, str, tuple[str, ...]]:
    """Text and HTML, with the user's templates where they work; and what failed in them."""
    names = (f"{kind}.txt.j2", f"{kind}.html.j2")
    out: dict[str, str] = {}
    errors: list[str] = []
    for name in names:
        if folder is None or not (folder / name).is_file():
            continue
        try:
            out[name] = _render(name, context, folder)
        except Exception as exc:  # a user's template code can raise anything; say where
            errors.append(f"{template_error(exc)}; the built-in {name} was used instead")
    # the readers are told too, without the server's folder
    notices = tuple(e.replace(f"{folder}{os.sep}", "") for e in errors)
    fallback = {**context, "notices": notices}
    for name in names:
        if name not in out:
            out[name] = _render(name, fallback, None)
    return out[names[0]], out[names[1]], tuple(errors)


def template_error(exc: BaseException) -> ConfigError:
    """A template failure as FILE:LINE: message, the line taken from Jinja's traceback."""
    if isinstance(exc, TemplateSyntaxError):
        return ConfigError(exc.message or "syntax error", Location(_where(exc), exc.lineno))
    file, line = "template", None
    tb = exc.__traceback__
    while tb is not None:
        # Jinja rewrites tracebacks so template frames carry the template's file and line
        if tb.tb_frame.f_code.co_filename.endswith(".j2"):
            file, line = tb.tb_frame.f_code.co_filename, tb.tb_lineno
        tb = tb.tb_next
    message = str(exc).replace("monitor.digest_view.", "")  # users know "StoryView", not modules
    if "Undefined" not in type(exc).__name__:
        message = f"{type(exc).__name__}: {message}"
    return ConfigError(message, Location(file, line))


def _where(exc: TemplateSyntaxError) -> str:
    return exc.filename or exc.name or "template"


# -- checking a user's template folder --------------------------------------------------------


def check_templates(folder: Path) -> list[ConfigError]:
    """Problems in a user template folder: syntax errors, then failures on sample data."""
    if not folder.is_dir():
        return [ConfigError("templates folder not found", Location(str(folder)))]
    errors: list[ConfigError] = []
    broken: set[str] = set()
    for path in sorted(folder.iterdir()):
        if path.name + ".j2" in TEMPLATE_NAMES:
            message = f"monitor reads {path.name}.j2, not {path.name}; rename the file"
            errors.append(ConfigError(message, Location(str(path))))
        elif path.name.endswith(".j2"):
            try:
                _environment(folder, ".html." in path.name).get_template(path.name)
            except TemplateSyntaxError as exc:
                errors.append(template_error(exc))
                broken.add(path.name)
            except (TemplateNotFound, UnicodeDecodeError, OSError) as exc:
                # a folder or a dangling link named *.j2, a file not in UTF-8
                why = "not valid UTF-8" if isinstance(exc, UnicodeDecodeError) else "not a file"
                errors.append(ConfigError(f"cannot read the template: {why}", Location(str(path))))
                broken.add(path.name)
    samples = {"digest": digest_context(sample_digest()), "alert": alert_context(sample_alert())}
    for name in TEMPLATE_NAMES:
        if name in broken or not (folder / name).is_file():
            continue
        context = {**samples[name.split(".")[0]], "notices": ("A sample notice.",)}
        try:
            _render(name, context, folder)
        except Exception as exc:  # whatever the user's template raises is reported
            error = template_error(exc)
            if str(error) not in {str(e) for e in errors}:
                errors.append(error)
    return errors


def _sample_hit(n: int, feed: str, full_text: bool) -> Hit:
    when = datetime(2026, 11, 21, 6 + n, 30, tzinfo=UTC)
    article = Article(
        id=n,
        url=f"https://news.example/met/{n}",
        guid=None,
        feed=feed,
        title="Met officers sacked after IOPC finds messages defended as banter",
        summary="Two Metropolitan Police officers were dismissed.",
        text="The IOPC said two Metropolitan Police officers were dismissed.",
        full_text=full_text,
        published=when if n % 2 else None,
        first_seen=when,
        story=1,
    )
    snippet = Snippet("The IOPC said two Met officers were dismissed.", ((4, 8), (18, 21)))
    return Hit(n, "Met Police", article, ("IOPC", "Met NEAR/12 officer*"), snippet, when)


def sample_digest() -> DigestData:
    """A digest that exercises every branch of the templates, for check_templates and docs."""
    tz = ZoneInfo("Europe/London")
    now = datetime(2026, 11, 22, 7, 0, tzinfo=UTC)
    lead = replace(_sample_hit(1, "Wire", True), outlets=("Regional Daily",))
    story = StoryEntry(lead, (_sample_hit(2, "Evening Paper", False),))
    per_day = count_per_day([now - timedelta(days=d % 5) for d in range(12)], now, tz)
    sections = (WatchlistSection("Met Police", (story,), per_day, 1),)
    health = (
        FeedHealth(
            "Local News",
            "https://local.example/rss",
            failing_since=now - timedelta(days=2),
            last_error="HTTP 503",
            failures=40,
            silent_since=now - timedelta(days=3),
        ),
    )
    return DigestData(now, now - timedelta(days=1), now, tz, sections, health, 3, 2, "d@x.example")


def sample_alert() -> AlertData:
    """An alert that exercises every branch of the alert templates."""
    data = sample_digest()
    stories = data.sections[0].stories
    return AlertData(data.generated_at, data.timezone, "Met Police", stories, data.recipient)
