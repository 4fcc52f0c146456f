"""`kill -9` of `monitor run` at seeded random points of a poll and of a digest, then a restart.

Each run starts a real daemon (its own process group, so its extraction processes die with it,
as under a service manager) on a fresh database that already holds hits waiting for the daily
digest, with the digest due at start and three outlets to poll on a LoopbackSite with latency;
an aiosmtpd server on 127.0.0.1 takes the mail, slowly. The daemon is killed with SIGKILL at a
point chosen by the run's seed: after some requests answered, after some articles stored,
inside the SMTP conversation (before or after the server's 250), or after a random delay.
Then it is restarted and left until it has nothing left to do, stopped with SIGTERM, and any
hit the poll found after the daily digest was made goes out with `monitor digest`.

After every run: each article stored once (by canonical URL), each hit once, each hit carried
by exactly one sent digest per recipient (the server may hold that digest twice, under one
Message-ID, after a kill between its acceptance and our record of it), and
`PRAGMA integrity_check` says ok. Three runs in `make test`; fifty more in `make hazards`.
"""

from __future__ import annotations

import asyncio
import email
import os
import random
import re
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP

from monitor.config import Settings, load_settings
from monitor.loopback import LoopbackSite
from monitor.sitegen import SiteArticle, add_outlet
from monitor.store import Store
from tests import spawn
from tests.sites import fixture_articles, folder_articles
from tests.smtpservers import LoopbackController, Recorder, settings_for
from tests.test_outbox import (
    MET_WATCHLIST,
    backdate,
    default_logging,
    run_cli,
    store_hits,
    write_config,
)

__all__ = ["default_logging"]

QUICK_RUNS = 3  # in `make test`
SLOW_RUNS = 50  # in `make hazards`
TRIGGERS = ("requests", "articles", "mail", "delay")
RECIPIENTS = ("desk@example.org", "editor@example.org")
# hits already stored when the daemon starts: the daily digest due at start carries them
WAITING = ("IOPC opens inquiry into Met custody death", "Met officer sacked after IOPC report")
OUTLETS = (("Ledger", "rss", 0), ("Courier", "atom", 1), ("Gazette", "rdf", 2))
PER_OUTLET = 3
DEADLINE = 90.0  # seconds for a daemon to reach a point, to settle, or to stop
WATCHLIST = "Met Police"


@dataclass
class SlowMail(Recorder):
    """Takes mail slowly (so that kills land inside a digest), and can SIGKILL the daemon's
    process group at its n-th message: before answering 250, or just after."""

    delay: float = 0.1
    kill_at: int = 0  # 0: never
    kill_after_250: bool = False
    victim: int = 0  # process group to kill
    messages: int = 0

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        await asyncio.sleep(self.delay)
        self.received.append((list(envelope.rcpt_tos), envelope.original_content))
        self.messages += 1
        if self.victim and self.messages == self.kill_at:
            if self.kill_after_250:
                asyncio.get_running_loop().call_later(0.005, self.kill)
            else:
                self.kill()
        return "250 2.0.0 queued"

    def kill(self) -> None:
        victim, self.victim = self.victim, 0
        if victim:
            os.killpg(victim, signal.SIGKILL)


@dataclass
class Run:
    """One crash run's world: its site, mail server, config and what should end up stored."""

    folder: Path
    config: Path
    settings: Settings
    site: LoopbackSite
    mail: SlowMail
    pages: set[str]  # every article page the feeds list
    relevant: set[str]  # the pages the Met watchlist matches


