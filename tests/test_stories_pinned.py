"""Story assignments pinned article by article on realistic sets, and the rows the index
stores for them, so that work on how stories are computed cannot move one article to another
story (or change what later articles are compared with) unnoticed.

The sets: the labelled set, with tests/data's real article texts among it; a thousand
generated news articles over more than one window (the story benchmark's generator: events
of one to eight reports, a quarter of follow-ups syndicated copies); and two hundred articles
of the benchmark site (monitor.sitegen_bench), whose machine-written bodies share most of
their words, so every new article has a full set of candidates to compare.

The expected values live in tests/golden/stories-pinned.txt; regenerate it after a deliberate
change to grouping with MONITOR_UPDATE_GOLDEN=1 pytest tests/test_stories_pinned.py, then
read the diff before committing.
"""

from __future__ import annotations

import hashlib
import math
import os
import sqlite3
import struct
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from bench.bench_stories import END, SEED, Newsroom, load_labelled
from monitor import stories, storyindex
from monitor.schema import STORY_SCHEMA
from monitor.sitegen_bench import generate_site
from monitor.storyindex import STORED_TERMS, StoryIndex

DATA = Path(__file__).resolve().parent / "data"
GOLDEN = Path(__file__).resolve().parent / "golden" / "stories-pinned.txt"
GENERATED = 1_000  # 3.3 days of articles at the generator's 300 a day: more than a window
SITE_FEEDS, SITE_ARTICLES = 10, 20

Article = tuple[str, str, str, datetime]  # name, title, text, published


def labelled_and_real() -> list[Article]:
    """The labelled set in publication order, then tests/data's real article texts (title on
    the first line) spread over the same days."""
    out = [(str(a.event), a.title, a.text, a.published) for a in load_labelled()]
    start = out[0][3]
    texts = sorted((DATA / "relevant").glob("*.txt")) + sorted((DATA / "distractors").glob("*.txt"))
    for n, path in enumerate(texts):
        title, _, text = path.read_text(encoding="utf-8").partition("\n")
        out.append((path.name, title, text, start + timedelta(hours=n)))
    return out


def generated_news() -> list[Article]:
    """The story benchmark's generated articles, named by their event."""
    articles = Newsroom(SEED).stream(GENERATED, END)
    return [(str(a.event), a.title, a.text, a.published) for a in articles]


def site_articles() -> list[Article]:
    """The benchmark site's articles, feed by feed, as the pages' paragraphs."""
    out = []
    with generate_site(SITE_FEEDS, SITE_ARTICLES, seed=1) as site:  # its socket is closed
        generator = site.generator
        assert generator is not None
        for f in range(SITE_FEEDS):
            for a in range(SITE_ARTICLES):
                article = generator.article(f, a)
                text = "\n".join(article.paragraphs)
                out.append((article.slug, article.title, text, article.published))
    return out


def assign_set(label: str, articles: Iterable[Article]) -> list[str]:
    """One line per article (its set, its id, its name and the story it got), then a digest of
    every row the index stored, on a fresh in-memory store."""
    conn = sqlite3.connect(":memory:")
    conn.executescript(STORY_SCHEMA)
    index = StoryIndex(conn)
    lines = [
        f"{label} {article_id} {name} {index.assign(article_id, title, text, published)}"
        for article_id, (name, title, text, published) in enumerate(articles, start=1)
    ]
    digest = hashlib.sha256()
    for table in ("story_article", "story_posting", "story_term", "story_stat"):
        for row in conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2"):
            digest.update(repr(row).encode())
    conn.close()
    return [*lines, f"{label} stored {digest.hexdigest()}"]


def test_stories_are_assigned_as_pinned() -> None:
    lines = (
        assign_set("labelled", labelled_and_real())
        + assign_set("generated", generated_news())
        + assign_set("site", site_articles())
    )
    text = "\n".join(lines) + "\n"
    if os.environ.get("MONITOR_UPDATE_GOLDEN"):
        GOLDEN.write_text(text, encoding="utf-8")
    expected = GOLDEN.read_text(encoding="utf-8").splitlines()
    moved = [(want, got) for want, got in zip(expected, lines, strict=True) if want != got]
    assert not moved, f"{len(moved)} of {len(lines)} lines differ, the first: {moved[:5]}"


def test_the_pinned_sets_group_some_articles_and_not_all() -> None:
    """The pin is worth having: each set has stories of several articles and several stories."""
    stories: dict[str, list[str]] = {}
    for line in GOLDEN.read_text(encoding="utf-8").splitlines():
        label, article_id, *rest = line.split(" ")
        if article_id != "stored":
            stories.setdefault(label, []).append(rest[-1])
    assert set(stories) == {"labelled", "generated", "site"}
    for label, got in stories.items():
        assert 1 < len(set(got)) < len(got), label


# The pieces made cheaper, each against its plain definition: equal, not approximately equal,
# since a cosine one rounding away from a threshold decides a story.


def _term_vector_by_definition(
    terms: list[tuple[int, int]], df: dict[int, int], n: int
) -> dict[int, float]:
    weights = {
        key: (1 + math.log(count)) * math.log(1 + n / (df.get(key) or 1)) for key, count in terms
    }
    norm = math.sqrt(sum(w * w for w in weights.values()))
    return {key: w / norm for key, w in weights.items()} if norm else {}


@given(
    terms=st.lists(st.tuples(st.integers(-60, 60), st.integers(1, 500)), max_size=80),
    df=st.dictionaries(st.integers(-60, 60), st.integers(0, 10_000), max_size=80),
    n=st.integers(1, 100_000),
)
def test_term_vector_is_its_definition_to_the_last_bit(
    terms: list[tuple[int, int]], df: dict[int, int], n: int
) -> None:
    got = stories.term_vector(terms, df, n)
    want = _term_vector_by_definition(terms, df, n)
    assert got == want
    assert list(got) == list(want)  # the same order too: the heaviest terms' ties follow it


@given(
    st.lists(
        st.tuples(st.integers(-(2**31), 2**31 - 1), st.floats(0.0, 1.0)),
        max_size=STORED_TERMS,
        unique_by=lambda kw: kw[0],
    )
)
def test_packed_terms_are_their_definition(terms: list[tuple[int, float]]) -> None:
    keys = [key for key, _ in terms]
    weights = [min(65535, round(weight * 65535)) for _, weight in terms]
    blob = storyindex.pack_terms(terms)
    assert blob == struct.pack(f"<{len(keys)}i{len(keys)}H", *keys, *weights)
    assert storyindex.split_terms(blob) == (tuple(keys), tuple(weights))


# capitals, spaces and punctuation make name pairs, which do not count; a ligature that folds
# to words with spaces between them (U+FDFA) is no content word either
_ENTRY_CHARACTERS = st.sampled_from(list("Ab cD,.\n-'É\u00a0\ufdfa"))


@settings(max_examples=300)
@given(st.text(_ENTRY_CHARACTERS, max_size=200) | st.text(max_size=200))
def test_the_word_keys_of_a_feed_entry_are_those_of_its_counted_terms(text: str) -> None:
    want = {stories.stable_key(t) for t in stories.count_terms(text) if " " not in t}
    assert stories._word_keys(text) == want


@given(st.lists(st.integers(), min_size=1, max_size=1_000))
def test_padded_key_lists_hold_the_same_keys_in_a_few_lengths(keys: list[int]) -> None:
    padded = storyindex._pad_keys(keys)
    assert padded[: len(keys)] == keys and set(padded) == set(keys)
    assert len(padded) % storyindex._KEY_BATCH == 0 and len(padded) - len(keys) < 50
