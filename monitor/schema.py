"""The database schema, as numbered migrations applied in order on PRAGMA user_version.

Times are ISO 8601 strings in UTC ("2026-11-22T07:00:00+00:00"), so they sort as text.
Unique keys carry the promises: an article once per canonical URL and per (feed, GUID); a hit
once per (article, watchlist); a hit in one digest per recipient; one daily digest per
recipient per local day, even if two daemons are forced onto one file.
"""

from __future__ import annotations

# The tables of monitor/storyindex.py, which reads and writes no others (migration 2). The
# text lives here so that opening the store does not import the story code.
STORY_SCHEMA = """
-- Story grouping (monitor/storyindex.py). Only these tables are read or written by it.
-- One row per article: its story and what later articles compare with (about 1 KB).
CREATE TABLE IF NOT EXISTS story_article (
    article_id INTEGER PRIMARY KEY,   -- the store's article id
    story      INTEGER NOT NULL,      -- id of the story's first article
    published  INTEGER NOT NULL,      -- unix seconds, UTC
    shingles   INTEGER NOT NULL,      -- distinct five-word shingles in the text
    minhash    BLOB NOT NULL,         -- 64 x uint16, little-endian
    terms      BLOB NOT NULL          -- n x int32 term keys, heaviest first, then n x uint16
                                      -- unit TF-IDF weights x 65535, little-endian
);
CREATE INDEX IF NOT EXISTS story_article_published ON story_article (published);
-- Inverted index: an article's rarest terms and its MinHash bands. The key comes first and
-- the publication time second, so one lookup reads only the postings inside the window.
CREATE TABLE IF NOT EXISTS story_posting (
    key        INTEGER NOT NULL,      -- term key or band key (32-bit)
    published  INTEGER NOT NULL,
    article_id INTEGER NOT NULL,
    PRIMARY KEY (key, published, article_id)
) WITHOUT ROWID;
-- Document frequency of every term over all articles ever assigned (pruning keeps them).
CREATE TABLE IF NOT EXISTS story_term (
    key INTEGER PRIMARY KEY,
    df  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS story_stat (
    name  TEXT PRIMARY KEY,           -- 'articles': how many articles df counts over
    value INTEGER NOT NULL
);
"""

