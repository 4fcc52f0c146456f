"""Sending what the outbox holds: each pending digest and alert to its recipient over SMTP,
retried with back-off under the same Message-ID, held after a permanent refusal, claimed by
the process sending it so that two processes never send one twice, and archived once there
is room if its archive could not be written when it was made.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from monitor.config import Settings
from monitor.errors import NotifyError, SMTPPermanentError, SMTPTemporaryError
from monitor.logs import event, get_logger
from monitor.outbox import ARCHIVE_ONLY, Outcome, archive_name, file_digest
from monitor.store import Store, from_db, to_db

if TYPE_CHECKING:
    import threading

log = get_logger("digest")
RETRY_FIRST = 60.0
RETRY_MAX = 3600.0
# how long a claim on a digest being sent holds if its process neither finishes nor dies:
# past any one SMTP exchange (notify.SESSION_DEADLINE)
CLAIM_LEASE = 600.0


def deliver_pending(
    store: Store,
    settings: Settings,
    now: datetime,
    stopped: threading.Event | None = None,
    *,
    recipients: Collection[str] | None = None,
    every: bool = False,
) -> list[Outcome]:
    """Try to send every pending digest and alert whose retry time has come (`every`: each
    one now, as a person asks by hand), until `stopped`.

    An archive-only digest is pending only when its archive could not be written: that is
    tried again instead. Without [email], digests for recipients wait until it is configured.
    One that another process is sending at this moment is left to it. Given the current
    `recipients`, a digest for someone no longer among them is kept, not sent (see _keep).
    """
    # a retry time further ahead than the longest back-off was set by a clock that has since
    # been set back: it is due now, not a day later
    rows = store.read(
        "SELECT d.*, (SELECT COUNT(*) FROM digest_hits dh WHERE dh.digest_id = d.id) AS hits"
        " FROM digests d WHERE status = 'pending' AND (? OR next_attempt IS NULL OR"
        " next_attempt <= ? OR next_attempt > ?) ORDER BY id",
        (int(every), to_db(now), to_db(now + timedelta(seconds=RETRY_MAX))),
    )
    current = None if recipients is None else {r.casefold() for r in recipients}
    _archive_missing(store, settings, now)
    out = []
    for row in rows:
        if stopped is not None and stopped.is_set():
            break
        if row["recipient"] == ARCHIVE_ONLY:
            out.append(_archive_again(store, settings, row, now))
        elif settings.email is None:
            continue  # waits until [email] is configured
        elif current is not None and row["recipient"].casefold() not in current:
            out.append(_keep(store, row, now))
        else:
            outcome = _claimed_and_sent(store, settings, row, now, stopped)
            if outcome is not None:
                out.append(outcome)
    return out


def _claimed_and_sent(
    store: Store,
    settings: Settings,
    row: sqlite3.Row,
    now: datetime,
    stopped: threading.Event | None,
) -> Outcome | None:
    """Send one digest under this process's claim; None when it is not pending any more (the
    other process sent or held it) or when the daemon is stopping."""
    elsewhere = _claim(store, row["id"], now)
    if elsewhere is not None:
        if not elsewhere:
            return None
        return Outcome(
            row["id"], row["recipient"], "elsewhere", row["hits"], row["archive"], elsewhere
        )
    try:
        if stopped is not None and stopped.is_set():  # stopped while the claim was waited for
            return None
        return _deliver(store, settings, row, now)
    finally:
        _unclaim(store, row["id"])


def _archive_missing(store: Store, settings: Settings, now: datetime) -> None:
    """Archive the emailed digests and alerts whose archive could not be written when they
    were made (a full or read-only disk): every digest has its archive, once there is room."""
    rows = store.read(
        "SELECT id, kind, recipient, created, subject, text, html FROM digests"
        " WHERE archive IS NULL AND recipient != '' AND status IN ('pending', 'sent', 'held')"
    )
    for row in rows:
        try:
            _write_archive(store, settings, row, from_db(row["created"]) or now)
        except NotifyError as exc:
            event(log, 30, "digest still not archived", digest=row["id"], error=str(exc))
            return  # the disk is still full: the others can wait with it


def _keep(store: Store, row: sqlite3.Row, now: datetime) -> Outcome:
    """A digest for a recipient the config names no more (someone who left, or a watchlist
    file broken for the moment): not sent, kept pending with its hits, looked at again in an
    hour. Sent if the recipient comes back; nothing is lost if the removal was a mistake."""
    error = "kept, not sent: the recipient is not in the config now"
    _set(store, row["id"], "pending", row["attempts"], error, now + timedelta(seconds=RETRY_MAX))
    event(log, 20, "digest kept", digest=row["id"], recipient=row["recipient"], error=error)
    return Outcome(row["id"], row["recipient"], "kept", row["hits"], row["archive"], error)


def _claim(store: Store, digest_id: int, now: datetime) -> str | None:
    """Mark a pending digest as being sent by this process (None), unless another live
    process is sending it (`monitor digest` beside the daemon would send it twice): then why
    not, or "" when it is not pending any more (the other process sent or held it)."""
    with store.write() as conn:
        row = conn.execute(
            "SELECT status, claimed_by, claimed_until FROM digests WHERE id = ?", (digest_id,)
        ).fetchone()
        if row is None or row["status"] != "pending":
            return ""
        holder, until = row["claimed_by"], from_db(row["claimed_until"])
        if holder not in (None, os.getpid()) and _alive(holder) and until and until > now:
            return f"being sent by another monitor process (pid {holder})"
        lease = now + timedelta(seconds=CLAIM_LEASE)
        conn.execute(
            "UPDATE digests SET claimed_by = ?, claimed_until = ? WHERE id = ?",
            (os.getpid(), to_db(lease), digest_id),
        )
    return None


def _unclaim(store: Store, digest_id: int) -> None:
    with store.write() as conn:
        conn.execute(
            "UPDATE digests SET claimed_by = NULL, claimed_until = NULL WHERE id = ?",
            (digest_id,),
        )


def _alive(pid: int) -> bool:
    """Whether a process of this id runs (a claim of a killed one is void at once)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's: alive
        return True
    return True


