"""One poll cycle: fetch feeds -> parse -> fetch new pages -> extract -> match -> store.

Everything runs from one event loop in the calling thread: feed and page requests go to a
thread pool (a reused synchronous httpx client spends far less CPU per request than the async
one, and CPU is what extraction needs), extraction goes to worker processes, and each feed is
written in one transaction once all its new pages are done. Requests are dispatched per host,
so one slow site never holds every thread. A failing feed, page or extraction is that feed's
or that article's record; it never stops the cycle.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any, Protocol
from urllib.parse import urlsplit

from monitor.errors import (
    ExtractError,
    FetchError,
    HTTPStatusError,
    ParseError,
    StoreError,
    transient,
)
from monitor.feedstore import (
    Known,
    KnownEntry,
    NewArticle,
    PageRetry,
    StoryAssigner,
    Unchanged,
    due_page_retries,
    known_items,
    record_failure,
    record_items,
    record_not_modified,
    record_page_retry,
)
from monitor.logs import event, get_logger
from monitor.models import Document, Extracted, Fetched, Item, MatchResult, ParsedFeed
from monitor.store import FeedState, Store

NOT_STORED = "not stored"  # a feed whose write failed (a full disk): redone later
log = get_logger("poll")
# what a page's fetch and extraction gave: the article, or why not and whether that passes
PageDone = Callable[[Extracted | None, str | None, bool], None]

ITEMS_PER_POLL = 200
# 304s are written together, one transaction per batch instead of one per feed (a commit is
# most of the cost of recording one); a batch waits at most UNCHANGED_WAIT seconds
UNCHANGED_BATCH = 50
UNCHANGED_WAIT = 0.25
# why an entry kept by its GUID has no page: the feed gave no link, or one never fetched
NO_LINK = (
    "no page to fetch: the feed gives this entry no link, or one that is not a plain http(s)"
    " address (javascript:, file:, a user name in it)"
)
# why a page that extracted is still not used: its text is not the article its entry announced
NOT_ANNOUNCED = (
    "not the article: the page holds next to none of the words of its feed entry's title and"
    " summary (a cookie wall or a login page?)"
)


class Fetching(Protocol):
    def fetch(
        self, url: str, *, etag: str | None = None, last_modified: str | None = None
    ) -> Fetched: ...


class Extracting(Protocol):
    def submit(self, url: str, content: bytes, headers: Mapping[str, str]) -> Future[Extracted]: ...


class Matching(Protocol):
    def match(self, doc: Document, feed: str | None = None) -> list[MatchResult]: ...


Parser = Callable[[bytes, Mapping[str, str], str, datetime, int], ParsedFeed]
HtmlTest = Callable[[Fetched], bool]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class FeedReport:
    """How one feed's poll went."""

    feed: str
    status: str  # ok | not_modified | failed
    error: str | None = None
    new_articles: int = 0
    new_hits: int = 0
    pages_failed: int = 0
    duration: float = 0.0
    warnings: tuple[str, ...] = ()  # the parser's: entries skipped, XML read leniently
    pages_to_retry: int = 0  # of pages_failed, those that failed in a way that passes


@dataclass(frozen=True, slots=True)
class CycleReport:
    """How a whole poll cycle went."""

    started: datetime
    duration: float
    feeds: tuple[FeedReport, ...]
    hit_ids: tuple[int, ...]
    pages_retried: int = 0  # pages that had failed in a way that passes, fetched again
    pages_recovered: int = 0  # of those, the ones whose text is now stored

    def count(self, status: str) -> int:
        return sum(1 for f in self.feeds if f.status == status)

    @property
    def new_articles(self) -> int:
        return sum(f.new_articles for f in self.feeds)

    @property
    def new_hits(self) -> int:
        return len(self.hit_ids)

    @property
    def pages_failed(self) -> int:
        return sum(f.pages_failed for f in self.feeds)

    @property
    def pages_to_retry(self) -> int:
        return sum(f.pages_to_retry for f in self.feeds)


