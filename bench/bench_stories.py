"""Story grouping: quality on the labelled set, and assignment cost as the store grows.

Quality: pairwise precision and recall of "same story" over tests/data/stories, grouped end to
end through a StoryIndex on a SQLite file, and with every pair judged alone.

Cost: a SQLite file holding 1,000 and then 100,000 generated articles, arriving at the same
rate (300 a day, so 1,000 articles span 3.3 days and 100,000 almost a year, and either way
about 900 lie inside the three-day window of a new article). Then 200 new articles are assigned
in one transaction, timed, and rolled back so each run starts from the same store; the two
stores take turns, five rounds, so drift in a shared machine's speed weighs on both alike. Generated
text draws on a Zipf distribution over the labelled set's own words plus a long tail of
invented ones, so subject words (police, Met, officers) are in most articles and posting lists
have realistic lengths; each event has its own names, place and rare words, and a quarter of
follow-up reports are syndicated copies.

Run: .venv/bin/python -m bench.bench_stories
"""

from __future__ import annotations

import itertools
import json
import random
import re
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import Row, spread
from monitor.schema import STORY_SCHEMA
from monitor.store import CACHE_SIZE as STORE_CACHE_SIZE
from monitor.stories import compare_profiles, count_documents, profile_article, story_features
from monitor.storyindex import StoryIndex

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "stories"
SEED = 20260316
PER_DAY = 300  # articles stored per day: some 60 feeds of a news beat
NEW_ARTICLES = 200  # assigned and timed per run
SIZES = (1_000, 100_000)
ROUNDS = 5  # timed rounds of every size
TAIL_WORDS = 60_000  # invented word types below the labelled set's vocabulary
END = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Article:
    """One generated (or labelled) article."""

    event: int | str
    title: str
    text: str
    published: datetime


def load_labelled() -> list[Article]:
    """The labelled set in publication order."""
    labels = json.loads((DATA / "labels.json").read_text(encoding="utf-8"))["articles"]
    out = []
    for name, label in labels.items():
        lines = [line.strip() for line in (DATA / name).read_text(encoding="utf-8").splitlines()]
        lines = [line for line in lines if line]
        published = datetime.fromisoformat(label["published"])
        out.append(Article(label["event"], lines[0], "\n".join(lines[1:]), published))
    return sorted(out, key=lambda a: a.published)


def measure_labelled(folder: Path) -> list[Row]:
    """Pairwise precision/recall on the labelled set, end to end and pair by pair."""
    labelled = load_labelled()
    conn = sqlite3.connect(folder / "labelled.db")
    conn.executescript(STORY_SCHEMA)
    index = StoryIndex(conn)
    stories = [index.assign(i, a.title, a.text, a.published) for i, a in enumerate(labelled, 1)]
    conn.commit()
    conn.close()
    events: list[object] = [a.event for a in labelled]
    grouped = score_groups(events, list(stories))
    features = [story_features(a.title, a.text) for a in labelled]
    df, n = count_documents(features)
    profiles = [profile_article(f, df, n) for f in features]
    tp = fp = fn = 0
    for (ea, pa), (eb, pb) in itertools.combinations(zip(events, profiles, strict=True), 2):
        same = compare_profiles(pa, pb).same_story
        tp += ea == eb and same
        fp += ea != eb and same
        fn += ea == eb and not same
    alone = tp / ((tp + fp) or 1), tp / ((tp + fn) or 1)
    note = f"{len(labelled)} articles, {len(set(events))} events"
    return [
        Row("stories", "labelled set, grouped: precision", *[grouped[0]] * 3, "ratio", note),
        Row("stories", "labelled set, grouped: recall", *[grouped[1]] * 3, "ratio", note),
        Row("stories", "labelled set, pairs alone: precision", *[alone[0]] * 3, "ratio", note),
        Row("stories", "labelled set, pairs alone: recall", *[alone[1]] * 3, "ratio", note),
    ]


