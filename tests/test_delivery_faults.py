"""The outbox against mail servers that fail: a 421 greeting, a connection lost after DATA, a
refused recipient, a refused login. Real aiosmtpd servers on 127.0.0.1, a real SQLite file and
an injected clock; the digest's hits stay with it until it is accepted.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from aiosmtpd.smtp import SMTP

from monitor.config import Settings, load_settings
from monitor.daemon import Daemon
from monitor.delivery import RETRY_FIRST, deliver_pending
from monitor.outbox import Outcome, make_digest, plan_routes
from monitor.store import Store, from_db, to_db
from tests.smtpservers import PASSWORD, Recorder, RefuseOne
from tests.test_outbox import (
    NOW,
    Clock,
    Serve,
    add_watchlist,
    backdate,
    default_logging,
    messages,
    parts,
    rows,
    run_cli,
    store_hits,
    write_config,
)

__all__ = ["default_logging"]


class BusyAtFirst(SMTP):
    """Greets with 421 and hangs up while `busy` is set, then behaves."""

    busy: ClassVar[bool] = True
    refused: ClassVar[int] = 0

    async def _handle_client(self) -> None:
        if not BusyAtFirst.busy:
            await super()._handle_client()
            return
        BusyAtFirst.refused += 1
        await self.push("421 4.3.2 too busy, try again later")
        assert self.transport is not None
        self.transport.close()


class Counting(SMTP):
    """Counts connections, so a test can prove nobody called again."""

    connections: ClassVar[int] = 0

    def connection_made(self, transport: Any) -> None:
        Counting.connections += 1
        super().connection_made(transport)


@dataclass
class DropOnce(Recorder):
    """Takes the first message whole, then hangs up before saying 250; accepts the rest."""

    dropped: int = 0

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        self.received.append((list(envelope.rcpt_tos), envelope.original_content))
        if self.dropped:
            return "250 2.0.0 queued"
        self.dropped += 1
        assert server.transport is not None
        server.transport.close()
        return "250 2.0.0 never heard"


def queue_digest(settings: Settings, titles: list[str], now: Clock) -> list[Outcome]:
    """Store hits and make the manual digest of each recipient, as `monitor digest` does."""
    store_hits(settings, now(), titles)
    with Store.open(settings.monitor.database) as store:
        routes = plan_routes(settings, [("Met Police", ())])
        day = now().astimezone(settings.monitor.timezone).date()
        return [make_digest(store, settings, r, "manual", day, now()) for r in routes]


def deliver(settings: Settings, now: Clock) -> list[Outcome]:
    """One delivery round from a fresh connection, as each daemon tick would."""
    with Store.open(settings.monitor.database) as store:
        return deliver_pending(store, settings, now())


def digest_row(settings: Settings, digest_id: int | None) -> dict[str, Any]:
    with Store.open(settings.monitor.database) as store:
        [row] = store.read("SELECT * FROM digests WHERE id = ?", (digest_id,))
        return dict(row)


def listed_hits(config: Path) -> list[dict[str, Any]]:
    """`monitor hits --json`."""
    result = run_cli(config, "hits", "--json")
    assert result.exit_code == 0, result.output
    listed: list[dict[str, Any]] = json.loads(result.stdout)
    return listed


def test_a_digest_another_live_process_is_sending_is_left_to_it(
    tmp_path: Path, serve: Serve
) -> None:
    """`monitor digest` beside a daemon that is sending the same digest: one copy, not two.
    A claim whose process died (kill -9 mid-send) is void at once: sent after the restart."""
    rec = Recorder()
    config = write_config(tmp_path, mail=serve(rec))
    add_watchlist(config, "Met Police")
    settings = load_settings(config)
    clock = Clock()
    [made] = queue_digest(settings, ["Met officer sacked"], clock)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        with Store.open(settings.monitor.database) as store, store.write() as conn:
            conn.execute(
                "UPDATE digests SET claimed_by = ?, claimed_until = ? WHERE id = ?",
                (other.pid, to_db(clock() + timedelta(minutes=5)), made.digest_id),
            )
        [left] = deliver(settings, clock)
        assert (left.status, left.error) == (
            "elsewhere",
            f"being sent by another monitor process (pid {other.pid})",
        )
        assert rec.received == []
    finally:
        other.kill()
        other.wait()
    [sent] = deliver(settings, clock)
    assert sent.status == "sent" and len(rec.received) == 1
    row = digest_row(settings, made.digest_id)
    assert (row["claimed_by"], row["claimed_until"]) == (None, None)
    assert deliver(settings, clock) == []


def test_busy_server_keeps_the_digest_pending_then_sends_it_with_the_same_message_id(
    tmp_path: Path, serve: Serve
) -> None:
    BusyAtFirst.busy, BusyAtFirst.refused = True, 0
    rec = Recorder()
    config = write_config(tmp_path, mail=serve(rec, BusyAtFirst))
    add_watchlist(config, "Met Police")
    settings = load_settings(config)
    clock = Clock()
    [made] = queue_digest(settings, ["Met officer sacked", "IOPC report published"], clock)

    [tried] = deliver(settings, clock)
    assert (tried.digest_id, tried.status) == (made.digest_id, "pending")
    assert tried.error is not None and "421" in tried.error
    row = digest_row(settings, made.digest_id)
    assert row["attempts"] == 1 and from_db(row["next_attempt"]) == NOW + timedelta(minutes=1)
    # its hits stay with it: not listed as sent, not owed to another digest
    assert [h["digest"] for h in listed_hits(config)] == [None, None]
    assert queue_digest(settings, [], clock)[0].status == "skipped"

    calls = BusyAtFirst.refused  # (the server's own start-up check connects too)
    clock.advance(seconds=RETRY_FIRST - 1)
    assert deliver(settings, clock) == []  # not before its time
    assert BusyAtFirst.refused == calls
    clock.advance(seconds=2)
    [again] = deliver(settings, clock)
    assert again.status == "pending" and BusyAtFirst.refused == calls + 1
    next_attempt = from_db(digest_row(settings, made.digest_id)["next_attempt"])
    assert next_attempt == clock() + timedelta(seconds=2 * RETRY_FIRST)  # backing off

    BusyAtFirst.busy = False
    clock.advance(seconds=2 * RETRY_FIRST)
    [sent] = deliver(settings, clock)
    assert (sent.status, sent.hits) == ("sent", 2)
    [(_, message)] = messages(rec)
    assert message["Message-ID"] == digest_row(settings, made.digest_id)["message_id"]
    assert "IOPC report published" in parts(message)[0]
    assert {h["digest"] for h in listed_hits(config)} == {made.digest_id}
    assert deliver(settings, clock) == []


def test_connection_lost_after_data_resends_once_with_the_same_message_id(
    tmp_path: Path, serve: Serve
) -> None:
    rec = DropOnce()
    config = write_config(tmp_path, mail=serve(rec))
    add_watchlist(config, "Met Police")
    settings = load_settings(config)
    clock = Clock()
    [made] = queue_digest(settings, ["Met commissioner apologises"], clock)

    [lost] = deliver(settings, clock)
    assert lost.status == "pending" and "closed the connection" in (lost.error or "")
    assert len(rec.received) == 1  # the server had it all, but never said so
    clock.advance(seconds=RETRY_FIRST)
    [sent] = deliver(settings, clock)
    assert sent.status == "sent"
    first, second = messages(rec)
    assert first[1]["Message-ID"] == second[1]["Message-ID"]
    assert second[1]["Message-ID"] == digest_row(settings, made.digest_id)["message_id"]
    assert parts(first[1]) == parts(second[1])
    clock.advance(days=1)
    assert deliver(settings, clock) == []
    assert len(rec.received) == 2


def test_one_refused_recipient_is_held_and_the_other_still_gets_the_digest(
    tmp_path: Path, serve: Serve
) -> None:
    rec = RefuseOne()
    mail = serve(rec)
    config = write_config(tmp_path, mail=replace(mail, to=("desk@example.org", "gone@example.org")))
    add_watchlist(config, "Met Police")
    settings = load_settings(config)
    store_hits(settings, NOW, ["Met vetting review finds failures"])

    result = run_cli(config, "digest")
    assert result.exit_code == 1
    assert "desk@example.org: sent 1 hit" in result.stdout
    assert "gone@example.org: not sent (held)" in result.stderr and "550" in result.stderr
    [(envelope, message)] = messages(rec)
    assert envelope == ["desk@example.org"]
    assert "Met vetting review finds failures" in parts(message)[0]
    held = rows(
        settings, "SELECT status, last_error FROM digests WHERE recipient = ?", ["gone@example.org"]
    )
    assert held[0][0] == "held" and "550" in str(held[0][1])
    carried = rows(
        settings, "SELECT COUNT(*) FROM digest_hits WHERE recipient = 'gone@example.org'"
    )
    assert carried == [(1,)]  # kept with its digest, not lost
    clock = Clock()
    clock.advance(days=1)
    assert deliver(settings, clock) == []  # held: not retried in a loop
    assert len(rec.received) == 1


def test_refused_login_is_held_reported_and_not_retried_until_released(
    tmp_path: Path, serve: Serve, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    Counting.connections = 0
    rec = Recorder()
    mail = replace(serve(rec, Counting), username="monitor")
    config = write_config(tmp_path, mail=mail)
    add_watchlist(config, "Met Police")
    settings = load_settings(config)
    monkeypatch.setenv("MONITOR_SMTP_PASSWORD", "wrong")
    clock = Clock()
    [made] = queue_digest(settings, ["IOPC to investigate Met stop and search"], clock)

    with caplog.at_level(logging.INFO, logger="monitor"):
        [held] = deliver(settings, clock)
    assert held.status == "held" and "535" in (held.error or "")
    [report] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "refused" in report.getMessage() and "535" in str(report.__dict__["fields"])
    assert PASSWORD not in caplog.text and "wrong" not in caplog.text
    calls, logins = Counting.connections, len(rec.logins)
    assert logins >= 1
    for _ in range(5):
        clock.advance(hours=1)
        assert deliver(settings, clock) == []
    assert (Counting.connections, len(rec.logins)) == (calls, logins)  # no retry loop

    monkeypatch.setenv("MONITOR_SMTP_PASSWORD", PASSWORD)
    result = run_cli(config, "digest")  # releases held digests and sends them
    assert result.exit_code == 0, result.output
    assert "desk@example.org: sent 1 hit queued earlier" in result.stdout
    [(_, message)] = messages(rec)
    assert message["Message-ID"] == digest_row(settings, made.digest_id)["message_id"]
    assert digest_row(settings, made.digest_id)["status"] == "sent"


def test_refused_login_is_released_by_a_config_change_in_the_daemon(
    tmp_path: Path, serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    rec = Recorder()
    mail = replace(serve(rec), username="monitor")
    config = write_config(tmp_path, mail=mail)
    add_watchlist(config, "Met Police")
    settings = load_settings(config)
    backdate(settings, NOW - timedelta(days=2))
    store_hits(settings, NOW, ["Met officers cleared of misconduct"])
    monkeypatch.setenv("MONITOR_SMTP_PASSWORD", "wrong")
    monkeypatch.setenv("MONITOR_SMTP_PASSWORD_FIXED", PASSWORD)
    clock = Clock()  # 09:30 London, after the digest hour
    daemon = Daemon(settings, clock=clock)
    try:
        daemon.poll_job()  # as at start (the only feed is unreachable: a recorded failure)
        daemon.digest_job()
        [(status, attempts)] = rows(settings, "SELECT status, attempts FROM digests")
        assert (status, attempts) == ("held", 1)
        clock.advance(minutes=1)
        daemon.poll_job()  # nothing changed: nothing released
        daemon.digest_job()
        assert rows(settings, "SELECT status, attempts FROM digests") == [("held", 1)]

        fixed = write_config(
            tmp_path, mail=replace(mail, password_env="MONITOR_SMTP_PASSWORD_FIXED")
        )
        assert fixed == config
        clock.advance(minutes=1)
        daemon.poll_job()  # picks up the edited config
        daemon.digest_job()
    finally:
        daemon.stop()
    assert rows(settings, "SELECT status, attempts FROM digests") == [("sent", 2)]
    [(_, message)] = messages(rec)
    assert "Met officers cleared of misconduct" in parts(message)[0]


def test_refused_login_is_retried_once_when_the_daemon_restarts(
    tmp_path: Path, serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the password lives in the environment: fixing it means a restart, not a config edit
    rec = Recorder()
    config = write_config(tmp_path, mail=replace(serve(rec), username="monitor"))
    add_watchlist(config, "Met Police")
    settings = load_settings(config)
    backdate(settings, NOW - timedelta(days=2))
    store_hits(settings, NOW, ["Met to review strip-search policy"])
    monkeypatch.setenv("MONITOR_SMTP_PASSWORD", "wrong")
    clock = Clock()
    before = Daemon(settings, clock=clock)
    try:
        before.poll_job()
        before.digest_job()
        clock.advance(minutes=5)
        before.poll_job()
        before.digest_job()
    finally:
        before.stop()
    assert rows(settings, "SELECT status, attempts FROM digests") == [("held", 1)]

    monkeypatch.setenv("MONITOR_SMTP_PASSWORD", PASSWORD)
    clock.advance(minutes=5)
    after = Daemon(settings, clock=clock)
    try:
        after.poll_job()  # the jobs' first runs, in the order the scheduler happens to pick
        after.digest_job()
    finally:
        after.stop()
    assert rows(settings, "SELECT status, attempts FROM digests") == [("sent", 2)]
    [(_, message)] = messages(rec)
    assert "Met to review strip-search policy" in parts(message)[0]


def test_a_retry_is_not_stranded_when_the_clock_is_set_back(tmp_path: Path, serve: Serve) -> None:
    BusyAtFirst.busy, BusyAtFirst.refused = True, 0
    rec = Recorder()
    config = write_config(tmp_path, mail=serve(rec, BusyAtFirst))
    add_watchlist(config, "Met Police")
    settings = load_settings(config)
    clock = Clock()
    queue_digest(settings, ["Met apologises to family"], clock)
    [tried] = deliver(settings, clock)
    assert tried.status == "pending"
    BusyAtFirst.busy = False
    clock.advance(days=-1)  # the clock was a day fast and has been corrected
    clock.advance(seconds=RETRY_FIRST)
    [sent] = deliver(settings, clock)
    assert sent.status == "sent" and len(rec.received) == 1
