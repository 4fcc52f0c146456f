"""Writing one feed's poll into the database, each outcome in one transaction.

A feed's validators (ETag, Last-Modified) are stored in the same transaction as the articles
they describe, so a crash between the two can never make the next poll skip entries.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from monitor.models import Article, Extracted, Fetched, Item, MatchResult, TextFeatures
from monitor.policy import next_poll_after_failure, next_poll_after_success
from monitor.store import FeedState, Store, from_db, to_db

# the poll log feeds the digest's "what may be missing" (failed polls since the last digest)
POLL_KEEP = timedelta(days=30)
POLL_KEEP_UNCHANGED = timedelta(days=2)
# A page that failed in a way that passes (a timeout, a 503) is fetched again after each of
# these delays in turn, from the poll of a feed that carries it; then its summary stands.
PAGE_RETRY_DELAYS = (timedelta(minutes=30), timedelta(hours=2), timedelta(hours=8))
PAGE_RETRIES_PER_CYCLE = 100


class StoryAssigner(Protocol):
    """Gives each new article its story (monitor.storyindex.StoryIndex)."""

    def assign(
        self,
        article_id: int,
        title: str,
        text: str,
        published: datetime,
        part: TextFeatures | None = None,
        *,
        again: bool = False,
    ) -> int: ...


@dataclass(frozen=True, slots=True)
class NewArticle:
    """An entry not seen before, with what its page gave and what it matched."""

    item: Item
    extracted: Extracted | None
    error: str | None  # why the page could not be used; None when extracted
    matches: tuple[MatchResult, ...]
    immediate: frozenset[str] = frozenset()  # watchlists that alert immediately
    retry: bool = False  # the page failed in a way that passes: fetch it again later


@dataclass(frozen=True, slots=True)
class Known:
    """An entry of a feed stored before: what is left to do for it, if anything."""

    article_id: int | None = None  # the article to match again for this feed; None: nothing
    revised: bool = False  # this feed's own article, whose title or summary has changed


@dataclass(frozen=True, slots=True)
class KnownEntry:
    """An entry already stored, matched again for this feed: an article stored first from
    another feed, or (revised) this feed's own article whose title or summary has changed
    since, matched with the new ones and its stored text; its page is not fetched again."""

    item: Item
    article_id: int
    matches: tuple[MatchResult, ...]
    immediate: frozenset[str] = frozenset()
    revised: bool = False


def content_key(item: Item) -> str:
    """A hash of what the entry says, to catch a CMS that changes every GUID and URL."""
    text = f"{item.title.strip().lower()}\n{item.summary.strip().lower()}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def says_enough(item: Item) -> bool:
    """Whether an entry says enough to be known by its words alone: a title and a summary.
    A headline alone recurs ("Man charged", "Appeal for witnesses") and a news sitemap's entry
    may say nothing, so such an entry at a new address is a new article."""
    return bool(item.title.strip() and item.summary.strip())


def known_items(store: Store, feed_id: int, items: Sequence[Item]) -> dict[int, Known]:
    """The entries seen before, by their index in items.

    An item is known by its canonical URL, by this feed's GUID for it, or by identical content
    in this feed (when it says_enough). It is to be matched again (Known.article_id set) when
    it is stored from another feed that this feed has not linked yet (for this feed's
    watchlists), or when it is this feed's own article and its title or summary has changed:
    a headline rewritten as a story develops may name what the first one did not. An article
    is revised once, by its first entry, and not while an entry of the feed still says what
    was stored (two entries with one GUID and different words would otherwise take turns).
    """
    keys = [content_key(item) for item in items]
    said = set(keys)
    known: dict[int, Known] = {}
    revised: set[int] = set()
    for index, (item, key) in enumerate(zip(items, keys, strict=True)):
        stored = None
        if item.guid is not None:
            stored = store.read(
                "SELECT a.id, a.feed_id, a.content_key FROM article_guids g"
                " JOIN articles a ON a.id = g.article_id WHERE g.feed_id = ? AND g.guid = ?",
                (feed_id, item.guid),
            )
        if not stored and item.url:
            stored = store.read(
                "SELECT id, feed_id, content_key FROM articles WHERE url = ?", (item.url,)
            )
            if stored and stored[0]["feed_id"] != feed_id:
                known[index] = Known(stored[0]["id"])
                continue
        if stored:
            row = stored[0]
            own = row["feed_id"] == feed_id and row["id"] not in revised
            if own and row["content_key"] is not None and row["content_key"] not in said:
                revised.add(row["id"])
                known[index] = Known(row["id"], revised=True)
            else:
                known[index] = Known()
            continue
        if says_enough(item) and store.read(
            "SELECT 1 FROM articles WHERE feed_id = ? AND content_key = ?", (feed_id, key)
        ):
            known[index] = Known()
    return known


def record_failure(
    store: Store,
    feed: FeedState,
    interval: float,
    error: str,
    now: datetime,
    retry_after: float | None = None,
    gone: bool = False,
    duration: float = 0.0,
) -> None:
    """A poll that failed: count it, back off, keep the feed."""
    failures = feed.failures + 1
    due = next_poll_after_failure(now, interval, failures, retry_after, gone)
    with store.write() as conn:
        conn.execute(
            "UPDATE feeds SET last_poll = ?, last_error = ?, last_error_at = ?, failures = ?,"
            " failing_since = COALESCE(failing_since, ?), next_poll = ?, gone = ? WHERE id = ?",
            (to_db(now), error, to_db(now), failures, to_db(now), to_db(due), int(gone), feed.id),
        )
        _log_poll(conn, feed.id, now, "failed", error, 0, 0, duration)


@dataclass(frozen=True, slots=True)
class Unchanged:
    """A feed that answered 304, and how long its poll took."""

    feed: FeedState
    interval: float
    duration: float = 0.0


def record_not_modified(store: Store, answers: Sequence[Unchanged], now: datetime) -> None:
    """304s: the feeds are healthy and nothing was parsed. One transaction for all of them,
    as a steady-state poll is a thousand of these and little else."""
    with store.write() as conn:
        for answer in answers:
            _mark_success(conn, answer.feed.id, answer.interval, now)
            _log_poll(conn, answer.feed.id, now, "not_modified", None, 0, 0, answer.duration)


def record_items(
    store: Store,
    feed: FeedState,
    interval: float,
    fetched: Fetched,
    articles: Sequence[NewArticle],
    known: Sequence[KnownEntry],
    stories: StoryAssigner | None,
    now: datetime,
    duration: float = 0.0,
) -> list[int]:
    """Store a parsed feed's new articles, their hits and the feed's validators together.

    Returns the ids of the hits created.
    """
    hit_ids: list[int] = []
    inserted: list[NewArticle] = []  # the articles this feed stored first
    with store.write() as conn:
        for new in articles:
            article_id = _insert_article(conn, feed.id, new, now)
            if article_id is None:  # another feed stored it first: carried by this one too
                linked = _link_article(conn, feed.id, new.item)
                if linked is not None:
                    hit_ids += _insert_hits(conn, linked, new.matches, new.immediate, now, feed.id)
                continue
            inserted.append(new)
            if stories is not None:
                text = new.extracted.text if new.extracted else new.item.summary
                published = new.item.published or now
                part = new.extracted.story if new.extracted else None
                story = stories.assign(article_id, new.item.title, text, published, part)
                conn.execute("UPDATE articles SET story = ? WHERE id = ?", (story, article_id))
            hit_ids += _insert_hits(conn, article_id, new.matches, new.immediate, now, feed.id)
        for entry in known:
            if entry.revised:  # the entry's new title and summary, kept for the digest
                item = entry.item
                conn.execute(
                    "UPDATE articles SET title = COALESCE(NULLIF(?, ''), title), summary = ?,"
                    " content_key = ? WHERE id = ?",
                    (item.title, item.summary, content_key(item), entry.article_id),
                )
            elif entry.item.guid is not None:
                conn.execute(
                    "INSERT OR IGNORE INTO article_guids VALUES (?, ?, ?)",
                    (feed.id, entry.item.guid, entry.article_id),
                )
            hit_ids += _insert_hits(
                conn, entry.article_id, entry.matches, entry.immediate, now, feed.id
            )
        conn.execute(
            "UPDATE feeds SET etag = ?, last_modified = ?, url = COALESCE(?, url),"
            " last_new_article = COALESCE(?, last_new_article) WHERE id = ?",
            (
                fetched.headers.get("etag"),
                fetched.headers.get("last-modified"),
                fetched.moved_to,
                to_db(now) if articles else None,
                feed.id,
            ),
        )
        _mark_success(conn, feed.id, interval, now)
        pages_failed = sum(1 for a in inserted if a.error is not None and a.item.url)
        _log_poll(conn, feed.id, now, "ok", None, len(inserted), pages_failed, duration)
    return hit_ids


@dataclass(frozen=True, slots=True)
class PageRetry:
    """A stored article whose page failed in a way that passes, due to be fetched again."""

    article_id: int
    url: str
    title: str
    summary: str
    published: datetime  # when it was published, else first seen
    retries: int  # made so far
    feeds: tuple[tuple[int, str], ...]  # (id, name) of each feed carrying it, its own first

    def headline(self, extracted: Extracted) -> str:
        """The title it is matched and grouped under once read: the feed's, else the page's."""
        return self.title or extracted.title or ""


def due_page_retries(
    store: Store, now: datetime, feed_ids: Collection[int], limit: int = PAGE_RETRIES_PER_CYCLE
) -> list[PageRetry]:
    """The articles of these feeds whose page is due to be fetched again, longest due first."""
    rows = store.read(
        "SELECT a.id, a.url, a.title, a.summary, a.published, a.first_seen, a.page_retries,"
        " a.feed_id, f.name"
        " FROM articles a JOIN feeds f ON f.id = a.feed_id"
        " WHERE a.page_retry_at IS NOT NULL AND a.page_retry_at <= ? ORDER BY a.page_retry_at",
        (to_db(now),),
    )
    due = []
    for row in rows:
        if row["feed_id"] not in feed_ids:
            continue
        carriers = store.read(
            "SELECT DISTINCT g.feed_id, f.name FROM article_guids g JOIN feeds f"
            " ON f.id = g.feed_id WHERE g.article_id = ? AND g.feed_id != ? ORDER BY g.feed_id",
            (row["id"], row["feed_id"]),
        )
        feeds = ((row["feed_id"], row["name"]), *((c[0], c[1]) for c in carriers))
        published = from_db(row["published"]) or from_db(row["first_seen"])
        assert published is not None
        due.append(
            PageRetry(
                row["id"],
                row["url"],
                row["title"],
                row["summary"],
                published,
                row["page_retries"],
                feeds,
            )
        )
        if len(due) == limit:
            break
    return due


def record_page_retry(
    store: Store,
    retry: PageRetry,
    extracted: Extracted | None,
    error: str | None,
    passes: bool,
    matches: Sequence[tuple[int, MatchResult]],
    immediate: frozenset[str],
    now: datetime,
    stories: StoryAssigner | None = None,
) -> list[int]:
    """What fetching a page again gave: its text, the story that text tells (when the
    article is alone in the one its summary gave) and the hits it makes (only new ones), or
    the next retry (none once PAGE_RETRY_DELAYS are used up or the failure does not pass).
    Returns the ids of the hits created."""
    made = retry.retries + 1
    hit_ids: list[int] = []
    with store.write() as conn:
        if extracted is not None:
            conn.execute(
                "UPDATE articles SET text = ?, full_text = 1, extract_error = NULL,"
                " page_retries = ?, page_retry_at = NULL,"
                " title = CASE title WHEN '' THEN ? ELSE title END WHERE id = ?",
                (extracted.text, made, extracted.title or "", retry.article_id),
            )
            if stories is not None:  # the story its text tells, if it is still alone
                story = stories.assign(
                    retry.article_id,
                    retry.headline(extracted),
                    extracted.text,
                    retry.published,
                    extracted.story,
                    again=True,
                )
                conn.execute(
                    "UPDATE articles SET story = ? WHERE id = ?", (story, retry.article_id)
                )
            for feed_id, match in matches:
                hit_ids += _insert_hits(conn, retry.article_id, [match], immediate, now, feed_id)
        else:
            again = passes and made < len(PAGE_RETRY_DELAYS)
            conn.execute(
                "UPDATE articles SET extract_error = ?, page_retries = ?, page_retry_at = ?"
                " WHERE id = ?",
                (
                    error,
                    made,
                    to_db(now + PAGE_RETRY_DELAYS[made]) if again else None,
                    retry.article_id,
                ),
            )
    return hit_ids


def rematch_articles(
    store: Store,
    matcher: Any,
    articles: Sequence[Article],
    now: datetime,
    progress: Callable[[Sequence[Article]], Iterable[Article]] | None = None,
) -> int:
    """Match stored articles again with today's watchlists; store only hits that are new.

    Returns how many hits were new. Written in batches so a long rematch holds no long lock.
    """
    new = 0
    batch: list[tuple[int, list[MatchResult]]] = []
    for article in progress(articles) if progress else articles:
        matches = matcher.match(article.document, article.feed)
        if matches:
            batch.append((article.id, matches))
        if len(batch) >= 200:
            new += _write_hits(store, batch, now)
            batch = []
    return new + _write_hits(store, batch, now)


def _write_hits(store: Store, batch: Sequence[tuple[int, list[MatchResult]]], now: datetime) -> int:
    if not batch:
        return 0
    with store.write() as conn:
        return sum(len(_insert_hits(conn, aid, m, frozenset(), now)) for aid, m in batch)


def _insert_article(
    conn: sqlite3.Connection, feed_id: int, new: NewArticle, now: datetime
) -> int | None:
    item, extracted = new.item, new.extracted
    cur = conn.execute(
        "INSERT INTO articles (url, guid, feed_id, title, summary, text, full_text, published,"
        " first_seen, extract_error, content_key, page_retry_at, source)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (url) DO NOTHING",
        (
            item.url or None,
            item.guid,
            feed_id,
            item.title or (extracted.title if extracted else "") or "",
            item.summary,
            extracted.text if extracted else "",
            int(extracted is not None),
            to_db(item.published),
            to_db(now),
            new.error,
            content_key(item),
            to_db(now + PAGE_RETRY_DELAYS[0]) if new.retry and item.url else None,
            item.source,
        ),
    )
    if cur.rowcount == 0:  # another feed stored the same URL first
        return None
    article_id = int(cur.lastrowid or 0)
    if item.guid is not None:
        conn.execute(
            "INSERT OR IGNORE INTO article_guids VALUES (?, ?, ?)", (feed_id, item.guid, article_id)
        )
    return article_id


def _link_article(conn: sqlite3.Connection, feed_id: int, item: Item) -> int | None:
    """The id of the article already stored for item's URL, with this feed's GUID for it."""
    row = conn.execute("SELECT id FROM articles WHERE url = ?", (item.url,)).fetchone()
    if row is None:
        return None
    article_id = int(row[0])
    if item.guid is not None:
        conn.execute(
            "INSERT OR IGNORE INTO article_guids VALUES (?, ?, ?)", (feed_id, item.guid, article_id)
        )
    return article_id


def _insert_hits(
    conn: sqlite3.Connection,
    article_id: int,
    matches: Sequence[MatchResult],
    immediate: frozenset[str],
    now: datetime,
    feed_id: int | None = None,
) -> list[int]:
    """Store the hits that are new; feed_id is the feed that brought the article to them."""
    ids = []
    for match in matches:
        snippet = match.snippet
        cur = conn.execute(
            "INSERT INTO hits (article_id, watchlist, matched, snippet, marks, first_seen,"
            " immediate, feed_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (
                article_id,
                match.watchlist,
                json.dumps(list(match.matched)),
                snippet.text if snippet else "",
                json.dumps([list(m) for m in snippet.marks] if snippet else []),
                to_db(now),
                int(match.watchlist in immediate),
                feed_id,
            ),
        )
        if cur.rowcount:
            ids.append(int(cur.lastrowid or 0))
    return ids


def _mark_success(conn: sqlite3.Connection, feed_id: int, interval: float, now: datetime) -> None:
    conn.execute(
        "UPDATE feeds SET last_poll = ?, last_success = ?, failures = 0, failing_since = NULL,"
        " gone = 0, next_poll = ? WHERE id = ?",
        (to_db(now), to_db(now), to_db(next_poll_after_success(now, interval)), feed_id),
    )


def prune_polls(store: Store, now: datetime) -> int:
    """Drop poll records nothing reads any more: answers of 'not modified' (most of them, one
    per feed every few minutes) after POLL_KEEP_UNCHANGED, the rest after POLL_KEEP. Returns
    how many went."""
    with store.write() as conn:
        cursor = conn.execute(
            "DELETE FROM polls WHERE at < ? OR (status = 'not_modified' AND at < ?)",
            (to_db(now - POLL_KEEP), to_db(now - POLL_KEEP_UNCHANGED)),
        )
    return cursor.rowcount


def _log_poll(
    conn: sqlite3.Connection,
    feed_id: int,
    now: datetime,
    status: str,
    error: str | None,
    new_articles: int,
    pages_failed: int,
    duration: float,
) -> None:
    conn.execute(
        "INSERT INTO polls (feed_id, at, status, error, new_articles, pages_failed, duration)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (feed_id, to_db(now), status, error, new_articles, pages_failed, duration),
    )