def _archive_again(store: Store, settings: Settings, row: sqlite3.Row, now: datetime) -> Outcome:
    """An archive-only digest whose archive failed (a full disk): write it now."""
    digest_id = row["id"]
    try:
        archive = _write_archive(store, settings, row, now)
    except NotifyError as exc:
        delay = _retry_later(store, row, now, str(exc))
        event(log, 30, "digest not archived, will retry", digest=digest_id, retry_in=delay)
        return Outcome(digest_id, ARCHIVE_ONLY, "pending", row["hits"], None, str(exc))
    return Outcome(digest_id, ARCHIVE_ONLY, "sent", row["hits"], archive)


def _write_archive(store: Store, settings: Settings, row: sqlite3.Row, when: datetime) -> str:
    """Archive a stored digest row as it was rendered, named for `when`; NotifyError when the
    folder cannot be written."""
    from monitor.digest import Rendered

    rendered = Rendered(row["subject"], row["text"], row["html"])
    name = archive_name(row["kind"], row["id"])
    return file_digest(store, settings, row["id"], rendered, when, name, row["recipient"])


def _deliver(store: Store, settings: Settings, row: sqlite3.Row, now: datetime) -> Outcome:
    from monitor.digest import Rendered
    from monitor.notify import build_message, send_message

    email = settings.email
    assert email is not None
    digest_id, recipient, archive = row["id"], row["recipient"], row["archive"]
    attempts, hits = row["attempts"] + 1, row["hits"]
    message = build_message(
        Rendered(row["subject"], row["text"], row["html"]),
        email.sender,
        [recipient],
        row["message_id"],
        from_db(row["created"]) or now,
    )
    password = os.environ.get(email.password_env) if email.username else None
    try:
        result = send_message(message, email, password)
    except SMTPTemporaryError as exc:
        delay = _retry_later(store, row, now, str(exc))
        event(
            log,
            30,
            "digest not sent, will retry",
            digest=digest_id,
            recipient=recipient,
            attempts=attempts,
            retry_in=delay,
            error=str(exc),
        )
        return Outcome(digest_id, recipient, "pending", hits, archive, str(exc))
    except SMTPPermanentError as exc:
        return _hold(store, row, attempts, str(exc))
    if recipient in result.refused:
        error = f"recipient refused: {result.refused[recipient]}"
        return _hold(store, row, attempts, error)
    with store.write() as conn:
        conn.execute(
            "UPDATE digests SET status = 'sent', sent_at = ?, attempts = ?,"
            " last_error = NULL WHERE id = ?",
            (to_db(now), attempts, digest_id),
        )
    event(log, 20, "digest sent", digest=digest_id, recipient=recipient, attempts=attempts)
    return Outcome(digest_id, recipient, "sent", hits, archive)


def _hold(store: Store, row: sqlite3.Row, attempts: int, error: str) -> Outcome:
    """A permanent refusal: keep the digest and its hits, say so loudly, do not loop."""
    digest_id, recipient = row["id"], row["recipient"]
    _set(store, digest_id, "held", attempts, error, None)
    event(
        log,
        40,
        "digest refused for good; fix [email] and run `monitor digest` to resend",
        digest=digest_id,
        recipient=recipient,
        error=error,
    )
    return Outcome(digest_id, recipient, "held", row["hits"], row["archive"], error)


def _retry_later(store: Store, row: sqlite3.Row, now: datetime, error: str) -> float:
    """Keep a digest pending and back off: 1 minute, 2, 4 ... up to an hour; returns the delay."""
    attempts = int(row["attempts"]) + 1
    delay = float(min(RETRY_FIRST * 2 ** (attempts - 1), RETRY_MAX))
    _set(store, row["id"], "pending", attempts, error, now + timedelta(seconds=delay))
    return delay


def _set(
    store: Store,
    digest_id: int,
    status: str,
    attempts: int,
    error: str,
    next_attempt: datetime | None,
) -> None:
    with store.write() as conn:
        conn.execute(
            "UPDATE digests SET status = ?, attempts = ?, last_error = ?,"
            " next_attempt = ? WHERE id = ?",
            (status, attempts, error, to_db(next_attempt), digest_id),
        )


def release_held(store: Store) -> int:
    """Put held digests back in the queue (after the config changed, or on request)."""
    with store.write() as conn:
        cur = conn.execute(
            "UPDATE digests SET status = 'pending', next_attempt = NULL WHERE status = 'held'"
        )
        return cur.rowcount
