"""The SQLite store: migrations, the lock, feeds following the config, one write per feed."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.errors import AlreadyRunning, StoreError
from monitor.feedstore import (
    PAGE_RETRY_DELAYS,
    Known,
    KnownEntry,
    NewArticle,
    PageRetry,
    Unchanged,
    content_key,
    due_page_retries,
    known_items,
    record_failure,
    record_items,
    record_not_modified,
    record_page_retry,
)
from monitor.models import Extracted, Feed, Fetched, Item, MatchResult, Snippet
from monitor.schema import MIGRATIONS
from monitor.store import Store, _statements

NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "monitor.db")
    s.sync_feeds([Feed("A", "http://a.example/rss", 900), Feed("B", "http://b.example/rss", 60)])
    yield s
    s.close()


def item(n: int, guid: str | None = None, url: str | None = None) -> Item:
    return Item(
        guid=guid if guid is not None else f"g{n}",
        url=url if url is not None else f"http://a.example/{n}",
        link=f"http://a.example/{n}?utm_source=x",
        title=f"Title {n}",
        summary=f"Summary {n}",
        published=NOW - timedelta(hours=n),
    )


def fetched(etag: str = '"v1"') -> Fetched:
    return Fetched("http://a.example/rss", 200, {"etag": etag, "last-modified": "Sun"}, b"")


def hit(watchlist: str = "Met") -> MatchResult:
    return MatchResult(watchlist, True, ("IOPC",), (), Snippet("the IOPC said", ((4, 8),)))


def test_schema_is_migrated_with_wal_and_version(store: Store) -> None:
    assert store.read("PRAGMA user_version")[0][0] == len(MIGRATIONS)
    assert store.read("PRAGMA journal_mode")[0][0] == "wal"
    assert store.read("PRAGMA busy_timeout")[0][0] >= 5000


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    Store.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer than this monitor"):
        Store.open(path)


def test_a_database_from_before_page_retries_keeps_its_articles_with_none_due(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    for number, script in enumerate(MIGRATIONS[:3], start=1):  # as version 3 left it
        for statement in _statements(script):
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {number}")
    conn.execute(
        "INSERT INTO feeds (name, config_url, url) VALUES ('A', 'http://a.example/rss', 'http://a.example/rss')"
    )
    conn.execute(
        "INSERT INTO articles (url, guid, feed_id, title, summary, first_seen, extract_error,"
        " content_key) VALUES ('http://a.example/1', 'g1', 1, 'Title 1', 'Summary 1',"
        " '2026-11-01T00:00:00+00:00', 'page not fetched: HTTP 503', ?)",
        (content_key(item(1)),),
    )
    conn.commit()
    conn.close()
    with Store.open(path) as store:
        assert store.read("PRAGMA user_version")[0][0] == len(MIGRATIONS)
        row = store.read("SELECT title, page_retries, page_retry_at FROM articles")[0]
        assert tuple(row) == ("Title 1", 0, None)  # an old failure is not fetched again
        assert due_page_retries(store, NOW + timedelta(days=1), {1}) == []
        assert known_items(store, 1, [item(1)]) == {0: Known()}


def test_second_process_cannot_take_the_lock_and_learns_the_pid(store: Store) -> None:
    store.lock()
    code = (
        "import sys; from pathlib import Path; from monitor.store import Store\n"
        "from monitor.errors import AlreadyRunning\n"
        "s = Store.open(Path(sys.argv[1]))\n"
        "try:\n    s.lock()\nexcept AlreadyRunning as e:\n    print(e); sys.exit(3)\n"
    )
    link = store.path.parent / "elsewhere" / "monitor.db"
    link.parent.mkdir()
    link.symlink_to(store.path)
    for path in (store.path, link):  # the same database by another path: the same lock
        out = subprocess.run(
            [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 3
        assert f"pid {os.getpid()}" in out.stdout
    store.unlock()
    with Store.open(store.path) as other:
        other.lock()  # free again once the holder lets go
        with pytest.raises(AlreadyRunning):
            store.lock()


def test_new_feeds_are_due_at_once(store: Store) -> None:
    assert [s.next_poll for s in store.feed_states()] == [None, None]


def test_config_url_edit_resets_validators(store: Store) -> None:
    a = store.feed_states(["A"])[0]
    record_items(store, a, 900, fetched(), [], [], None, NOW)
    assert store.feed_states(["A"])[0].etag == '"v1"'
    store.sync_feeds([Feed("A", "http://a.example/new", 900)])
    state = store.feed_states(["A"])[0]
    assert (state.url, state.etag, state.last_modified) == ("http://a.example/new", None, None)
    assert state.next_poll is None  # due at once


def test_a_shortened_interval_brings_the_next_poll_forward(store: Store) -> None:
    """A feed moved from a day to 10 minutes is polled 10 minutes after its last success,
    not a day later; a longer interval, or a failing feed's back-off, is left alone."""
    a, b = store.feed_states(["A"])[0], store.feed_states(["B"])[0]
    record_items(store, a, 86400, fetched(), [], [], None, NOW)
    record_failure(store, b, 86400, "HTTP 500", NOW)
    backoff = store.feed_states(["B"])[0].next_poll
    store.sync_feeds([Feed("A", a.url, 172800), Feed("B", b.url, 600)])
    assert store.feed_states(["A"])[0].next_poll == NOW + timedelta(days=1)
    store.sync_feeds([Feed("A", a.url, 600), Feed("B", b.url, 600)])
    assert store.feed_states(["A"])[0].next_poll == NOW + timedelta(minutes=10)
    assert store.feed_states(["B"])[0].next_poll == backoff


