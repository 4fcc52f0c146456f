"""Matching end to end: real articles and their traps served on loopback, polled with the shipped
watchlist; the stored hits must be exactly the relevant articles, once each.

Then `monitor hits --json` and `monitor rematch` over what the poll stored.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.loopback import LoopbackSite
from monitor.sitegen import (
    DEMO_OUTLETS,
    SiteArticle,
    add_outlet,
    load_demo_articles,
    start_demo_site,
)
from monitor.store import Store
from tests.sites import (
    Clock,
    fixture_articles,
    folder_articles,
    open_runtime,
    run_cli,
    write_config,
    write_watchlist,
)

OUTLETS = (("Ledger", "rss", 0), ("Courier", "atom", 1), ("Gazette", "rdf", 2))
HIT_FIELDS: dict[str, type | tuple[type, ...]] = {
    "watchlist": str,
    "url": str,
    "title": str,
    "feed": str,
    "source": str,
    "published": str,
    "first_seen": str,
    "matched": list,
    "snippet": str,
    "story": int,
    "full_text": bool,
    "digest": (int, type(None)),
}


def now_minute() -> datetime:
    """The real time, to the minute: commands compare --since with the real clock."""
    return datetime.now(UTC).replace(second=0, microsecond=0)


def hit_urls(store: Store) -> list[str]:
    rows = store.read("SELECT a.url FROM hits h JOIN articles a ON a.id = h.article_id")
    return sorted(r[0] for r in rows)


def duplicate_hits(store: Store) -> int:
    return len(store.read("SELECT 1 FROM hits GROUP BY article_id, watchlist HAVING COUNT(*) > 1"))


@dataclass
class Corpus:
    """Relevant articles and distractors spread over three outlets, polled once."""

    site: LoopbackSite
    config: Path
    clock: Clock
    relevant: set[str]  # page URLs
    distractors: set[str]
    first_hits: list[str]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Corpus]:
    tmp = tmp_path_factory.mktemp("corpus")
    clock = Clock(now_minute())
    relevant = fixture_articles(clock()) + folder_articles("relevant", clock(), met_police=True)
    distractors = folder_articles("distractors", clock(), met_police=False)
    every = relevant + distractors
    with LoopbackSite() as site:
        feeds: dict[str, str] = {}
        urls: dict[str, SiteArticle] = {}
        for i, (name, fmt, layout) in enumerate(OUTLETS):
            share = every[i::3]
            prefix = f"/{name.lower()}"
            feeds[name] = add_outlet(
                site, name, share, prefix=prefix, feed_format=fmt, layout=layout
            )
            urls |= {site.url(f"{prefix}/{a.slug}"): a for a in share}
        config = write_config(tmp, feeds)
        with open_runtime(config, clock) as rt:
            rt.poll(rt.configured_states())
            first_hits = hit_urls(rt.store)
        yield Corpus(
            site,
            config,
            clock,
            {u for u, a in urls.items() if a in relevant},
            {u for u, a in urls.items() if a in distractors},
            first_hits,
        )


def test_stored_hits_are_exactly_the_relevant_articles(corpus: Corpus) -> None:
    assert len(corpus.relevant) == 9 and len(corpus.distractors) == 11
    assert corpus.first_hits == sorted(corpus.relevant)


def test_every_distractor_was_stored_and_matched_nothing(corpus: Corpus) -> None:
    with Store.open(corpus.config.parent / "monitor.db") as store:
        stored = {a.url: a for a in store.articles()}
    for url in corpus.distractors:
        assert stored[url].full_text  # matched on its whole text, not a summary
        assert url not in corpus.first_hits


def test_hits_stay_unique_across_polls_and_rematch(corpus: Corpus) -> None:
    corpus.clock.advance(3600)
    with open_runtime(corpus.config, corpus.clock) as rt:
        again = rt.poll(rt.configured_states())
        # forget one hit: rematch must restore exactly that one and add nothing else
        forgotten = rt.store.read("SELECT id, article_id FROM hits ORDER BY id LIMIT 1")[0]
        with rt.store.write() as conn:
            conn.execute("DELETE FROM hits WHERE id = ?", (forgotten["id"],))
        stories_before = [tuple(r) for r in rt.store.read("SELECT id, story FROM articles")]
    assert again.new_hits == 0
    assert all(story is not None for _, story in stories_before)
    restored = run_cli(corpus.config, "rematch", "--since", "7d")
    assert restored.exit_code == 0, restored.output
    assert "rematched 20 articles: 1 new hit" in restored.stdout
    repeated = run_cli(corpus.config, "rematch", "--since", "7d")
    assert "rematched 20 articles: 0 new hits" in repeated.stdout
    with Store.open(corpus.config.parent / "monitor.db") as store:
        assert hit_urls(store) == sorted(corpus.relevant)
        assert duplicate_hits(store) == 0
        rows = store.read("SELECT article_id FROM hits WHERE article_id = ?", (forgotten[1],))
        assert len(rows) == 1
        # rematch adds hits to stored articles and leaves every article in its story
        assert [tuple(r) for r in store.read("SELECT id, story FROM articles")] == stories_before
        story_of = {r[0]: r[1] for r in store.read("SELECT url, story FROM articles")}
    listed = json.loads(run_cli(corpus.config, "hits", "--since", "7d", "--json").stdout)
    assert sorted(h["url"] for h in listed) == sorted(corpus.relevant)
    assert all(h["story"] == story_of[h["url"]] for h in listed)


# -- the demo site ----------------------------------------------------------------------------


def test_demo_site_hits_are_exactly_the_articles_labelled_met_police(tmp_path: Path) -> None:
    clock = Clock(now_minute())
    site, feeds = start_demo_site(clock())
    try:
        labelled = {
            site.url(f"{DEMO_OUTLETS[outlet][0]}/{a.slug}"): a.met_police
            for outlet, articles in load_demo_articles(clock()).items()
            for a in articles
        }
        config = write_config(tmp_path, {f.name: f.url for f in feeds})
        with open_runtime(config, clock) as rt:
            report = rt.poll(rt.configured_states())
            stored = list(rt.store.articles())
            hits = hit_urls(rt.store)
            clock.advance(3600)
            rt.poll(rt.configured_states())
            assert hit_urls(rt.store) == hits
            assert duplicate_hits(rt.store) == 0
    finally:
        site.stop()
    assert report.count("failed") == 0
    assert sorted(a.url for a in stored) == sorted(labelled)
    assert all(a.full_text for a in stored)
    expected = sorted(url for url, met in labelled.items() if met)
    assert 0 < len(expected) < len(labelled)
    assert hits == expected


# -- monitor hits --json ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_days(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """Two outlets polled three days apart, with a second watchlist (IOPC only); returns the
    config and each page URL's outlet."""
    tmp = tmp_path_factory.mktemp("hits")
    clock = Clock(now_minute() - timedelta(days=3))
    relevant = fixture_articles(clock()) + folder_articles("relevant", clock())
    old, new = relevant[:4], relevant[4:]
    with LoopbackSite() as site:
        feeds = {
            "Old outlet": add_outlet(site, "Old outlet", old, prefix="/old"),
            "New outlet": add_outlet(site, "New outlet", new, prefix="/new", feed_format="atom"),
        }
        config = write_config(tmp, feeds)
        write_watchlist(config, "iopc", 'name = "IOPC only"\nmatch = ["IOPC"]\n')
        with open_runtime(config, clock) as rt:
            rt.poll(rt.store.feed_states(["Old outlet"]))
            clock.advance(3 * 86400 - 3600)
            rt.poll(rt.store.feed_states(["New outlet"]))
        outlets = {site.url(f"/old/{a.slug}"): "Old outlet" for a in old}
        outlets |= {site.url(f"/new/{a.slug}"): "New outlet" for a in new}
    yield config, outlets


