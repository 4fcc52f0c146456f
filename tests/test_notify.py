"""Mail delivery against a real SMTP server (aiosmtpd on 127.0.0.1), and the digest archive.

The servers here misbehave on purpose: a 421 greeting, a connection dropped after the final
dot, a refused recipient, a failed login, a server that never offers STARTTLS.
"""

from __future__ import annotations

import base64
import email
import os
import socket
import ssl
import stat
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import lxml.html
import pytest

from monitor.config import EmailSettings
from monitor.digest import Rendered, StoryEntry, WatchlistSection, render_digest
from monitor.errors import NotifyError, SMTPPermanentError, SMTPTemporaryError
from monitor.notify import (
    abort_sessions,
    archive_digest,
    build_message,
    make_message_id,
    send_message,
)
from tests.smtpservers import (
    PASSWORD,
    AuthSpy,
    BusyGreeting,
    DropAfterData,
    Recorder,
    RefuseOne,
    settings_for,
    trickling_server,
)
from tests.test_digest import HOSTILE_TITLE, digest_of, make_hit

DATE = datetime(2026, 11, 22, 7, 0, tzinfo=UTC)


def with_(settings: EmailSettings, **changes: Any) -> EmailSettings:
    values = {name: getattr(settings, name) for name in settings.__dataclass_fields__}
    return EmailSettings(**(values | changes))


def digest_message(
    recipients: tuple[str, ...] = ("desk@example.org",), key: str = "d1"
) -> EmailMessage:
    hostile = make_hit(2, title=HOSTILE_TITLE, url="javascript:alert(1)", feed="Evening Paper")
    stories = (
        StoryEntry(make_hit(1, title="Met officers sacked & IOPC report")),
        StoryEntry(hostile),
    )
    rendered = render_digest(digest_of(WatchlistSection("Met Police", stories)))
    return build_message(
        rendered, "monitor@example.org", recipients, make_message_id(key, "example.org"), DATE
    )


def parsed(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=default_policy)
    assert isinstance(message, EmailMessage)
    return message


# -- the message --------------------------------------------------------------------------------


def test_message_id_is_stable_per_key_and_well_formed() -> None:
    first = make_message_id("digest 2026-11-22 desk@example.org", "example.org")
    assert first == make_message_id("digest 2026-11-22 desk@example.org", "example.org")
    assert first != make_message_id("digest 2026-11-23 desk@example.org", "example.org")
    assert first.startswith("<") and first.endswith("@example.org>")
    hostile = make_message_id("k", "evil.example>\r\nBcc: x@y")
    assert "\n" not in hostile and "Bcc" not in hostile


def test_message_lines_stay_within_smtp_limits() -> None:
    raw = digest_message().as_bytes()
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998


# -- delivery -----------------------------------------------------------------------------------


def test_delivery_carries_headers_both_parts_links_and_escaping(serve: Any) -> None:
    handler = Recorder()
    settings = serve(handler)
    message = digest_message(("desk@example.org", "editor@example.org"))
    result = send_message(message, settings, None)
    assert result.accepted == ("desk@example.org", "editor@example.org") and not result.refused
    [(rcpts, raw)] = handler.received
    assert rcpts == ["desk@example.org", "editor@example.org"]
    got = parsed(raw)
    assert got["Subject"] == "monitor digest: Sunday 22 November 2026, 2 new hits"
    assert got["From"] == "monitor@example.org"
    assert got["To"] == "desk@example.org, editor@example.org"
    assert got["Message-ID"] == make_message_id("d1", "example.org")
    assert email.utils.parsedate_to_datetime(got["Date"]) == DATE
    assert got.get_content_type() == "multipart/alternative"
    text_part, html_part = got.iter_parts()
    assert text_part.get_content_type() == "text/plain"
    assert html_part.get_content_type() == "text/html"
    assert text_part.get_content_charset() == html_part.get_content_charset() == "utf-8"
    text, html = text_part.get_content(), html_part.get_content()
    assert "Met officers sacked & IOPC report" in text and "javascript:" not in text
    doc = lxml.html.document_fromstring(html)
    links = {a.text_content(): a.get("href") for a in doc.iter("a")}
    assert links["Met officers sacked & IOPC report"] == "https://news.example/uk/1"
    assert HOSTILE_TITLE not in links and HOSTILE_TITLE in doc.text_content()
    assert not doc.xpath("//script | //img")
    assert "&lt;script&gt;" in html


def test_421_greeting_is_temporary(serve: Any) -> None:
    settings = serve(Recorder(), BusyGreeting)
    with pytest.raises(SMTPTemporaryError, match="421"):
        send_message(digest_message(), settings, None)


def test_connection_dropped_after_data_is_temporary_and_resend_keeps_message_id(
    serve: Any,
) -> None:
    dropping = DropAfterData()
    settings = serve(dropping)
    message = digest_message(key="digest 2026-11-22")
    with pytest.raises(SMTPTemporaryError, match="closed the connection"):
        send_message(message, settings, None)
    good = Recorder()
    resend = digest_message(key="digest 2026-11-22")  # rebuilt by the caller on retry
    send_message(resend, serve(good), None)
    first_id = parsed(dropping.received[0][1])["Message-ID"]
    assert first_id == parsed(good.received[0][1])["Message-ID"]