def test_items_hits_and_validators_are_stored_together(store: Store) -> None:
    a = store.feed_states(["A"])[0]
    new = [
        NewArticle(item(1), Extracted("T", "body text"), None, (hit(),)),
        NewArticle(item(2), None, "page not fetched: HTTP 500", ()),
    ]
    hit_ids = record_items(store, a, 900, fetched(), new, [], None, NOW)
    assert len(hit_ids) == 1
    rows = store.read("SELECT url, full_text, text, extract_error FROM articles ORDER BY id")
    assert [tuple(r) for r in rows] == [
        ("http://a.example/1", 1, "body text", None),
        ("http://a.example/2", 0, "", "page not fetched: HTTP 500"),
    ]
    state = store.feed_states(["A"])[0]
    assert state.etag == '"v1"' and state.last_success == NOW and state.failures == 0
    assert state.next_poll == NOW + timedelta(seconds=900)
    # the same entries again are known, by GUID and by URL, with nothing left to do
    assert known_items(store, a.id, [item(1), item(2), item(3)]) == {0: Known(), 1: Known()}
    by_url = known_items(store, a.id, [item(1, guid="new-guid"), item(2, guid="")])
    assert by_url == {0: Known(), 1: Known()}


def test_article_from_another_feed_is_known_and_linkable(store: Store) -> None:
    a, b = store.feed_states(["A", "B"])
    record_items(store, a, 900, fetched(), [NewArticle(item(1), None, None, ())], [], None, NOW)
    known = known_items(store, b.id, [item(1, guid="other-guid")])
    assert known == {0: Known(1)}  # known by URL, stored from feed A, not yet linked to B


def test_guid_churn_with_same_content_is_known(store: Store) -> None:
    a = store.feed_states(["A"])[0]
    record_items(store, a, 900, fetched(), [NewArticle(item(1), None, None, ())], [], None, NOW)
    churned = Item("new-guid", "http://a.example/1-v2", "x", "Title 1", "Summary 1", None)
    assert known_items(store, a.id, [churned]) == {0: Known()}


