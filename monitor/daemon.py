"""`monitor run`: the APScheduler 3.x shell around the poll cycle and the outbox.

Two jobs: `poll` wakes every few seconds and polls the feeds whose next poll time (kept in the
database, back-off included) has come; `digest` wakes every minute and decides from the outbox
whether a daily digest is due, then sends what is pending. Each job has its own database
connection. Durable state lives in our tables, never in the scheduler: misfires only delay a
tick, and a restart picks up where the database says. Edited watchlists and config are picked
up before each cycle. SIGTERM and SIGINT stop it cleanly.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

from monitor.config import Settings
from monitor.delivery import deliver_pending, release_held
from monitor.errors import ConfigErrors, MonitorError
from monitor.feedstore import prune_polls
from monitor.logs import event, get_logger
from monitor.outbox import daily_days, make_digest, plan_routes
from monitor.pipeline import Poller, utcnow
from monitor.reload import ConfigReloader, WatchlistReloader
from monitor.runtime import Runtime
from monitor.schedule import due_digest_day
from monitor.store import Store

log = get_logger("daemon")
DIGEST_TICK = 60.0
FIRST_POLL_WAIT = 600.0  # seconds the day's first digest waits for the first poll of a run
STORY_KEEP = timedelta(days=14)  # well past the story window on both sides of publication


class Daemon:
    """A running monitor. start() it, stop() it (signals do), or run() until signalled."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], datetime] = utcnow,
        poll_tick: float | None = None,
        digest_tick: float = DIGEST_TICK,
    ) -> None:
        self.config = ConfigReloader(settings)
        self.watch = WatchlistReloader(settings.monitor.watchlists)
        self.clock = clock
        shortest = min((f.interval for f in settings.feeds), default=60.0)
        self.poll_tick = poll_tick or max(1.0, min(30.0, shortest / 2))
        self.digest_tick = digest_tick
        self.stopped = threading.Event()
        self._polled = threading.Event()  # the first poll cycle of this run is done
        self._scheduled = False  # the jobs run on the scheduler (start()), not called directly
        self._send_lock = threading.Lock()
        self._poll_rt: Runtime | None = None
        self._digest_store: Store | None = None
        self._poller: Poller | None = None
        self._lock_store: Store | None = None
        self._scheduler: Any = None

    # -- life cycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Take the database lock, check the watchlists, start the jobs."""
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler

        settings = self.config.settings
        self._lock_store = Store.open(settings.monitor.database)
        self._lock_store.lock()
        self._lock_store.created(self.clock())
        self.watch.refresh()
        from monitor.watchlist import load_watchlists

        loaded = load_watchlists(settings.monitor.watchlists)
        if loaded.errors:
            raise ConfigErrors(loaded.errors)
        scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(2)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600},
            timezone=UTC,
        )
        now = datetime.now(UTC)
        scheduler.add_job(
            self.poll_job, "interval", seconds=self.poll_tick, id="poll", next_run_time=now
        )
        scheduler.add_job(
            self.digest_job, "interval", seconds=self.digest_tick, id="digest", next_run_time=now
        )
        self._scheduled = True  # before the first job can run
        scheduler.start()
        self._scheduler = scheduler
        event(
            log,
            20,
            "monitor started",
            feeds=len(settings.feeds),
            watchlists=len(self.watch.watchlists),
            database=str(settings.monitor.database),
        )

    def stop(self) -> None:
        """Stop the jobs; a poll in progress ends early and is redone next time, a digest
        being sent stays pending and goes out after the restart."""
        from monitor.notify import abort_sessions

        self.stopped.set()
        was_running = self._scheduler is not None
        if self._poller is not None:
            self._poller.stop()
        abort_sessions()  # a mail server answering slowly must not hold the stop
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
            self._scheduler = None
        with self._send_lock:  # a send ended by abort_sessions records its failure first
            for part in (self._poll_rt, self._digest_store, self._lock_store):
                if part is not None:
                    part.close()
        self._poll_rt = self._digest_store = self._lock_store = None
        if was_running:
            event(log, 20, "monitor stopped")

    def run(self) -> None:
        """Start, then wait for SIGTERM or SIGINT, then stop."""

        def on_signal(signum: int, frame: FrameType | None) -> None:
            event(log, 20, "stopping", signal=signal.Signals(signum).name)
            self.stopped.set()

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.start()
            while not self.stopped.wait(1.0):
                pass
        finally:
            self.stop()
            for s, handler in previous.items():
                signal.signal(s, handler)

    # -- jobs ----------------------------------------------------------------------------------

    def poll_job(self) -> None:
        """Reload what changed, poll the due feeds, send immediate alerts."""
        self._guard("poll", self._poll)

    def digest_job(self) -> None:
        """Make today's digest if it is due, and send whatever is pending."""
        self._guard("digest", self._digest)

    def _guard(self, name: str, job: Callable[[], None]) -> None:
        if self.stopped.is_set():
            return
        try:
            job()
        except MonitorError as exc:
            event(log, 40, f"{name} job failed: {exc}", job=name)
        except Exception:  # a bug: log it with its traceback, keep the daemon running
            log.exception("%s job crashed", name, extra={"fields": {"job": name}})

    def _poll(self) -> None:
        try:
            self._poll_due()
        finally:  # done, failed or nothing due: the digest need wait for it no longer
            self._polled.set()

    def _poll_due(self) -> None:
        rt = self._runtime()
        states = rt.due_states()
        if states:
            report = rt.poll(states, poller_hook=self._set_poller)
            event(
                log,
                20,
                "cycle done",
                feeds=len(report.feeds),
                failed=report.count("failed"),
                new_articles=report.new_articles,
                new_hits=report.new_hits,
                duration=round(report.duration, 3),
            )
        self._alert(rt)
        # every tick: connections to hosts no due feed needs are not kept open for the
        # servers to half-close
        rt.close_expired_connections()
        rt.store.release_memory()

    def _alert(self, rt: Runtime) -> None:
        """Alert the hits owed by immediate watchlists: this cycle's, and any that a crash
        before the alert or a `monitor poll` left behind."""
        if self.stopped.is_set():
            return
        # the digest job is sending: the alerts go next tick rather than the polls waiting
        # on a mail server that may take minutes to answer
        if not self._send_lock.acquire(blocking=False):
            return
        try:
            rt.send_alerts(self.stopped)
        finally:
            self._send_lock.release()

    def _set_poller(self, poller: Poller | None) -> None:
        self._poller = poller

    def _runtime(self) -> Runtime:
        """The poll job's parts, rebuilt when the config changed."""
        from monitor.watchlist import WatchlistSet

        if self.config.refresh() or self._poll_rt is None:
            if self._poll_rt is not None:
                self._poll_rt.close()
            self._poll_rt = Runtime(self.config.settings, clock=self.clock)
            folder = self.config.settings.monitor.watchlists
            if folder != self.watch.folder:
                self.watch.folder, self.watch.good, self.watch.seen = folder, {}, {}
            # the fix of a refused login may be in this edit, or (the password lives in the
            # environment) in the restart that built the first runtime; on the poll job's own
            # connection, never on the digest job's, which may be inside a transaction
            release_held(self._poll_rt.store)
        if self.watch.refresh() or self._poll_rt.watchlists_unset:
            self._warn_empty()
            self._poll_rt.use_watchlists(WatchlistSet(self.watch.watchlists, [], []))
        return self._poll_rt

    def _warn_empty(self) -> None:
        """Name the watchlists with no match query, so that their silence is not read as no
        news (`monitor check` says so too; a daemon's user reads its log)."""
        if not self.watch.watchlists:
            event(
                log,
                30,
                "no watchlist in use: nothing will match",
                folder=str(self.config.settings.monitor.watchlists),
            )
        for watchlist in self.watch.watchlists:
            if not watchlist.match:
                event(
                    log,
                    30,
                    "watchlist matches nothing: it has no match queries",
                    watchlist=watchlist.name,
                    file=str(watchlist.path),
                )

    def _first_poll_done(self) -> bool:
        """Whether this run's first poll is over, waiting for it (at most FIRST_POLL_WAIT)
        when the scheduler runs the jobs. A daemon started after the digest hour (on a new
        database, the usual first start) would otherwise send the day's digest empty, made
        seconds before the poll that finds its hits, and owe nothing more until tomorrow."""
        if self._scheduled:
            waited = 0.0
            while not self._polled.wait(1.0) and not self.stopped.is_set():
                waited += 1.0
                if waited >= FIRST_POLL_WAIT:
                    return True  # a first poll this long must not hold the digest for ever
        return self._polled.is_set()

    def _digest(self) -> None:
        settings = self.config.settings
        if self._digest_store is None:
            self._digest_store = Store.open(settings.monitor.database)
        store = self._digest_store
        polled = self._first_poll_done()  # may wait: the time is read after it
        now = self.clock()
        routes = plan_routes(settings, [(w.name, w.recipients) for w in self.watch.watchlists])
        created = store.created(now)
        for route in routes if polled else ():
            day = due_digest_day(
                now,
                settings.digest.at,
                settings.monitor.timezone,
                created,
                daily_days(store, route.recipient),
            )
            if day is not None:
                outcome = make_digest(store, settings, route, "daily", day, now)
                event(
                    log,
                    20,
                    "daily digest made",
                    day=day.isoformat(),
                    recipient=route.recipient or "(archive only)",
                    status=outcome.status,
                    hits=outcome.hits,
                    archive=outcome.archive or "",
                )
                self._prune(store, now)
        with self._send_lock:
            recipients = {route.recipient for route in routes}
            deliver_pending(store, settings, now, self.stopped, recipients=recipients)
            if not self.stopped.is_set():  # stop() closes the store once the lock is free
                store.release_memory()

    @staticmethod
    def _prune(store: Store, now: datetime) -> None:
        """Once a day: drop story-index rows no new article's window can reach any more, and
        old poll records, so that months of polling do not grow the database without end."""
        from monitor.storyindex import StoryIndex

        with store.write() as conn:
            dropped = StoryIndex(conn).prune(now - STORY_KEEP)
        polls = prune_polls(store, now)
        if dropped or polls:
            event(log, 20, "database pruned", story_articles=dropped, polls=polls)