def test_one_refused_recipient_does_not_stop_the_other(serve: Any) -> None:
    handler = RefuseOne()
    settings = serve(handler)
    result = send_message(digest_message(("gone@example.org", "desk@example.org")), settings, None)
    assert result.accepted == ("desk@example.org",)
    assert list(result.refused) == ["gone@example.org"]
    assert result.refused["gone@example.org"].startswith("550")
    assert [rcpts for rcpts, _ in handler.received] == [["desk@example.org"]]


def test_every_recipient_refused_is_permanent(serve: Any) -> None:
    handler = RefuseOne()
    settings = serve(handler)
    with pytest.raises(SMTPPermanentError, match="refused every recipient"):
        send_message(digest_message(("gone@example.org",)), settings, None)
    assert handler.received == []


def test_login_then_delivery(serve: Any) -> None:
    handler = Recorder()
    settings = with_(serve(handler), username="monitor")
    send_message(digest_message(), settings, PASSWORD)
    assert handler.logins == [(b"monitor", PASSWORD.encode())]
    assert len(handler.received) == 1


def test_535_on_auth_is_permanent_and_never_shows_the_password(serve: Any) -> None:
    handler = Recorder()
    settings = with_(serve(handler), username="monitor")
    wrong = "wrong-" + PASSWORD
    with pytest.raises(SMTPPermanentError, match="535") as caught:
        send_message(digest_message(), settings, wrong)
    assert wrong not in str(caught.value) and wrong not in repr(caught.value.__cause__)
    # one try: smtplib's login would try each mechanism the server offers (PLAIN, LOGIN), a
    # second refused login an attempt towards a server's lockout
    assert handler.logins == [(b"monitor", wrong.encode())]
    assert handler.received == []


def test_username_without_password_is_permanent_and_names_the_variable(serve: Any) -> None:
    settings = with_(serve(Recorder()), username="monitor")
    with pytest.raises(SMTPPermanentError, match="MONITOR_SMTP_PASSWORD"):
        send_message(digest_message(), settings, None)


def test_starttls_not_offered_sends_no_credentials(serve: Any) -> None:
    handler = Recorder()
    AuthSpy.auth_commands.clear()
    settings = with_(serve(handler, AuthSpy), security="starttls", username="monitor")
    with pytest.raises(SMTPPermanentError, match="STARTTLS"):
        send_message(digest_message(), settings, PASSWORD)
    assert AuthSpy.auth_commands == [] and handler.logins == [] and handler.received == []


def test_connection_refused_is_temporary() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # the socket is closed: nothing listens on that port now
    with pytest.raises(SMTPTemporaryError, match="could not reach"):
        send_message(digest_message(), settings_for(port), None, timeout=5)


def test_server_that_never_greets_is_temporary() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)  # accepts into the backlog, never says a word
        settings = settings_for(listener.getsockname()[1])
        with pytest.raises(SMTPTemporaryError, match="did not answer in time"):
            send_message(digest_message(), settings, None, timeout=0.3)


def test_a_server_trickling_its_answer_is_given_up_at_the_deadline() -> None:
    """smtplib's timeout is per read: a byte every 50 ms would hold the sender for ever."""
    late = r"took longer than 1s to take the message"
    with (
        trickling_server(b"220-still greeting you ") as (port, _),
        pytest.raises(SMTPTemporaryError, match=late),
    ):
        send_message(digest_message(), settings_for(port), None, timeout=5, deadline=1.0)


def test_abort_sessions_ends_a_send_in_progress() -> None:
    """A stopping daemon does not wait on a mail server: the exchange fails as temporary at
    once (the digest stays pending for the restart)."""
    with (
        trickling_server(b"220-still greeting you ") as (port, connected),
        ThreadPoolExecutor(1) as pool,
    ):
        sending = pool.submit(send_message, digest_message(), settings_for(port), None, timeout=60)
        assert connected.wait(30)
        while not sending.done():
            abort_sessions()  # again until it lands: the send may not be watched yet
            time.sleep(0.05)
        with pytest.raises(SMTPTemporaryError, match="stopped before the mail server took"):
            sending.result()


# -- TLS, with a throwaway certificate -------------------------------------------------------------


def contexts(certificate: tuple[Path, Path]) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    cert, key = certificate
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    return server, ssl.create_default_context(cafile=str(cert))


def test_starttls_then_login_then_delivery(serve: Any, certificate: tuple[Path, Path]) -> None:
    server_ctx, client_ctx = contexts(certificate)
    handler = Recorder()
    settings = serve(handler, tls_context=server_ctx, require_starttls=True, auth_require_tls=True)
    settings = with_(settings, security="starttls", username="monitor")
    send_message(digest_message(), settings, PASSWORD, context=client_ctx)
    assert handler.logins == [(b"monitor", PASSWORD.encode())] and len(handler.received) == 1