@pytest.mark.parametrize(
    ("title", "summary"),
    [("", ""), ("Man charged after Croydon stabbing", ""), ("", "Police appeal for witnesses")],
    ids=["nothing", "a headline alone", "a summary alone"],
)
def test_entries_that_say_too_little_are_never_known_by_what_they_say(
    store: Store, title: str, summary: str
) -> None:
    """A headline alone recurs ("Man charged"), and a news sitemap's entry may say nothing at
    all: a new address in the feed is a new article, whatever the words of an older one."""
    a = store.feed_states(["A"])[0]
    first = Item(None, "http://a.example/1", "x", title, summary, None)
    record_items(store, a, 900, fetched(), [NewArticle(first, None, None, ())], [], None, NOW)
    later = Item(None, "http://a.example/2", "x", title, summary, None)
    assert known_items(store, a.id, [later]) == {}


def test_the_source_of_an_article_a_feed_passes_on_is_stored(store: Store) -> None:
    a = store.feed_states(["A"])[0]
    passed_on = replace(item(1), source="standard.co.uk")
    new = [NewArticle(passed_on, None, None, ()), NewArticle(item(2), None, None, ())]
    record_items(store, a, 900, fetched(), new, [], None, NOW)
    stored = {x.id: (x.source, x.outlet) for x in store.articles()}
    assert stored == {1: ("standard.co.uk", "standard.co.uk"), 2: ("", "A")}


def revised(n: int, title: str, summary: str = "", **ids: str) -> Item:
    return Item(
        ids.get("guid", f"g{n}"), ids.get("url", f"http://a.example/{n}"), "x", title, summary, None
    )


def test_an_own_entry_whose_title_or_summary_changed_is_revised(store: Store) -> None:
    a = store.feed_states(["A"])[0]
    record_items(store, a, 900, fetched(), [NewArticle(item(1), None, None, ())], [], None, NOW)
    record_items(store, a, 900, fetched(), [NewArticle(item(2), None, None, ())], [], None, NOW)
    entries = [
        revised(1, "Met officer charged", "Summary 1"),  # by GUID, a new headline
        revised(2, "Title 2", "Summary 2, updated", guid="g-new"),  # by URL, a new summary
    ]
    known = known_items(store, a.id, entries)
    assert known == {0: Known(1, revised=True), 1: Known(2, revised=True)}
    same = [revised(1, "  TITLE 1 ", "summary 1")]  # case and spaces are no revision
    assert known_items(store, a.id, same) == {0: Known()}


def test_entries_sharing_a_guid_revise_their_article_once_and_not_back_and_forth(
    store: Store,
) -> None:
    a = store.feed_states(["A"])[0]
    record_items(store, a, 900, fetched(), [NewArticle(item(1), None, None, ())], [], None, NOW)
    # one GUID twice: the stored words are still in the feed, so nothing was revised
    twins = [revised(1, "Title 1", "Summary 1"), revised(1, "Another headline")]
    assert known_items(store, a.id, twins) == {0: Known(), 1: Known()}
    # the stored words are gone: the first entry revises the article, the second is the same
    both_new = [revised(1, "Headline one"), revised(1, "Headline two")]
    assert known_items(store, a.id, both_new) == {0: Known(1, revised=True), 1: Known()}


def test_a_changed_entry_of_an_article_another_feed_stored_is_not_a_revision(
    store: Store,
) -> None:
    a, b = store.feed_states(["A", "B"])
    record_items(store, a, 900, fetched(), [NewArticle(item(1), None, None, ())], [], None, NOW)
    link = KnownEntry(item(1, guid="b1"), 1, ())
    record_items(store, b, 900, fetched(), [], [link], None, NOW)
    # B words it differently: B's GUID is known, the article is A's, and stays as A has it
    assert known_items(store, b.id, [revised(1, "B's own headline", guid="b1")]) == {0: Known()}


