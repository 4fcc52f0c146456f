"""The story index: gives every stored article a story, on the store's SQLite connection.

An article joins the story of the most similar article published within `window` of it (in
either direction, since feeds deliver late), when monitor.stories judges them the same story;
otherwise it starts a story whose id is its own article id.

Cost per article stays flat as the store grows: candidates come from an inverted index
(story_posting) of each article's rarest terms and of its MinHash LSH bands, keyed so that one
lookup reads only the postings inside the window, with a cap per key; at most CANDIDATES
articles are then compared in full. Document frequencies are kept incrementally in story_term.

The store calls `assign` inside its own write transaction, so nothing here begins, commits or
rolls back, and only story_* tables are read or written.
"""

from __future__ import annotations

import functools
import itertools
import operator
import sqlite3
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from monitor.errors import StoreError
from monitor.models import TextFeatures
from monitor.stories import (
    MINHASH_BINS,
    Similarity,
    StoryFeatures,
    StoryProfile,
    estimate_overlap,
    heaviest_terms,
    minhash_bands,
    profile_article,
    story_features,
)

STORED_TERMS = 128  # heaviest terms kept per article for later comparisons
POSTED_TERMS = 20  # of those, the rarest ones posted in the inverted index
QUERY_TERMS = 24  # heaviest terms of a new article looked up in the index
POSTING_LIMIT = 50  # postings read per key: bounds the cost of a term every outlet uses
CANDIDATES = 24  # articles compared in full, the best by shared index keys
BAND_VOTE = 1.0  # what one shared LSH band adds to a candidate's rank (a term adds its weight)
_WEIGHT_SCALE = 65535  # unit weights are stored as uint16
# The tables this module reads and writes, and only those: STORY_SCHEMA in monitor/schema.py.

_MINHASH_FORMAT = struct.Struct(f"<{MINHASH_BINS}H")
_POSTINGS_OF_KEY = (
    "SELECT article_id, ? AS vote FROM (SELECT article_id FROM story_posting WHERE key = ?"
    " AND published BETWEEN ? AND ? ORDER BY published DESC LIMIT ?)"
)
_ZEROS = itertools.repeat(0.0)  # the weight of a term the new article lacks
_SCALES = itertools.repeat(_WEIGHT_SCALE)
_KEY, _WEIGHT = operator.itemgetter(0), operator.itemgetter(1)  # of a (key, weight) pair
_SQL_VARIABLES = 500  # keys per IN (...) query, well under SQLite's oldest limit of 999
_KEY_BATCH = 50  # IN (...) lists are padded to a multiple of this (see _pad_keys)


