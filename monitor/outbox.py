"""The outbox: digests and alerts are made with their hits in one transaction, then sent.

States: pending -> sent; pending -> pending (temporary failure: retried with back-off, the same
Message-ID and the same rendered text); pending -> held (permanent failure such as a refused
login: reported loudly and not retried until the config changes or `monitor digest` is run).
A daily digest with nothing in it is recorded as skipped, so the day counts as done.
A crash at any point loses no hit: hits are only ever marked by a committed digest row, and a
pending digest is resent after restart with its Message-ID (SMTP cannot promise exactly once).
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from monitor.config import Settings
from monitor.errors import NotifyError, SMTPPermanentError, SMTPTemporaryError
from monitor.ledger import owed_hits
from monitor.logs import event, get_logger
from monitor.models import Hit
from monitor.report import alert_data, digest_data
from monitor.store import Store, from_db, to_db

if TYPE_CHECKING:
    import threading

    from monitor.digest import Rendered

log = get_logger("digest")
ARCHIVE_ONLY = ""  # the recipient of digests when no [email] is configured
RETRY_FIRST = 60.0
RETRY_MAX = 3600.0
# how long a claim on a digest being sent holds if its process neither finishes nor dies:
# past any one SMTP exchange (notify.SESSION_DEADLINE)
CLAIM_LEASE = 600.0


@dataclass(frozen=True, slots=True)
class Route:
    """Who receives which watchlists."""

    recipient: str
    watchlists: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one digest or alert."""

    digest_id: int | None
    recipient: str
    status: str  # pending | sent | held | skipped | dry-run
    hits: int
    archive: str | None
    error: str | None = None


def plan_routes(settings: Settings, watchlists: Sequence[tuple[str, Sequence[str]]]) -> list[Route]:
    """Recipients and their watchlists: a watchlist's own recipients, else [email].to."""
    default = settings.email.to if settings.email else (ARCHIVE_ONLY,)
    by_recipient: dict[str, list[str]] = {}
    spelled: dict[str, str] = {}  # Desk@Example.org and desk@example.org are one mailbox
    for name, recipients in watchlists:
        targets = (recipients or default) if settings.email else (ARCHIVE_ONLY,)
        for r in targets:
            r = spelled.setdefault(r.casefold(), r)
            if name not in by_recipient.setdefault(r, []):
                by_recipient[r].append(name)
    return [Route(r, tuple(names)) for r, names in sorted(by_recipient.items())]


def daily_days(store: Store, recipient: str) -> set[date]:
    """Local days that already have a daily digest (sent, pending, held or skipped)."""
    rows = store.read(
        "SELECT day FROM digests WHERE kind = 'daily' AND recipient = ?", (recipient,)
    )
    return {date.fromisoformat(r[0]) for r in rows}


def make_digest(
    store: Store,
    settings: Settings,
    route: Route,
    kind: str,
    day: date,
    now: datetime,
    *,
    dry_run: bool = False,
    label: str | None = None,
) -> Outcome:
    """Render the hits owed to a recipient, archive the digest and queue it in one go.

    `label` names the archived files (default: the kind, and the id of any but a daily
    digest, since those can come in the same minute).
    """
    from monitor.digest import render_digest

    hits = owed_hits(store, route.recipient, route.watchlists, immediate=False)
    if not hits and not settings.digest.send_empty:
        if kind == "daily" and not dry_run:  # the day is done: a later start must not owe it
            _insert_digest(store, kind, route.recipient, day, now, None, [], "skipped", "")
        return Outcome(None, route.recipient, "skipped", 0, None)
    data = digest_data(store, settings, route, hits, now)
    rendered = render_digest(data, settings.digest.templates)
    if dry_run:
        paths = _archive(settings, rendered, now, f"{label or kind}-dry-run", route.recipient)
        return Outcome(None, route.recipient, "dry-run", len(hits), str(paths[0]))
    sender = settings.email.sender if settings.email else ""
    digest_id = _insert_digest(
        store, kind, route.recipient, day, now, rendered, hits, "pending", sender
    )
    if digest_id is None:  # another process made today's daily digest first
        return Outcome(None, route.recipient, "skipped", 0, None)
    name = label or _archive_name(kind, digest_id)
    try:
        archive: str | None = _file(
            store, settings, digest_id, rendered, now, name, route.recipient
        )
    except NotifyError as exc:
        if route.recipient == ARCHIVE_ONLY:
            raise  # the archive is its delivery: pending until written (deliver_pending)
        # the email need not wait for the disk: it goes out, and is archived once there is room
        event(log, 30, "digest not archived yet; sending it all the same", error=str(exc))
        archive = None
    status = "sent" if route.recipient == ARCHIVE_ONLY else "pending"
    return Outcome(digest_id, route.recipient, status, len(hits), archive)


