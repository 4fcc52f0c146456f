"""Watchlist files: loading, FILE:LINE:COL errors, warnings for likely mistakes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from monitor.errors import ConfigError, ConfigErrors
from monitor.watchlint import lint_watchlist
from monitor.watchlist import (
    MAX_QUERIES,
    Watchlist,
    check_feed_names,
    load_watchlist,
    load_watchlists,
)

ROOT = Path(__file__).resolve().parent.parent


def write(folder: Path, text: str, name: str = "w.toml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def errors_of(path: Path) -> list[str]:
    with pytest.raises(ConfigErrors) as info:
        load_watchlist(path)
    return [str(e) for e in info.value.errors]


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # locations are shown relative to the working folder


def test_full_file_loads(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
name = "Met Police"
match = ['"Metropolitan Police"', 'IOPC']
exclude = ['title:obituary']
ignore = ['"Met Office"', 'Gala']
alert = "immediate"
feeds = ["BBC UK"]
recipients = ["desk@example.org"]
""",
    )
    w = load_watchlist(path)
    assert w.name == "Met Police" and w.path == path
    assert [q.source for q in w.match] == ['"Metropolitan Police"', "IOPC"]
    assert [q.source for q in w.exclude] == ["title:obituary"]
    assert [q.source for q in w.ignore] == ['"Met Office"', "Gala"]
    assert (w.alert, w.feeds, w.recipients) == ("immediate", ("BBC UK",), ("desk@example.org",))


def test_defaults(tmp_path: Path) -> None:
    w = load_watchlist(write(tmp_path, "match = ['IOPC']", "met-police.toml"))
    assert w.name == "met-police"
    assert (w.exclude, w.ignore, w.alert, w.feeds, w.recipients) == ((), (), "digest", (), ())


@pytest.mark.parametrize(
    ("raw_name", "reason"),
    [(b"m\xffx.toml", "is not UTF-8"), (b"a\x07b.toml", "must not hold control characters")],
)
@pytest.mark.parametrize("text", ["match = ['IOPC']", ""])
def test_a_file_name_that_cannot_name_the_watchlist_is_an_error_unless_it_is_named(
    tmp_path: Path, raw_name: bytes, reason: str, text: str
) -> None:
    """The name goes into the database, the digest and the logs: a file name whose bytes are
    not UTF-8 (it reached the database and failed every poll) must not be it."""
    path = tmp_path / os.fsdecode(raw_name)
    path.write_text(text, encoding="utf-8")
    [error] = errors_of(path)
    assert error.endswith(
        f": the file name {reason}, so it cannot name the watchlist:"
        ' rename the file or add name = "..."'
    )
    path.write_text("name = 'Met'\nmatch = ['IOPC']", encoding="utf-8")
    assert load_watchlist(path).name == "Met"


def test_malformed_query_points_at_file_line_and_column(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """match = [
  'IOPC',
  'Met NEAR/0 police',
]
exclude = ["Met \\"Gala"]
""",
    )
    assert errors_of(path) == [
        "w.toml:3:8: match: bad NEAR/n: n must be a whole number from 1 to 1000",
        "w.toml:5:17: exclude: unclosed quote: the phrase needs a closing quote",
    ]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """name = ""
match = ['IOPC', 3]
exclud = ['x']
alert = "weekly"
feeds = "BBC UK"
recipients = ["desk@example.org", "not an address"]
ignore = ['Met*', 'title:Gala', '"Met Office"']
""",
    )
    # in file order, as monitor check prints them, whichever command finds them
    assert errors_of(path) == [
        "w.toml:1: name: must not be empty",
        "w.toml:2: match: expected a query string, got 3",
        "w.toml:3: unknown key 'exclud'; did you mean 'exclude'?",
        "w.toml:4: alert: must be one of digest, immediate; got 'weekly'",
        "w.toml:5: feeds must be a list, e.g. feeds = ['BBC UK']; got a single string",
        "w.toml:6: recipients: 'not an address' is not an email address",
        'w.toml:7:12: ignore: each entry must be a word or a "phrase"',
        'w.toml:7:20: ignore: each entry must be a word or a "phrase"',
    ]