@dataclass(eq=False)
class _ItemWork:
    item: Item
    extracted: Extracted | None = None
    error: str | None = None
    shared: bool = False  # another feed fetches the page; this entry gets its result
    done: bool = False
    passes: bool = False  # the page failed in a way that passes: it is fetched again later
    sharers: list[tuple[_FeedWork, _ItemWork]] = field(default_factory=list)


@dataclass(eq=False)
class _FeedWork:
    state: FeedState
    interval: float
    started: float
    fetched: Fetched | None = None
    items: list[_ItemWork] = field(default_factory=list)
    known: list[KnownEntry] = field(default_factory=list)
    pending: int = 0
    warnings: tuple[str, ...] = ()


class _Dispatcher:
    """Runs requests on a thread pool within `total` and `per_host` limits, pages first.

    The event loop queues requests and pumps: it starts pages (as many as the loop has room
    for) before feeds. A pool thread that finishes a request frees its slot itself and, when
    no page is waiting, goes straight on to the next feed whose host has room: a slot does
    not sit empty until the loop gets round to it (at a thousand unchanged feeds, 2 to 3 of
    32 slots were empty on average). Every count is kept under one lock.
    """

    def __init__(
        self,
        pool: ThreadPoolExecutor,
        total: int,
        per_host: int,
        stop: threading.Event | None = None,
    ) -> None:
        self.pool, self.total, self.per_host = pool, total, per_host
        self.stop = stop or threading.Event()
        self.queues: dict[str, tuple[deque[Any], deque[Any]]] = {}
        self.in_flight: dict[str, int] = {}
        self.hosts: dict[Future[Any], str] = {}
        self._pages_queued = 0
        self._lock = threading.Lock()

    def queue(self, url: str, fn: Callable[[], Any], *, page: bool) -> Future[Any]:
        """Queue fn as a request to url's host; its future completes when it has run."""
        host = urlsplit(url).hostname or ""
        future: Future[Any] = Future()
        with self._lock:
            pages, feeds = self.queues.setdefault(host, (deque(), deque()))
            (pages if page else feeds).append((fn, future))
            self._pages_queued += page
        return future

    def pump(self, page_room: int) -> int:
        """Start queued requests while limits allow; returns how many pages were started."""
        started_pages = 0
        emptied = []
        with self._lock:
            for host, (pages, feeds) in self.queues.items():
                if len(self.hosts) >= self.total:
                    break  # every slot taken: the hosts further on wait their turn unvisited
                while len(self.hosts) < self.total and self.in_flight.get(host, 0) < self.per_host:
                    if pages and started_pages < page_room:
                        fn, future = pages.popleft()
                        started_pages += 1
                        self._pages_queued -= 1
                    elif feeds:
                        fn, future = feeds.popleft()
                    else:
                        break
                    self._take(host, future)
                    self.pool.submit(self._run, fn, future)
                if not pages and not feeds:
                    emptied.append(host)
            for host in emptied:
                del self.queues[host]
        return started_pages

    def release(self, future: Future[Any]) -> None:
        """Free the slot of a request that finished without _run, which frees its own before
        setting the result (the tests' recording pool runs nothing); a no-op for other
        futures and the second time."""
        with self._lock:
            self._release(future)

    @property
    def queued(self) -> bool:
        return bool(self.queues)

    def _take(self, host: str, future: Future[Any]) -> None:
        self.in_flight[host] = self.in_flight.get(host, 0) + 1
        self.hosts[future] = host

    def _release(self, future: Future[Any]) -> None:
        host = self.hosts.pop(future, None)
        if host is not None:
            self.in_flight[host] -= 1

    def _run(self, fn: Callable[[], Any], future: Future[Any]) -> None:
        """On a pool thread: run requests until there is no feed this thread may start."""
        while True:
            try:
                outcome, failed = fn(), False
            except BaseException as exc:  # delivered to the event loop, which decides
                outcome, failed = exc, True
            with self._lock:
                self._release(future)
                following = self._next_feed()
            if failed:
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
            if following is None:
                return
            fn, future = following

    def _next_feed(self) -> tuple[Callable[[], Any], Future[Any]] | None:
        """A queued feed to start now, its slot taken; None when a page waits (the event loop
        starts pages, within its room for them), when stopping, or when no host has room."""
        if self._pages_queued or self.stop.is_set() or len(self.hosts) >= self.total:
            return None
        for host, (pages, feeds) in self.queues.items():
            if feeds and self.in_flight.get(host, 0) < self.per_host:
                fn, future = feeds.popleft()
                if not feeds and not pages:
                    del self.queues[host]
                self._take(host, future)
                return fn, future
        return None


