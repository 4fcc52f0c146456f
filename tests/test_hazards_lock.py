"""Two daemons on one database, as real `monitor run` processes.

The second refuses to start and names the process that holds the database. With the lock file
removed by force (a user "fixing" a stale lock while the first still runs), the second does
start, and both find the day's digest due at start: the database's one-daily-digest-a-day
rule still lets only one digest per recipient be made, and nothing the server receives is a
second digest. (In-process daemons forced past the lock: test_daemon.py.)
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.config import load_settings
from tests import spawn
from tests.smtpservers import LoopbackController, Recorder, settings_for
from tests.test_outbox import (
    MET_WATCHLIST,
    backdate,
    default_logging,
    messages,
    rows,
    store_hits,
    write_config,
)

__all__ = ["default_logging"]

DEADLINE = 60.0
RECIPIENTS = ("desk@example.org", "editor@example.org")


def start(config: Path, name: str) -> subprocess.Popen[bytes]:
    """`monitor run` in its own process group, its output in NAME.log."""
    return spawn.start_monitor(config, "run", f"{name}.log")


def wait_for(condition: Callable[[], bool], what: str) -> None:
    spawn.wait_for(condition, what, DEADLINE)


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_a_second_daemon_is_refused_and_with_the_lock_forced_still_makes_no_second_digest(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    mail = Recorder()
    server = LoopbackController(mail)
    server.start()
    try:
        desk = settings_for(server.port)
        # midnight UTC has always passed: the day's digest is due as soon as a daemon starts
        config = write_config(tmp_path, mail=desk, at="00:00", timezone="UTC")
        (tmp_path / "watchlists" / MET_WATCHLIST.name).write_bytes(MET_WATCHLIST.read_bytes())
        settings = load_settings(config)
        now = datetime.now(UTC)
        backdate(settings, now - timedelta(days=2))
        store_hits(settings, now - timedelta(hours=1), ["Met officers suspended"])
        lock = settings.monitor.database.with_name("monitor.db.lock")
        sent = "SELECT recipient FROM digests WHERE kind = 'daily' AND status = 'sent'"

        first = start(config, "first")
        processes.append(first)
        wait_for(lambda: rows(settings, sent) == [(desk.to[0],)], "the first daemon's digest")
        assert lock.read_text().strip() == str(first.pid)
        second = start(config, "second")
        processes.append(second)
        assert second.wait(DEADLINE) == 1
        refusal = (tmp_path / "second.log").read_text(encoding="utf-8")
        assert f"another monitor (pid {first.pid}) is running" in refusal

        # a second recipient (the first daemon reads the edit only at its next poll tick, in
        # half a minute) and a hit found since the first digest, which is what a recipient
        # added later is owed; then the lock removed by force while the first still runs
        write_config(tmp_path, mail=replace(desk, to=RECIPIENTS), at="00:00", timezone="UTC")
        store_hits(settings, datetime.now(UTC), ["Met officer dismissed after hearing"])
        lock.unlink()
        forced = start(config, "forced")
        processes.append(forced)
        wait_for(lambda: len(rows(settings, sent)) == len(RECIPIENTS), "the forced digest")
        assert lock.read_text().strip() == str(forced.pid)  # two daemons now run
        for process in (first, forced):
            process.send_signal(signal.SIGTERM)
        assert first.wait(DEADLINE) == 0 and forced.wait(DEADLINE) == 0
    finally:
        server.stop()
    daily = rows(settings, "SELECT recipient FROM digests WHERE kind = 'daily'")
    assert sorted(r for (r,) in daily) == sorted(RECIPIENTS)  # one a recipient, not two
    made = {}
    for name in ("first", "forced"):
        log = (tmp_path / f"{name}.log").read_text(encoding="utf-8")
        assert "Traceback" not in log and "crashed" not in log, log
        lines = [line for line in log.splitlines() if "daily digest made" in line]
        made[name] = [r for r in RECIPIENTS if any(f"recipient={r}" in line for line in lines)]
    # the forced daemon's digest job ran: it made the new recipient's digest, not the other's
    assert made == {"first": [RECIPIENTS[0]], "forced": [RECIPIENTS[1]]}
    received = [(tuple(rcpts), m["Message-ID"]) for rcpts, m in messages(mail)]
    assert sorted(r for (r,), _ in received) == sorted(RECIPIENTS)
