"""The parts a command needs, built from Settings on first use and closed together.

Commands that only read the database never import the HTTP client or the extractor. A poll
builds the feed parser, the extraction pool, the compiled watchlists and the story index when
its first feed body arrives: a poll in which every feed is unchanged never imports or starts
them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from datetime import datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING

from monitor.config import Settings
from monitor.errors import ConfigErrors
from monitor.ledger import follow_renames
from monitor.logs import event, get_logger
from monitor.models import Document, Extracted, MatchResult, ParsedFeed, TextFeatures
from monitor.pipeline import CycleReport, FeedReport, Poller, utcnow
from monitor.store import FeedState, Store

if TYPE_CHECKING:
    import threading

    from monitor.fetch import Fetcher
    from monitor.match import Matcher
    from monitor.outbox import Outcome
    from monitor.storyindex import StoryIndex
    from monitor.trust import TrustStore
    from monitor.watchlist import Watchlist, WatchlistSet
    from monitor.workers import ExtractorPool

log = get_logger("poll")


class Runtime:
    """A monitor's live parts: the store, the fetcher, the extractor pool, the watchlists."""

    def __init__(self, settings: Settings, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.settings = settings
        self.clock = clock
        self._watchlists: WatchlistSet | None = None
        # feeds whose last write failed (a full disk: their next poll time could not be
        # written either), with how often in a row and when to try again: without this they
        # were fetched, pages and all, at every tick
        self._unstored: dict[str, tuple[int, datetime]] = {}

    # -- parts ------------------------------------------------------------------------------

    @cached_property
    def store(self) -> Store:
        store = Store.open(self.settings.monitor.database)
        store.created(self.clock())
        store.sync_feeds(self.settings.feeds)
        if self._watchlists is not None:
            follow_renames(store, self._watchlists.watchlists)
        return store

    @cached_property
    def trust(self) -> TrustStore:
        """The CA certificates for https, read on a thread from the first use of this on: a
        command that will fetch asks for it before the rest of its start-up."""
        from monitor.trust import TrustStore

        return TrustStore()

    @cached_property
    def fetcher(self) -> Fetcher:
        from monitor.fetch import Fetcher

        return Fetcher(self.settings.fetch, trust=self.trust)

    @cached_property
    def extractor(self) -> ExtractorPool:
        from monitor.extract import extract_with_features
        from monitor.workers import ExtractorPool

        ex = self.settings.extract
        workers = ex.workers or os.cpu_count() or 1
        return ExtractorPool(workers, ex.timeout, ex.max_memory, extract_with_features)

    @cached_property
    def stories(self) -> StoryIndex:
        from monitor.storyindex import StoryIndex

        return StoryIndex(self.store.conn)

    @property
    def watchlist_set(self) -> WatchlistSet:
        """The watchlists; invalid files raise ConfigErrors (use reload_watchlists to keep)."""
        if self._watchlists is None:
            from monitor.watchlist import load_watchlists

            loaded = load_watchlists(self.settings.monitor.watchlists)
            if loaded.errors:
                raise ConfigErrors(loaded.errors)
            self.use_watchlists(loaded)
        assert self._watchlists is not None
        return self._watchlists

    @property
    def watchlists_unset(self) -> bool:
        return self._watchlists is None

    def use_watchlists(self, loaded: WatchlistSet) -> None:
        """Switch to a freshly loaded set of watchlists (their hits follow a renamed one)."""
        self._watchlists = loaded
        self.__dict__.pop("matcher", None)
        if "store" in self.__dict__:  # else when the store is opened
            follow_renames(self.store, loaded.watchlists)

    @property
    def watchlists(self) -> tuple[Watchlist, ...]:
        return self.watchlist_set.watchlists

    @cached_property
    def matcher(self) -> Matcher:
        from monitor.match import compile_watchlists

        return compile_watchlists(self.watchlists)

    # -- work -------------------------------------------------------------------------------

    def poll(
        self,
        states: Sequence[FeedState],
        on_feed: Callable[[FeedReport], None] | None = None,
        poller_hook: Callable[[Poller | None], None] | None = None,
    ) -> CycleReport:
        """One poll cycle over these feeds."""
        from monitor.fetch import is_html

        intervals = {f.name: f.interval for f in self.settings.feeds}
        immediate = frozenset(w.name for w in self.watchlists if w.alert == "immediate")
        parts = _WhenNeeded(self)

        def report(feed: FeedReport) -> None:
            event(
                log,
                30 if feed.status == "failed" or feed.warnings else 20,
                "feed polled",
                feed=feed.feed,
                status=feed.status,
                new_articles=feed.new_articles,
                new_hits=feed.new_hits,
                duration=round(feed.duration, 3),
                **({"error": feed.error} if feed.error else {}),
                **({"warnings": list(feed.warnings)} if feed.warnings else {}),
            )
            self._note_unstored(feed, intervals.get(feed.feed, self.settings.monitor.poll_interval))
            if on_feed is not None:
                on_feed(feed)

        poller = Poller(
            store=self.store,
            fetcher=self.fetcher,
            extractor=parts,
            matcher=parts,
            parse=_parse_feed,
            is_html=is_html,
            stories=parts,
            immediate=immediate,
            concurrency=self.settings.fetch.concurrency,
            per_host=self.settings.fetch.per_host,
            clock=self.clock,
            on_feed=report,
        )
        feeds = [(s, intervals.get(s.name, self.settings.monitor.poll_interval)) for s in states]
        if poller_hook is not None:
            poller_hook(poller)
        try:
            return poller.run(feeds)
        finally:
            if poller_hook is not None:
                poller_hook(None)

    def send_alerts(self, stopped: threading.Event | None = None) -> list[Outcome]:
        """Alert the hits owed by immediate watchlists (this cycle's, and any that a crash or
        an earlier command left behind), then try to send them (until `stopped`)."""
        immediate = [(w.name, w.recipients) for w in self.watchlists if w.alert == "immediate"]
        if not immediate:
            return []
        from monitor.delivery import deliver_pending
        from monitor.outbox import make_alerts, plan_routes

        made = make_alerts(
            self.store, self.settings, plan_routes(self.settings, immediate), self.clock()
        )
        if made:
            everyone = plan_routes(self.settings, [(w.name, w.recipients) for w in self.watchlists])
            recipients = {route.recipient for route in everyone}
            deliver_pending(self.store, self.settings, self.clock(), stopped, recipients=recipients)
        return made

    def configured_states(self, names: Sequence[str] | None = None) -> list[FeedState]:
        """The states of the feeds the config lists (not of feeds since removed from it)."""
        wanted = [f.name for f in self.settings.feeds] if names is None else list(names)
        return self.store.feed_states(wanted)

    def due_states(self) -> list[FeedState]:
        """Configured feeds whose next poll time has come, and whose last write, if it failed,
        is not too recent to try again."""
        now = self.clock()
        held = {name: when for name, (_, when) in self._unstored.items() if when > now}
        return [
            s
            for s in self.configured_states()
            if (s.next_poll is None or s.next_poll <= now) and s.name not in held
        ]

    def _note_unstored(self, feed: FeedReport, interval: float) -> None:
        """Back a feed off while its writes fail: a minute, doubling, at most its interval."""
        from monitor.pipeline import NOT_STORED

        if feed.status != "failed" or not (feed.error or "").startswith(NOT_STORED):
            self._unstored.pop(feed.feed, None)
            return
        failures = self._unstored.get(feed.feed, (0, self.clock()))[0] + 1
        delay = min(60.0 * 2 ** min(failures - 1, 20), max(interval, 60.0))
        self._unstored[feed.feed] = (failures, self.clock() + timedelta(seconds=delay))

    def close_expired_connections(self) -> int:
        """Close the fetcher's connections that are idle past their keep-alive or that their
        server has closed, if a fetcher was built; returns how many."""
        fetcher = self.__dict__.get("fetcher")
        return fetcher.close_expired() if fetcher is not None else 0

    def close(self) -> None:
        for name in ("extractor", "fetcher", "trust", "store"):
            part = self.__dict__.pop(name, None)
            if part is not None:
                part.close()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _WhenNeeded:
    """The runtime's extraction pool, compiled watchlists and story index, built on their
    first use."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    def submit(self, url: str, content: bytes, headers: Mapping[str, str]) -> Future[Extracted]:
        return self._runtime.extractor.submit(url, content, headers)

    def match(self, doc: Document, feed: str | None = None) -> list[MatchResult]:
        return self._runtime.matcher.match(doc, feed)

    def assign(
        self,
        article_id: int,
        title: str,
        text: str,
        published: datetime,
        part: TextFeatures | None = None,
        *,
        again: bool = False,
    ) -> int:
        stories = self._runtime.stories
        return stories.assign(article_id, title, text, published, part, again=again)


def _parse_feed(
    content: bytes, headers: Mapping[str, str], url: str, now: datetime, limit: int
) -> ParsedFeed:
    """monitor.parse.parse_feed, imported with the first feed body to parse."""
    from monitor.parse import parse_feed

    return parse_feed(content, headers, url, now, limit)
