"""SQLite: the connection, migrations, the daemon lock, feeds and articles.

One writer: every write runs in `BEGIN IMMEDIATE` (Python's busy timeout does not cover a read
transaction upgraded to a write), WAL lets readers go on meanwhile, and no network I/O ever
happens inside a transaction. sqlite3 errors become StoreError, with the cause chained.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from monitor.errors import AlreadyRunning, StoreError
from monitor.models import Article, Feed
from monitor.schema import MIGRATIONS

BUSY_TIMEOUT_MS = 30_000
CACHE_SIZE = -65536  # PRAGMA cache_size: negative means KiB, so 64 MB


def to_db(when: datetime | None) -> str | None:
    """An aware datetime as the UTC text the database sorts by."""
    if when is None:
        return None
    return when.astimezone(UTC).isoformat(timespec="microseconds")


def from_db(text: str | None) -> datetime | None:
    """Database text back to an aware UTC datetime."""
    return None if text is None else datetime.fromisoformat(text)


@dataclass(frozen=True, slots=True)
class FeedState:
    """A feed as the database knows it: where to poll it, and how it has been doing."""

    id: int
    name: str
    config_url: str
    url: str
    etag: str | None
    last_modified: str | None
    last_poll: datetime | None
    last_success: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    failing_since: datetime | None
    failures: int
    next_poll: datetime | None
    gone: bool
    last_new_article: datetime | None


_FEED_TIMES = (
    "last_poll",
    "last_success",
    "last_error_at",
    "failing_since",
    "next_poll",
    "last_new_article",
)


def _feed_state(row: sqlite3.Row) -> FeedState:
    values = {k: row[k] for k in row.keys()}  # noqa: SIM118 - sqlite3.Row is not a dict
    for key in _FEED_TIMES:
        values[key] = from_db(values[key])
    values["gone"] = bool(values["gone"])
    return FeedState(**values)


def row_to_article(row: sqlite3.Row) -> Article:
    """An `articles` row joined with its feed's name (column `feed`) as an Article."""
    first_seen = from_db(row["first_seen"])
    assert first_seen is not None
    return Article(
        id=row["id"],
        url=row["url"] or "",
        guid=row["guid"],
        feed=row["feed"],
        title=row["title"],
        summary=row["summary"],
        text=row["text"],
        full_text=bool(row["full_text"]),
        published=from_db(row["published"]),
        first_seen=first_seen,
        story=row["story"],
        extract_error=row["extract_error"],
        source=row["source"],
    )


ARTICLE_COLUMNS = "a.*, f.name AS feed"
ARTICLE_FROM = "articles a JOIN feeds f ON f.id = a.feed_id"


