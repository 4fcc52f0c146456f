"""The mail shell: rendered digest -> MIME message -> SMTP server, and the digests/ archive.

SMTP failures are sorted into two kinds the caller can act on: SMTPTemporaryError (keep the
digest pending and retry with the same Message-ID) and SMTPPermanentError (report loudly, do
not retry in a loop). Credentials are never sent over a connection that is not encrypted when
the user asked for encryption, and no error message ever carries the password.
"""

from __future__ import annotations

import base64
import hashlib
import html
import os
import re
import secrets
import smtplib
import socket
import ssl
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, getaddresses
from pathlib import Path
from urllib.parse import quote

from monitor.config import EmailSettings
from monitor.digest import Rendered
from monitor.errors import NotifyError, SMTPPermanentError, SMTPTemporaryError

# The longest one SMTP exchange may take, greeting to goodbye. smtplib's timeout is per read,
# so a server that trickles a byte every few seconds would hold the sender for ever.
SESSION_DEADLINE = 120.0

_ARCHIVE_NAME = re.compile(r"^(\d{4}-\d{2}-\d{2})_(\d{2})(\d{2})_(.+)\.html$")
_DOMAIN = re.compile(r"^[A-Za-z0-9.-]{1,253}$")


@dataclass(frozen=True, slots=True)
class SendResult:
    """Who the server took the message for, and who it refused (address -> 'code text')."""

    accepted: tuple[str, ...]
    refused: dict[str, str] = field(default_factory=dict)


# -- the message ---------------------------------------------------------------------------------


def make_message_id(key: str, domain: str) -> str:
    """A Message-ID derived from key, so a resend of the same digest carries the same one."""
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
    host = domain if _DOMAIN.match(domain) else "monitor.invalid"
    return f"<{digest}.monitor@{host}>"


def build_message(
    rendered: Rendered,
    sender: str,
    recipients: Sequence[str],
    message_id: str,
    date: datetime,
) -> EmailMessage:
    """multipart/alternative, text/plain then text/html, UTF-8, with the five headers we owe."""
    message = EmailMessage(policy=SMTP_POLICY)
    message["Subject"] = rendered.subject
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = format_datetime(date)
    message["Message-ID"] = message_id
    # RFC 3834: tells vacation responders and ticket systems not to answer a robot
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(rendered.text, subtype="plain", charset="utf-8")
    message.add_alternative(rendered.html, subtype="html", charset="utf-8")
    return message


# -- sending -----------------------------------------------------------------------------------


def send_message(
    message: EmailMessage,
    settings: EmailSettings,
    password: str | None,
    timeout: float = 30,
    *,
    context: ssl.SSLContext | None = None,
    deadline: float = SESSION_DEADLINE,
) -> SendResult:
    """Deliver one message; raises SMTPTemporaryError (retry) or SMTPPermanentError (don't).

    `timeout` bounds each read, `deadline` the whole exchange; abort_sessions() ends it at
    once. `context` verifies the server's certificate; the default trusts the system's CAs.
    """
    recipients = _recipients(message)
    if not recipients:
        raise SMTPPermanentError("the message has no recipients")
    scrub = _Scrubber(password, settings.username)
    watch = _Watchdog(deadline)
    try:
        with _session(settings, timeout, context or ssl.create_default_context(), watch) as smtp:
            _log_in(smtp, settings, password)
            refused = smtp.send_message(message, settings.sender, list(recipients))
    except smtplib.SMTPRecipientsRefused as exc:
        raise _every_recipient_refused(exc.recipients, scrub) from None
    except (smtplib.SMTPException, OSError) as exc:
        if watch.ended is not None:  # cut short by us: say why, not "connection closed"
            raise SMTPTemporaryError(watch.ended) from None
        raise _classify(exc, scrub) from None
    refusals = {addr: scrub(f"{code} {_text(reply)}") for addr, (code, reply) in refused.items()}
    accepted = tuple(r for r in recipients if r not in refused)
    return SendResult(accepted, refusals)


def _recipients(message: EmailMessage) -> tuple[str, ...]:
    fields = [str(v) for name in ("To", "Cc", "Bcc") for v in message.get_all(name, [])]
    return tuple(dict.fromkeys(addr for _, addr in getaddresses(fields) if addr))


