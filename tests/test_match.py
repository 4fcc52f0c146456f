"""Matching: every rule of the query language both ways, masking, exclusion, snippets."""

from __future__ import annotations

import gc
import itertools
from pathlib import Path

import pytest

from monitor.match import compile_watchlists, explain, match_query
from monitor.models import Document, MatchResult
from monitor.query import parse_query
from monitor.watchlist import Watchlist, load_watchlist

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path("/work/shared/fixtures")
DATA = Path(__file__).resolve().parent / "data"
# Short texts, many of them a headline and a feed summary, that the shipped watchlist once got
# wrong (a headline that says only "Met", "London's police", the IPCC, a shouted "MPS VOTE",
# other people's misconduct hearings in London, "come into force"), with neighbours of each
# fix that must keep their answer. Not served as pages: the pipeline tests use data/relevant.
CASES = DATA / "watchlist-cases"


def watchlist(
    match: list[str],
    *,
    exclude: tuple[str, ...] = (),
    ignore: tuple[str, ...] = (),
    name: str = "test",
    feeds: tuple[str, ...] = (),
) -> Watchlist:
    return Watchlist(
        name=name,
        path=Path(f"{name}.toml"),
        match=tuple(parse_query(q) for q in match),
        exclude=tuple(parse_query(q, positive=False) for q in exclude),
        ignore=tuple(parse_query(q) for q in ignore),
        feeds=feeds,
    )


def hit(query: str, text: str, title: str = "", **kw: tuple[str, ...]) -> bool:
    return explain(watchlist([query], **kw), Document(title, text)).hit


def read_article(path: Path) -> Document:
    title, _, text = path.read_text(encoding="utf-8").partition("\n")
    return Document(title.strip(), text)


# (query, text that must match, text that must not)
RULES = [
    # whole words
    ("Met", "The Met said", "The Metro said"),
    ("Met", "Met.", "Metropolitan"),
    ("Khan", "Sadiq Khan's office", "Khanna said"),
    ("Khan", "Sadiq Khan’s office", "Genghis Khanate"),
    # the modifier letter apostrophe, a letter to Unicode, is an apostrophe in the news
    ("Met", "the Met\u02bcs officers", "the Metro\u02bcs officers"),
    ("Khan\u02bcs", "Sadiq Khan's office", "Sadiq Khan said"),
    ("IOPC", "(IOPC)", "IOPCs"),
    # invisible characters inside a word (a soft hyphen, a word joiner) leave it one word
    ('"Metropolitan Police"', "the Metro\u00adpolitan Po\u00adlice", "the Metro politan Police"),
    ("IOPC", "the IO\u2060PC said", "the IO-PC said"),
    ("IOPC", "\ufeffIOPC said", "\ufeffIOPCs said"),
    # smart case
    ("Met", "The Met said", "the minister met with"),
    ("IOPC", "the IOPC said", "the iopc said"),
    ("vetting", "Vetting failures", "vet the applicant"),
    ("vetting", "VETTING", "vetted"),
    ("cafe", "a Café in Soho", "a cafeteria"),
    ("café", "CAFE SOCIETY", "cafes"),
    ("strasse", "Große Straße", "Hauptstraße"),
    # letters with a stroke or a ligature fold by hand, as Unicode gives them no accent
    ("lodz", "a court in Łódź", "a court in Lodzia"),
    ("soren", "SØREN Kierkegaard", "Sorensen"),
    ("łódź", "LODZ", "Lodzer"),
    ("encyclopaedia", "the Encyclopædia Britannica", "the encyclopedia"),
    ("coeur", "Sacré-Cœur", "coeurs"),
    ("dakovo", "Đakovo", "Dakovica"),
    ("istanbul", "ıstanbul", "istanbuli"),
    # phrases
    ('"Metropolitan Police"', "the Metropolitan Police said", "the Metropolitan and Police"),
    ('"Metropolitan Police"', "Metropolitan-Police officers", "Police Metropolitan"),
    ('"Metropolitan Police"', "the Metropolitan Police's report", "metropolitan police"),
    ('"misconduct hearing"', "a Misconduct Hearing was held", "a misconduct panel hearing"),
    ('"Scotland Yard"', "Scotland. Yard", "Scotland's Yard"),
    # prefix
    ("vet*", "pre-vetting of officers", "revetment"),
    ("officer*", "officers' messages", "an official"),
    ("Vet*", "Veterans Day", "veterans day"),
    # AND, implicit AND, OR, NOT, parentheses
    ("Met police", "police in the Met", "the Met said"),
    ("Met AND police", "Met and police", "police only"),
    ("IOPC OR Casey", "Casey said", "Casy said"),
    ("Met AND NOT Gala", "the Met said", "the Met Gala"),
    ("(IOPC OR Casey) vetting", "Casey on vetting", "Casey and IOPC"),
    ("IOPC OR Casey vetting", "IOPC", "Casey"),
    ("police and vetting", "police and vetting", "police vetting"),
    # NEAR
    ("Met NEAR/3 officers", "Met said two officers", "Met said two more officers"),
    ("Met NEAR/3 officers", "officers said two Met", "officers said two more Met"),
    ("Met NEAR officers", "Met " + "x " * 9 + "officers", "Met " + "x " * 10 + "officers"),
    ('"Met Police" NEAR/2 vetting', "vetting by Met Police", "vetting of all the Met Police"),
    ("Met NEAR/2 (police OR officer*)", "the Met's officers", "the Met, which has many police"),
    ("police NEAR/1 police", "police police", "police said police"),
    # title:
    ("title:Met", "", "Met in the text"),
    ("title:(Met OR IOPC) vetting", "vetting", "Met vetting"),
]