def test_match_missing_or_empty(tmp_path: Path) -> None:
    assert errors_of(write(tmp_path, "alert = 'digest'")) == [
        "w.toml: no 'match' list: add the queries this watchlist looks for"
    ]
    assert errors_of(write(tmp_path, "\n\nmatch = []")) == [
        "w.toml:3: match is empty: add at least one query"
    ]
    assert errors_of(write(tmp_path, "match = 'IOPC'")) == [
        "w.toml:1: match must be a list, e.g. match = ['IOPC']; got a single string"
    ]


def test_pure_not_is_an_error_in_match_but_allowed_in_exclude(tmp_path: Path) -> None:
    assert errors_of(write(tmp_path, "match = ['NOT Gala']")) == [
        "w.toml:1:11: match: nothing to look for: a query needs a word that must be present, "
        "e.g. 'Met AND NOT Gala' rather than 'NOT Gala'"
    ]
    w = load_watchlist(write(tmp_path, "match = ['Met']\nexclude = ['NOT police']"))
    assert [q.source for q in w.exclude] == ["NOT police"]


def test_toml_syntax_error_has_its_line(tmp_path: Path) -> None:
    (error,) = errors_of(write(tmp_path, "match = ['IOPC'\n"))
    assert error.startswith("w.toml:") and "TOML syntax error" in error


def test_column_follows_escapes_in_basic_strings(tmp_path: Path) -> None:
    (error,) = errors_of(write(tmp_path, 'match = ["\\u00e9t\\u00e9 x @"]'))
    assert error.startswith("w.toml:1:27: match: stray character '@'")


def test_empty_file_loads_as_an_empty_watchlist_with_a_warning(tmp_path: Path) -> None:
    path = write(tmp_path, "# nothing yet\n\n")
    w = load_watchlist(path)
    assert w.match == () and w.name == "w"
    (warning,) = lint_watchlist(w)
    assert str(warning) == "w.toml: matches nothing: the watchlist has no match queries"


def test_too_many_queries_are_refused(tmp_path: Path) -> None:
    queries = ", ".join(f"'w{i}'" for i in range(MAX_QUERIES + 1))
    assert errors_of(write(tmp_path, f"match = [{queries}]")) == [
        f"w.toml: {MAX_QUERIES + 1:,} queries; a watchlist holds at most {MAX_QUERIES:,}: "
        "split the file"
    ]


def test_unreadable_file(tmp_path: Path) -> None:
    (error,) = errors_of(tmp_path / "missing.toml")
    assert error.startswith("missing.toml: cannot read file")


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "w.toml"
    path.write_bytes(b"match = ['caf\xe9']\n")
    assert errors_of(path) == ["w.toml:1: file is not valid UTF-8"]


# -- warnings ---------------------------------------------------------------------------------


def lint(tmp_path: Path, text: str) -> list[str]:
    return [str(e) for e in lint_watchlist(load_watchlist(write(tmp_path, text)))]


def test_lowercase_met_is_flagged(tmp_path: Path) -> None:
    warnings = lint(tmp_path, "match = ['IOPC', 'met NEAR police', '\"met police\"', 'met*']")
    assert warnings == [
        "w.toml:1:19: match: 'met' is all lowercase, so it also matches the verb "
        '("met with"); write Met for the Metropolitan Police',
        "w.toml:1:38: match: '\"met police\"' is all lowercase, so it also matches the verb "
        '("met with"); write Met for the Metropolitan Police',
        "w.toml:1:54: match: 'met*' is all lowercase, so it also matches the verb "
        '("met with"); write Met for the Metropolitan Police',
    ]
    assert lint(tmp_path, "match = ['Met NEAR police', 'metropolitan', 'metro*']") == []


def test_lowercase_operators_are_flagged(tmp_path: Path) -> None:
    warnings = lint(tmp_path, "match = ['police or officer', 'IOPC near/5 Met']")
    assert warnings == [
        "w.toml:1:18: match: 'or' is read as a word, not an operator; "
        "operators are written in capitals: OR",
        "w.toml:1:37: match: 'near/5' is read as a word, not an operator; "
        "operators are written in capitals: NEAR/5",
    ]
    assert lint(tmp_path, "match = ['police OR officer', '\"stop and search\"']") == []