def build_site(site: LoopbackSite, rng: random.Random, now: datetime) -> tuple[dict, set, set]:
    """Three outlets of a seeded choice of relevant and distractor articles; (feeds, pages,
    relevant pages)."""
    relevant = fixture_articles(now) + folder_articles("relevant", now)
    pool: list[SiteArticle] = relevant + folder_articles("distractors", now)
    rng.shuffle(pool)
    feeds, pages, wanted = {}, set(), set()
    for index, (name, fmt, layout) in enumerate(OUTLETS):
        share = pool[index * PER_OUTLET : (index + 1) * PER_OUTLET]
        prefix = f"/{name.lower()}"
        feeds[name] = add_outlet(site, name, share, prefix=prefix, feed_format=fmt, layout=layout)
        urls = {a.slug: site.url(f"{prefix}/{a.slug}") for a in share}
        pages |= set(urls.values())
        wanted |= {urls[a.slug] for a in share if a in relevant}
    return feeds, pages, wanted


def start_daemon(config: Path, name: str) -> subprocess.Popen[bytes]:
    """`monitor run` in its own process group, its output in NAME.log."""
    return spawn.start_monitor(config, "run", f"{name}.log")


def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Check a condition until it holds, within DEADLINE."""
    spawn.wait_for(condition, what, DEADLINE)


def lock_holder(lock: Path) -> str:
    """The PID written in the lock file; "" while the file is not there yet."""
    try:
        return lock.read_text().strip()
    except FileNotFoundError:
        return ""


def query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    """Rows from a connection of our own; [] while the database is not there yet."""
    if not db.exists():
        return []
    try:
        with closing(sqlite3.connect(db, timeout=10)) as conn:
            return conn.execute(sql).fetchall()
    except sqlite3.OperationalError:  # tables not created yet
        return []


def count(db: Path, sql: str) -> int:
    rows = query(db, sql)
    return int(rows[0][0]) if rows else 0


def settled(run: Run) -> bool:
    """The daemon has nothing left to do: every feed polled, every page stored, every
    recipient's daily digest made and nothing waiting to be sent."""
    db = run.settings.monitor.database
    polled = "SELECT COUNT(*) FROM feeds WHERE last_success IS NOT NULL AND name != 'Wire'"
    daily = "SELECT COUNT(DISTINCT recipient) FROM digests WHERE kind = 'daily'"
    waiting = "SELECT COUNT(*) FROM digests WHERE status IN ('pending', 'held')"
    return (
        count(db, polled) == len(OUTLETS)
        and count(
            db,
            "SELECT COUNT(*) FROM articles WHERE feed_id IN (SELECT id FROM feeds"
            " WHERE name != 'Wire')",
        )
        == len(run.pages)
        and count(db, daily) == len(RECIPIENTS)
        and count(db, waiting) == 0
    )


def prepare(folder: Path, mail: SlowMail, port: int, rng: random.Random, site: LoopbackSite) -> Run:
    """A config with the digest due at start, a database already holding waiting hits."""
    now = datetime.now(UTC)
    feeds, pages, relevant = build_site(site, rng, now)
    email_settings = replace(settings_for(port), to=RECIPIENTS)
    # midnight UTC has always passed: the day's digest is due as soon as the daemon starts
    config = write_config(
        folder, mail=email_settings, feeds=feeds, at="00:00", timezone="UTC", interval="1h"
    )
    (folder / "watchlists" / MET_WATCHLIST.name).write_bytes(MET_WATCHLIST.read_bytes())
    settings = load_settings(config)
    backdate(settings, now - timedelta(days=2))
    store_hits(settings, now - timedelta(minutes=30), WAITING, (WATCHLIST,))
    return Run(folder, config, settings, site, mail, pages, relevant)


