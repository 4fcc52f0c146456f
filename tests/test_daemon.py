"""The daemon's digest schedule and immediate alerts, with its jobs driven directly under an
injected clock (never waiting for APScheduler); and `monitor run` as a real process.

Real parts throughout: aiosmtpd on 127.0.0.1, a SQLite file in tmp_path, a LoopbackSite for
the feeds that are polled.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from monitor.config import Settings, load_settings
from monitor.daemon import Daemon
from monitor.errors import AlreadyRunning, StoreError
from monitor.loopback import LoopbackSite
from monitor.sitegen import add_outlet
from monitor.store import Store, from_db, to_db
from tests.smtpservers import Recorder, settings_for, trickling_server
from tests.test_outbox import (
    MET_WATCHLIST,
    NOW,
    RELEVANT,
    TESTS,
    Clock,
    Serve,
    add_watchlist,
    backdate,
    default_logging,
    flat,
    messages,
    parts,
    rows,
    run_cli,
    site,
    site_articles,
    store_hits,
    write_config,
)

__all__ = ["default_logging", "site"]

LONDON = ZoneInfo("Europe/London")


@pytest.fixture
def daemons() -> Iterator[Callable[..., Daemon]]:
    """Make Daemons whose jobs the test drives (no scheduler); all stopped at the end.

    Each has run its poll job once, as the scheduler does at start: that loads the
    watchlists, and polls the configured feeds that are due.
    """
    made: list[Daemon] = []

    def make(settings: Settings, clock: Clock) -> Daemon:
        daemon = Daemon(settings, clock=clock)
        made.append(daemon)
        daemon.poll_job()
        return daemon

    yield make
    for daemon in made:
        daemon.stop()


def london(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, clock_time(hour, minute), tzinfo=LONDON).astimezone(UTC)


def daily_rows(settings: Settings) -> list[tuple[str, str, datetime]]:
    """(day, status, created) of every daily digest, in order made."""
    found = rows(settings, "SELECT day, status, created FROM digests WHERE kind = 'daily'")
    out = []
    for day, status, created in found:
        when = from_db(str(created))
        assert when is not None
        out.append((str(day), str(status), when))
    return out


# -- one digest a local day ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "first_day",
    [date(2026, 3, 27), date(2026, 10, 23)],  # clocks change on 29 March and 25 October
    ids=["spring", "autumn"],
)
def test_one_daily_digest_per_local_day_at_the_hour_across_clock_changes(
    tmp_path: Path, serve: Serve, daemons: Callable[..., Daemon], first_day: date
) -> None:
    rec = Recorder()
    config = write_config(tmp_path, mail=serve(rec), at="07:00", send_empty=True)
    add_watchlist(config, "Met Police")
    settings = load_settings(config)
    start = datetime.combine(first_day, clock_time(0), tzinfo=UTC)
    backdate(settings, start)
    clock = Clock(start)
    daemon = daemons(settings, clock)
    while clock() < start + timedelta(days=4):
        daemon.digest_job()
        if clock().astimezone(LONDON).time() == clock_time(12, 0):
            store_hits(settings, clock(), [f"IOPC news of {clock().astimezone(LONDON):%d %B}"])
        clock.advance(minutes=15)

    days = [first_day + timedelta(days=n) for n in range(4)]
    made = daily_rows(settings)
    assert [d for d, _, _ in made] == [d.isoformat() for d in days]
    archived = [Path(str(a)).name for (a,) in rows(settings, "SELECT archive FROM digests")]
    assert [a[:15] for a in archived] == [f"{d.isoformat()}_0700" for d in days]  # local
    assert all(status == "sent" for _, status, _ in made)
    for _, _, created in made:
        assert created.astimezone(LONDON).time() == clock_time(7, 0)
    received = messages(rec)
    assert len(received) == 4
    for (_, message), day in zip(received, days, strict=True):
        assert message["Subject"].startswith(f"monitor digest: {day:%A} {day.day} {day:%B}")
    # each day's hit is in the next morning's digest, and only there
    texts = [parts(m)[0] for _, m in received]
    for n, day in enumerate(days[:-1]):
        title = f"IOPC news of {day:%d %B}"
        assert [title in t for t in texts] == [i == n + 1 for i in range(4)], title


@pytest.mark.parametrize(
    ("made_days_ago", "made_at", "found_at"),
    [
        (1, (8, 0), (3, 0)),  # made after yesterday's digest hour, hits found in the night
        (0, (9, 0), (9, 5)),  # a fresh install: `monitor poll` after today's hour, then run
    ],
    ids=["made yesterday", "made today after the hour"],
)
def test_a_daemon_started_after_the_hour_sends_todays_digest_at_start_once(
    tmp_path: Path,
    serve: Serve,
    daemons: Callable[..., Daemon],
    made_days_ago: int,
    made_at: tuple[int, int],
    found_at: tuple[int, int],
) -> None:
    rec = Recorder()
    config = write_config(tmp_path, mail=serve(rec))
    add_watchlist(config, "Met Police")
    settings = load_settings(config)
    today = NOW.astimezone(LONDON).date()
    backdate(settings, london(today - timedelta(days=made_days_ago), *made_at))
    store_hits(settings, london(today, *found_at), ["Met officer jailed", "IOPC inquiry widens"])
    clock = Clock(london(today, 9, 30))  # two and a half hours late

    daemons(settings, clock).digest_job()
    [(_, message)] = messages(rec)
    assert message["Subject"] == f"monitor digest: {today:%A} {today.day} {today:%B %Y}, 2 new hits"
    assert [(d, s) for d, s, _ in daily_rows(settings)] == [(today.isoformat(), "sent")]

    clock.advance(minutes=1)
    daemons(settings, clock).digest_job()  # the same daemon's next tick, or a restart
    clock.advance(minutes=15)
    daemons(settings, clock).digest_job()
    assert len(rec.received) == 1
    clock.set(london(today + timedelta(days=1), 6, 59))
    daemons(settings, clock).digest_job()
    assert len(daily_rows(settings)) == 1


def test_a_clock_set_back_a_day_sends_nothing_twice(
    tmp_path: Path, serve: Serve, daemons: Callable[..., Daemon]
) -> None:
    rec = Recorder()
    config = write_config(tmp_path, mail=serve(rec))
    add_watchlist(config, "Met Police")
    settings = load_settings(config)
    today = NOW.astimezone(LONDON).date()
    yesterday, tomorrow = today - timedelta(days=1), today + timedelta(days=1)
    backdate(settings, london(yesterday, 5))
    clock = Clock(london(yesterday, 6))
    daemon = daemons(settings, clock)
    store_hits(settings, clock(), ["Met misconduct hearing opens"])
    daemon.digest_job()
    assert rec.received == []  # before the hour
    clock.set(london(yesterday, 7))
    daemon.digest_job()
    store_hits(settings, london(yesterday, 15), ["IOPC report into Met custody death"])
    clock.set(london(today, 7))
    daemon.digest_job()
    assert len(rec.received) == 2

    clock.set(london(yesterday, 7, 30))  # set back a day
    store_hits(settings, clock(), ["Met vetting backlog revealed"])
    for hour in (7, 9, 12, 23):
        clock.set(london(yesterday, hour, 30))
        daemon.digest_job()
    clock.set(london(today, 12))
    daemon.digest_job()
    assert len(rec.received) == 2
    clock.set(london(tomorrow, 7))
    daemon.digest_job()
    assert [d for d, _, _ in daily_rows(settings)] == [
        yesterday.isoformat(),
        today.isoformat(),
        tomorrow.isoformat(),
    ]
    last = parts(messages(rec)[-1][1])[0]
    assert "Met vetting backlog revealed" in last and "IOPC report" not in last


def test_a_day_without_hits_is_skipped_unless_send_empty(
    tmp_path: Path, serve: Serve, daemons: Callable[..., Daemon]
) -> None:
    rec = Recorder()
    config = write_config(tmp_path / "quiet", mail=serve(rec), send_empty=False)
    add_watchlist(config, "Met Police")
    settings = load_settings(config)
    today = NOW.astimezone(LONDON).date()
    backdate(settings, london(today - timedelta(days=2), 12))
    clock = Clock(london(today, 7, 1))
    daemon = daemons(settings, clock)
    daemon.digest_job()
    assert [(d, s) for d, s, _ in daily_rows(settings)] == [(today.isoformat(), "skipped")]
    assert rec.received == []
    # a hit later that day waits for tomorrow's digest: the day is done
    store_hits(settings, london(today, 10), ["Scotland Yard apologises to victims"])
    clock.set(london(today, 10, 1))
    daemon.digest_job()
    assert rec.received == []
    clock.set(london(today + timedelta(days=1), 7, 1))
    daemon.digest_job()
    [(_, message)] = messages(rec)
    assert "Scotland Yard apologises to victims" in parts(message)[0]

    rec_empty = Recorder()
    config = write_config(tmp_path / "empty", mail=serve(rec_empty), send_empty=True)
    add_watchlist(config, "Met Police")
    settings = load_settings(config)
    backdate(settings, london(today - timedelta(days=2), 12))
    clock = Clock(london(today, 7, 1))
    daemons(settings, clock).digest_job()
    [(_, message)] = messages(rec_empty)
    assert message["Subject"].endswith(", no new hits")
    assert "No new hits in this window." in parts(message)[0]
    assert [(d, s) for d, s, _ in daily_rows(settings)] == [(today.isoformat(), "sent")]


def test_a_second_daemon_is_refused_and_even_forced_makes_no_second_daily_digest(
    tmp_path: Path, serve: Serve, daemons: Callable[..., Daemon]
) -> None:
    rec = Recorder()
    config = write_config(tmp_path, mail=serve(rec))
    add_watchlist(config, "Met Police")
    settings = load_settings(config)
    backdate(settings, NOW - timedelta(days=2))
    store_hits(settings, NOW - timedelta(hours=1), ["Met officers suspended"])
    clock = Clock()
    holder = Store.open(settings.monitor.database)
    holder.lock()
    try:
        with pytest.raises(AlreadyRunning, match=f"pid {os.getpid()}"):
            daemons(settings, clock).start()
        first, forced = daemons(settings, clock), daemons(settings, clock)
        first.digest_job()
        forced.digest_job()
        clock.advance(minutes=1)
        forced.digest_job()
        assert len(rec.received) == 1 and len(daily_rows(settings)) == 1
        [(day,)] = rows(settings, "SELECT day FROM digests")
        with pytest.raises(StoreError, match="UNIQUE"), holder.write() as conn:
            conn.execute(
                "INSERT INTO digests (kind, recipient, day, message_id, created, status,"
                " subject, text, html) VALUES ('daily', 'desk@example.org', ?, '<x@y>', ?,"
                " 'pending', '', '', '')",
                (day, to_db(NOW)),
            )
    finally:
        holder.close()


# -- a mail server that answers slowly -----------------------------------------------------------


def test_a_mail_server_answering_slowly_holds_neither_the_polls_nor_the_stop(
    tmp_path: Path, site: LoopbackSite, daemons: Callable[..., Daemon]
) -> None:
    """The digest job waits on a server that trickles its greeting; the poll job still polls
    (it used to wait for the send lock), and stop() ends the send at once, leaving the digest
    pending for the restart."""
    articles = site_articles(RELEVANT, NOW)
    feed = add_outlet(site, "The London Ledger", articles[:2], prefix="/ledger")
    with trickling_server(b"220-still greeting you ") as (port, connected):
        config = write_config(tmp_path, mail=settings_for(port), feeds={"The London Ledger": feed})
        (tmp_path / "watchlists" / MET_WATCHLIST.name).write_bytes(MET_WATCHLIST.read_bytes())
        settings = load_settings(config)
        clock = Clock(NOW)
        daemon = daemons(settings, clock)  # polled: two hits, a late digest owed
        sending = threading.Thread(target=daemon.digest_job)
        sending.start()
        assert connected.wait(30)

        add_outlet(site, "The London Ledger", articles, prefix="/ledger")
        clock.advance(minutes=16)
        polling = threading.Thread(target=daemon.poll_job)
        polling.start()
        polling.join(60)
        assert not polling.is_alive(), "the poll waited on the mail server"
        assert rows(settings, "SELECT COUNT(*) FROM articles") == [(len(articles),)]
        assert sending.is_alive()  # still in the greeting

        daemon.stop()
        sending.join(60)
        assert not sending.is_alive(), "stop() waited on the mail server"
    [(status, error)] = rows(settings, "SELECT status, last_error FROM digests")
    assert status == "pending"
    assert error == "stopped before the mail server took the message"


# -- immediate alerts ------------------------------------------------------------------------


def test_immediate_watchlist_gets_one_alert_per_cycle_and_only_a_count_in_the_digest(
    tmp_path: Path, site: LoopbackSite, serve: Serve, daemons: Callable[..., Daemon]
) -> None:
    rec = Recorder()
    now = NOW
    articles = site_articles(RELEVANT, now)  # all of them are about the Met
    first, later = articles[:3], articles[3:]
    feed = add_outlet(site, "The London Ledger", first, prefix="/ledger")
    config = write_config(tmp_path, mail=serve(rec), feeds={"The London Ledger": feed})
    immediate = MET_WATCHLIST.read_text(encoding="utf-8").replace(
        'alert = "digest"', 'alert = "immediate"'
    )
    assert 'alert = "immediate"' in immediate
    (tmp_path / "watchlists" / "met-police.toml").write_text(immediate, encoding="utf-8")
    add_watchlist(config, "Scotland Yard", ['"Scotland Yard"'])  # a digest watchlist
    settings = load_settings(config)
    backdate(settings, now - timedelta(days=2))
    clock = Clock(now)
    daemon = daemons(settings, clock)

    daemon.poll_job()
    [(envelope, alert)] = messages(rec)
    assert envelope == ["desk@example.org"]
    assert alert["Subject"] == "monitor alert: Met Police, 3 new hits"
    text, _ = parts(alert)
    assert all(flat(a.title) in flat(text) for a in first)

    add_outlet(site, "The London Ledger", articles, prefix="/ledger")  # two new stories
    clock.advance(minutes=16)
    daemon.poll_job()
    clock.advance(minutes=1)
    daemon.poll_job()  # nothing due, nothing new
    assert len(rec.received) == 2
    second = parts(messages(rec)[1][1])[0]
    assert all(flat(a.title) in flat(second) for a in later)
    assert not any(flat(a.title) in flat(second) for a in first)

    clock.set(london(now.astimezone(LONDON).date() + timedelta(days=1), 7, 5))
    daemon.digest_job()
    assert len(rec.received) == 3
    digest = flat(parts(messages(rec)[2][1])[0])
    assert f"Met Police: 0 stories, 0 hits (already sent as alerts: {len(articles)})" in digest
    yard = next(a for a in articles if a.slug == "scotland-yard-only")
    assert flat(yard.title) in digest  # the digest watchlist's own hit is listed
    assert not any(flat(a.title) in digest for a in articles if a is not yard)


def test_each_job_gives_back_the_page_cache_when_it_is_done(
    tmp_path: Path, site: LoopbackSite, serve: Serve, daemons: Callable[..., Daemon]
) -> None:
    """A daemon idles between jobs: the page cache its SQLite connections filled (up to
    64 MB each) is handed back after every job, so its memory stays flat over months."""
    feed = add_outlet(site, "The London Ledger", site_articles(RELEVANT, NOW), prefix="/ledger")
    config = write_config(tmp_path, mail=serve(Recorder()), feeds={"The London Ledger": feed})
    clock = Clock(NOW)
    daemon = daemons(load_settings(config), clock)
    daemon.digest_job()
    poll_sql: list[str] = []
    digest_sql: list[str] = []
    assert daemon._poll_rt is not None and daemon._digest_store is not None
    daemon._poll_rt.store.conn.set_trace_callback(poll_sql.append)
    daemon._digest_store.conn.set_trace_callback(digest_sql.append)
    clock.advance(minutes=16)
    daemon.poll_job()
    daemon.digest_job()
    assert any("feeds" in sql for sql in poll_sql)  # the poll did its work, then let go
    assert poll_sql[-1] == "PRAGMA shrink_memory"
    assert digest_sql[-1] == "PRAGMA shrink_memory"


def test_each_tick_closes_connections_idle_past_their_keepalive(
    tmp_path: Path,
    site: LoopbackSite,
    serve: Serve,
    daemons: Callable[..., Daemon],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Between polls the daemon holds no connection the server may have given up on: a
    host no due feed needs would otherwise keep its socket until the pool filled."""
    monkeypatch.setattr("monitor.fetch.KEEPALIVE_EXPIRY", 1.0)
    feed = add_outlet(site, "The London Ledger", site_articles(RELEVANT, NOW), prefix="/ledger")
    config = write_config(tmp_path, mail=serve(Recorder()), feeds={"The London Ledger": feed})
    clock = Clock(NOW)
    daemon = daemons(load_settings(config), clock)  # the first poll: the feed and its pages
    clock.advance(minutes=16)
    daemon.poll_job()  # the feed again: a 304, quickly
    assert daemon._poll_rt is not None
    pool = daemon._poll_rt.fetcher._transport._pool
    assert pool.connections  # fresh: kept for the host's next request
    time.sleep(1.2)
    clock.advance(minutes=1)
    daemon.poll_job()  # nothing due this tick
    assert pool.connections == []