def test_near_with_its_distance_joined_wrongly_is_flagged(tmp_path: Path) -> None:
    """'NEAR-5' and 'NEAR5' are a phrase and a word that never match: the distance needs '/'."""
    warnings = lint(
        tmp_path, "match = ['Met NEAR-5 police', 'Met NEAR5 officer', 'IOPC near-5 Met']"
    )
    assert warnings == [
        "w.toml:1:15: match: 'NEAR-5' is read as a word, not an operator; "
        "a NEAR distance is written with a slash: NEAR/5",
        "w.toml:1:36: match: 'NEAR5' is read as a word, not an operator; "
        "a NEAR distance is written with a slash: NEAR/5",
        "w.toml:1:58: match: 'near-5' is read as a word, not an operator; "
        "a NEAR distance is written with a slash: NEAR/5",
    ]
    assert lint(tmp_path, "match = ['Met NEAR/5 police', 'nearby NEAR police']") == []


def test_capitalised_phrase_with_lowercase_word_is_flagged(tmp_path: Path) -> None:
    (warning,) = lint(tmp_path, "match = ['\"Casey review\"']")
    assert warning.startswith('w.toml:1:11: match: "Casey review" has capitals')
    assert "'Casey Review'" in warning
    assert lint(tmp_path, "match = ['\"Independent Office for Police Conduct\"']") == []


def test_a_phrase_whose_capital_is_not_its_first_word_is_flagged(tmp_path: Path) -> None:
    """ "metropolitan Police" is case-sensitive for its capital: it never matches "Metropolitan
    Police" or "Metropolitan police"."""
    (warning,) = lint(tmp_path, "match = ['\"metropolitan Police\"']")
    assert warning == (
        'w.toml:1:11: match: "metropolitan Police" has capitals, so it matches only that exact '
        "capitalisation (not 'Metropolitan Police'); write it all in lowercase to match any "
        "capitalisation"
    )
    assert lint(tmp_path, "match = ['\"metropolitan police\"', '\"von der Leyen\"']") == []


def test_an_or_beside_an_unbracketed_near_is_flagged(tmp_path: Path) -> None:
    """NEAR binds tighter than OR: 'Met NEAR/5 officer* OR constable*' finds every constable.
    Flagged when the OR term is written like NEAR's right side (both lowercase, or both with
    capitals); 'Met NEAR police OR IOPC' reads as it was most likely meant."""
    text = "match = ['Met NEAR/5 officer* OR constable*', 'Met NEAR (PC OR PCSO) OR Sgt']"
    assert lint(tmp_path, text) == [
        "w.toml:1:11: match: NEAR binds tighter than OR, so this reads as (Met NEAR/5 officer*) "
        "OR constable*; if constable* is meant as one more word of NEAR's side, write Met "
        "NEAR/5 (officer* OR constable*) (or put brackets around the NEAR to keep this reading "
        "without a warning)",
        "w.toml:1:48: match: NEAR binds tighter than OR, so this reads as (Met NEAR (PC OR "
        "PCSO)) OR Sgt; if Sgt is meant as one more word of NEAR's side, write Met NEAR ((PC OR "
        "PCSO) OR Sgt) (or put brackets around the NEAR to keep this reading without a warning)",
    ]
    unflagged = [
        "Met NEAR/5 (officer* OR constable*)",
        "(Met NEAR/5 officer*) OR constable*",
        "Met NEAR police OR IOPC",
        "IOPC OR vetting NEAR police",
        "Met NEAR/5 officer* OR IOPC NEAR/3 report",
        "Met NEAR/5 officer* AND constable*",
    ]
    assert lint(tmp_path, f"match = {unflagged!r}") == []