def hits_json(config: Path, *args: str) -> list[dict[str, object]]:
    result = run_cli(config, "hits", "--json", *args)
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert isinstance(found, list)
    return found


def test_hits_json_carries_every_field_with_its_type(two_days: tuple[Path, dict[str, str]]) -> None:
    config, outlets = two_days
    found = hits_json(config)
    assert {h["url"] for h in found} == set(outlets)
    assert {h["watchlist"] for h in found} == {"Met Police", "IOPC only"}
    for hit in found:
        for field, kind in HIT_FIELDS.items():
            assert isinstance(hit[field], kind), (field, hit[field])
        assert hit["feed"] == outlets[str(hit["url"])]
        assert hit["source"] == ""  # each outlet's own feed: no other source named
        assert hit["full_text"] is True
        matched = hit["matched"]
        assert isinstance(matched, list) and matched
        assert all(isinstance(query, str) for query in matched)
        datetime.fromisoformat(str(hit["published"]))
        datetime.fromisoformat(str(hit["first_seen"]))
        assert str(hit["snippet"]).strip()


def test_hits_json_is_newest_first(two_days: tuple[Path, dict[str, str]]) -> None:
    config = two_days[0]
    found = hits_json(config)
    seen = [datetime.fromisoformat(str(h["first_seen"])) for h in found]
    assert seen == sorted(seen, reverse=True)
    # the hits of one poll (found together): the newest article first, though the feed listed
    # it first and so it was stored first
    keys = [
        (s, datetime.fromisoformat(str(h["published"]))) for s, h in zip(seen, found, strict=True)
    ]
    assert keys == sorted(keys, reverse=True)
    assert len({published for _s, published in keys}) > len(set(seen))  # the test can tell
    feeds = [h["feed"] for h in found]
    first_old = feeds.index("Old outlet")
    assert set(feeds[:first_old]) == {"New outlet"} and set(feeds[first_old:]) == {"Old outlet"}


