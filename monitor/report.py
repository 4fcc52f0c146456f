"""What a digest or alert says, gathered from the database into digest.py's view records."""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from monitor.config import Settings
from monitor.ledger import hit_times
from monitor.models import Hit
from monitor.store import Store, from_db, to_db

if TYPE_CHECKING:
    from monitor.digest import AlertData, DigestData, FeedHealth
    from monitor.outbox import Route

FAILING_FOR = timedelta(days=1)  # a feed failing longer than this is shown in the digest
SILENT_MIN = timedelta(days=2)  # never call a feed silent before this
SILENT_FACTOR = 5  # ...or before five of its usual gaps between new articles
CHART_DAYS = 14


def digest_data(
    store: Store, settings: Settings, route: Route, hits: Sequence[Hit], now: datetime
) -> DigestData:
    """The digest's content for one recipient: sections, chart, health, what may be missed."""
    from monitor.digest import DigestData, WatchlistSection, count_per_day, group_stories

    tz = settings.monitor.timezone
    window_start = _last_digest(store, route.recipient)
    since = window_start or now - timedelta(days=1)
    sections = []
    for name in route.watchlists:
        own = [h for h in hits if h.watchlist == name]
        chart_from = now - timedelta(days=CHART_DAYS)
        per_day = count_per_day(hit_times(store, name, chart_from), now, tz)
        sections.append(
            WatchlistSection(
                name=name,
                stories=group_stories(own),
                per_day=per_day,
                alerted=_alerted(store, route.recipient, name, since),
            )
        )
    # pages still unread since then, and of those, the ones that will be fetched again
    not_extracted, to_fetch_again = store.read(
        "SELECT COUNT(*), COUNT(page_retry_at) FROM articles WHERE url IS NOT NULL"
        " AND full_text = 0 AND first_seen >= ?",
        (to_db(since),),
    )[0]
    # polls since then, and of those, the ones that failed
    polls, failed_polls = store.read(
        "SELECT COUNT(*), COUNT(CASE status WHEN 'failed' THEN 1 END) FROM polls WHERE at >= ?",
        (to_db(since),),
    )[0]
    return DigestData(
        generated_at=now,
        window_start=window_start,
        window_end=now,
        timezone=tz,
        sections=tuple(sections),
        feed_health=tuple(feed_health(store, settings, now)),
        failed_polls=int(failed_polls),
        polls=int(polls),
        not_extracted=int(not_extracted),
        recipient=route.recipient,
        to_fetch_again=int(to_fetch_again),
    )


def alert_data(
    settings: Settings, watchlist: str, recipient: str, hits: Sequence[Hit], now: datetime
) -> AlertData:
    """An immediate alert's content."""
    from monitor.digest import AlertData, group_stories

    return AlertData(
        generated_at=now,
        timezone=settings.monitor.timezone,
        watchlist=watchlist,
        stories=group_stories(hits),
        recipient=recipient,
    )


def feed_health(store: Store, settings: Settings, now: datetime) -> list[FeedHealth]:
    """Feeds failing for more than a day, and feeds silent for unusually long."""
    from monitor.digest import FeedHealth

    out = []
    for st in store.feed_states([f.name for f in settings.feeds]):
        failing = st.failing_since is not None and now - st.failing_since >= FAILING_FOR
        silent = None if failing else _silent_since(store, st.id, st.last_new_article, now)
        if failing or silent is not None:
            out.append(
                FeedHealth(
                    name=st.name,
                    url=st.url,
                    failing_since=st.failing_since if failing else None,
                    last_error=st.last_error if failing else None,
                    failures=st.failures,
                    silent_since=silent,
                )
            )
    return out


def _silent_since(
    store: Store, feed_id: int, last_new: datetime | None, now: datetime
) -> datetime | None:
    """When the feed last brought something new, if that is unusually long ago for it."""
    if last_new is None:
        return None
    rows = store.read(
        "SELECT first_seen FROM articles WHERE feed_id = ? ORDER BY first_seen DESC LIMIT 30",
        (feed_id,),
    )
    times = sorted({t for r in rows if (t := from_db(r[0])) is not None})
    if len(times) < 5:
        return None  # too little history to know what is usual
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    usual = timedelta(seconds=statistics.median(gaps))
    if now - last_new > max(SILENT_MIN, SILENT_FACTOR * usual):
        return last_new
    return None


def _last_digest(store: Store, recipient: str) -> datetime | None:
    rows = store.read(
        "SELECT MAX(created) FROM digests WHERE recipient = ? COLLATE NOCASE AND kind IN"
        " ('daily', 'manual') AND status != 'skipped'",
        (recipient,),
    )
    return from_db(rows[0][0]) if rows else None


def _alerted(store: Store, recipient: str, watchlist: str, since: datetime) -> int:
    """Hits of the window that alerts the server took carried to this recipient (one still
    being retried, or refused, is not "already sent")."""
    rows = store.read(
        "SELECT COUNT(*) FROM digest_hits dh JOIN digests d ON d.id = dh.digest_id"
        " JOIN hits h ON h.id = dh.hit_id WHERE d.kind = 'alert' AND d.status = 'sent'"
        " AND dh.recipient = ? COLLATE NOCASE AND h.watchlist = ? AND d.created >= ?",
        (recipient, watchlist, to_db(since)),
    )
    return int(rows[0][0])