def test_capitalised_words_side_by_side_are_flagged(tmp_path: Path) -> None:
    """'Met Police' unquoted is Met AND Police, each anywhere in the article."""
    text = "match = ['Met Police', 'title:(Mark Rowley) OR IOPC']"
    assert lint(tmp_path, text) == [
        "w.toml:1:11: match: Met Police is read as Met AND Police, each anywhere in the article; "
        'for the words side by side write "Met Police" (or write AND between them to keep this '
        "reading without a warning)",
        "w.toml:1:32: match: Mark Rowley is read as Mark AND Rowley, each anywhere in the "
        'article; for the words side by side write "Mark Rowley" (or write AND between them to '
        "keep this reading without a warning)",
    ]
    unflagged = ['"Met Police"', "Met AND Police", "Met police", "title:Met Police", "IOPC Met*"]
    assert lint(tmp_path, f"match = {unflagged!r}") == []


def test_a_star_inside_quotes_is_flagged_with_the_query_meant(tmp_path: Path) -> None:
    """The parser reads '"Met officer*"' as the phrase "Met officer": the '*' does nothing."""
    warnings = lint(tmp_path, "match = ['\"Met officer*\"', 'IOPC OR \"vetting*\"']")
    assert warnings == [
        "w.toml:1:23: match: '*' inside quotes is not a prefix: \"Met officer*\" matches only "
        "the whole words; for any ending write Met NEAR/1 officer*",
        "w.toml:1:45: match: '*' inside quotes is not a prefix: \"vetting*\" matches only "
        "the whole words; for any ending write vetting*",
    ]
    assert lint(tmp_path, "match = ['\"Met Police\" OR Met NEAR/1 officer*']") == []


def test_a_star_inside_a_word_is_flagged(tmp_path: Path) -> None:
    """'Met*Police' reads as Met* AND Police, which is seldom what was meant."""
    assert lint(tmp_path, "match = ['Met*Police OR IOPC']") == [
        "w.toml:1:14: match: '*' ends a prefix, so Met*Police is read as Met* AND Police; "
        "write Met* Police if that is meant ('*' cannot stand inside a word)"
    ]
    assert lint(tmp_path, "match = ['Met* Police OR (officer*) OR title:vett*']") == []


def test_short_prefix_repeats_and_contradictions_are_flagged(tmp_path: Path) -> None:
    warnings = lint(tmp_path, "match = ['ve*', 'IOPC', 'IOPC', 'Casey']\nexclude = ['Casey']")
    assert warnings == [
        "w.toml:1:11: match: 've*' matches every word starting with 've'",
        "w.toml:1:26: match: repeats the query at w.toml:1:18",
        "w.toml:2:13: exclude: the same query is in match, so everything it finds is excluded",
    ]


def test_an_ignore_with_capitals_is_flagged_and_a_lowercase_one_is_not(tmp_path: Path) -> None:
    """A capitalised ignore masks only that spelling: "Met gala" and "Met Eireann" (no fada)
    still counted as Met. A lowercase one masks any; its "met" is no trap there."""
    warnings = lint(tmp_path, "match = ['Met NEAR police']\nignore = ['\"Met Gala\"', 'Éireann']")
    assert warnings == [
        'w.toml:2:12: ignore: "Met Gala" has capitals, so only that spelling is masked '
        '("MET GALA" and other spellings still count); written all in lowercase it masks any '
        "case and accents",
        "w.toml:2:26: ignore: Éireann has capitals, so only that spelling is masked "
        "(ÉIREANN and other spellings still count); written all in lowercase it masks any "
        "case and accents",
    ]
    assert lint(tmp_path, "match = ['Met NEAR police']\nignore = ['\"met gala\"', 'éireann']") == []


def test_an_ignored_word_a_match_query_needs_is_flagged(tmp_path: Path) -> None:
    """ignore = ['met'] masks every Met: the Met queries can never match."""
    text = "match = ['IOPC', 'Met NEAR police']\nignore = ['\"met office\"', 'met']"
    assert lint(tmp_path, text) == [
        "w.toml:2:28: ignore: masks every 'met', so the match query at w.toml:1:19 cannot find "
        "it there; ignore only the phrases in which it should not count"
    ]
    [warning] = lint(tmp_path, "match = ['polic*']\nignore = ['policy']")
    assert "masks every 'policy', so the match query at w.toml:1:11" in warning
    assert lint(tmp_path, "match = ['Met NEAR police']\nignore = ['gala']") == []