def test_a_revision_updates_the_entry_and_records_only_new_hits(store: Store) -> None:
    a = store.feed_states(["A"])[0]
    first = NewArticle(item(1), Extracted("Page title", "body"), None, (hit("Met"),))
    record_items(store, a, 900, fetched(), [first], [], None, NOW)
    entry = revised(1, "Met officer charged", "New summary")
    again = KnownEntry(entry, 1, (hit("Met"), hit("IOPC")), revised=True)
    hit_ids = record_items(store, a, 900, fetched('"v2"'), [], [again], None, NOW)
    assert len(hit_ids) == 1  # the Met hit was recorded before
    row = store.read("SELECT title, summary, text, content_key FROM articles WHERE id = 1")[0]
    assert (row["title"], row["summary"], row["text"]) == (
        "Met officer charged",
        "New summary",
        "body",
    )
    assert known_items(store, a.id, [entry]) == {0: Known()}  # the same revision is done once
    untitled = KnownEntry(revised(1, "", "Newer summary"), 1, (), revised=True)
    record_items(store, a, 900, fetched('"v3"'), [], [untitled], None, NOW)
    row = store.read("SELECT title, summary FROM articles WHERE id = 1")[0]
    assert tuple(row) == ("Met officer charged", "Newer summary")  # no title: the last one stays


def test_a_failed_write_stores_nothing_of_the_feed(store: Store) -> None:
    a = store.feed_states(["A"])[0]
    bad = NewArticle(item(1), None, None, (hit(),))
    store.conn.execute(
        "CREATE TRIGGER boom BEFORE INSERT ON hits BEGIN SELECT RAISE(ABORT, 'x'); END"
    )
    with pytest.raises(StoreError):
        record_items(store, a, 900, fetched(), [bad], [], None, NOW)
    assert store.read("SELECT COUNT(*) FROM articles")[0][0] == 0
    assert store.feed_states(["A"])[0].etag is None  # validators not kept: the poll is redone


def test_failures_back_off_and_success_resets(store: Store) -> None:
    b = store.feed_states(["B"])[0]
    for _ in range(3):
        record_failure(store, store.feed_states(["B"])[0], 60, "HTTP 500", NOW)
    state = store.feed_states(["B"])[0]
    assert state.failures == 3 and state.failing_since == NOW
    assert state.next_poll == NOW + timedelta(seconds=240)
    record_not_modified(store, [Unchanged(b, 60)], NOW + timedelta(hours=1))
    state = store.feed_states(["B"])[0]
    assert (state.failures, state.failing_since, state.last_error) == (0, None, "HTTP 500")
    polls = store.read("SELECT status, COUNT(*) FROM polls GROUP BY status ORDER BY status")
    assert [tuple(p) for p in polls] == [("failed", 3), ("not_modified", 1)]


def test_gone_feed_is_kept_and_retried_daily(store: Store) -> None:
    a = store.feed_states(["A"])[0]
    record_failure(store, a, 900, "HTTP 410 from http://a.example/rss", NOW, gone=True)
    state = store.feed_states(["A"])[0]
    assert state.gone and state.next_poll == NOW + timedelta(days=1)


def test_a_page_that_failed_in_a_way_that_passes_is_due_again_after_each_delay(
    store: Store,
) -> None:
    a, b = store.feed_states(["A", "B"])
    failed = NewArticle(item(1), None, "page not fetched: HTTP 503", (), retry=True)
    final = NewArticle(item(2), None, "page not fetched: HTTP 404", ())
    record_items(store, a, 900, fetched(), [failed, final], [], None, NOW)
    record_items(store, b, 900, fetched(), [], [KnownEntry(item(1, guid="b1"), 1, ())], None, NOW)
    first = NOW + PAGE_RETRY_DELAYS[0]
    assert due_page_retries(store, first - timedelta(seconds=1), {a.id, b.id}) == []
    due = due_page_retries(store, first, {a.id})
    assert due == [
        PageRetry(
            1,
            "http://a.example/1",
            "Title 1",
            "Summary 1",
            NOW - timedelta(hours=1),  # item(1)'s publication time
            0,
            ((a.id, "A"), (b.id, "B")),
        )
    ]
    assert due_page_retries(store, first, {b.id}) == []  # from the polls of its own feed
    at = first
    for made in range(1, len(PAGE_RETRY_DELAYS) + 1):
        retry = due_page_retries(store, at, {a.id})[0]
        assert retry.retries == made - 1
        record_page_retry(
            store, retry, None, "page not fetched: timed out", True, [], frozenset(), at
        )
        row = store.read(
            "SELECT page_retries, page_retry_at, extract_error FROM articles WHERE id = 1"
        )[0]
        assert row["page_retries"] == made and row["extract_error"] == "page not fetched: timed out"
        if made < len(PAGE_RETRY_DELAYS):
            at += PAGE_RETRY_DELAYS[made]
            assert row["page_retry_at"] is not None
            assert due_page_retries(store, at - timedelta(seconds=1), {a.id}) == []
    assert row["page_retry_at"] is None  # the delays are used up: the summary stands
    assert due_page_retries(store, at + timedelta(days=30), {a.id}) == []