def kill_at_random(run: Run, rng: random.Random, trigger: str) -> set[str]:
    """Start the daemon and SIGKILL its process group at the point the trigger names;
    where the kill landed (see landed)."""
    db = run.settings.monitor.database
    lock = db.with_name(db.name + ".lock")
    if trigger == "mail":
        run.mail.kill_at = rng.randint(1, len(RECIPIENTS))
        run.mail.kill_after_250 = rng.random() < 0.5
    daemon = start_daemon(run.config, "killed")
    run.mail.victim = daemon.pid if trigger == "mail" else 0
    try:
        if trigger == "requests":
            after = rng.randint(1, len(OUTLETS) + len(run.pages))
            wait_for(lambda: len(run.site.requests) >= after, f"{after} requests")
        elif trigger == "articles":
            after = rng.randint(1, len(run.pages))
            stored = "SELECT COUNT(*) FROM articles WHERE full_text = 1"
            wait_for(lambda: count(db, stored) >= after, f"{after} articles stored")
        elif trigger == "delay":
            wait_for(lambda: lock_holder(lock) != "", "the lock")
            time.sleep(rng.uniform(0.0, 2.0))  # the random point of the kill itself
        if trigger == "mail":
            wait_for(lambda: daemon.poll() is not None, "the kill inside the SMTP session")
        else:
            os.killpg(daemon.pid, signal.SIGKILL)
        assert daemon.wait(DEADLINE) == -signal.SIGKILL
    finally:
        run.mail.victim = 0
        if daemon.poll() is None:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait()
    return landed(run)


def landed(run: Run) -> set[str]:
    """Where a kill landed, from what it left: in the poll (some feeds stored, not all), in
    the digest (a daily digest made and not yet recorded as sent, or a recipient's not made
    yet), before either had written anything, or after both were done."""
    db = run.settings.monitor.database
    feeds = count(db, "SELECT COUNT(*) FROM feeds WHERE last_success IS NOT NULL")
    made = count(db, "SELECT COUNT(*) FROM digests WHERE kind = 'daily'")
    sent = count(db, "SELECT COUNT(*) FROM digests WHERE kind = 'daily' AND status = 'sent'")
    where = set()
    if 0 < feeds < len(OUTLETS):
        where.add("poll")
    if made and sent < len(RECIPIENTS):
        where.add("digest")
    if not feeds and not made:
        where.add("start")
    if feeds == len(OUTLETS) and sent == len(RECIPIENTS):
        where.add("after")
    return where


def restart_until_settled(run: Run) -> str:
    """Start the daemon again, wait until it has nothing to do, stop it; its log."""
    daemon = start_daemon(run.config, "restarted")
    db = run.settings.monitor.database
    lock = db.with_name(db.name + ".lock")
    try:
        # up and holding the lock (so its SIGTERM handler is in place), then settled
        wait_for(
            lambda: daemon.poll() is not None or lock_holder(lock) == str(daemon.pid),
            "the restarted daemon to start",
        )
        wait_for(lambda: settled(run) or daemon.poll() is not None, "the daemon to settle")
        assert daemon.poll() is None, (run.folder / "restarted.log").read_text()
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(DEADLINE) == 0
    finally:
        if daemon.poll() is None:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait()
    return (run.folder / "restarted.log").read_text(encoding="utf-8")


def message_ids(mail: SlowMail) -> list[tuple[str, str]]:
    """(recipient, Message-ID) of every message the server received, repeats included."""
    out = []
    for recipients, raw in mail.received:
        message = email.message_from_bytes(raw, policy=default_policy)
        out += [(r, str(message["Message-ID"])) for r in recipients]
    return out


_NULL_REPORT = re.compile(r"NULL value in (\w+)\.(\w+)")


def integrity_problems(store: Store) -> list[str]:
    """What `PRAGMA integrity_check` finds, less the NOT NULL reports a direct query refutes.

    SQLite 3.40 reads the wrong column when it checks NOT NULL in a WITHOUT ROWID table whose
    primary key is not its first columns (digest_hits): it reports every row as NULL there.
    """
    problems = [row[0] for row in store.read("PRAGMA integrity_check")]
    real = []
    for problem in problems:
        found = _NULL_REPORT.fullmatch(problem)
        if found and problem != "ok":
            table, column = found[1], found[2]
            nulls = store.read(f"SELECT COUNT(*) FROM {table} WHERE {column} IS NULL")[0][0]
            if nulls == 0:
                continue
        if problem != "ok":
            real.append(problem)
    return real