class Store:
    """The database of one monitor: open with Store.open(path), close when done."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path
        self._lock_file: IO[str] | None = None

    @classmethod
    def open(cls, path: Path) -> Store:
        """Open (creating if needed) and migrate the database at path."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                path,
                isolation_level=None,
                timeout=BUSY_TIMEOUT_MS / 1000,
                check_same_thread=False,
            )
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            # 64 MB of page cache: story candidates and hit listings read scattered pages
            conn.execute(f"PRAGMA cache_size = {CACHE_SIZE}")
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"cannot open database {path}: {exc}") from exc
        store = cls(conn, path)
        store.migrate()
        return store

    def created(self, now: datetime | None = None) -> datetime:
        """When this database was first made (the digest schedule never reaches before it);
        the first call records `now` (default: the system clock)."""
        rows = self.read("SELECT value FROM meta WHERE key = 'created'")
        if rows:
            return datetime.fromisoformat(rows[0][0])
        with self.write() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO meta VALUES ('created', ?)",
                (to_db(now or datetime.now(UTC)),),
            )
        return self.created()

    def release_memory(self) -> None:
        """Give back the page cache between polls (PRAGMA shrink_memory): a daemon idles for
        most of its life, and pages read again next cycle come from the OS's file cache."""
        self.conn.execute("PRAGMA shrink_memory")

    def close(self) -> None:
        self.unlock()
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transactions ------------------------------------------------------------------------

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: BEGIN IMMEDIATE, COMMIT on success, ROLLBACK on any error."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError(f"database {self.path}: {exc}") from exc
        try:
            yield self.conn
            self.conn.execute("COMMIT")
        except BaseException as exc:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"database {self.path}: {exc}") from exc
            raise

    def read(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        """Run a query outside any write transaction."""
        try:
            return self.conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"database {self.path}: {exc}") from exc

    def migrate(self) -> None:
        """Apply the migrations this file has not seen yet, each in its own transaction."""
        version = self.read("PRAGMA user_version")[0][0]
        if version > len(MIGRATIONS):
            raise StoreError(
                f"database {self.path} is schema version {version}, newer than this monitor "
                f"understands ({len(MIGRATIONS)}); upgrade monitor"
            )
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            with self.write() as conn:
                for statement in _statements(script):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number}")

    # -- the daemon lock ----------------------------------------------------------------------

    def lock(self) -> None:
        """Hold the database's lock file for this process, or say who holds it."""
        # beside the file itself: a daemon reaching it through a symbolic link (or another
        # spelling of its path) must find the same lock
        real = self.path.resolve()
        lock_path = real.with_name(real.name + ".lock")
        handle = open(lock_path, "a+", encoding="utf-8")  # noqa: SIM115 - held while running
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise AlreadyRunning(
                f"another monitor (pid {holder}) is running on {self.path}; "
                f"stop it first (lock file {lock_path})"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._lock_file = handle

    def unlock(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    # -- feeds ---------------------------------------------------------------------------------

    def sync_feeds(self, feeds: Sequence[Feed]) -> None:
        """Make the feeds table follow the config: add new feeds, reset edited URLs.

        A new or edited feed has no next poll time: it is due at once. A feed whose interval
        was shortened is due one new interval after its last success, not at the time the old
        interval set (a day away, for a feed moved from 1d to 10m).
        """
        with self.write() as conn:
            for feed in feeds:
                row = conn.execute(
                    "SELECT config_url, next_poll, last_success, failures, gone FROM feeds"
                    " WHERE name = ?",
                    (feed.name,),
                ).fetchone()
                if row is not None and row["config_url"] == feed.url:
                    _shorten_wait(conn, feed, row)
                if row is None:
                    conn.execute(
                        "INSERT INTO feeds (name, config_url, url) VALUES (?, ?, ?)",
                        (feed.name, feed.url, feed.url),
                    )
                elif row["config_url"] != feed.url:
                    conn.execute(
                        "UPDATE feeds SET config_url = ?, url = ?, etag = NULL,"
                        " last_modified = NULL, gone = 0, failures = 0, failing_since = NULL,"
                        " next_poll = NULL WHERE name = ?",
                        (feed.url, feed.url, feed.name),
                    )

    def feed_states(self, names: Sequence[str] | None = None) -> list[FeedState]:
        """Every feed's state, or those named, in name order."""
        rows = self.read("SELECT * FROM feeds ORDER BY name")
        states = [_feed_state(r) for r in rows]
        if names is not None:
            wanted = set(names)
            states = [s for s in states if s.name in wanted]
        return states

    def articles(self, where: str = "1", params: Sequence[Any] = ()) -> Iterator[Article]:
        """Stored articles matching an SQL condition on `a` (articles) and `f` (feeds)."""
        sql = f"SELECT {ARTICLE_COLUMNS} FROM {ARTICLE_FROM} WHERE {where}"
        for row in self.read(sql, params):
            yield row_to_article(row)


def _shorten_wait(conn: sqlite3.Connection, feed: Feed, row: sqlite3.Row) -> None:
    """Bring a healthy feed's next poll forward to its last success plus its interval."""
    planned, last = from_db(row["next_poll"]), from_db(row["last_success"])
    if planned is None or last is None or row["failures"] or row["gone"]:
        return  # backing off, or answered 410: its own schedule stands
    due = last + timedelta(seconds=feed.interval)
    if due < planned:
        conn.execute("UPDATE feeds SET next_poll = ? WHERE name = ?", (to_db(due), feed.name))


def _statements(script: str) -> list[str]:
    """Split a migration script into statements: comments first, then on ';'.

    executescript() would COMMIT first and run outside our transaction, so we split ourselves;
    no literal in our scripts holds '--' or ';'.
    """
    code = "\n".join(line.split("--", 1)[0] for line in script.splitlines())
    return [s.strip() for s in code.split(";") if s.strip()]