class StoryIndex:
    """Assigns stories to articles as they are stored; see the module docstring."""

    def __init__(self, conn: sqlite3.Connection, window: timedelta = timedelta(days=3)) -> None:
        if window <= timedelta(0):
            raise ValueError(f"the story window must be positive, not {window}")
        self._conn = conn
        self._window = int(window.total_seconds())

    def assign(
        self,
        article_id: int,
        title: str,
        text: str,
        published: datetime,
        part: TextFeatures | None = None,
        *,
        again: bool = False,
    ) -> int:
        """The story of a new article (recorded in the index); the same answer if asked again.
        `part` is stories.text_features(text) when the extraction worker computed it.

        `again` is for an article whose text came after it was stored (its page read on a
        retry, its summary matched until then): its story is assigned again on the text when
        the article is still alone in the story its summary gave it. A story another article
        has joined, or that this one joined, stands. Document frequencies keep the first
        assignment's counts and add the second's: they count this article twice.
        """
        try:
            row = self._conn.execute(
                "SELECT story FROM story_article WHERE article_id = ?", (article_id,)
            ).fetchone()
            if row is not None and not (again and self._alone(article_id, int(row[0]))):
                return int(row[0])
            if row is not None:
                self._forget(article_id)
            features = story_features(title, text, part)
            when = epoch_seconds(published)
            mine = profile_article(features, *self._count_terms(features))
            heaviest = heaviest_terms(mine.vector, STORED_TERMS)  # sorted once, used twice
            bands = minhash_bands(features.minhash)  # looked up, then posted
            story = self._find_story(mine, heaviest, bands, when)
            if story is None:  # nothing alike in the window: the article starts its own
                story = article_id
            self._record(article_id, story, when, features, heaviest, bands)
            return story
        except sqlite3.Error as exc:
            raise StoreError(f"story index: {exc}") from exc

    def _alone(self, article_id: int, story: int) -> bool:
        """Whether the article started its story and no other article has joined it."""
        if story != article_id:  # it joined another's story: no need to ask who else did
            return False
        joined = self._conn.execute(
            "SELECT 1 FROM story_article WHERE story = ? AND article_id != ? LIMIT 1",
            (story, article_id),
        ).fetchone()
        return joined is None

    def _forget(self, article_id: int) -> None:
        """Drop the article's row and postings (its document frequencies stay)."""
        self._drop("article_id = ?", (article_id,))

    def _drop(self, where: str, params: tuple[int]) -> int:
        """Delete the story_article rows matching `where` and their postings; how many."""
        rows = self._conn.execute(
            f"SELECT article_id, published, minhash, terms FROM story_article WHERE {where}",
            params,
        ).fetchall()
        postings = [
            (key, published, article_id)
            for article_id, published, minhash, terms in rows
            for key in posted_keys(unpack_terms(terms), unpack_minhash(minhash))
        ]
        self._conn.executemany(
            "DELETE FROM story_posting WHERE key = ? AND published = ? AND article_id = ?",
            postings,
        )
        self._conn.execute(f"DELETE FROM story_article WHERE {where}", params)
        return len(rows)

    def prune(self, before: datetime) -> int:
        """Drop the index rows of articles published before `before`; returns how many.
        Document frequencies stay: they describe everything the store has seen."""
        try:
            return self._drop("published < ?", (epoch_seconds(before),))
        except sqlite3.Error as exc:
            raise StoreError(f"story index: {exc}") from exc

    def _count_terms(self, features: StoryFeatures) -> tuple[dict[int, int], int]:
        """Count the article into the document frequencies; its terms' df and the new total."""
        keys = [key for key, _ in features.terms]  # sorted: neighbouring keys share pages
        df: dict[int, int] = {}
        for chunk in map(_pad_keys, _chunks(keys, _SQL_VARIABLES)):
            marks = ",".join("?" * len(chunk))
            query = f"SELECT key, df + 1 FROM story_term WHERE key IN ({marks})"
            df.update(self._conn.execute(query, chunk))
            # one UPDATE for the chunk: counting took 0.39 ms an article against 0.50 with an
            # UPDATE per key (200 bench-site articles over 2,000 stored)
            self._conn.execute(f"UPDATE story_term SET df = df + 1 WHERE key IN ({marks})", chunk)
        new = [key for key in keys if key not in df]
        self._conn.executemany("INSERT INTO story_term (key, df) VALUES (?, 1)", zip(new))
        df.update(dict.fromkeys(new, 1))
        self._conn.execute(
            "INSERT INTO story_stat (name, value) VALUES ('articles', 1)"
            " ON CONFLICT (name) DO UPDATE SET value = value + 1"
        )
        (n,) = self._conn.execute("SELECT value FROM story_stat WHERE name = 'articles'").fetchone()
        return df, int(n)

    def _find_story(
        self,
        mine: StoryProfile,
        heaviest: list[tuple[int, float]],
        bands: tuple[int, ...],
        when: int,
    ) -> int | None:
        """The story of the most similar article in the window that is the same story, and
        whose first article the new one is also near (see _near_founder)."""
        passing: list[tuple[tuple[float, int], int]] = []
        compared: dict[int, Similarity] = {}  # by candidate: a story's founder is often one
        for article_id, candidate_story, shingles, minhash, terms in self._load(
            self._candidates(heaviest, bands, when)
        ):
            similarity = compared[article_id] = self._compare(mine, shingles, minhash, terms)
            if similarity.same_story:
                passing.append(((similarity.score, article_id), candidate_story))
        for (_score, article_id), story in sorted(passing, reverse=True):
            if article_id == story or self._near_founder(mine, story, compared):
                return story
        return None

    @staticmethod
    def _compare(
        mine: StoryProfile, shingles: int, minhash: tuple[int, ...], terms: bytes
    ) -> Similarity:
        # compared in the stored form: the candidate's keys and quantised weights as
        # unpacked, against the new article's vector, with no dictionary built per candidate
        cosine = stored_cosine(mine.vector.get, terms)
        containment, shared = estimate_overlap(mine.minhash, mine.shingles, minhash, shingles)
        return Similarity(containment, shared, cosine)

    def _near_founder(
        self, mine: StoryProfile, story: int, compared: Mapping[int, Similarity]
    ) -> bool:
        """Whether the new article is at least near the article that started the story. A
        live blog that pastes two events' wire copy joins the first; the second event's own
        articles, near the blog but nowhere near the first event, must not join through it
        and vanish under the first event's headline. A founder no longer indexed (pruned)
        cannot tell: the candidate's judgement stands. `compared` holds the similarities
        already computed, by article id."""
        if story in compared:
            return compared[story].near_story
        found = self._load([story])
        if not found:
            return True
        _, _, shingles, minhash, terms = found[0]
        return self._compare(mine, shingles, minhash, terms).near_story

    def _candidates(
        self, heaviest: list[tuple[int, float]], bands: tuple[int, ...], when: int
    ) -> list[int]:
        """Articles in the window sharing the new article's rarest terms or a MinHash band
        (`bands`), best first, at most CANDIDATES."""
        keys = heaviest[:QUERY_TERMS]
        keys += [(band, BAND_VOTE) for band in bands]
        if not keys:
            return []
        low, high = when - self._window, when + self._window
        params = [p for key, vote in keys for p in (vote, key, low, high, POSTING_LIMIT)]
        params.append(CANDIDATES)
        rows = self._conn.execute(_ranking_query(len(keys)), params)
        return [article_id for (article_id,) in rows]

    def _load(self, article_ids: list[int]) -> list[tuple[int, int, int, tuple[int, ...], bytes]]:
        """(article id, story, shingles, sketch, packed terms) of each candidate."""
        if not article_ids:
            return []
        marks = ",".join("?" * len(article_ids))
        rows = self._conn.execute(
            "SELECT article_id, story, shingles, minhash, terms FROM story_article"
            f" WHERE article_id IN ({marks})",
            article_ids,
        )
        return [
            (article_id, story, shingles, unpack_minhash(minhash), terms)
            for article_id, story, shingles, minhash, terms in rows
        ]

    def _record(
        self,
        article_id: int,
        story: int,
        when: int,
        features: StoryFeatures,
        heaviest: list[tuple[int, float]],
        bands: tuple[int, ...],
    ) -> None:
        """Store the article's row and its postings."""
        terms = pack_terms(heaviest)
        self._conn.execute(
            "INSERT INTO story_article (article_id, story, published, shingles, minhash, terms)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (article_id, story, when, features.shingles, pack_minhash(features.minhash), terms),
        )
        keys = posting_keys(map(_KEY, heaviest), bands)  # the stored terms are heaviest's
        self._conn.executemany(
            "INSERT OR IGNORE INTO story_posting (key, published, article_id) VALUES (?, ?, ?)",
            ((key, when, article_id) for key in keys),
        )