def check_invariants(run: Run) -> None:
    db = run.settings.monitor.database
    with Store.open(db) as store:
        assert integrity_problems(store) == []
        urls = [r[0] for r in store.read("SELECT url FROM articles")]
        hits = store.read(
            "SELECT h.id, a.url, a.title FROM hits h JOIN articles a ON a.id = h.article_id"
        )
        carried = store.read(
            "SELECT dh.hit_id, dh.recipient, d.status, d.message_id FROM digest_hits dh"
            " JOIN digests d ON d.id = dh.digest_id"
        )
        sent = {
            (r["recipient"], r["message_id"])
            for r in store.read("SELECT recipient, message_id FROM digests WHERE status = 'sent'")
        }
    waiting = {u for u in urls if u not in run.pages}
    assert sorted(u for u in urls if u in run.pages) == sorted(run.pages)  # each page once
    assert len(urls) == len(set(urls)) == len(run.pages) + len(WAITING)
    found = [(url, title) for _, url, title in hits]
    assert len(found) == len(set(found))  # each hit once
    assert {url for url, _ in found} == run.relevant | waiting
    assert {title for url, title in found if url in waiting} == set(WAITING)

    # each hit in exactly one sent digest per recipient
    assert all(status == "sent" for _, _, status, _ in carried)
    by_hit = {(hit_id, r): mid for hit_id, r, _, mid in carried}
    assert set(by_hit) == {(h[0], r) for h in hits for r in RECIPIENTS}
    # and the server holds each of those digests, under one Message-ID, at most twice
    received = message_ids(run.mail)
    assert set(received) == sent
    for hit_id, _, _ in hits:
        for recipient in RECIPIENTS:
            ids = {mid for r, mid in set(received) if r == recipient and mid == by_hit[hit_id, r]}
            assert len(ids) == 1
    assert max(received.count(pair) for pair in set(received)) <= 2


def crash_run(folder: Path, seed: int) -> set[str]:
    """One run: kill, restart, settle, check; where the kill landed."""
    rng = random.Random(seed)
    trigger = TRIGGERS[seed % len(TRIGGERS)]
    mail = SlowMail(delay=rng.uniform(0.05, 0.3))
    server = LoopbackController(mail)
    server.start()
    try:
        with LoopbackSite(latency=rng.uniform(0.01, 0.06)) as site:
            run = prepare(folder / f"run{seed}", mail, server.port, rng, site)
            where = kill_at_random(run, rng, trigger)
            log = restart_until_settled(run)
            leftover = run_cli(run.config, "digest")  # hits polled after the daily digest
            assert leftover.exit_code == 0, leftover.output
    finally:
        server.stop()
    assert "monitor stopped" in log
    assert "Traceback" not in log and "job crashed" not in log, log
    check_invariants(run)
    return where


@pytest.mark.parametrize("seed", range(1, QUICK_RUNS + 1))
def test_kill_9_during_poll_or_digest_then_restart_loses_and_repeats_nothing(
    tmp_path: Path, seed: int
) -> None:
    crash_run(tmp_path, seed)


@pytest.mark.slow
@pytest.mark.timeout(900)  # fifty runs of a few seconds each
def test_kill_9_fifty_more_times_lands_in_polls_and_digests(tmp_path: Path) -> None:
    places: dict[str, int] = {}
    for seed in range(QUICK_RUNS + 1, QUICK_RUNS + SLOW_RUNS + 1):
        try:
            where = crash_run(tmp_path, seed)
        except AssertionError as exc:
            raise AssertionError(f"crash run with seed {seed}: {exc}") from exc
        for place in where:
            places[place] = places.get(place, 0) + 1
    print(f"\n{SLOW_RUNS} kills landed: {dict(sorted(places.items()))}")
    assert places.get("poll", 0) >= 5 and places.get("digest", 0) >= 5, places