def test_shipped_watchlist_is_clean() -> None:
    w = load_watchlist(ROOT / "watchlists" / "met-police.toml")
    assert w.name == "Met Police"
    assert len(w.match) >= 8 and w.ignore
    assert lint_watchlist(w) == []


def test_check_feed_names(tmp_path: Path) -> None:
    w = load_watchlist(write(tmp_path, "match = ['IOPC']\n\nfeeds = ['BBC UK',\n 'Gaurdian']"))
    errors = check_feed_names(w, {"BBC UK", "Guardian"})
    assert [str(e) for e in errors] == [
        "w.toml:4: feeds: no feed named 'Gaurdian' in the config; did you mean 'Guardian'?"
    ]
    assert check_feed_names(w, {"BBC UK", "Gaurdian"}) == []


def test_watchlist_built_in_code_has_a_file_location() -> None:
    w = Watchlist("x", Path("x.toml"))
    assert [str(e) for e in lint_watchlist(w)] == [
        "x.toml: matches nothing: the watchlist has no match queries"
    ]


# -- folders ------------------------------------------------------------------------------------


def test_files_that_look_meant_as_watchlists_but_are_not_read_are_warned_about(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "watchlists"
    (folder / "police").mkdir(parents=True)
    (folder / "old").mkdir()
    write(folder, "match = ['IOPC']", "main.toml")
    for name in ("Casey.TOML", "vetting.toml.txt", "police/misconduct.toml", "notes.txt"):
        write(folder, "match = ['Casey']", name)
    write(folder, "match = ['x']", ".hidden.toml.txt")
    loaded = load_watchlists(folder)
    assert [w.name for w in loaded.watchlists] == ["main"]
    assert [str(e) for e in loaded.warnings] == [
        "watchlists/Casey.TOML: not read: a watchlist's file name ends in .toml",
        "watchlists/police: police/ is a folder: watchlists in it are not read",
        "watchlists/vetting.toml.txt: not read: a watchlist's file name ends in .toml",
    ]


def test_one_broken_file_never_hides_the_others(tmp_path: Path) -> None:
    folder = tmp_path / "watchlists"
    folder.mkdir()
    write(folder, "match = ['IOPC']", "a.toml")
    write(folder, "match = ['(IOPC']", "b.toml")
    write(folder, "match = ['Casey', 'met']", "c.toml")
    write(folder, "", "d.toml")
    write(folder, "this is not = toml = at all", ".#a.toml")
    loaded = load_watchlists(folder)
    assert [w.name for w in loaded.watchlists] == ["a", "c", "d"]
    assert [str(e) for e in loaded.errors] == [
        "watchlists/b.toml:1:11: match: unclosed '(': add a ')' to close it"
    ]
    assert [str(e).split(": ")[0] for e in loaded.warnings] == [
        "watchlists/c.toml:1:20",
        "watchlists/d.toml",
    ]
    assert loaded.get("c") is not None and loaded.get("b") is None
    assert all(isinstance(e, ConfigError) for e in loaded.errors + loaded.warnings)


def test_duplicate_names_are_an_error(tmp_path: Path) -> None:
    folder = tmp_path / "watchlists"
    folder.mkdir()
    write(folder, "name = 'Met'\nmatch = ['IOPC']", "a.toml")
    write(folder, "\nname = 'Met'\nmatch = ['Casey']", "b.toml")
    loaded = load_watchlists(folder)
    assert [w.path.name for w in loaded.watchlists] == ["a.toml"]
    assert [str(e) for e in loaded.errors] == [
        "watchlists/b.toml:2: watchlist name 'Met' is already used by watchlists/a.toml;"
        ' give this one a name of its own (name = "...")'
    ]


def test_missing_or_empty_folder(tmp_path: Path) -> None:
    missing = load_watchlists(tmp_path / "nope")
    assert [str(e) for e in missing.errors] == [
        "nope: watchlists folder not found; create it and put your watchlists (NAME.toml) in"
        " it, or point [monitor] watchlists in the config at the folder that holds them"
    ]
    (tmp_path / "empty").mkdir()
    empty = load_watchlists(tmp_path / "empty")
    assert empty.errors == []
    assert [str(e) for e in empty.warnings] == [
        "empty: no watchlist files (*.toml): nothing will match"
    ]