@pytest.mark.parametrize(("query", "good", "bad"), RULES)
def test_rule_matches_and_does_not(query: str, good: str, bad: str) -> None:
    title_query = query.startswith("title:")
    good_title = "Met and IOPC" if title_query else ""
    assert hit(query, good, good_title), f"{query!r} should match {good!r}"
    assert not hit(query, bad, "a headline"), f"{query!r} should not match {bad!r}"


def test_query_is_checked_against_title_and_text() -> None:
    assert hit("IOPC", "nothing here", title="IOPC report")
    assert hit("IOPC Casey", "Casey spoke", title="IOPC report")
    assert not hit("IOPC", "nothing here", title="a report")


def test_near_never_pairs_a_title_word_with_a_text_word() -> None:
    assert not hit("Met NEAR/3 officers", "officers were sacked", title="Met")
    assert hit("Met NEAR/3 officers", "x", title="Met officers sacked")


def test_phrase_never_spans_title_and_text() -> None:
    assert not hit('"Scotland Yard"', "Yard said", title="Scotland")


def test_ignore_masks_the_phrase_but_not_other_mentions() -> None:
    query = "Met NEAR/5 (police OR officer* OR forecast*)"
    ignore = ('"Met Office"',)
    weather = "The Met Office forecast rain, and police closed roads."
    mixed = "Met officers were on duty; the Met Office forecast rain."
    assert hit(query, weather)  # without masking the weather story is noise...
    assert not hit(query, weather, ignore=ignore)  # ...masked, it is not
    assert hit(query, mixed, ignore=ignore)


def test_ignore_is_smart_case_and_masks_the_title_too() -> None:
    assert hit("Met", "the MET OFFICE and the Met", ignore=('"Met Office"',))
    assert not hit("Met", "x", title="Met Office warning", ignore=('"Met Office"',))
    assert not hit("gala", "the Met GALA", ignore=("gala",))


def test_masked_words_break_phrases() -> None:
    assert not hit('"Met Office chief"', "the Met Office chief", ignore=('"Met Office"',))


def test_masking_never_hides_words_from_not_or_exclude() -> None:
    # an ignore phrase may only take hits away: NOT and exclude still see the masked words
    assert not hit("Met AND NOT Gala", "the Met Gala, Met", ignore=('"Met Gala"',))
    assert hit("Met AND NOT Gala", "the Met, Met", ignore=('"Met Gala"',))
    assert not hit("Met", "the Met Gala, Met", exclude=("Gala",), ignore=('"Met Gala"',))


def test_exclude_vetoes_the_article() -> None:
    w = watchlist(["Met"], exclude=("title:obituary",))
    assert explain(w, Document("Met officer", "text")).hit
    result = explain(w, Document("Obituary: a Met officer", "text"))
    assert not result.hit
    assert result.matched == ("Met",) and result.excluded_by == ("title:obituary",)


def test_exclude_that_needs_no_word() -> None:
    w = watchlist(["Met"], exclude=("NOT police",))
    assert explain(w, Document("", "the Met police")).hit
    assert not explain(w, Document("", "the Met museum")).hit


def test_matched_lists_every_matching_query_in_file_order() -> None:
    w = watchlist(["IOPC", "Casey", "vetting", "Met"])
    result = explain(w, Document("", "Met vetting and the IOPC"))
    assert result.matched == ("IOPC", "vetting", "Met")


def test_explain_of_a_non_hit() -> None:
    result = explain(watchlist(["IOPC"]), Document("Weather", "rain"))
    assert result == MatchResult("test", False)


