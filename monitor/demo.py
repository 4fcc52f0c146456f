"""`monitor demo`: the whole pipeline, offline, against a sample news site on 127.0.0.1.

The site (monitor/sitegen.py, articles in monitor/demo_site/) has four outlets' worth of Met
Police stories and the usual traps. The demo polls it into a throwaway database with the
configured watchlists, prints what matched and leaves a rendered digest in the digests folder.
The user's own database, feeds and email settings are never touched.
"""

from __future__ import annotations

import ipaddress
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from monitor.config import Settings
from monitor.ledger import list_hits
from monitor.models import Article, Hit
from monitor.outbox import Outcome, Route, make_digest
from monitor.pipeline import CycleReport, FeedReport, utcnow
from monitor.runtime import Runtime


@dataclass(frozen=True, slots=True)
class DemoResult:
    """What the demo did."""

    cycle: CycleReport
    hits: tuple[Hit, ...]
    missed: tuple[Article, ...]  # articles no watchlist matched
    digest: Outcome


def demo_settings(settings: Settings, database: Path, feeds: list[object]) -> Settings:
    """The user's settings with a throwaway database, the sample feeds, loopback allowed and
    no email."""
    loopback = ipaddress.ip_network("127.0.0.1/32")
    return replace(
        settings,
        monitor=replace(settings.monitor, database=database),
        fetch=replace(
            settings.fetch, allow_addresses=(*settings.fetch.allow_addresses, loopback), per_host=8
        ),
        email=None,
        feeds=tuple(feeds),  # type: ignore[arg-type]
    )


def run_demo(
    settings: Settings,
    now: Callable[[], datetime] = utcnow,
    on_feed: Callable[[FeedReport], None] | None = None,
) -> DemoResult:
    """Serve the sample site, poll it, render a digest of every hit; returns what happened."""
    from monitor.sitegen import start_demo_site

    site, feeds = start_demo_site(now())
    try:
        with tempfile.TemporaryDirectory(prefix="monitor-demo-") as tmp:
            demo = demo_settings(settings, Path(tmp) / "demo.db", list(feeds))
            with Runtime(demo, clock=now) as rt:
                cycle = rt.poll(rt.configured_states(), on_feed=on_feed)
                hits = tuple(list_hits(rt.store))
                matched = {h.article.id for h in hits}
                missed = tuple(a for a in rt.store.articles() if a.id not in matched)
                route = Route("", tuple(w.name for w in rt.watchlists))
                day = now().astimezone(demo.monitor.timezone).date()
                outcome = make_digest(rt.store, demo, route, "manual", day, now(), label="demo")
    finally:
        site.stop()
    return DemoResult(cycle, hits, missed, outcome)
