"""Matching speed: per-article cost and throughput for watchlists of 10, 1,000 and 10,000 queries.

Articles: 1,000 generated from the three fixture articles (their paragraphs sampled and
shuffled) with 150 words from a pool of 20,000 made-up words spliced in, seeded, so some
generated queries find something in every article: each is a hit, the costliest case (every
hit gets a snippet). Then 1,000 built the same way from the distractor articles of
tests/data/distractors (weather, Met Gala, US police...) with words spliced in from another
pool: what most of a day's articles are, nearly none of them a hit (the few hits are articles
where a spliced word split an ignored phrase such as "Met Office", which then no longer
masks). Queries: the shipped met-police queries
and ignore list, topped up with generated words, phrases, prefixes, NEARs over OR-groups,
AND NOT and title: terms that use both pool words and ordinary English words.

Figures (CPU time of this process, so other work on the machine does not count): microseconds
per article and MB of article text per second for each size, compile
time, and the ratio of the per-article cost at 1,000 and 10,000 queries to that at 10 (target:
at most 3x at 10,000, and at least 10 MB/s). Last, one pathological article (a single word
repeated) at 1 and 4 MB, to show time grows linearly with the text.

Run: .venv/bin/python -m bench.bench_match
"""

from __future__ import annotations

import random
import string
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import Row, repeat
from monitor.match import Matcher, compile_watchlists
from monitor.models import Document
from monitor.query import Query, parse_query
from monitor.textindex import index_text
from monitor.watchlist import Watchlist, load_watchlist

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path("/work/shared/fixtures")
DISTRACTORS = ROOT / "tests" / "data" / "distractors"
KINDS = ("Met articles", "other articles")
ARTICLES = 1_000
SIZES = (10, 1_000, 10_000)
POOL_SIZE = 20_000
SPLICED_WORDS = 150
COMMON = ["police", "officer", "report", "London", "review", "minister", "court", "said"]


def make_pool(rng: random.Random) -> list[str]:
    """Made-up words of 4 to 10 letters, a third of them capitalised like names."""
    pool = []
    for n in range(POOL_SIZE):
        word = "".join(rng.choices(string.ascii_lowercase, k=rng.randint(4, 10)))
        pool.append(word.capitalize() if n % 3 == 0 else word)
    return pool


def article_paragraphs(folder: Path) -> list[tuple[str, list[str]]]:
    """(headline, paragraphs) of each article text in a folder."""
    out = []
    for path in sorted(folder.glob("*.txt")):
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        out.append((lines[0], lines[1:]))
    return out


