"""Builders shared by the integration tests: sample articles, a config for a LoopbackSite, a clock.

Typical use::

    with LoopbackSite() as site:
        url = add_outlet(site, "Ledger", fixture_articles(), prefix="/ledger")
        config = write_config(tmp_path, {"Ledger": url})
        with Runtime(load_settings(config), clock=clock) as rt:
            rt.poll(rt.configured_states())

Articles come from text files (first line the headline, then one paragraph a line): the real
fixtures in tests/data/stories, the relevant and distractor texts in tests/data.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner, Result

from monitor.cli import cli
from monitor.config import load_settings
from monitor.loopback import LoopbackSite
from monitor.runtime import Runtime
from monitor.sitegen import SiteArticle
from monitor.sitegen_feeds import RENDERERS

TESTS = Path(__file__).resolve().parent
DATA = TESTS / "data"
MET_WATCHLIST = TESTS.parent / "watchlists" / "met-police.toml"
NOW = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)

# The real articles of the project's fixtures (copies live in tests/data/stories). The
# syndicated copy has no headline of its own, so it is given the one its outlet ran.
FIXTURES = {
    "iopc-hotton-banter": None,
    "casey-opinion": None,
    "vinten-syndicated": "Former Met officer says colleagues shared revenge porn at work",
}


def text_article(
    path: Path,
    published: datetime,
    *,
    title: str | None = None,
    met_police: bool | None = None,
) -> SiteArticle:
    """An article from a text file: the first line is its headline (unless title is given,
    in which case every line is a paragraph); the slug is the file's name."""
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    lines = [line for line in lines if line]
    if title is None:
        title, lines = lines[0], lines[1:]
    slug = re.sub(r"[^a-z0-9-]+", "-", path.stem.lower()).strip("-")
    return SiteArticle(slug, title, tuple(lines), published, met_police=met_police)


def fixture_articles(now: datetime = NOW) -> list[SiteArticle]:
    """The three real fixture articles (all about the Met), an hour apart before now."""
    return [
        text_article(DATA / "stories" / f"{name}.txt", now - timedelta(hours=i + 1), title=title)
        for i, (name, title) in enumerate(FIXTURES.items())
    ]


def folder_articles(
    folder: str, now: datetime = NOW, *, met_police: bool | None = None
) -> list[SiteArticle]:
    """Every text file of tests/data/FOLDER ("relevant", "distractors") as an article, each
    published a few minutes before the last, labelled with met_police."""
    paths = sorted((DATA / folder).glob("*.txt"))
    return [
        text_article(p, now - timedelta(minutes=7 * (i + 1)), met_police=met_police)
        for i, p in enumerate(paths)
    ]


def add_feed(
    site: LoopbackSite,
    path: str,
    items: Sequence[tuple[SiteArticle, str]],
    *,
    feed_format: str = "rss",
    outlet: str = "Test outlet",
    **response: object,
) -> str:
    """Serve a feed of (article, link) pairs at path (links as given, tracking parameters and
    all; the pages are served separately); response takes LoopbackSite.add's keywords (delay,
    headers, ...). Returns the feed's URL."""
    render, _, content_type = RENDERERS[feed_format]
    home = site.url(path.rsplit("/", 1)[0] + "/")
    return site.add(path, render(outlet, home, items), content_type, **response)


def write_config(
    folder: Path,
    feeds: Mapping[str, str],
    *,
    watchlists: Iterable[Path] = (MET_WATCHLIST,),
    fetch: Mapping[str, object] | None = None,
    extract: Mapping[str, object] | None = None,
    intervals: Mapping[str, str] | None = None,
    allow: Sequence[str] = ("127.0.0.1",),
) -> Path:
    """Write folder/config.toml polling feeds (name -> URL) into folder/monitor.db, with the
    given watchlist files copied into folder/watchlists; returns the config's path.

    [fetch] allows the loopback addresses in allow and takes the keys in fetch (e.g.
    {"timeout": "2s"}); [extract] uses one worker unless extract says otherwise; intervals
    gives some feeds their own poll interval (default 15m).
    """
    wl_folder = folder / "watchlists"
    wl_folder.mkdir(parents=True, exist_ok=True)
    for path in watchlists:
        shutil.copy(path, wl_folder / path.name)
    fetch_keys = {"allow_addresses": list(allow), "timeout": "10s", **(fetch or {})}
    extract_keys = {"workers": 1, **(extract or {})}
    lines = [
        "[monitor]",
        'database = "monitor.db"',
        'watchlists = "watchlists"',
        'digests = "digests"',
        "",
        "[fetch]",
        *(f"{key} = {_toml(value)}" for key, value in fetch_keys.items()),
        "",
        "[extract]",
        *(f"{key} = {_toml(value)}" for key, value in extract_keys.items()),
    ]
    for name, url in feeds.items():
        lines += ["", "[[feeds]]", f"name = {_toml(name)}", f"url = {_toml(url)}"]
        if intervals and name in intervals:
            lines.append(f"interval = {_toml(intervals[name])}")
    path = folder / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_watchlist(config: Path, name: str, text: str) -> Path:
    """Add (or replace) watchlists/NAME.toml beside a config written by write_config."""
    path = config.parent / "watchlists" / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _toml(value: object) -> str:
    # JSON strings, numbers, booleans and lists of them are valid TOML values
    return json.dumps(value)


def run_cli(config: Path, *args: str) -> Result:
    """Run `monitor --config CONFIG ARGS` in this process (click's CliRunner), leaving the
    process's logging as it was (the command points it at the runner's streams)."""
    saved = [
        (log, list(log.handlers), log.level, log.propagate)
        for log in (logging.getLogger("monitor"), logging.getLogger("apscheduler"))
    ]
    try:
        return CliRunner().invoke(
            cli, ["--config", str(config), *args], env={"MONITOR_CONFIG": None}, prog_name="monitor"
        )
    finally:
        for log, handlers, level, propagate in saved:
            log.handlers[:] = handlers
            log.setLevel(level)
            log.propagate = propagate


def open_runtime(config: Path, clock: Clock) -> Runtime:
    """A Runtime for a config written by write_config, on a test clock (close it when done)."""
    return Runtime(load_settings(config), clock=clock)


class Clock:
    """A clock for Runtime(clock=...): stands still until moved."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now