class _Watchdog:
    """Ends an SMTP exchange that runs past its deadline, or that abort_sessions() gives up:
    its socket is shut down under it, so the read it is blocked in fails at once."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.ended: str | None = None
        self._smtp: smtplib.SMTP | None = None
        self._timer: threading.Timer | None = None

    def watch(self, smtp: smtplib.SMTP) -> None:
        self._smtp = smtp
        self._timer = threading.Timer(self.deadline, self.end, [self._late()])
        self._timer.daemon = True
        self._timer.start()
        with _LIVE_LOCK:
            _LIVE.add(self)

    def end(self, why: str) -> None:
        self.ended = self.ended or why
        sock = self._smtp.sock if self._smtp is not None else None
        if sock is not None:
            # the plain socket's shutdown, also under TLS: SSLSocket's drops its state first
            with suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def done(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        with _LIVE_LOCK:
            _LIVE.discard(self)

    def _late(self) -> str:
        return f"the mail server took longer than {self.deadline:.0f}s to take the message"


_LIVE: set[_Watchdog] = set()
_LIVE_LOCK = threading.Lock()


def abort_sessions() -> None:
    """End every SMTP exchange in progress (a stopping daemon): each fails as temporary, so
    its digest stays pending and is sent after the restart."""
    with _LIVE_LOCK:
        live = list(_LIVE)
    for watch in live:
        watch.end("stopped before the mail server took the message")


@contextmanager
def _session(
    settings: EmailSettings, timeout: float, context: ssl.SSLContext, watch: _Watchdog
) -> Iterator[smtplib.SMTP]:
    """An SMTP connection past EHLO and, when asked for, STARTTLS; closed however we leave."""
    host, port = settings.smtp_host, settings.smtp_port
    if settings.security == "tls":
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(timeout=timeout, context=context)
    else:
        smtp = smtplib.SMTP(timeout=timeout)
    smtp._host = host  # type: ignore[attr-defined]  # kept by __init__ for TLS name checks
    watch.watch(smtp)  # before connecting: the greeting may be the part that trickles
    try:
        code, message = smtp.connect(host, port)
        if code != 220:
            raise smtplib.SMTPConnectError(code, message)
        _greet(smtp)
        if settings.security == "starttls":
            _start_tls(smtp, host, context)
        yield smtp
        # the message is accepted by now; a failed goodbye must not trigger a resend
        with suppress(smtplib.SMTPException, OSError):
            smtp.quit()
    finally:
        watch.done()
        smtp.close()


def _start_tls(smtp: smtplib.SMTP, host: str, context: ssl.SSLContext) -> None:
    # A server (or a man in the middle) that drops STARTTLS must not get our password in clear.
    if not smtp.has_extn("starttls"):
        raise SMTPPermanentError(
            f"{host} does not offer STARTTLS; refusing to continue without encryption"
            ' (security = "tls" suits port 465; "none" only a trusted local relay)'
        )
    smtp.starttls(context=context)
    if not isinstance(smtp.sock, ssl.SSLSocket):
        raise SMTPPermanentError(f"STARTTLS with {host} did not encrypt the connection")
    _greet(smtp)


def _greet(smtp: smtplib.SMTP) -> None:
    """EHLO, and its answer read: smtplib returns a refusal instead of raising it, and a 421
    left unread would look like a server without extensions (no STARTTLS: a permanent refusal
    where the server only asked us to come back later)."""
    code, message = smtp.ehlo()
    if code == 250:
        return
    if code >= 500:  # a server from before ESMTP: HELO, and no extensions
        code, message = smtp.helo()
        if code == 250:
            return
    raise smtplib.SMTPResponseException(code, message)


def _log_in_once(smtp: smtplib.SMTP, username: str, password: str) -> None:
    """Log in by the first mechanism the server offers of those smtplib prefers. Not
    smtp.login, which tries each offered mechanism in turn: two or three refused logins an
    attempt, where a server may lock the account after a few."""
    smtp.ehlo_or_helo_if_needed()
    if not smtp.has_extn("auth"):
        raise smtplib.SMTPNotSupportedError("SMTP AUTH extension not supported by server.")
    offered = smtp.esmtp_features["auth"].upper().split()
    mechanism = next((m for m in ("CRAM-MD5", "PLAIN", "LOGIN") if m in offered), None)
    if mechanism is None:
        raise smtplib.SMTPException("No suitable authentication method found.")
    smtp.user, smtp.password = username, password  # what the auth_* methods read
    smtp.auth(mechanism, getattr(smtp, "auth_" + mechanism.lower().replace("-", "_")))


def _log_in(smtp: smtplib.SMTP, settings: EmailSettings, password: str | None) -> None:
    if not settings.username:
        return
    if password is None:
        raise SMTPPermanentError(
            f"[email].username is set but ${settings.password_env} holds no password"
        )
    if (settings.username + password).isascii():
        _log_in_once(smtp, settings.username, password)
        return
    # smtplib encodes credentials as ASCII; RFC 4616 PLAIN carries UTF-8, so send it by hand
    smtp.ehlo_or_helo_if_needed()
    if "plain" not in smtp.esmtp_features.get("auth", "").lower().split():
        raise SMTPPermanentError(
            "the SMTP password or username is not ASCII and the server offers no AUTH PLAIN"
        )
    token = base64.b64encode(f"\0{settings.username}\0{password}".encode()).decode("ascii")
    code, reply = smtp.docmd("AUTH", "PLAIN " + token)
    if code != 235:
        raise smtplib.SMTPAuthenticationError(code, reply)


class _Scrubber:
    """Removes the password from any text before it goes into an error message, as written
    and as the AUTH LOGIN and AUTH PLAIN exchanges carry it (base64), which a server may echo
    in its refusal."""

    def __init__(self, password: str | None, username: str = "") -> None:
        self.secrets: list[str] = []
        if password:
            plain = f"\0{username}\0{password}".encode()
            encoded = [base64.b64encode(x).decode("ascii") for x in (password.encode(), plain)]
            self.secrets = sorted({password, *encoded}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "********")
        return text


def _text(reply: bytes | str) -> str:
    raw = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return " ".join(raw.split())[:300]


def _every_recipient_refused(
    refusals: dict[str, tuple[int, bytes]], scrub: _Scrubber
) -> NotifyError:
    detail = "; ".join(f"{a}: {code} {_text(r)}" for a, (code, r) in refusals.items())
    message = scrub(f"the mail server refused every recipient ({detail})")
    # a 4xx refusal may clear (mailbox full, greylisting); only all-5xx is final
    if all(code >= 500 for code, _ in refusals.values()):
        return SMTPPermanentError(message)
    return SMTPTemporaryError(message)


def _classify(exc: smtplib.SMTPException | OSError, scrub: _Scrubber) -> NotifyError:
    """Map what smtplib raised to retry (temporary) or report (permanent)."""
    if isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError):
        return SMTPTemporaryError("the mail server did not answer in time")
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        # includes a connection lost after the final dot: it may have been delivered, but
        # resending under the same Message-ID is the only safe choice (RFC 1047)
        return SMTPTemporaryError(scrub(f"the mail server closed the connection: {exc}"))
    if isinstance(exc, smtplib.SMTPResponseException):
        code = exc.smtp_code
        what = _STEP.get(type(exc), "the mail server answered")
        text = scrub(f"{what} {code} {_text(exc.smtp_error)}")
        # 5xx is final (535 bad login, 550 refused); 4xx (421, 451, 454) may clear later
        return SMTPPermanentError(text) if code >= 500 else SMTPTemporaryError(text)
    if isinstance(exc, smtplib.SMTPException):
        # smtplib's own refusals: no AUTH offered, no usable login mechanism
        return SMTPPermanentError(scrub(f"cannot send with this mail server: {exc}"))
    if isinstance(exc, ssl.SSLError):
        return SMTPPermanentError(scrub(f"TLS with the mail server failed: {exc}"))
    return SMTPTemporaryError(scrub(f"could not reach the mail server: {exc}"))


_STEP: dict[type[Exception], str] = {
    smtplib.SMTPConnectError: "the mail server greeted with",
    smtplib.SMTPHeloError: "the mail server refused EHLO:",
    smtplib.SMTPAuthenticationError: "the mail server refused the login:",
    smtplib.SMTPSenderRefused: "the mail server refused the sender:",
    smtplib.SMTPDataError: "the mail server refused the message:",
}


# -- the archive -------------------------------------------------------------------------------


def archive_digest(
    folder: Path, rendered: Rendered, stamp: datetime, name: str
) -> tuple[Path, Path]:
    """Write the digest as dated HTML and text files and rebuild folder/index.html."""
    base = f"{stamp:%Y-%m-%d_%H%M}_{_slug(name)}"
    html_path, text_path = folder / f"{base}.html", folder / f"{base}.txt"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _write_atomically(text_path, rendered.text)
        _write_atomically(html_path, rendered.html)
        _write_atomically(folder / "index.html", render_index(folder))
    except OSError as exc:
        raise NotifyError(f"could not archive the digest in {folder}: {exc}") from exc
    return html_path, text_path


def _slug(name: str) -> str:
    """A file-name-safe form of name: no separators, no dot files, never empty."""
    slug = re.sub(r"[^A-Za-z0-9@._-]+", "-", name).strip(".-")[:80]
    return slug or "digest"


def _write_atomically(path: Path, text: str) -> None:
    # temp file in the same folder + rename: a reader never sees half a file. Created with mode
    # 0o666 less the umask, as any file the user makes (mkstemp's 0o600 would leave the archive
    # unreadable to anyone but the daemon's own user, such as the people of a service's group)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def render_index(folder: Path) -> str:
    """index.html listing every archived digest in folder, newest first."""
    entries = sorted(
        (m for p in folder.iterdir() if (m := _ARCHIVE_NAME.match(p.name))),
        key=lambda m: m.group(0),
        reverse=True,
    )
    rows = []
    for m in entries:
        day, hh, mm, who = m.groups()
        page = quote(m.group(0))
        text = quote(m.group(0)[: -len(".html")] + ".txt")
        label = html.escape(f"{day} {hh}:{mm} · {who}")
        rows.append(f'<li><a href="{page}">{label}</a> (<a href="{text}">text</a>)</li>')
    return _INDEX.format(count=len(rows), rows="\n".join(rows))


_INDEX = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>monitor digests</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: Arial, Helvetica, sans-serif; max-width: 600px; margin: 16px auto;">
<h1 style="font-size: 20px;">monitor digests</h1>
<p style="color: #5f5f5f;">{count} archived, newest first.</p>
<ul>
{rows}
</ul>
</body>
</html>
"""