def make_articles(rng: random.Random, pool: list[str], folder: Path) -> list[Document]:
    """ARTICLES documents: paragraphs of the folder's articles, shuffled, pool words spliced in."""
    sources = article_paragraphs(folder)
    docs = []
    for _ in range(ARTICLES):
        headline, paragraphs = rng.choice(sources)
        chosen = rng.sample(paragraphs, k=max(1, len(paragraphs) * 2 // 3))
        words = " ".join(chosen).split(" ")
        for _ in range(SPLICED_WORDS):
            words.insert(rng.randrange(len(words) + 1), rng.choice(pool))
        docs.append(Document(headline, " ".join(words)))
    return docs


def make_query(rng: random.Random, pool: list[str]) -> str:
    """One generated query, in one of the language's forms."""
    a, b, c = (rng.choice(pool) for _ in range(3))
    common = rng.choice(COMMON)
    forms = [
        a,
        f'"{a} {b}"',
        f"{a[:5]}*",
        f"{a} NEAR/5 ({b} OR {c})",
        f"{common} NEAR/8 {a}",
        f"{a} AND NOT {b}",
        f"title:{a} OR {b}",
        f"({a} OR {b}) {common}",
    ]
    return rng.choice(forms)


def make_watchlist(size: int, rng: random.Random, pool: list[str]) -> Watchlist:
    """The shipped watchlist cut or topped up to `size` match queries."""
    shipped = load_watchlist(ROOT / "watchlists" / "met-police.toml")
    queries: list[Query] = list(shipped.match[:size])
    while len(queries) < size:
        queries.append(parse_query(make_query(rng, pool)))
    return Watchlist(f"bench-{size}", shipped.path, match=tuple(queries), ignore=shipped.ignore)


def timed(fn: Callable[[], object]) -> float:
    """CPU time of one call, in seconds: the cost on one core, whatever else the machine runs."""
    start = time.process_time()
    fn()
    return time.process_time() - start


def match_all(matcher: Matcher, docs: list[Document]) -> int:
    """Match every article; the number of hits."""
    return sum(len(matcher.match(doc)) for doc in docs)


def measure_size(
    size: int, docs: list[Document], pool: list[str], kind: str
) -> tuple[list[Row], float]:
    """Rows for one watchlist size, and its median microseconds per article."""
    watchlist = make_watchlist(size, random.Random(size), pool)
    compile_time = repeat(lambda: timed(lambda: compile_watchlists([watchlist])))
    matcher = compile_watchlists([watchlist])
    hits = match_all(matcher, docs)  # warm caches outside the timing
    seconds = repeat(lambda: timed(lambda: match_all(matcher, docs)))
    megabytes = sum(len(d.title.encode()) + len(d.text.encode()) for d in docs) / 1e6
    per_article = tuple(s / len(docs) * 1e6 for s in seconds)
    rate = tuple(megabytes / s for s in seconds)
    label = f"{kind}, {size:,} queries"
    rows = [
        Row("match", f"{label}: per article", *per_article, "us", f"{hits} hits in {len(docs)}"),
        Row("match", f"{label}: throughput", rate[0], min(rate), max(rate), "MB/s"),
    ]
    if kind == KINDS[0]:
        rows.append(
            Row("match", f"{size:,} queries: compile", *(s * 1e3 for s in compile_time), "ms")
        )
    return rows, per_article[0]


def measure_reading(docs: list[Document]) -> Row:
    """Reading the words alone (index_text): the floor under every figure above."""
    megabytes = sum(len(d.title.encode()) + len(d.text.encode()) for d in docs) / 1e6
    seconds = repeat(lambda: timed(lambda: [index_text(d.title, d.text) for d in docs]))
    rate = tuple(megabytes / s for s in seconds)
    return Row("match", "reading the words only", rate[0], min(rate), max(rate), "MB/s")


def measure_linear() -> list[Row]:
    """One article of a repeated word at 1 and 4 MB: the time per MB should not grow."""
    watchlist = make_watchlist(10, random.Random(0), [])
    matcher = compile_watchlists([watchlist])
    rows = []
    for megabytes in (1, 4):
        doc = Document("Met", "Met police " * (megabytes * 1_000_000 // 11))
        seconds = repeat(lambda doc=doc: timed(lambda: matcher.match(doc)), runs=3)
        per_mb = tuple(s / megabytes for s in seconds)
        rows.append(Row("match", f"'Met police' repeated, {megabytes} MB", *per_mb, "s/MB"))
    return rows


def run() -> list[Row]:
    """Every figure of this benchmark."""
    rng = random.Random(20261122)
    pool = make_pool(rng)
    rows: list[Row] = []
    # the other articles name other people and places: words from a pool of their own
    for kind, folder, words in zip(
        KINDS, (FIXTURES, DISTRACTORS), (pool, make_pool(rng)), strict=True
    ):
        docs = make_articles(rng, words, folder)
        costs = {}
        for size in SIZES:
            size_rows, costs[size] = measure_size(size, docs, pool, kind)
            rows += size_rows
        for size in SIZES[1:]:
            ratio = costs[size] / costs[SIZES[0]]
            label = f"{kind}: cost ratio {size:,} / {SIZES[0]} queries"
            rows.append(Row("match", label, ratio, ratio, ratio, "x", "target <= 3x at 10,000"))
        rows.append(measure_reading(docs))
    return rows + measure_linear()


if __name__ == "__main__":
    for r in run():
        print(f"{r.label:40s} {r.median:10.2f} {r.unit:6s} [{r.low:.2f} .. {r.high:.2f}] {r.note}")