def test_matcher_returns_hits_for_each_watchlist_that_matches() -> None:
    a = watchlist(["IOPC"], name="a")
    b = watchlist(["Casey"], name="b")
    c = watchlist(["vetting"], name="c", exclude=("Casey",))
    matcher = compile_watchlists([a, b, c])
    results = matcher.match(Document("", "IOPC, Casey and vetting"))
    assert [r.watchlist for r in results] == ["a", "b"]
    assert all(r.hit for r in results)
    assert matcher.match(Document("", "weather")) == []


def test_matcher_respects_feeds() -> None:
    only_bbc = watchlist(["IOPC"], name="bbc", feeds=("BBC UK",))
    everywhere = watchlist(["IOPC"], name="all")
    matcher = compile_watchlists([only_bbc, everywhere])
    doc = Document("", "IOPC report")
    assert [r.watchlist for r in matcher.match(doc, "Guardian")] == ["all"]
    assert [r.watchlist for r in matcher.match(doc, "BBC UK")] == ["bbc", "all"]
    assert [r.watchlist for r in matcher.match(doc)] == ["bbc", "all"]


def test_matcher_agrees_with_explain_for_many_queries() -> None:
    words = [f"name{i}" for i in range(300)]
    w = watchlist([f"{a} NEAR/3 {b}" for a, b in itertools.pairwise(words)])
    doc = Document("", "name7 x name8 and name100 y y y y name101")
    result = compile_watchlists([w]).match(doc)
    assert len(result) == 1
    assert result[0].matched == ("name7 NEAR/3 name8",)
    assert result[0] == explain(w, doc)


def test_queries_needing_two_words_are_found_whatever_their_case() -> None:
    # filed under one word and found only when the second is there too: in any case
    assert hit("police AND gala", "Police at the GALA")
    assert hit("police AND gala", "police at the Gala")
    assert hit("Casey AND IOPC", "the IOPC and Casey")
    assert hit('"casey review"', "The CASEY Review")
    assert hit("Casey AND vetting", "VETTING: what Casey found")
    assert not hit("police AND gala", "Police at the match")


def test_folded_words_are_placed_in_every_spelling() -> None:
    # the capitalised "Police" is where the phrase and the pair are, beside a lowercase one
    assert hit('"police vetting"', "Police vetting failed, police said.")
    assert hit("vetting NEAR/1 police", "police said " + "x " * 20 + "vetting Police")
    assert hit("officer* NEAR/1 vetting", "officers said " + "x " * 20 + "Officers' vetting")


def test_match_query() -> None:
    assert match_query(parse_query("Met NEAR/3 officers"), Document("", "Met said two officers"))
    assert not match_query(parse_query("Met AND NOT Gala"), Document("", "the Met Gala"))


# -- snippets ---------------------------------------------------------------------------------


def test_snippet_marks_the_matched_words() -> None:
    result = explain(
        watchlist(['"Scotland Yard"']), Document("t", "Police at  Scotland\nYard said")
    )
    assert result.snippet is not None
    assert result.snippet.text == "Police at Scotland Yard said"
    assert result.snippet.marks == ((10, 18), (19, 23))  # each matched word
    assert result.snippet.marked() == "Police at [Scotland Yard] said"  # shown as one


def test_snippet_is_about_forty_words_around_the_strongest_match() -> None:
    text = " ".join(
        ["IOPC"] + [f"w{i}" for i in range(100)] + ["IOPC", "vetting", "IOPC"] + ["z"] * 100
    )
    result = explain(watchlist(["IOPC", "vetting"]), Document("", text))
    assert result.snippet is not None
    snippet = result.snippet
    assert snippet.text.startswith("… ") and snippet.text.endswith(" …")
    assert len(snippet.text.split()) == 42  # forty words and two ellipses
    assert [snippet.text[a:b] for a, b in snippet.marks] == ["IOPC", "vetting", "IOPC"]
    assert "w99" in snippet.text and "w0 " not in snippet.text


def test_snippet_from_the_title_when_only_the_title_matched() -> None:
    result = explain(watchlist(["title:IOPC"]), Document("IOPC report out", "Long text " * 50))
    assert result.snippet is not None
    assert result.snippet.marked() == "[IOPC] report out"


def test_snippet_shows_a_softly_hyphenated_title_without_its_hyphens() -> None:
    result = explain(
        watchlist(["title:IOPC"]), Document("Metro\u00adpolitan IO\u2060PC review", "")
    )
    assert result.snippet is not None
    assert result.snippet.marked() == "Metropolitan [IOPC] review"


