"""SMTP servers on 127.0.0.1 for tests, well-behaved and misbehaving on purpose (aiosmtpd, and
a raw socket for a server too slow for any SMTP library)."""

from __future__ import annotations

import itertools
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from monitor.config import EmailSettings

PASSWORD = "correct horse battery staple"


@dataclass
class Recorder:
    """An aiosmtpd handler that keeps what it received; subclasses misbehave."""

    received: list[tuple[list[str], bytes]] = field(default_factory=list)
    logins: list[tuple[bytes, bytes]] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        self.received.append((list(envelope.rcpt_tos), envelope.original_content))
        return "250 2.0.0 queued"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.logins.append((data.login, data.password))
        return AuthResult(success=data.password == PASSWORD.encode(), handled=False)


class DropAfterData(Recorder):
    """Takes the whole message, then hangs up before saying 250."""

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        self.received.append((list(envelope.rcpt_tos), envelope.original_content))
        server.transport.close()
        return "250 2.0.0 never heard"


class RefuseOne(Recorder):
    """Refuses mail for gone@..., accepts the rest."""

    async def handle_RCPT(
        self, server: SMTP, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address.startswith("gone@"):
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"


class BusyGreeting(SMTP):
    """Greets with 421 and hangs up, as an overloaded server does."""

    async def _handle_client(self) -> None:
        await self.push("421 4.3.2 too busy, try again later")
        assert self.transport is not None
        self.transport.close()


class AuthSpy(SMTP):
    """Records every AUTH command, so a test can prove none was sent."""

    auth_commands: ClassVar[list[str]] = []

    async def smtp_AUTH(self, arg: str) -> None:
        AuthSpy.auth_commands.append(arg)
        await super().smtp_AUTH(arg)


class LoopbackController(Controller):
    """An aiosmtpd controller on a free port of 127.0.0.1, with a chosen SMTP class."""

    def __init__(self, handler: Recorder, smtp_class: type[SMTP] = SMTP, **kwargs: Any) -> None:
        self.smtp_class = smtp_class
        kwargs.setdefault("authenticator", handler.authenticate)
        kwargs.setdefault("auth_require_tls", False)
        super().__init__(
            handler, hostname="127.0.0.1", port=0, server_hostname="mail.test", **kwargs
        )

    def factory(self) -> SMTP:
        return self.smtp_class(self.handler, **self.SMTP_kwargs)

    def _trigger_server(self) -> None:
        assert self.server is not None
        self.port = self.server.sockets[0].getsockname()[1]  # port 0 picked a free one
        super()._trigger_server()


@pytest.fixture
def serve() -> Iterator[Any]:
    started: list[LoopbackController] = []

    def start(handler: Recorder, smtp_class: type[SMTP] = SMTP, **kwargs: Any) -> EmailSettings:
        controller = LoopbackController(handler, smtp_class, **kwargs)
        controller.start()
        started.append(controller)
        return settings_for(controller.port)

    yield start
    for controller in started:
        controller.stop()


def settings_for(port: int, security: str = "none", username: str = "") -> EmailSettings:
    return EmailSettings(
        sender="monitor@example.org",
        to=("desk@example.org",),
        smtp_host="127.0.0.1",
        smtp_port=port,
        security=security,
        username=username,
        password_env="MONITOR_SMTP_PASSWORD",
    )


@contextmanager
def trickling_server(greeting: bytes) -> Iterator[tuple[int, threading.Event]]:
    """A server that sends its greeting one byte every 50 ms, for as long as the client
    listens (smtplib's per-read timeout never fires); yields its port and an event set once
    a client is connected."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    connected, done = threading.Event(), threading.Event()

    def trickle() -> None:
        conn, _ = listener.accept()
        connected.set()
        with conn:
            for byte in itertools.cycle(greeting):
                if done.wait(0.05):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:  # the client hung up
                    return

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1]), connected
    finally:
        done.set()
        listener.close()
        thread.join(timeout=10)
