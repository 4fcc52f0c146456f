"""`monitor test WATCHLIST --since 30d`: what an edited watchlist would change, before it
goes live."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from monitor.cli import nothing_stored
from monitor.config import Settings
from monitor.ledger import last_names, list_hits
from monitor.models import Article
from monitor.runtime import Runtime
from monitor.store import to_db
from monitor.timeutil import EVER, local

if TYPE_CHECKING:
    from monitor.watchlist import Watchlist


def compare_watchlist(
    rt: Runtime, w: Watchlist, since: datetime
) -> tuple[list[Article], list[Article], int]:
    """Stored articles since then that the watchlist as written would newly match, would stop
    matching, and how many hits stay."""
    from monitor.match import compile_watchlists

    matcher = compile_watchlists([w])
    # an edit of its name keeps its hits (ledger.follow_renames): those under the name it had
    # are its own, not articles it would newly match
    names = {w.name, *last_names(rt.store, w)}
    stored = {h.article.id for name in names for h in list_hits(rt.store, watchlist=name)}
    newly: list[Article] = []
    dropped: list[Article] = []
    kept = 0
    order = "a.first_seen >= ? ORDER BY COALESCE(a.published, a.first_seen) DESC"
    for article in rt.store.articles(order, [to_db(since)]):
        hit = bool(matcher.match(article.document, article.feed))
        was = article.id in stored
        if hit and not was:
            newly.append(article)
        elif was and not hit:
            dropped.append(article)
        elif hit:
            kept += 1
    return newly, dropped, kept


def preview(s: Settings, w: Watchlist, since: datetime | None, as_json: bool) -> None:
    """Print the comparison for the user."""
    assert since is not None
    newly: list[Article] = []
    dropped: list[Article] = []
    kept = 0
    if not nothing_stored(s):
        with Runtime(s) as rt:
            newly, dropped, kept = compare_watchlist(rt, w, since)
    tz = s.monitor.timezone
    if as_json:

        def brief(a: Article) -> dict[str, Any]:
            return {
                "url": a.url,
                "title": a.title,
                "feed": a.feed,
                "source": a.source,
                "published": a.published.isoformat() if a.published else None,
            }

        click.echo(
            json.dumps(
                {
                    "watchlist": w.name,
                    "since": since.isoformat(),
                    "newly_matching": [brief(a) for a in newly],
                    "no_longer_matching": [brief(a) for a in dropped],
                    "unchanged": kept,
                },
                indent=2,
                ensure_ascii=False,
            )
        )
        return
    # a --since longer ago than the calendar goes (3000000d) is EVER: no date to show
    scope = "all stored articles" if since <= EVER else f"stored articles since {local(since, tz)}"
    click.echo(f"{w.name}: {scope}, as {w.path} now reads")
    for label, articles in (("would newly match", newly), ("would stop matching", dropped)):
        click.echo(f"{label}: {len(articles)}")
        for a in articles:
            click.echo(
                f"  + {local(a.published or a.first_seen, tz)}  [{a.outlet}] {a.title}"
                if label.startswith("would newly")
                else f"  - {local(a.published or a.first_seen, tz)}  [{a.outlet}] {a.title}"
            )
    click.echo(f"unchanged hits: {kept}")
