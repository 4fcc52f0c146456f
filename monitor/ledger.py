"""Hits as stored: listing them, and which are still owed to which recipient."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from monitor.logs import event, get_logger
from monitor.models import Hit, Snippet
from monitor.store import Store, from_db, row_to_article, to_db

if TYPE_CHECKING:
    from monitor.watchlist import Watchlist

log = get_logger("store")

_HIT_SELECT = """
    SELECT a.*, COALESCE(hf.name, f.name) AS feed,
           h.id AS hit_id, h.watchlist, h.matched, h.snippet, h.marks,
           h.first_seen AS hit_first_seen,
           (SELECT MIN(dh.digest_id) FROM digest_hits dh JOIN digests d ON d.id = dh.digest_id
             WHERE dh.hit_id = h.id AND d.status = 'sent') AS digest,
           (SELECT json_group_array(DISTINCT cf.name) FROM article_guids g
             JOIN feeds cf ON cf.id = g.feed_id WHERE g.article_id = a.id) AS carriers
    FROM hits h JOIN articles a ON a.id = h.article_id JOIN feeds f ON f.id = a.feed_id
    LEFT JOIN feeds hf ON hf.id = h.feed_id
"""


def row_to_hit(row: sqlite3.Row) -> Hit:
    """A row of _HIT_SELECT as a Hit."""
    article = row_to_article(row)
    first_seen = from_db(row["hit_first_seen"])
    assert first_seen is not None
    marks = tuple((int(s), int(e)) for s, e in json.loads(row["marks"]))
    return Hit(
        id=row["hit_id"],
        watchlist=row["watchlist"],
        article=article,
        matched=tuple(json.loads(row["matched"])),
        snippet=Snippet(row["snippet"], marks),
        first_seen=first_seen,
        digest=row["digest"],
        # every feed that carried the article (the digest leaves out the one it names)
        outlets=tuple(sorted(json.loads(row["carriers"]))),
    )


def list_hits(
    store: Store,
    *,
    watchlist: str | None = None,
    since: datetime | None = None,
    ids: Sequence[int] | None = None,
) -> list[Hit]:
    """Stored hits, newest first: by when they were found, and the hits one poll found (a
    feed lists its newest entry first, so they were stored oldest last) by publication."""
    where, params = _filters(watchlist, since, ids)
    newest = "h.first_seen DESC, COALESCE(a.published, a.first_seen) DESC, h.id DESC"
    sql = f"{_HIT_SELECT} WHERE {where} ORDER BY {newest}"
    return [row_to_hit(r) for r in store.read(sql, params)]


def follow_renames(store: Store, watchlists: Sequence[Watchlist]) -> int:
    """Rename the hits of each watchlist whose file now gives it another name; how many.

    Hits are kept under a watchlist's name, so an edit of `name` would leave its hits behind:
    the pending ones never in a digest (owed hits are looked up by the names in use), and
    rematch recording every one again under the new name. The old name is followed only
    while no watchlist in use has it; a hit the new name already has for the same article
    keeps the old name. A file renamed is a new file: its hits are not followed.
    """
    # read first: nearly always every file has the name it had, and then nothing is written
    # (every command that opens the store with watchlists comes through here)
    known = {row[0]: row[1] for row in store.read("SELECT file, name FROM watchlist_files")}
    changed = [w for w in watchlists if known.get(w.path.name) != w.name]
    if not changed:
        return 0
    in_use = {w.name for w in watchlists}
    renamed = 0
    with store.write() as conn:
        for w in changed:  # each looked up again: another process may have moved it meanwhile
            row = conn.execute(
                "SELECT name FROM watchlist_files WHERE file = ?", (w.path.name,)
            ).fetchone()
            if row is not None and row[0] != w.name and row[0] not in in_use:
                cursor = conn.execute(
                    "UPDATE OR IGNORE hits SET watchlist = ? WHERE watchlist = ?", (w.name, row[0])
                )
                renamed += cursor.rowcount
                event(log, 20, "watchlist renamed", old=row[0], new=w.name, hits=cursor.rowcount)
            conn.execute(
                "INSERT INTO watchlist_files (file, name) VALUES (?, ?)"
                " ON CONFLICT (file) DO UPDATE SET name = excluded.name",
                (w.path.name, w.name),
            )
    return renamed


def last_names(store: Store, w: Watchlist) -> list[str]:
    """The name the watchlist's file had when last loaded, if that is known and another."""
    rows = store.read("SELECT name FROM watchlist_files WHERE file = ?", (w.path.name,))
    return [row[0] for row in rows if row[0] != w.name]


def owed_hits(
    store: Store,
    recipient: str,
    watchlists: Sequence[str],
    now: datetime,
    *,
    immediate: bool,
    record: bool = True,
) -> list[Hit]:
    """Hits of these watchlists that no digest has carried to this recipient yet, since the
    recipient started (recipient_since; record=False for a preview, which keeps no trace)."""
    if not watchlists:
        return []
    since = recipient_since(store, recipient, now, record=record)
    marks = ",".join("?" * len(watchlists))
    sql = (
        f"{_HIT_SELECT} WHERE h.watchlist IN ({marks}) AND h.immediate = ?"
        " AND NOT EXISTS (SELECT 1 FROM digest_hits dh"  # Desk@ and desk@: one mailbox
        "                 WHERE dh.hit_id = h.id AND dh.recipient = ? COLLATE NOCASE)"
        " AND (? IS NULL OR h.first_seen > ?)"
        " ORDER BY h.first_seen, h.id"
    )
    params = [*watchlists, int(immediate), recipient, since, since]
    return [row_to_hit(r) for r in store.read(sql, params)]


def recipient_since(
    store: Store, recipient: str, now: datetime, *, record: bool = True
) -> str | None:
    """When a recipient started (as stored), None for no bound: a new recipient starts at the
    last digest made for anyone before now, so the first digest of a colleague added to
    [email].to holds what the others' next one does, not every hit ever stored; on a database
    with no digest yet, from the beginning. The digests of this run (made at `now`) do not
    count: two recipients new together get the same. Recorded on first use unless record is
    False."""
    rows = store.read("SELECT since FROM recipients WHERE address = ?", (recipient,))
    if rows:
        return rows[0][0]  # type: ignore[no-any-return]
    [(last,)] = store.read(
        "SELECT MAX(created) FROM digests WHERE kind != 'alert' AND created < ?", (to_db(now),)
    )
    if record:
        with store.write() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO recipients (address, since) VALUES (?, ?)", (recipient, last)
            )
        return recipient_since(store, recipient, now, record=False)  # another process's, if first
    return last  # type: ignore[no-any-return]


def hit_times(store: Store, watchlist: str, since: datetime) -> list[datetime]:
    """first_seen times of a watchlist's hits since a moment (for the per-day chart)."""
    rows = store.read(
        "SELECT first_seen FROM hits WHERE watchlist = ? AND first_seen >= ?",
        (watchlist, to_db(since)),
    )
    return [t for r in rows if (t := from_db(r[0])) is not None]


def _filters(
    watchlist: str | None, since: datetime | None, ids: Sequence[int] | None
) -> tuple[str, list[Any]]:
    clauses: list[str] = ["1"]
    params: list[Any] = []
    if watchlist is not None:
        clauses.append("h.watchlist = ?")
        params.append(watchlist)
    if since is not None:
        clauses.append("h.first_seen >= ?")
        params.append(to_db(since))
    if ids is not None:
        clauses.append(f"h.id IN ({','.join('?' * len(ids))})" if ids else "0")
        params.extend(ids)
    return " AND ".join(clauses), params