def test_hits_json_filters_by_watchlist_and_since(two_days: tuple[Path, dict[str, str]]) -> None:
    config = two_days[0]
    everything = hits_json(config)
    iopc = hits_json(config, "--watchlist", "IOPC only")
    assert iopc and {h["watchlist"] for h in iopc} == {"IOPC only"}
    assert len(iopc) == sum(1 for h in everything if h["watchlist"] == "IOPC only")
    recent = hits_json(config, "--since", "2d")
    assert recent and {h["feed"] for h in recent} == {"New outlet"}
    assert len(recent) == sum(1 for h in everything if h["feed"] == "New outlet")
    assert hits_json(config, "--since", "4d") == everything


def test_hits_watchlist_takes_a_file_name_and_refuses_an_unknown_one(
    two_days: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    config = two_days[0]
    met = hits_json(config, "--watchlist", "Met Police")
    assert met and hits_json(config, "--watchlist", "met-police") == met  # the file's name
    mistyped = run_cli(config, "hits", "--watchlist", "IOPC onyl")
    assert mistyped.exit_code == 2 and mistyped.stdout == ""  # a command used wrongly
    assert "no watchlist 'IOPC onyl'" in mistyped.stderr
    assert "did you mean 'IOPC only'?" in mistyped.stderr
    # a watchlist whose file is gone still lists the hits stored under its name
    copy = tmp_path / "copy"
    shutil.copytree(config.parent, copy)
    (copy / "watchlists" / "iopc.toml").unlink()
    kept = hits_json(copy / config.name, "--watchlist", "IOPC only")
    assert kept == hits_json(config, "--watchlist", "IOPC only") and kept


def test_hits_json_names_the_digest_that_carried_each_hit(
    two_days: tuple[Path, dict[str, str]],
) -> None:
    config = two_days[0]
    before = hits_json(config)
    assert all(h["digest"] is None for h in before)
    sent = run_cli(config, "digest")
    assert sent.exit_code == 0, sent.output
    after = hits_json(config)
    digests = {h["digest"] for h in after}
    assert len(digests) == 1 and isinstance(next(iter(digests)), int)