def epoch_seconds(moment: datetime) -> int:
    """Unix seconds of a datetime; a naive one is taken to be UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def posted_keys(terms: dict[int, float], minhash: Sequence[int]) -> list[int]:
    """The index keys of a stored article (prune drops exactly these)."""
    return posting_keys(terms, minhash_bands(minhash))


def posting_keys(keys: Iterable[int], bands: Iterable[int]) -> list[int]:
    """The index keys of an article: its POSTED_TERMS heaviest term keys (heaviest first)
    and its bands."""
    return [*itertools.islice(keys, POSTED_TERMS), *bands]


def pack_terms(terms: Sequence[tuple[int, float]]) -> bytes:
    """Heaviest-first (key, unit weight) pairs -> n int32 keys then n uint16 weights."""
    keys = list(map(_KEY, terms))
    scaled = map(round, map(operator.mul, map(_WEIGHT, terms), _SCALES))  # in C iterators
    weights = map(min, _SCALES, scaled)
    return struct.pack(f"<{len(keys)}i{len(keys)}H", *keys, *weights)


def split_terms(blob: bytes) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Packed terms -> (keys, weights x 65535), heaviest first."""
    n = len(blob) // 6
    read_keys, read_weights = _term_formats(n)
    return read_keys(blob), read_weights(blob, 4 * n)