class Poller:
    """Polls feeds into the store; build once per cycle (or reuse across cycles)."""

    def __init__(
        self,
        *,
        store: Store,
        fetcher: Fetching,
        extractor: Extracting | None,
        matcher: Matching,
        parse: Parser,
        is_html: HtmlTest,
        stories: StoryAssigner | None = None,
        immediate: frozenset[str] = frozenset(),
        concurrency: int = 32,
        per_host: int = 4,
        max_pages_in_flight: int = 64,
        clock: Callable[[], datetime] = utcnow,
        on_feed: Callable[[FeedReport], None] | None = None,
    ) -> None:
        self.store, self.fetcher, self.extractor = store, fetcher, extractor
        self.matcher, self.parse, self.is_html, self.stories = matcher, parse, is_html, stories
        self.immediate, self.clock, self.on_feed = immediate, clock, on_feed
        self.concurrency, self.per_host = concurrency, per_host
        self.max_pages = max_pages_in_flight
        self._stop = threading.Event()

    def stop(self) -> None:
        """Ask a running cycle to end soon: queued requests are dropped, nothing half-done is
        written (the next cycle redoes it)."""
        self._stop.set()

    def run(self, feeds: Sequence[tuple[FeedState, float]]) -> CycleReport:
        """Poll each (feed, interval) once; returns what happened."""
        started, t0 = self.clock(), time.monotonic()
        self._reports: list[FeedReport] = []
        self._hits: list[int] = []
        self._pending: dict[Future[Any], Callable[[Future[Any]], None]] = {}
        self._done: queue.SimpleQueue[Future[Any]] = queue.SimpleQueue()
        self._pages = 0
        self._retried = self._recovered = 0
        self._in_flight: dict[str, tuple[_FeedWork, _ItemWork]] = {}  # page URL -> its fetcher
        self._unchanged: list[tuple[_FeedWork, float]] = []  # 304s not written yet, timed
        self._unchanged_since = 0.0
        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="fetch")
        try:
            self._dispatch = _Dispatcher(pool, self.concurrency, self.per_host, self._stop)
            for state, interval in feeds:
                work = _FeedWork(state, interval, time.monotonic())
                self._watch(
                    self._dispatch.queue(state.url, self._feed_job(work), page=False),
                    partial(self._on_feed, work),
                )
            self._queue_retries(feeds)
            self._loop()
            self._write_unchanged()  # a 304 is a whole answer, even in a cycle told to stop
        finally:
            # on stop, requests in flight finish within their deadline in the background
            pool.shutdown(wait=not self._stop.is_set(), cancel_futures=True)
        return CycleReport(
            started,
            time.monotonic() - t0,
            tuple(self._reports),
            tuple(self._hits),
            self._retried,
            self._recovered,
        )

    # -- the event loop -------------------------------------------------------------------

    def _watch(self, future: Future[Any], handler: Callable[[Future[Any]], None]) -> None:
        self._pending[future] = handler
        # each future reports itself when done: the loop never scans the whole pending set,
        # which at 1,000 queued feeds cost more than the requests themselves
        future.add_done_callback(self._done.put)

    def _loop(self) -> None:
        while (self._pending or self._dispatch.queued) and not self._stop.is_set():
            self._pages += self._dispatch.pump(max(self.max_pages - self._pages, 0))
            if not self._pending:
                continue
            try:
                done = [self._done.get(timeout=1.0)]
            except queue.Empty:
                continue
            for _ in range(self._done.qsize()):  # what is done by now, then start requests
                done.append(self._done.get_nowait())
            for future in done:  # their slots are free already: see _Dispatcher._run
                self._pending.pop(future)(future)
            if self._unchanged and (
                len(self._unchanged) >= UNCHANGED_BATCH
                or time.monotonic() - self._unchanged_since >= UNCHANGED_WAIT
            ):
                self._write_unchanged()

    def _feed_job(self, work: _FeedWork) -> Callable[[], tuple[Fetched, ParsedFeed | None]]:
        state = work.state

        def job() -> tuple[Fetched, ParsedFeed | None]:
            fetched = self.fetcher.fetch(
                state.url, etag=state.etag, last_modified=state.last_modified
            )
            if fetched.status == 304:
                return fetched, None
            parsed = self.parse(
                fetched.content, fetched.headers, fetched.url, self.clock(), ITEMS_PER_POLL
            )
            return fetched, parsed

        return job

    # -- feeds ----------------------------------------------------------------------------

    def _on_feed(self, work: _FeedWork, future: Future[tuple[Fetched, ParsedFeed | None]]) -> None:
        try:
            fetched, parsed = future.result()
        except (FetchError, ParseError) as exc:
            self._fail(work, exc)
            return
        except Exception as exc:  # a bug one feed's answer runs into: that feed's failure
            self._fail(work, FetchError(_unexpected(f"feed {work.state.name}", exc)))
            return
        work.fetched = fetched
        if parsed is None:
            if not self._unchanged:
                self._unchanged_since = time.monotonic()
            self._unchanged.append((work, self._elapsed(work)))
            return
        work.warnings = parsed.warnings
        self._plan_items(work, parsed.items)
        if work.pending == 0:
            self._commit(work)

    def _plan_items(self, work: _FeedWork, items: Sequence[Item]) -> None:
        known = known_items(self.store, work.state.id, items)
        for index, item in enumerate(items):
            if index in known:
                if known[index].article_id is not None:
                    work.known.append(self._match_again(work, item, known[index]))
                continue
            if item.url in self._in_flight:
                self._share_page(work, item, *self._in_flight[item.url])
                continue
            entry = _ItemWork(item)
            work.items.append(entry)
            if not item.url:
                entry.error = NO_LINK
                continue
            self._in_flight[item.url] = (work, entry)
            work.pending += 1
            told = (item.title, item.summary)
            self._read_page(item.url, told, partial(self._page_done, work, entry))

    def _share_page(self, work: _FeedWork, item: Item, owner: _FeedWork, owned: _ItemWork) -> None:
        """Another feed is fetching this page in this cycle: take its result rather than fetch
        it again, so this feed still records the article (and its own watchlists' hits)."""
        if owner is work:
            return  # the same page twice in one feed: one article
        entry = _ItemWork(item, owned.extracted, owned.error, shared=True, done=owned.done)
        work.items.append(entry)
        if not owned.done:
            work.pending += 1
            owned.sharers.append((work, entry))

    def _match_again(self, work: _FeedWork, item: Item, known: Known) -> KnownEntry:
        """A stored article matched for this feed: as stored, or with its revised entry's
        title and summary (and the text extracted when it was first seen)."""
        article = next(self.store.articles("a.id = ?", (known.article_id,)))
        if known.revised:
            article = replace(article, title=item.title or article.title, summary=item.summary)
        matches = self.matcher.match(article.document, work.state.name)
        immediate = self._immediate(matches)
        return KnownEntry(item, article.id, tuple(matches), immediate, known.revised)

    def _page_job(self, url: str) -> Callable[[], Fetched]:
        return lambda: self.fetcher.fetch(url)

    def _read_page(self, url: str, told: tuple[str, str], done: PageDone) -> None:
        """Fetch and extract a page whose entry told (title, summary); done gets the result."""
        self._watch(
            self._dispatch.queue(url, self._page_job(url), page=True),
            partial(self._on_page, told, done),
        )

    def _on_page(self, told: tuple[str, str], done: PageDone, future: Future[Fetched]) -> None:
        try:
            page = future.result()
        except FetchError as exc:
            self._page_over(done, None, f"page not fetched: {exc}", transient(exc))
            return
        except Exception as exc:  # a bug one page runs into: that page's failure
            self._page_over(done, None, _unexpected("page not fetched", exc))
            return
        if not self.is_html(page):
            kind = page.content_type or "unknown type"
            self._page_over(done, None, f"not an HTML page ({kind})")
            return
        if self.extractor is None:
            self._page_over(done, None, "extraction is off")
            return
        extraction = self.extractor.submit(page.url, page.content, page.headers)
        self._watch(extraction, partial(self._on_extracted, told, done))

    def _on_extracted(
        self, told: tuple[str, str], done: PageDone, future: Future[Extracted]
    ) -> None:
        try:
            extracted = future.result()
        except ExtractError as exc:
            self._page_over(done, None, f"not extracted: {exc}")
            return
        except Exception as exc:  # a bug one page runs into: that page's failure
            self._page_over(done, None, _unexpected("not extracted", exc))
            return
        # imported with the first page: a poll with nothing new never pays for it
        from monitor.stories import holds_announced, text_features

        part = extracted.story or text_features(extracted.text)
        if not holds_announced(part, *told):
            # a cookie wall or a login page: the feed's summary stands in, as for a page
            # that could not be fetched, rather than the wall's words
            self._page_over(done, None, NOT_ANNOUNCED)
            return
        self._page_over(done, extracted, None)

    def _page_over(
        self, done: PageDone, extracted: Extracted | None, error: str | None, passes: bool = False
    ) -> None:
        self._pages -= 1
        done(extracted, error, passes)

    def _page_done(
        self,
        work: _FeedWork,
        entry: _ItemWork,
        extracted: Extracted | None,
        error: str | None,
        passes: bool,
    ) -> None:
        entry.done = True
        for feed_work, item_work in [(work, entry), *entry.sharers]:
            item_work.extracted, item_work.error, item_work.passes = extracted, error, passes
            feed_work.pending -= 1
            if feed_work.pending == 0:
                self._commit(feed_work)

    # -- pages fetched again ----------------------------------------------------------------

    def _queue_retries(self, feeds: Sequence[tuple[FeedState, float]]) -> None:
        """Fetch again the due pages of these feeds' articles that failed in a way that
        passes (a timeout, a 503): matched on their summary until then."""
        if self.extractor is None:
            return
        for retry in due_page_retries(self.store, self.clock(), {s.id for s, _ in feeds}):
            told = (retry.title, retry.summary)
            self._read_page(retry.url, told, partial(self._page_retried, retry))

    def _page_retried(
        self, retry: PageRetry, extracted: Extracted | None, error: str | None, passes: bool
    ) -> None:
        found: dict[str, tuple[int, MatchResult]] = {}
        if extracted is not None:
            doc = Document(retry.headline(extracted), extracted.text)
            for feed_id, name in retry.feeds:  # each carrying feed's watchlists, its own first
                for match in self.matcher.match(doc, name):
                    found.setdefault(match.watchlist, (feed_id, match))
        matches = list(found.values())
        immediate = self._immediate([m for _, m in matches])
        try:
            hit_ids = record_page_retry(
                self.store,
                retry,
                extracted,
                error,
                passes,
                matches,
                immediate,
                self.clock(),
                self.stories,
            )
        except StoreError as exc:  # the retry stays due: the next poll of its feed redoes it
            event(log, 30, "page retry not stored", url=retry.url, error=str(exc))
            return
        outcome = "extracted" if extracted is not None else error
        event(log, 20, "page fetched again", url=retry.url, outcome=outcome, new_hits=len(hit_ids))
        self._hits += hit_ids
        self._retried += 1
        self._recovered += extracted is not None

    # -- writing ----------------------------------------------------------------------------

    def _immediate(self, matches: Sequence[MatchResult]) -> frozenset[str]:
        return frozenset(m.watchlist for m in matches if m.watchlist in self.immediate)

    def _commit(self, work: _FeedWork) -> None:
        articles = []
        for entry in work.items:
            item, extracted = entry.item, entry.extracted
            text = extracted.text if extracted is not None else item.summary
            title = item.title or (extracted.title if extracted and extracted.title else "")
            matches = self.matcher.match(Document(title, text), work.state.name)
            immediate = self._immediate(matches)
            articles.append(
                NewArticle(item, extracted, entry.error, tuple(matches), immediate, entry.passes)
            )
        assert work.fetched is not None
        fetched = work.fetched
        hit_ids: list[int] = []

        def write() -> None:
            hit_ids.extend(
                record_items(
                    self.store,
                    work.state,
                    work.interval,
                    fetched,
                    articles,
                    work.known,
                    self.stories,
                    self.clock(),
                    self._elapsed(work),
                )
            )

        own = [entry for entry in work.items if not entry.shared]  # shared ones count once
        failed = [entry for entry in own if entry.error and entry.item.url]
        report = FeedReport(
            work.state.name,
            "ok",
            None,
            len(own),
            pages_failed=len(failed),
            pages_to_retry=sum(1 for entry in failed if entry.passes),
        )
        if self._finish(work, write, report, hit_ids):
            self._hits += hit_ids

    def _fail(self, work: _FeedWork, exc: FetchError | ParseError) -> None:
        retry_after = exc.retry_after if isinstance(exc, HTTPStatusError) else None
        gone = isinstance(exc, HTTPStatusError) and exc.status == 410
        message = str(exc)

        def write() -> None:
            record_failure(
                self.store,
                work.state,
                work.interval,
                message,
                self.clock(),
                retry_after,
                gone,
                self._elapsed(work),
            )

        self._finish(work, write, FeedReport(work.state.name, "failed", message))

    def _write_unchanged(self) -> None:
        """Record the 304s received so far, in one transaction, and report each feed."""
        batch, self._unchanged = self._unchanged, []
        answers = [Unchanged(work.state, work.interval, duration) for work, duration in batch]
        error = None
        try:
            record_not_modified(self.store, answers, self.clock())
        except StoreError as exc:
            error = f"{NOT_STORED}: {exc}"
        for work, duration in batch:
            status = "failed" if error else "not_modified"
            report = FeedReport(work.state.name, status, error)
            self._report(work, report, error is None, duration=duration)

    def _finish(
        self,
        work: _FeedWork,
        write: Callable[[], None],
        report: FeedReport,
        hit_ids: list[int] | None = None,
    ) -> bool:
        """Run a feed's write; a database failure makes it this feed's failure, redone later."""
        ok = True
        try:
            write()
        except StoreError as exc:
            report = FeedReport(work.state.name, "failed", f"{NOT_STORED}: {exc}")
            ok = False
        self._report(work, report, ok, hit_ids)
        return ok

    def _report(
        self,
        work: _FeedWork,
        report: FeedReport,
        ok: bool,
        hit_ids: list[int] | None = None,
        duration: float | None = None,
    ) -> None:
        """A feed is done: report it, with what it stored if its write went through."""
        for entry in work.items:
            if not entry.shared:
                self._in_flight.pop(entry.item.url, None)
        report = replace(
            report,
            new_articles=report.new_articles if ok else 0,
            new_hits=len(hit_ids or []) if ok else 0,
            duration=self._elapsed(work) if duration is None else duration,
            warnings=work.warnings if ok else (),
        )
        self._reports.append(report)
        if self.on_feed is not None:
            self.on_feed(report)

    @staticmethod
    def _elapsed(work: _FeedWork) -> float:
        return time.monotonic() - work.started


def _unexpected(what: str, exc: Exception) -> str:
    """Log a bug met while polling, with its traceback, and say it in one line for the
    feed's or page's recorded error: the cycle and every other feed go on."""
    log.error("unexpected error: %s", what, exc_info=exc)
    return f"unexpected error: {type(exc).__name__}: {exc}"[:300]