def make_alerts(
    store: Store, settings: Settings, routes: Sequence[Route], now: datetime
) -> list[Outcome]:
    """Queue one alert per recipient and immediate watchlist with hits owed."""
    from monitor.digest import render_alert

    out = []
    for route in routes:
        for name in route.watchlists:
            hits = owed_hits(store, route.recipient, [name], immediate=True)
            if not hits:
                continue
            rendered = render_alert(
                alert_data(settings, name, route.recipient, hits, now), settings.digest.templates
            )
            day = now.astimezone(settings.monitor.timezone).date()
            sender = settings.email.sender if settings.email else ""
            digest_id = _insert_digest(
                store, "alert", route.recipient, day, now, rendered, hits, "pending", sender
            )
            assert digest_id is not None  # only a second daily digest of a day is refused
            archive = _file(
                store,
                settings,
                digest_id,
                rendered,
                now,
                _archive_name("alert", digest_id),
                route.recipient,
            )
            out.append(Outcome(digest_id, route.recipient, "pending", len(hits), archive))
    return out


def _insert_digest(
    store: Store,
    kind: str,
    recipient: str,
    day: date,
    now: datetime,
    rendered: Rendered | None,
    hits: Sequence[Hit],
    status: str,
    sender: str,
) -> int | None:
    """The outbox row and its hits, in one transaction; None if today's daily exists."""
    subject, text, html = (
        (rendered.subject, rendered.text, rendered.html) if rendered else ("",) * 3
    )
    message_id = _message_id(kind, day, recipient, sender)
    with store.write() as conn:
        if (
            kind == "daily"
            and conn.execute(
                "SELECT 1 FROM digests WHERE kind = 'daily' AND recipient = ? AND day = ?",
                (recipient, day.isoformat()),
            ).fetchone()
        ):
            return None
        cur = conn.execute(
            "INSERT INTO digests (kind, recipient, day, message_id, created, status, subject,"
            " text, html, sent_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                kind,
                recipient,
                day.isoformat(),
                message_id,
                to_db(now),
                status,
                subject,
                text,
                html,
                to_db(now) if status == "sent" else None,
            ),
        )
        digest_id = int(cur.lastrowid or 0)
        conn.executemany(
            "INSERT INTO digest_hits (digest_id, hit_id, recipient) VALUES (?, ?, ?)",
            [(digest_id, h.id, recipient) for h in hits],
        )
    return digest_id


def _message_id(kind: str, day: date, recipient: str, sender: str) -> str:
    """A new Message-ID in the sender's domain (RFC 5322: the domain of the one who made it;
    a recipient's would claim their mail system made it)."""
    from monitor.notify import make_message_id

    key = f"{kind}-{day.isoformat()}-{recipient}-{uuid.uuid4().hex}"
    domain = sender.rsplit("@", 1)[-1] if "@" in sender else "monitor.invalid"
    return make_message_id(key, domain)


def _file(
    store: Store,
    settings: Settings,
    digest_id: int,
    rendered: Rendered,
    now: datetime,
    name: str,
    recipient: str,
) -> str:
    """Archive a queued digest and record where; one with no recipient is then done.

    If the archive cannot be written (a full disk), the digest stays pending with its hits:
    deliver_pending writes the archive of an archive-only digest again later.
    """
    paths = _archive(settings, rendered, now, name, recipient)
    with store.write() as conn:
        conn.execute("UPDATE digests SET archive = ? WHERE id = ?", (str(paths[0]), digest_id))
        if recipient == ARCHIVE_ONLY:
            conn.execute(
                "UPDATE digests SET status = 'sent', sent_at = ? WHERE id = ?",
                (to_db(now), digest_id),
            )
    return str(paths[0])


