"""The outbox: digests and alerts are made with their hits in one transaction, then sent.

States: pending -> sent; pending -> pending (temporary failure: retried with back-off, the same
Message-ID and the same rendered text); pending -> held (permanent failure such as a refused
login: reported loudly and not retried until the config changes or `monitor digest` is run).
A daily digest with nothing in it is recorded as skipped, so the day counts as done.
A crash at any point loses no hit: hits are only ever marked by a committed digest row, and a
pending digest is resent after restart with its Message-ID (SMTP cannot promise exactly once).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from monitor.config import Settings
from monitor.errors import NotifyError
from monitor.ledger import owed_hits
from monitor.logs import event, get_logger
from monitor.models import Hit
from monitor.report import alert_data, digest_data
from monitor.store import Store, to_db

if TYPE_CHECKING:
    from monitor.digest import Rendered

log = get_logger("digest")
ARCHIVE_ONLY = ""  # the recipient of digests when no [email] is configured


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
        "SELECT day FROM digests WHERE kind = 'daily' AND recipient = ? COLLATE NOCASE",
        (recipient,),
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

    hits = owed_hits(
        store, route.recipient, route.watchlists, now, immediate=False, record=not dry_run
    )
    if not hits and not settings.digest.send_empty:
        if kind == "daily" and not dry_run:  # the day is done: a later start must not owe it
            _insert_digest(store, kind, route.recipient, day, now, None, [], "skipped", "")
        return Outcome(None, route.recipient, "skipped", 0, None)
    data = digest_data(store, settings, route, hits, now)
    rendered = render_digest(data, settings.digest.templates)
    _log_template_errors(rendered)
    if dry_run:
        paths = _archive(settings, rendered, now, f"{label or kind}-dry-run", route.recipient)
        return Outcome(None, route.recipient, "dry-run", len(hits), str(paths[0]))
    digest_id = _insert_digest(
        store, kind, route.recipient, day, now, rendered, hits, "pending", _sender(settings)
    )
    if digest_id is None:  # another process made today's daily digest first
        return Outcome(None, route.recipient, "skipped", 0, None)
    name = label or archive_name(kind, digest_id)
    archive = _file_soon(store, settings, digest_id, rendered, now, name, route.recipient)
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
            hits = owed_hits(store, route.recipient, [name], now, immediate=True)
            if not hits:
                continue
            rendered = render_alert(
                alert_data(settings, name, route.recipient, hits, now), settings.digest.templates
            )
            _log_template_errors(rendered)
            day = now.astimezone(settings.monitor.timezone).date()
            digest_id = _insert_digest(
                store,
                "alert",
                route.recipient,
                day,
                now,
                rendered,
                hits,
                "pending",
                _sender(settings),
            )
            assert digest_id is not None  # only a second daily digest of a day is refused
            name = archive_name("alert", digest_id)
            archive = _file_soon(store, settings, digest_id, rendered, now, name, route.recipient)
            out.append(Outcome(digest_id, route.recipient, "pending", len(hits), archive))
    return out


def _log_template_errors(rendered: Rendered) -> None:
    """Tell the operator what failed in the user's templates (the reader's copy says so too,
    but only the reader sees it)."""
    for error in rendered.template_errors:
        event(log, 30, f"template error: {error}")


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
                "SELECT 1 FROM digests WHERE kind = 'daily' AND recipient = ? COLLATE NOCASE"
                " AND day = ?",
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


def file_digest(
    store: Store,
    settings: Settings,
    digest_id: int,
    rendered: Rendered,
    now: datetime,
    name: str,
    recipient: str,
) -> str:
    """Archive a queued digest and record where; one with no recipient is then done.

    Raises NotifyError when the archive cannot be written (a full disk); see _file_soon.
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


def _file_soon(
    store: Store,
    settings: Settings,
    digest_id: int,
    rendered: Rendered,
    now: datetime,
    name: str,
    recipient: str,
) -> str | None:
    """file_digest, except that an emailed digest or alert whose archive cannot be written
    (a full disk) is not held back for it: None, and deliver_pending archives it once there
    is room. An archive-only digest raises: its archive is its delivery."""
    try:
        return file_digest(store, settings, digest_id, rendered, now, name, recipient)
    except NotifyError as exc:
        if recipient == ARCHIVE_ONLY:
            raise
        event(log, 30, "digest not archived yet; sending it all the same", error=str(exc))
        return None


def _sender(settings: Settings) -> str:
    return settings.email.sender if settings.email else ""


def archive_name(kind: str, digest_id: int | None) -> str:
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