class StoriesSeen:
    """Records the story calls a write makes (a unit test of the store's side of it)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, str, str, datetime]] = []

    def assign(
        self,
        article_id: int,
        title: str,
        text: str,
        published: datetime,
        part: object = None,
        *,
        again: bool = False,
    ) -> int:
        self.calls.append(("again" if again else "assign", article_id, title, text, published))
        return 77 if again else article_id


def test_a_page_read_on_a_retry_has_its_story_assigned_again_on_its_text(store: Store) -> None:
    a = store.feed_states(["A"])[0]
    seen = StoriesSeen()
    failed = NewArticle(item(1), None, "page not fetched: HTTP 503", (), retry=True)
    record_items(store, a, 900, fetched(), [failed], [], seen, NOW)  # type: ignore[arg-type]
    (retry,) = due_page_retries(store, NOW + PAGE_RETRY_DELAYS[0], {a.id})
    extracted = Extracted("Page", "the article's own text")
    record_page_retry(store, retry, extracted, None, False, [], frozenset(), NOW, seen)  # type: ignore[arg-type]
    published = NOW - timedelta(hours=1)  # item(1)'s
    assert seen.calls == [
        ("assign", 1, "Title 1", "Summary 1", published),
        ("again", 1, "Title 1", "the article's own text", published),
    ]
    assert store.read("SELECT story FROM articles WHERE id = 1")[0][0] == 77


def test_a_page_fetched_again_stores_its_text_and_new_hits_or_gives_up_when_it_cannot_pass(
    store: Store,
) -> None:
    a, b = store.feed_states(["A", "B"])
    new = [
        NewArticle(item(n), None, "page not fetched: HTTP 503", (hit(),), retry=True)
        for n in (1, 2)
    ]
    record_items(store, a, 900, fetched(), new, [], None, NOW)
    at = NOW + PAGE_RETRY_DELAYS[0]
    one, two = due_page_retries(store, at, {a.id})
    matches = [(a.id, hit("Met")), (b.id, hit("IOPC"))]  # the Met hit was recorded before
    ids = record_page_retry(
        store, one, Extracted("Page", "the text"), None, False, matches, frozenset({"IOPC"}), at
    )
    assert len(ids) == 1
    row = store.read(
        "SELECT text, full_text, extract_error, page_retry_at FROM articles WHERE id = 1"
    )[0]
    assert tuple(row) == ("the text", 1, None, None)
    assert store.read("SELECT title FROM articles WHERE id = 1")[0][0] == "Title 1"  # the feed's
    made = store.read("SELECT watchlist, feed_id, immediate FROM hits WHERE id = ?", (ids[0],))[0]
    assert tuple(made) == ("IOPC", b.id, 1)
    record_page_retry(
        store, two, None, "not an HTML page (application/pdf)", False, [], frozenset(), at
    )
    row = store.read(
        "SELECT page_retries, page_retry_at, extract_error FROM articles WHERE id = 2"
    )[0]
    assert tuple(row) == (1, None, "not an HTML page (application/pdf)")
    untitled = replace(item(3), title="")
    record_items(
        store, a, 900, fetched(), [NewArticle(untitled, None, "x", (), retry=True)], [], None, NOW
    )
    (three,) = due_page_retries(store, at, {a.id})
    record_page_retry(
        store, three, Extracted("Page title", "text"), None, False, [], frozenset(), at
    )
    assert store.read("SELECT title FROM articles WHERE id = 3")[0][0] == "Page title"