def test_immediate_hits_left_without_an_alert_are_alerted_at_the_next_tick(
    tmp_path: Path, serve: Serve, daemons: Callable[..., Daemon]
) -> None:
    rec = Recorder()
    config = write_config(tmp_path, mail=serve(rec))
    add_watchlist(config, "Met Police", alert="immediate")
    settings = load_settings(config)
    # stored by a cycle that stopped before its alert, or by `monitor poll`
    titles = ["Met officer arrested", "IOPC opens inquiry"]
    store_hits(settings, NOW - timedelta(minutes=5), titles, immediate=["Met Police"])
    clock = Clock()
    daemon = daemons(settings, clock)  # its first poll job finds no feed due
    [(_, alert)] = messages(rec)
    assert alert["Subject"] == "monitor alert: Met Police, 2 new hits"
    assert all(t in parts(alert)[0] for t in titles)
    clock.advance(seconds=30)
    daemon.poll_job()
    daemon.digest_job()
    assert len(rec.received) == 1


def test_alerts_of_one_cycle_go_out_separately_and_keep_their_own_archive(
    tmp_path: Path, serve: Serve, daemons: Callable[..., Daemon]
) -> None:
    rec = Recorder()
    config = write_config(tmp_path, mail=serve(rec))
    add_watchlist(config, "Met Police", alert="immediate")
    add_watchlist(config, "Vetting", ["vetting"], alert="immediate")
    settings = load_settings(config)
    store_hits(settings, NOW, ["Met officer charged"], ["Met Police"], immediate=["Met Police"])
    store_hits(settings, NOW, ["Vetting backlog grows"], ["Vetting"], immediate=["Vetting"])
    daemons(settings, Clock())
    subjects = sorted(str(m["Subject"]) for _, m in messages(rec))
    assert subjects == ["monitor alert: Met Police, 1 new hit", "monitor alert: Vetting, 1 new hit"]
    archives = rows(settings, "SELECT archive, subject FROM digests WHERE kind = 'alert'")
    assert len({a for a, _ in archives}) == 2
    for archive, subject in archives:
        title = "Met officer charged" if "Met Police" in str(subject) else "Vetting backlog grows"
        assert title in Path(str(archive)).read_text(encoding="utf-8")
        assert title in Path(str(archive)).with_suffix(".txt").read_text(encoding="utf-8")