def test_starttls_with_an_untrusted_certificate_sends_no_credentials(
    serve: Any, certificate: tuple[Path, Path]
) -> None:
    server_ctx, _ = contexts(certificate)
    handler = Recorder()
    settings = serve(handler, tls_context=server_ctx, auth_require_tls=False)
    settings = with_(settings, security="starttls", username="monitor")
    with pytest.raises(SMTPPermanentError, match="TLS"):
        send_message(digest_message(), settings, PASSWORD)  # system CAs: not ours
    assert handler.logins == [] and handler.received == []


def test_implicit_tls(serve: Any, certificate: tuple[Path, Path]) -> None:
    server_ctx, client_ctx = contexts(certificate)
    handler = Recorder()
    settings = with_(serve(handler, ssl_context=server_ctx), security="tls")
    send_message(digest_message(), settings, None, context=client_ctx)
    assert len(handler.received) == 1


# -- the archive ----------------------------------------------------------------------------------


def rendered_with(title: str) -> Rendered:
    return Rendered(f"subject {title}", f"text {title}\n", f"<html><body>{title}</body></html>")


def test_archive_writes_both_files_and_an_index_newest_first(tmp_path: Path) -> None:
    folder = tmp_path / "digests"
    older = archive_digest(
        folder, rendered_with("one"), DATE - timedelta(days=1), "desk@example.org"
    )
    newer = archive_digest(folder, rendered_with("two"), DATE, "desk@example.org")
    assert newer[0].name == "2026-11-22_0700_desk@example.org.html"
    assert newer[0].read_text(encoding="utf-8") == "<html><body>two</body></html>"
    assert older[1].read_text(encoding="utf-8") == "text one\n"
    index = lxml.html.document_fromstring((folder / "index.html").read_text(encoding="utf-8"))
    pages = [a.get("href") for a in index.iter("a") if a.text_content() != "text"]
    assert pages == [newer[0].name.replace("@", "%40"), older[0].name.replace("@", "%40")]
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [*(p.name for p in (*older, *newer)), "index.html"]
    )  # no temporary files left behind


def test_archive_name_cannot_escape_the_folder_or_inject_markup(tmp_path: Path) -> None:
    folder = tmp_path / "digests"
    html_path, text_path = archive_digest(folder, rendered_with("x"), DATE, "../<script>x</script>")
    assert html_path.parent == folder and text_path.parent == folder
    index = lxml.html.document_fromstring((folder / "index.html").read_text(encoding="utf-8"))
    assert not index.xpath("//script")


def test_archive_failure_is_a_notify_error(tmp_path: Path) -> None:
    blocker = tmp_path / "digests"
    blocker.write_text("a file where the folder should be", encoding="utf-8")
    with pytest.raises(NotifyError, match="could not archive"):
        archive_digest(blocker, rendered_with("x"), DATE, "desk")


def test_concurrent_archives_leave_a_complete_index(tmp_path: Path) -> None:
    folder = tmp_path / "digests"
    folder.mkdir()
    with ThreadPoolExecutor(4) as pool:
        jobs = [
            pool.submit(
                archive_digest, folder, rendered_with(str(i)), DATE + timedelta(minutes=i), f"r{i}"
            )
            for i in range(8)
        ]
        for job in jobs:
            job.result()  # re-raises anything a writer hit
    archive_digest(folder, rendered_with("last"), DATE + timedelta(hours=1), "r-last")
    index = (folder / "index.html").read_text(encoding="utf-8")
    assert index.count("<li>") == 9


def test_message_without_recipients_is_refused_before_connecting() -> None:
    message = digest_message()
    del message["To"]
    with pytest.raises(SMTPPermanentError, match="no recipients"):
        send_message(message, settings_for(9), None)  # port 9: nothing would answer there


def test_the_password_is_scrubbed_also_as_auth_plain_and_login_carry_it() -> None:
    """A server may echo the AUTH argument in its refusal: base64 is the password in clear."""
    from monitor.notify import _Scrubber

    password = "S3cret-pw"
    plain = base64.b64encode(b"\0monitor\0S3cret-pw").decode()
    login = base64.b64encode(b"S3cret-pw").decode()
    said = _Scrubber(password, "monitor")(f"535 no {plain}; LOGIN {login}; {password}")
    assert said == "535 no ********; LOGIN ********; ********"


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_archived_files_take_the_umask_like_any_file_the_user_makes(
    tmp_path: Path, umask: int, mode: int
) -> None:
    # a temporary file's 0o600 would leave the digests unreadable to the service's group
    folder = tmp_path / "digests"
    saved = os.umask(umask)
    try:
        html_path, text_path = archive_digest(folder, rendered_with("x"), DATE, "desk")
    finally:
        os.umask(saved)
    for path in (html_path, text_path, folder / "index.html"):
        assert stat.S_IMODE(path.stat().st_mode) == mode, path.name