MIGRATIONS: tuple[str, ...] = (
    # 1: feeds, articles, hits, the outbox
    """
    CREATE TABLE feeds (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,            -- as the config names it
        config_url TEXT NOT NULL,             -- the URL in the config; an edit resets url
        url TEXT NOT NULL,                    -- the URL polled; follows a 301 once it parses
        etag TEXT,                            -- validators exactly as the server sent them
        last_modified TEXT,
        last_poll TEXT,
        last_success TEXT,
        last_error TEXT,
        last_error_at TEXT,
        failing_since TEXT,                   -- first failure of the current run of failures
        failures INTEGER NOT NULL DEFAULT 0,  -- consecutive failures
        next_poll TEXT,                       -- due time, back-off included
        gone INTEGER NOT NULL DEFAULT 0,      -- answered 410: polled daily, shown in health
        last_new_article TEXT                 -- to notice feeds silent for unusually long
    );

    CREATE TABLE articles (
        id INTEGER PRIMARY KEY,
        url TEXT UNIQUE,                      -- canonical; NULL for a GUID-only entry
        guid TEXT,
        feed_id INTEGER NOT NULL REFERENCES feeds(id),
        title TEXT NOT NULL,
        summary TEXT NOT NULL,
        text TEXT NOT NULL DEFAULT '',        -- extracted text; '' when not extracted
        full_text INTEGER NOT NULL DEFAULT 0, -- 0: only the feed's title and summary
        published TEXT,
        first_seen TEXT NOT NULL,
        story INTEGER,                        -- id of the story's first article
        extract_error TEXT,                   -- why the page could not be used
        content_key TEXT                      -- hash of title+summary: catches GUID churn
    );
    CREATE INDEX articles_first_seen ON articles(first_seen);
    CREATE INDEX articles_content ON articles(feed_id, content_key);
    CREATE INDEX articles_story ON articles(story);

    -- every (feed, GUID) seen, so an article carried by several feeds is fetched once
    CREATE TABLE article_guids (
        feed_id INTEGER NOT NULL REFERENCES feeds(id),
        guid TEXT NOT NULL,
        article_id INTEGER NOT NULL REFERENCES articles(id),
        PRIMARY KEY (feed_id, guid)
    ) WITHOUT ROWID;

    CREATE TABLE hits (
        id INTEGER PRIMARY KEY,
        article_id INTEGER NOT NULL REFERENCES articles(id),
        watchlist TEXT NOT NULL,
        matched TEXT NOT NULL,                -- JSON list of query strings
        snippet TEXT NOT NULL,
        marks TEXT NOT NULL,                  -- JSON list of [start, end] in snippet
        first_seen TEXT NOT NULL,
        immediate INTEGER NOT NULL DEFAULT 0, -- found for an alert = "immediate" watchlist
        UNIQUE (article_id, watchlist)
    );
    CREATE INDEX hits_first_seen ON hits(first_seen);

    -- the outbox: a digest or alert is created with its hits in one transaction, then sent
    CREATE TABLE digests (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('daily', 'manual', 'alert')),
        recipient TEXT NOT NULL,              -- '' when no [email]: archived only
        day TEXT NOT NULL,                    -- local date it is for
        message_id TEXT NOT NULL UNIQUE,
        created TEXT NOT NULL,
        status TEXT NOT NULL                  -- held: refused for good (e.g. login), kept
            CHECK (status IN ('pending', 'sent', 'held', 'skipped')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt TEXT,
        last_error TEXT,
        sent_at TEXT,
        subject TEXT NOT NULL,
        text TEXT NOT NULL,
        html TEXT NOT NULL,
        archive TEXT                          -- path of the archived HTML file
    );
    CREATE UNIQUE INDEX digests_one_daily ON digests(recipient, day) WHERE kind = 'daily';
    CREATE INDEX digests_status ON digests(status, next_attempt);

    CREATE TABLE digest_hits (
        digest_id INTEGER NOT NULL REFERENCES digests(id),
        hit_id INTEGER NOT NULL REFERENCES hits(id),
        recipient TEXT NOT NULL,
        PRIMARY KEY (hit_id, recipient)       -- each hit in one digest per recipient
    ) WITHOUT ROWID;
    CREATE INDEX digest_hits_digest ON digest_hits(digest_id);

    -- one row per feed poll: feeds health and "what the digest may have missed"
    CREATE TABLE polls (
        id INTEGER PRIMARY KEY,
        feed_id INTEGER NOT NULL REFERENCES feeds(id),
        at TEXT NOT NULL,
        status TEXT NOT NULL,                 -- ok | not_modified | failed
        error TEXT,
        new_articles INTEGER NOT NULL DEFAULT 0,
        pages_failed INTEGER NOT NULL DEFAULT 0,
        duration REAL NOT NULL DEFAULT 0
    );
    CREATE INDEX polls_at ON polls(at);

    CREATE TABLE meta (
        key TEXT PRIMARY KEY,                 -- 'created': when this database was made
        value TEXT NOT NULL
    );
    """,
    # 2: the story index (monitor/storyindex.py): articles that report the same event
    STORY_SCHEMA,
    # 3: the feed that brought an article to a watchlist (a watchlist restricted to feed B
    # may get its hit from B although feed A stored the article first); NULL: the article's own
    "ALTER TABLE hits ADD COLUMN feed_id INTEGER REFERENCES feeds(id)",
    # 4: pages that failed for a reason that passes (a timeout, a 503) are fetched again
    # later, a few times, so a story is not matched on its summary for good
    """
    ALTER TABLE articles ADD COLUMN page_retries INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE articles ADD COLUMN page_retry_at TEXT;  -- NULL: no retry due
    CREATE INDEX articles_page_retry ON articles(page_retry_at) WHERE page_retry_at IS NOT NULL
    """,
    # 5: the outlet that wrote an article a feed only passes on (Google Alerts, Google News)
    "ALTER TABLE articles ADD COLUMN source TEXT NOT NULL DEFAULT ''",
    # 6: the process sending a digest right now (the daemon, or `monitor digest` beside it),
    # so that two never send the same one; void once that process is gone or the time passed
    """
    ALTER TABLE digests ADD COLUMN claimed_by INTEGER;
    ALTER TABLE digests ADD COLUMN claimed_until TEXT
    """,
    # 7: each watchlist file's name when last loaded: hits are kept under a watchlist's name,
    # so when an edit renames it, its hits are renamed with it (see ledger.follow_renames)
    """
    CREATE TABLE watchlist_files (
        file TEXT PRIMARY KEY,                -- its file name in the watchlists folder
        name TEXT NOT NULL                    -- its name when last loaded
    ) WITHOUT ROWID
    """,
    # 8: the feeds that carried an article, looked up by article: the digest's "also carried
    # by", and the feeds of a page fetched again
    "CREATE INDEX article_guids_article ON article_guids(article_id)",
    # 9: when each recipient started: a recipient added to [email].to or to a watchlist's
    # recipients is owed the hits found since the last digest, not every hit ever stored.
    # Those of the digests made so far are owed whatever they were (NULL: no bound).
    """
    CREATE TABLE recipients (
        address TEXT PRIMARY KEY COLLATE NOCASE,  -- '' when no [email]: the archive
        since TEXT                            -- hits first seen before then are not owed
    ) WITHOUT ROWID;
    INSERT OR IGNORE INTO recipients (address, since) SELECT DISTINCT recipient, NULL FROM digests
    """,
)