@functools.lru_cache(maxsize=2 * STORED_TERMS)
def _term_formats(n: int) -> tuple[Callable[..., tuple[int, ...]], Callable[..., tuple[int, ...]]]:
    """Readers of the keys and of the weights of n packed terms: each part unpacked on its
    own, rather than the whole then cut in two (this runs for every candidate compared)."""
    return struct.Struct(f"<{n}i").unpack_from, struct.Struct(f"<{n}H").unpack_from


def stored_cosine(weight_of: Callable[[int, float], float], blob: bytes) -> float:
    """The dot product of a vector (its .get) with packed terms, as dot(vector,
    unpack_terms(blob)) but with no dictionary built for the packed side."""
    keys, weights = split_terms(blob)
    total: float = sum(map(operator.mul, weights, map(weight_of, keys, _ZEROS)))
    return total / _WEIGHT_SCALE


def unpack_terms(blob: bytes) -> dict[int, float]:
    """The inverse of pack_terms, in the stored (heaviest-first) order."""
    keys, weights = split_terms(blob)
    return {key: weight / _WEIGHT_SCALE for key, weight in zip(keys, weights, strict=True)}


def pack_minhash(minhash: Sequence[int]) -> bytes:
    """A sketch as 64 little-endian uint16."""
    return _MINHASH_FORMAT.pack(*minhash)


def unpack_minhash(blob: bytes) -> tuple[int, ...]:
    """The inverse of pack_minhash."""
    return tuple(_MINHASH_FORMAT.unpack(blob))


@functools.lru_cache(maxsize=64)
def _ranking_query(keys: int) -> str:
    """The statement ranking the articles found under `keys` index keys: one statement for
    every key, each key's postings capped on their own. One string object per count, so the
    connection's statement cache finds it without hashing six kilobytes of text again."""
    return (
        "SELECT article_id FROM ("
        + " UNION ALL ".join([_POSTINGS_OF_KEY] * keys)
        + ") GROUP BY article_id ORDER BY sum(vote) DESC, article_id DESC LIMIT ?"
    )


def _chunks(items: Sequence[int], size: int) -> Iterable[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _pad_keys(keys: Sequence[int]) -> list[int]:
    """The keys and copies of the last, up to the next multiple of _KEY_BATCH. A key twice in
    an IN (...) list matches its row once, and every article then uses one of a few statements:
    with one statement per term count, the connection's statement cache (128) was overrun and
    each article's lookup and update were compiled again (counting took 0.53 ms an article
    against 0.39 with every statement cached: 100 bench-site articles over 3,000 stored)."""
    missing = -len(keys) % _KEY_BATCH
    return [*keys, *list(keys[-1:]) * missing]