class Newsroom:
    """Seeded generator of news-like articles grouped in events."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        words: Counter[str] = Counter()
        for a in load_labelled():
            words.update(re.findall(r"[^\W_]+", f"{a.title}\n{a.text}"))
        self.vocab = [w for w, _ in words.most_common()] + self._invent(TAIL_WORDS)
        # Zipf: the rank-r word is drawn with weight 1/r
        self.cumulative = list(itertools.accumulate(1 / r for r in range(1, len(self.vocab) + 1)))
        self.people = [w.title() for w in self._invent(3000)]
        self.places = [w.title() for w in self._invent(800)]

    def _invent(self, count: int) -> list[str]:
        syllables = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
        out: set[str] = set()
        while len(out) < count:
            out.add("".join(self.rng.choices(syllables, k=self.rng.randint(2, 4))))
        return sorted(out)

    def event(self) -> list[str]:
        """An event's own words: two people, a place, and rare words from the tail."""
        rng = self.rng
        people = [f"{rng.choice(self.people)} {rng.choice(self.people)}" for _ in range(2)]
        rare = rng.sample(self.vocab[3000:], 10)
        return [*people, rng.choice(self.places), *rare]

    def report(self, own: list[str], event: int, published: datetime) -> Article:
        """One outlet's report: background words with the event's own words among them."""
        rng = self.rng
        paragraphs = []
        for _ in range(rng.randint(5, 12)):
            words = rng.choices(self.vocab, cum_weights=self.cumulative, k=rng.randint(25, 55))
            for i in range(len(words)):
                if rng.random() < 0.12:
                    words[i] = rng.choice(own)
            paragraphs.append(" ".join(words) + ".")
        title = " ".join([*rng.sample(own, 3), *rng.choices(self.vocab[:2000], k=6)])
        return Article(event, title, "\n".join(paragraphs), published)

    def copy(self, original: Article, published: datetime) -> Article:
        """A syndicated copy: new headline, trimmed, with the outlet's boilerplate."""
        paragraphs = original.text.split("\n")
        kept = paragraphs[: max(3, len(paragraphs) * 2 // 3)]
        kept.append("Sign up to our free newsletter for the top stories from your area.")
        title = " ".join(self.rng.sample(original.title.split(), 5))
        return Article(original.event, title, "\n".join(kept), published)

    def stream(self, count: int, end: datetime) -> list[Article]:
        """`count` articles at PER_DAY a day up to `end`, events of 1 to 8 reports."""
        rng = self.rng
        start = end - timedelta(days=count / PER_DAY)
        out: list[Article] = []
        event = 0
        while len(out) < count:
            event += 1
            own = self.event()
            first = start + timedelta(days=rng.random() * count / PER_DAY)
            reports = [self.report(own, event, first)]
            for _ in range(min(7, int(rng.expovariate(0.6)))):
                when = first + timedelta(hours=rng.uniform(0, 36))
                if rng.random() < 0.25:
                    reports.append(self.copy(reports[0], when))
                else:
                    reports.append(self.report(own, event, when))
            out.extend(r for r in reports if r.published <= end)
        return sorted(out[:count], key=lambda a: a.published)


def build_store(path: Path, articles: list[Article]) -> tuple[sqlite3.Connection, list[int]]:
    """A SQLite file holding `articles`, assigned through the index; and their stories."""
    conn = sqlite3.connect(path)
    # the connection settings of monitor.store, whose connection the index runs on
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(f"PRAGMA cache_size = {STORE_CACHE_SIZE}")
    conn.executescript(STORY_SCHEMA)
    index = StoryIndex(conn)
    stories = []
    for article_id, a in enumerate(articles, 1):
        stories.append(index.assign(article_id, a.title, a.text, a.published))
        if article_id % 10_000 == 0:
            conn.commit()
            print(f"  stored {article_id:,}", file=sys.stderr)
    conn.commit()
    return conn, stories


def score_groups(events: list[object], groups: list[object]) -> tuple[float, float]:
    """Pairwise precision and recall from cluster sizes, for sets too big to pair up."""

    def pairs(counts: Counter[Any]) -> int:
        return sum(n * (n - 1) // 2 for n in counts.values())

    both = pairs(Counter(zip(events, groups, strict=True)))
    return both / (pairs(Counter(groups)) or 1), both / (pairs(Counter(events)) or 1)


def footprint(conn: sqlite3.Connection, articles: int) -> tuple[float, float]:
    """Bytes on disk per article: the per-article tables, and the shared term frequencies."""
    pages = dict(
        conn.execute(
            "SELECT name LIKE 'story_term%', sum(pgsize) FROM dbstat"
            " WHERE name LIKE 'story_%' OR name LIKE 'sqlite_autoindex_story_%' GROUP BY 1"
        ).fetchall()
    )
    return pages.get(0, 0) / articles, pages.get(1, 0) / articles


def time_new_articles(conn: sqlite3.Connection, new: list[Article], first_id: int) -> float:
    """Seconds per article to assign `new`, in one transaction rolled back afterwards."""
    index = StoryIndex(conn)
    conn.execute("BEGIN IMMEDIATE")
    start = time.perf_counter()
    for offset, a in enumerate(new):
        index.assign(first_id + offset, a.title, a.text, a.published)
    elapsed = time.perf_counter() - start
    conn.execute("ROLLBACK")
    return elapsed / len(new)


@dataclass
class Prepared:
    """One store of `size` articles, the articles to assign against it, and its fixed rows."""

    size: int
    conn: sqlite3.Connection
    new: list[Article]
    rows: list[Row]
    note: str


def prepare_size(folder: Path, size: int) -> Prepared:
    """A store of `size` generated articles, its footprint and grouping quality."""
    room = Newsroom(SEED + size)
    stored = room.stream(size, END - timedelta(hours=6))
    recent = [a for a in stored if a.published > END - timedelta(days=2)]
    new = []
    for _ in range(NEW_ARTICLES):  # half follow-ups and copies of recent events, half new
        when = END - timedelta(hours=room.rng.uniform(0, 6))
        if room.rng.random() < 0.5 and recent:
            new.append(room.copy(room.rng.choice(recent), when))
        else:
            new.append(room.report(room.event(), -1, when))
    conn, stories = build_store(folder / f"stories-{size}.db", stored)
    precision, recall = score_groups([a.event for a in stored], list(stories))
    conn.isolation_level = None  # the timed runs manage their own transaction
    in_window = sum(a.published >= END - timedelta(days=3) for a in stored)
    per_article, shared = footprint(conn, size)
    generated = f"{size:,} generated articles grouped against their generated events"
    rows = [
        Row(
            "stories",
            f"footprint, {size:,} stored",
            per_article,
            per_article,
            per_article,
            "bytes/article",
            f"plus {shared:.0f} bytes/article of shared term frequencies",
        ),
        Row("stories", f"generated, {size:,}: precision", *[precision] * 3, "ratio", generated),
        Row("stories", f"generated, {size:,}: recall", *[recall] * 3, "ratio", generated),
    ]
    note = f"{size:,} stored, {in_window:,} inside the window, {NEW_ARTICLES} new per run"
    return Prepared(size, conn, new, rows, note)


def run(rounds: int = ROUNDS) -> list[Row]:
    """Every figure of this benchmark.

    Both stores are built first; then the sizes are timed in turn, `rounds` times, so a
    machine that slows down or speeds up weighs on both alike, and the cost ratio is taken
    within each round, then its median.
    """
    with tempfile.TemporaryDirectory(prefix="bench-stories-") as tmp:
        folder = Path(tmp)
        rows = measure_labelled(folder)
        prepared = [prepare_size(folder, size) for size in SIZES]
        for p in prepared:  # warm-up: every size starts from a warm cache
            time_new_articles(p.conn, p.new, p.size + 1)
        seconds: dict[int, list[float]] = {p.size: [] for p in prepared}
        for _ in range(rounds):
            for p in prepared:
                seconds[p.size].append(time_new_articles(p.conn, p.new, p.size + 1))
        for p in prepared:
            ms = spread([v * 1000 for v in seconds[p.size]])
            rows.append(Row("stories", f"assign, {p.size:,} stored", *ms, "ms", p.note))
            rows += p.rows
            p.conn.close()
    small, large = seconds[SIZES[0]], seconds[SIZES[-1]]
    ratios = [b / a for a, b in zip(small, large, strict=True)]
    rows.append(
        Row(
            "stories",
            "assign cost ratio, 100,000 vs 1,000 stored",
            *spread(ratios),
            "x",
            "must stay at most 2; each round's ratio, sizes timed in turn",
        )
    )
    return rows


if __name__ == "__main__":
    for row in run():
        print(
            f"{row.label:48s} {row.median:10.3f} {row.unit:14s} "
            f"[{row.low:.3f} .. {row.high:.3f}] {row.note}"
        )
