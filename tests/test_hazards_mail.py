"""Mail faults met by the daemon's digest job: a temporary failure at each step of the SMTP
conversation, a server that is down, a server that never greets.

The daemon's digest job is driven directly under an injected clock (as in test_daemon.py);
the mail server is aiosmtpd on 127.0.0.1, misbehaving on purpose for a number of attempts and
then behaving. What must hold at every step: the daily digest stays pending with its hits,
is retried with back-off (1 minute, then 2) and not before, under the same Message-ID, and
goes out once when the server recovers; no second daily digest is made meanwhile.

The other mail cases of HAZARDS.md are in test_delivery_faults.py (421 greeting, connection
lost after the final dot, one of two recipients refused, 535), test_notify.py (STARTTLS) and
test_digest.py / test_outbox.py (headers and escaping).
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any, ClassVar

import pytest
from aiosmtpd.smtp import SMTP

from monitor.config import EmailSettings, Settings, load_settings
from monitor.daemon import Daemon
from monitor.delivery import RETRY_FIRST
from monitor.store import from_db
from tests.smtpservers import LoopbackController, Recorder, settings_for
from tests.test_outbox import (
    NOW,
    Clock,
    add_watchlist,
    backdate,
    default_logging,
    messages,
    parse_message,
    parts,
    rows,
    store_hits,
    write_config,
)

__all__ = ["default_logging"]

TITLES = ("Met officer sacked for gross misconduct", "IOPC report criticises Met vetting")
SEVEN = datetime(2026, 11, 23, 7, 0, tzinfo=NOW.tzinfo)  # the next morning's digest hour


class Flaky(SMTP):
    """Answers 4xx at one step of the conversation for the first `failures` attempts."""

    step: ClassVar[str] = ""
    failures: ClassVar[int] = 0
    connections: ClassVar[int] = 0

    def connection_made(self, transport: Any) -> None:
        Flaky.connections += 1
        super().connection_made(transport)

    async def _refuse(self, step: str) -> bool:
        if Flaky.step != step or Flaky.failures <= 0:
            return False
        Flaky.failures -= 1
        if step == "EHLO":  # a server shedding load says 421 and hangs up
            await self.push("421 4.3.2 too busy, try again later")
            assert self.transport is not None
            self.transport.close()
        else:
            await self.push("451 4.3.0 temporary local problem, try again later")
        return True

    async def smtp_EHLO(self, hostname: str) -> None:
        if Flaky.step == "no EHLO":  # a server from before ESMTP knows only HELO
            await self.push("502 5.5.1 command not recognised")
            return
        if not await self._refuse("EHLO"):
            await super().smtp_EHLO(hostname)

    async def smtp_MAIL(self, arg: str | None) -> None:
        if not await self._refuse("MAIL"):
            await super().smtp_MAIL(arg)

    async def smtp_RCPT(self, arg: str | None) -> None:
        if not await self._refuse("RCPT"):
            await super().smtp_RCPT(arg)

    async def smtp_DATA(self, arg: str) -> None:
        if not await self._refuse("DATA"):
            await super().smtp_DATA(arg)


@dataclass
class RefuseAfterDot(Recorder):
    """Refuses the message after its final dot (451) while Flaky.step says so; keeps the
    refused ones apart."""

    refused: list[bytes] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        if Flaky.step == "end of data" and Flaky.failures > 0:
            Flaky.failures -= 1
            self.refused.append(envelope.original_content)
            return "451 4.3.0 queue full, try again later"
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture(autouse=True)
def flaky() -> Iterator[None]:
    Flaky.step, Flaky.failures, Flaky.connections = "", 0, 0
    yield
    Flaky.step, Flaky.failures = "", 0


@dataclass
class Desk:
    """A config with [email] pointing at port, hits waiting, a daemon at 07:00 next day."""

    settings: Settings
    clock: Clock
    daemon: Daemon

    def tick(self, seconds: float) -> None:
        self.clock.advance(seconds=seconds)
        self.daemon.digest_job()

    def digests(self) -> list[dict[str, Any]]:
        found = rows(
            self.settings,
            "SELECT id, kind, status, attempts, next_attempt, last_error, message_id"
            " FROM digests ORDER BY id",
        )
        keys = ("id", "kind", "status", "attempts", "next_attempt", "last_error", "message_id")
        return [dict(zip(keys, row, strict=True)) for row in found]


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Callable[[EmailSettings], Desk]]:
    made: list[Daemon] = []

    def make(mail: EmailSettings) -> Desk:
        config = write_config(tmp_path, mail=mail)
        add_watchlist(config, "Met Police")
        settings = load_settings(config)
        backdate(settings, NOW - timedelta(days=2))
        store_hits(settings, NOW, TITLES)
        clock = Clock(SEVEN)
        daemon = Daemon(settings, clock=clock)
        made.append(daemon)
        daemon.poll_job()  # as at start: loads the watchlists (no feed to poll)
        return Desk(settings, clock, daemon)

    yield make
    for daemon in made:
        daemon.stop()


def free_port() -> int:
    """A port of 127.0.0.1 nothing listens on (just closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(handler: Recorder, port: int = 0) -> tuple[LoopbackController, EmailSettings]:
    controller = LoopbackController(handler, Flaky)
    if port:
        controller.port = port  # LoopbackController asks for a free one; this one is chosen
    controller.start()
    return controller, settings_for(controller.port)


def assert_sent_once(desk: Desk, recorder: Recorder) -> EmailMessage:
    """One daily digest, sent, carrying both hits; the server got it once."""
    [digest] = desk.digests()
    assert (digest["kind"], digest["status"]) == ("daily", "sent")
    [(_, message)] = messages(recorder)
    assert message["Message-ID"] == digest["message_id"]
    assert all(title in parts(message)[0] for title in TITLES)
    carried = rows(desk.settings, "SELECT COUNT(*) FROM digest_hits WHERE digest_id = ?",
                   (digest["id"],))  # fmt: skip
    assert carried == [(len(TITLES),)]
    desk.tick(3600)  # an hour later: nothing more to send, no second daily digest
    assert len(desk.digests()) == 1 and len(recorder.received) == 1
    return message


@pytest.mark.parametrize(
    ("step", "answer"),
    [
        ("EHLO", "421|closed the connection"),  # smtplib goes on after a 421 to EHLO
        ("MAIL", "451"),
        ("RCPT", "451"),
        ("DATA", "451"),
        ("end of data", "451"),
    ],
)
def test_a_temporary_failure_at_each_smtp_step_is_retried_with_backoff_then_sent_once(
    desk: Callable[[EmailSettings], Desk], step: str, answer: str
) -> None:
    Flaky.step, Flaky.failures = step, 2
    recorder = RefuseAfterDot()
    server, mail = start_server(recorder)
    try:
        d = desk(mail)
        d.daemon.digest_job()
        [digest] = d.digests()
        assert (digest["status"], digest["attempts"]) == ("pending", 1)
        assert re.search(answer, digest["last_error"]), digest
        assert from_db(digest["next_attempt"]) == SEVEN + timedelta(seconds=RETRY_FIRST)

        calls = Flaky.connections
        d.tick(RETRY_FIRST - 1)  # not before its time
        assert Flaky.connections == calls and d.digests()[0]["attempts"] == 1
        d.tick(1)
        [digest] = d.digests()
        assert (digest["status"], digest["attempts"]) == ("pending", 2)
        assert from_db(digest["next_attempt"]) == d.clock() + timedelta(seconds=2 * RETRY_FIRST)

        d.tick(2 * RETRY_FIRST)  # the server has recovered
        message = assert_sent_once(d, recorder)
    finally:
        server.stop()
    # a message refused after its dot was the same message, under the same Message-ID
    refused = [parse_message(raw) for raw in recorder.refused]
    assert len(refused) == (2 if step == "end of data" else 0)
    assert all(r["Message-ID"] == message["Message-ID"] for r in refused)


def test_a_server_that_is_down_keeps_the_digest_pending_until_it_is_back(
    desk: Callable[[EmailSettings], Desk],
) -> None:
    port = free_port()
    d = desk(settings_for(port))
    d.daemon.digest_job()
    d.tick(RETRY_FIRST)
    [digest] = d.digests()
    assert (digest["status"], digest["attempts"]) == ("pending", 2)
    assert "could not reach the mail server" in digest["last_error"]
    recorder = Recorder()
    server, _ = start_server(recorder, port)
    try:
        d.tick(2 * RETRY_FIRST)
        assert_sent_once(d, recorder)
    finally:
        server.stop()


@pytest.mark.slow  # the client waits out its 30 s timeout
def test_a_server_that_never_greets_keeps_the_digest_pending_then_it_goes_out_once(
    desk: Callable[[EmailSettings], Desk],
) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)  # accepts into the backlog, never says a word
        port = int(listener.getsockname()[1])
        d = desk(settings_for(port))
        d.daemon.digest_job()
        [digest] = d.digests()
        assert (digest["status"], digest["attempts"]) == ("pending", 1)
        assert "did not answer in time" in digest["last_error"]
    recorder = Recorder()
    server, _ = start_server(recorder, port)
    try:
        d.tick(RETRY_FIRST)
        assert_sent_once(d, recorder)
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("step", "security", "status", "received"),
    [
        # a 421 there must not read as "no STARTTLS offered", a permanent refusal
        ("EHLO", "starttls", "pending", 0),
        ("no EHLO", "none", "sent", 1),  # a server from before ESMTP: HELO instead
    ],
)
def test_the_answer_to_ehlo_is_read(
    desk: Callable[[EmailSettings], Desk], step: str, security: str, status: str, received: int
) -> None:
    Flaky.step, Flaky.failures = step, 1
    recorder = Recorder()
    server, mail = start_server(recorder)
    try:
        d = desk(replace(mail, security=security))
        d.daemon.digest_job()
        [digest] = d.digests()
        assert digest["status"] == status, digest
        assert len(recorder.received) == received
    finally:
        server.stop()