# -- `monitor run` as a process -----------------------------------------------------------------


def wait_for(condition: Callable[[], bool], what: str, process: subprocess.Popen[bytes]) -> None:
    """Poll a condition on a running process, with a deadline."""
    deadline = time.monotonic() + 60
    while not condition():
        assert process.poll() is None, f"monitor run exited early ({process.returncode})"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def daemon_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(TESTS.parent)}


@contextmanager
def running_daemon(config: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`monitor run` on config, its output in run.log beside it; stopped with SIGTERM at the
    end of the block, which it must obey with exit status 0."""
    command = [sys.executable, "-m", "monitor", "--config", str(config), "run"]
    with (config.parent / "run.log").open("wb") as log:
        daemon = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=daemon_env())
        try:
            yield daemon
            daemon.send_signal(signal.SIGTERM)
            assert daemon.wait(timeout=60) == 0
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()


def test_a_first_start_after_the_digest_hour_sends_the_hits_of_its_first_poll(
    tmp_path: Path, site: LoopbackSite, serve: Serve
) -> None:
    """`make run` on a new install at noon: the day's digest waits for the first poll, so it
    carries what that poll found instead of going out empty (or, with send_empty off, being
    marked done with nothing) seconds before the hits arrive."""
    rec = Recorder()
    articles = site_articles(RELEVANT, datetime.now(UTC))
    feeds = {"The London Ledger": add_outlet(site, "The London Ledger", articles, prefix="/l")}
    config = write_config(
        tmp_path, mail=serve(rec), feeds=feeds, at="00:00", timezone="UTC", interval="1h"
    )
    (tmp_path / "watchlists" / MET_WATCHLIST.name).write_bytes(MET_WATCHLIST.read_bytes())
    settings = load_settings(config)
    with running_daemon(config) as daemon:
        wait_for(lambda: len(rec.received) >= 1, "the day's digest", daemon)
    [(_, message)] = messages(rec)
    text = flat(parts(message)[0])
    assert all(flat(a.title) in text for a in articles)
    [(_, status, _)] = daily_rows(settings)
    assert status == "sent"


def test_monitor_run_polls_sends_the_missed_digest_and_stops_cleanly_on_sigterm(
    tmp_path: Path, site: LoopbackSite, serve: Serve
) -> None:
    rec = Recorder()
    now = datetime.now(UTC)
    articles = site_articles(RELEVANT, now)
    ledger = add_outlet(site, "The London Ledger", articles[:2], prefix="/ledger")
    courier = add_outlet(site, "Capital Courier", articles[2:], prefix="/courier")
    feeds = {"The London Ledger": ledger, "Capital Courier": courier}
    # midnight UTC has always passed today: started now, the daemon is late
    config = write_config(
        tmp_path, mail=serve(rec), feeds=feeds, at="00:00", timezone="UTC", interval="1h"
    )
    (tmp_path / "watchlists" / MET_WATCHLIST.name).write_bytes(MET_WATCHLIST.read_bytes())
    settings = load_settings(config)
    polled = run_cli(config, "poll", "--feed", "The London Ledger")
    assert polled.exit_code == 0 and "new hits: 2" in polled.stdout
    backdate(settings, now - timedelta(days=2))

    with running_daemon(config) as daemon:
        courier_hits = "SELECT COUNT(*) FROM hits h JOIN articles a ON a.id = h.article_id"
        courier_hits += " JOIN feeds f ON f.id = a.feed_id WHERE f.name = 'Capital Courier'"
        wait_for(lambda: len(rec.received) >= 1, "the missed digest", daemon)
        wait_for(lambda: rows(settings, courier_hits) == [(len(articles) - 2,)], "the poll", daemon)

        second = subprocess.run(
            daemon.args, capture_output=True, text=True, env=daemon_env(), timeout=60
        )
        assert second.returncode == 1
        assert f"another monitor (pid {daemon.pid}) is running" in second.stderr
    output = (tmp_path / "run.log").read_text(encoding="utf-8")
    assert "monitor stopped" in output and "Traceback" not in output
    [(_, message)] = messages(rec)
    text = flat(parts(message)[0])
    assert all(flat(a.title) in text for a in articles[:2])
    [(day, status, _)] = daily_rows(settings)
    assert status == "sent" and day in {
        now.date().isoformat(),
        datetime.now(UTC).date().isoformat(),
    }
    with Store.open(settings.monitor.database) as store:
        store.lock()  # released: a new daemon may start