def test_snippet_keeps_punctuation_and_drops_control_characters() -> None:
    text = "He said: “The IOPC\x00 found\u202e failings.” Then"
    result = explain(watchlist(["IOPC"]), Document("", text))
    assert result.snippet is not None
    assert result.snippet.text == "He said: “The IOPC found failings.” Then"
    assert "\x00" not in result.snippet.text and "\u202e" not in result.snippet.text


def test_snippet_of_near_shows_the_close_pair() -> None:
    text = "Met " + "filler " * 60 + "Met said officers " + "more " * 60 + "officers"
    result = explain(watchlist(["Met NEAR/3 officers"]), Document("", text))
    assert result.snippet is not None
    assert result.snippet.marked().count("[") == 2
    assert "[Met] said [officers]" in result.snippet.marked()


# -- the shipped watchlist ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def met_police() -> Watchlist:
    return load_watchlist(ROOT / "watchlists" / "met-police.toml")


@pytest.mark.parametrize(
    "path",
    [
        *sorted(FIXTURES.glob("*.txt")),
        *sorted((DATA / "relevant").glob("*.txt")),
        *sorted((CASES / "relevant").glob("*.txt")),
    ],
    ids=lambda p: p.name,
)
def test_shipped_watchlist_finds_every_relevant_article(met_police: Watchlist, path: Path) -> None:
    result = explain(met_police, read_article(path))
    assert result.hit, result
    assert result.snippet is not None and result.snippet.marks


def test_fixture_folder_has_the_three_articles() -> None:
    assert len(list(FIXTURES.glob("*.txt"))) == 3


DISTRACTORS = sorted((DATA / "distractors").glob("*.txt"))
CASE_DISTRACTORS = sorted((CASES / "distractors").glob("*.txt"))


@pytest.mark.parametrize("path", DISTRACTORS + CASE_DISTRACTORS, ids=lambda p: p.name)
def test_shipped_watchlist_ignores_every_distractor(met_police: Watchlist, path: Path) -> None:
    result = explain(met_police, read_article(path))
    assert not result.hit, result


def test_distractors_cover_the_known_noise() -> None:
    names = {p.stem for p in DISTRACTORS}
    assert {
        "met-office-weather",
        "met-gala",
        "met-gala-lowercase",
        "met-eireann-no-fada",
        "met-opera",
        "minister-met-with",
        "casey-affleck",
        "ministers-security-vetting",
        "metro-newspaper",
        "us-police",
    } <= names


def test_met_police_story_that_mentions_the_met_office_is_still_a_hit(
    met_police: Watchlist,
) -> None:
    doc = read_article(DATA / "relevant" / "met-officers-heatwave.txt")
    assert "Met Office" in doc.text
    assert explain(met_police, doc).hit


def test_matching_leaves_nothing_for_the_cycle_collector() -> None:
    # a document's words must be freed as soon as it is matched: garbage held in a cycle
    # waits for the collector, whose every run then walks the words of many documents
    w = watchlist(
        ["Met NEAR/5 officers", '"Scotland Yard" AND NOT Gala', "title:police"],
        exclude=("NOT Yard",),
        ignore=('"Met Gala"',),
    )
    matcher = compile_watchlists([w])
    docs = [
        Document("Met police", "Met officers at Scotland Yard, not the Met Gala."),
        Document("", "The Met Gala; Met officers."),
        Document("Weather", "Rain."),
    ]
    for doc in docs:  # first calls may fill caches of their own
        matcher.match(doc)
        explain(w, doc)
    gc.collect()
    gc.disable()
    try:
        assert matcher.match(docs[0])
        for doc in docs:
            matcher.match(doc)
            explain(w, doc)
            match_query(parse_query("Met NEAR officers"), doc)
        assert gc.collect() == 0
    finally:
        gc.enable()


# -- hostile text --------------------------------------------------------------------------------


def test_huge_repetitive_text_is_handled() -> None:
    text = "Met " * 200_000 + "officers"
    w = watchlist(["Met NEAR/1000 Met", '"Met Met Met Met Met officers"', "Met NEAR/2 officers"])
    result = explain(w, Document("", text))
    assert result.hit and len(result.matched) == 3


def test_odd_unicode_and_control_characters() -> None:
    text = "\x00\ufeffIOPC\u200b\u0301 report \U0001f46e officers\ud7ff q\u0303 e\u0301"
    assert hit("IOPC", text)
    assert hit("e", text)  # "e" + combining accent is one word, "é", folded to "e"
    assert not hit("E", text)
    assert hit("q", text)
    assert hit("é", "cafe E")  # an accented lowercase query folds the same way


def test_empty_document() -> None:
    assert not hit("IOPC", "")
    assert explain(watchlist(["IOPC"]), Document("", "")).snippet is None