def _archive_name(kind: str, digest_id: int | None) -> str:
    # one daily digest a day per recipient; alerts and manual digests can share a minute
    return kind if kind == "daily" else f"{kind}-{digest_id}"


def _archive(
    settings: Settings, rendered: Rendered, now: datetime, name: str, recipient: str
) -> tuple[Path, Path]:
    """Archive files named by local time (as the digest speaks), name and recipient."""
    from monitor.notify import archive_digest

    suffix = "" if recipient == ARCHIVE_ONLY else "-" + recipient.replace("@", "-at-")
    local = now.astimezone(settings.monitor.timezone)
    return archive_digest(settings.monitor.digests, rendered, local, f"{name}{suffix}")


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
    `recipients`, a digest for someone no longer among them is not sent (someone who left).
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
        elif current is not None and row["recipient"].casefold() not in current:
            out.append(_drop(store, row))
        elif settings.email is not None and _claim(store, row["id"], now):
            try:
                out.append(_deliver(store, settings, row, now))
            finally:
                _unclaim(store, row["id"])
    return out


def _archive_missing(store: Store, settings: Settings, now: datetime) -> None:
    """Archive the emailed digests and alerts whose archive could not be written when they
    were made (a full or read-only disk): every digest has its archive, once there is room."""
    from monitor.digest import Rendered

    rows = store.read(
        "SELECT id, kind, recipient, created, subject, text, html FROM digests"
        " WHERE archive IS NULL AND recipient != '' AND status IN ('pending', 'sent', 'held')"
    )
    for row in rows:
        rendered = Rendered(row["subject"], row["text"], row["html"])
        made = from_db(row["created"]) or now
        name = _archive_name(row["kind"], row["id"])
        try:
            _file(store, settings, row["id"], rendered, made, name, row["recipient"])
        except NotifyError as exc:
            event(log, 30, "digest still not archived", digest=row["id"], error=str(exc))
            return  # the disk is still full: the others can wait with it


def _drop(store: Store, row: sqlite3.Row) -> Outcome:
    """A digest for a recipient the config no longer names: never sent."""
    error = "not sent: the recipient was removed from the config"
    _set(store, row["id"], "skipped", row["attempts"], error, None)
    event(log, 30, "digest dropped", digest=row["id"], recipient=row["recipient"], error=error)
    return Outcome(row["id"], row["recipient"], "skipped", row["hits"], row["archive"], error)


def _claim(store: Store, digest_id: int, now: datetime) -> bool:
    """Mark a pending digest as being sent by this process, unless another live process is
    sending it (`monitor digest` run beside the daemon would send it twice)."""
    with store.write() as conn:
        row = conn.execute(
            "SELECT status, claimed_by, claimed_until FROM digests WHERE id = ?", (digest_id,)
        ).fetchone()
        if row is None or row["status"] != "pending":
            return False  # sent or held meanwhile, by the other process
        holder, until = row["claimed_by"], from_db(row["claimed_until"])
        if holder not in (None, os.getpid()) and _alive(holder) and until and until > now:
            return False
        lease = now + timedelta(seconds=CLAIM_LEASE)
        conn.execute(
            "UPDATE digests SET claimed_by = ?, claimed_until = ? WHERE id = ?",
            (os.getpid(), to_db(lease), digest_id),
        )
    return True


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
    from monitor.digest import Rendered

    digest_id = row["id"]
    rendered = Rendered(row["subject"], row["text"], row["html"])
    name = _archive_name(row["kind"], digest_id)
    try:
        archive = _file(store, settings, digest_id, rendered, now, name, ARCHIVE_ONLY)
    except NotifyError as exc:
        delay = _retry_later(store, row, now, str(exc))
        event(log, 30, "digest not archived, will retry", digest=digest_id, retry_in=delay)
        return Outcome(digest_id, ARCHIVE_ONLY, "pending", row["hits"], None, str(exc))
    return Outcome(digest_id, ARCHIVE_ONLY, "sent", row["hits"], archive)


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
