"""The command line as a newcomer meets it: --config anywhere, one-line errors, `test`, the
preview of an edited watchlist, `search`, `poll` on a pipe and on a terminal.

Everything runs against real parts: the demo's sample news site on 127.0.0.1, a SQLite file in
a temporary folder, the CLI through click's CliRunner or as a subprocess.
"""

from __future__ import annotations

import json
import logging
import os
import pty
import re
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

import monitor
from monitor.cli import cli
from monitor.config import load_settings
from monitor.discover import toml_string
from monitor.extract import extract_page
from monitor.loopback import LoopbackSite, Response
from monitor.match import explain
from monitor.models import Document, Feed
from monitor.sitegen import SiteArticle, load_demo_articles, start_demo_site
from monitor.store import Store
from monitor.watchlist import load_watchlist

REPO = Path(__file__).resolve().parents[1]
MET_WATCHLIST = REPO / "watchlists" / "met-police.toml"
IOPC_PAGE = "/ledger/ledger-iopc-night-owls-whatsapp"
WEATHER_PAGE = "/ledger/ledger-met-office-amber-wind-warning"


# -- helpers shared with the other command-line test modules -------------------------------------


@contextmanager
def kept_logging() -> Iterator[None]:
    """Put the project's loggers back as they were: each command sets them up for itself."""
    saved = []
    for name in ("monitor", "apscheduler"):
        log = logging.getLogger(name)
        saved.append((log, list(log.handlers), log.level, log.propagate))
    try:
        yield
    finally:
        for log, handlers, level, propagate in saved:
            log.handlers[:] = handlers
            log.setLevel(level)
            log.propagate = propagate


def invoke(*args: str, env: Mapping[str, str | None] | None = None) -> Result:
    """Run `monitor ARGS` in this process; MONITOR_CONFIG only when the test sets it."""
    with kept_logging():
        return CliRunner().invoke(
            cli, list(args), env={"MONITOR_CONFIG": None, **(env or {})}, prog_name="monitor"
        )


def succeeded(result: Result) -> Result:
    """The result, after checking the command worked."""
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert result.exit_code == 0, result.output
    return result


def user_error(result: Result, code: int) -> str:
    """The one line a user error prints, after checking it is one line, on stderr, with the
    expected exit status and no traceback."""
    assert isinstance(result.exception, SystemExit), result.exc_info
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert result.stdout == ""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def write_config(root: Path, feeds: Sequence[tuple[str, str]], extra: str = "") -> Path:
    """A project folder: config.toml for these feeds (loopback allowed, one extraction
    process) and the shipped Met Police watchlist."""
    (root / "watchlists").mkdir(parents=True, exist_ok=True)
    shutil.copy(MET_WATCHLIST, root / "watchlists" / MET_WATCHLIST.name)
    lines = [
        "# the newsroom's monitor",
        "[monitor]",
        'database = "monitor.db"   # beside this file',
        "",
        "[fetch]",
        'allow_addresses = ["127.0.0.1"]',
        "",
        "[extract]",
        "workers = 1",
        extra,
    ]
    for name, url in feeds:
        lines += ["", "[[feeds]]", f"name = {toml_string(name)}", f"url = {toml_string(url)}"]
    config = root / "config.toml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return config


def copy_project(config: Path, dest: Path) -> Path:
    """A copy of a project folder (database included), for a test that changes it."""
    shutil.copytree(config.parent, dest)
    return dest / config.name


def demo_texts() -> dict[str, SiteArticle]:
    """The demo's articles by slug: what the sample site serves."""
    return {a.slug: a for arts in load_demo_articles(datetime.now(UTC)).values() for a in arts}


def mentions(article: SiteArticle, word: str) -> bool:
    text = " ".join((article.title, *article.paragraphs))
    return re.search(rf"(?<![\w]){re.escape(word)}(?![\w])", text) is not None


@pytest.fixture(scope="module")
def demo_site() -> Iterator[tuple[LoopbackSite, list[Feed]]]:
    site, feeds = start_demo_site(datetime.now(UTC))
    yield site, feeds
    site.stop()


@pytest.fixture(scope="module")
def polled(
    tmp_path_factory: pytest.TempPathFactory, demo_site: tuple[LoopbackSite, list[Feed]]
) -> Path:
    """A project that has polled the demo site once; tests only read it."""
    _site, feeds = demo_site
    config = write_config(tmp_path_factory.mktemp("polled"), [(f.name, f.url) for f in feeds])
    succeeded(invoke("--config", str(config), "poll"))
    return config


# -- --config, MONITOR_CONFIG and a missing config -----------------------------------------------

READING_COMMANDS = [
    ["check"],
    ["poll", "--feed", "The London Ledger"],
    ["hits", "--since", "2d"],
    ["feeds"],
    ["feeds", "export"],
    ["search", "IOPC"],
    ["test", "met-police", "--since", "30d"],
    ["rematch", "--since", "1d"],
    ["digest", "--dry-run"],
]


@pytest.mark.parametrize("command", READING_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_config_is_found_before_or_after_the_command_and_in_the_environment(
    tmp_path: Path,
    polled: Path,
    monkeypatch: pytest.MonkeyPatch,
    command: list[str],
) -> None:
    config = copy_project(polled, tmp_path / "project")
    elsewhere = tmp_path / "elsewhere"  # no config.toml here: the default would fail
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    # each of these ends in 0 only if the config was read
    succeeded(invoke("--config", str(config), *command))
    succeeded(invoke(*command, "--config", str(config)))
    succeeded(invoke(*command, env={"MONITOR_CONFIG": str(config)}))
    # ...and the default ./config.toml is what is read when none is given
    monkeypatch.chdir(config.parent)
    succeeded(invoke(*command))


def test_config_after_run_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`run` reads the config it is given: a broken watchlist there stops it at once."""
    config = write_config(tmp_path / "p", [])
    (config.parent / "watchlists" / "broken.toml").write_text("match = ['IOPC AND']\n")
    monkeypatch.chdir(tmp_path)
    result = invoke("run", "--config", str(config))
    assert result.exit_code == 1 and "Traceback" not in result.output
    # the daemon logs as it starts; its last word is the problem, as FILE:LINE:COL
    assert result.stderr.splitlines()[-1].startswith("p/watchlists/broken.toml:1:")


def test_config_after_demo_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write_config(tmp_path / "p", [])
    monkeypatch.chdir(tmp_path)
    result = succeeded(invoke("demo", "--config", str(config)))
    digest = Path(result.stdout.splitlines()[-1].removeprefix("digest: "))
    assert digest.parent == tmp_path / "p" / "digests" and digest.is_file()


@pytest.mark.parametrize(
    "args, env",
    [
        (["--config", "nowhere.toml", "hits"], {}),
        (["hits", "--config", "nowhere.toml"], {}),
        (["feeds", "--config", "nowhere.toml"], {}),
        (["hits"], {"MONITOR_CONFIG": "nowhere.toml"}),
        (["poll"], {}),
    ],
)
def test_a_missing_config_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], env: dict[str, str]
) -> None:
    monkeypatch.chdir(tmp_path)
    line = user_error(invoke(*args, env=env), 2)
    expected = "nowhere.toml" if ("nowhere.toml" in args or env) else "config.toml"
    assert f"no config file at {expected}" in line
    assert "--config" in line and "MONITOR_CONFIG" in line  # what to do about it
    assert not (tmp_path / "monitor.db").exists()


@pytest.mark.parametrize("env", [{}, {"MONITOR_CONFIG": "nowhere.toml"}])
def test_check_counts_a_missing_config_as_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    """check's exit status is 1 on any error with the config, a missing file included."""
    monkeypatch.chdir(tmp_path)
    result = invoke("check", env=env)
    assert result.exit_code == 1
    expected = env.get("MONITOR_CONFIG", "config.toml")
    assert result.stderr.splitlines() == [
        f"{expected}: no config file; pass --config PATH or set MONITOR_CONFIG",
        "1 error",
    ]


@pytest.mark.parametrize("args", [["--help"], ["--config", "nowhere.toml", "poll"]])
def test_the_command_freezes_the_collector_before_the_process_ends(
    tmp_path: Path, args: list[str]
) -> None:
    """Ending well or with an error, the command hands the interpreter's teardown objects the
    cyclic collector will skip (it would walk every module's objects again and again), and
    atexit handlers still run after it."""
    code = (
        "import atexit, gc, sys\n"
        "atexit.register(lambda: print('frozen at exit:', gc.get_freeze_count() > 0))\n"
        "from monitor.cli import main\n"
        f"sys.argv = ['monitor', *{args!r}]\n"
        "main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip().splitlines()[-1] == "frozen at exit: True", done.stderr
    assert done.returncode == (0 if args == ["--help"] else 2)


# -- every error a user can cause: one line, where, what to do -----------------------------------


def _broken_config(root: Path) -> list[str]:
    config = write_config(root, [], extra='[digest]\nat = "7am"')
    return ["--config", str(config), "poll"]


def _unknown_key(root: Path) -> list[str]:
    config = write_config(root, [], extra="[digest]\nsend_empyt = true")
    return ["--config", str(config), "hits"]


def _broken_watchlist(root: Path) -> list[str]:
    config = write_config(root, [])
    bad = "name = 'Met'\nmatch = [\n  'Met NEAR/5 (police OR NOT officer)',\n]\n"
    (root / "watchlists" / "bad.toml").write_text(bad)
    return ["--config", str(config), "poll"]


def _unknown_feed(root: Path) -> list[str]:
    config = write_config(root, [("BBC London", "http://127.0.0.1:9/rss")])
    return ["--config", str(config), "poll", "--feed", "BBC Londn"]


def _bad_since(root: Path) -> list[str]:
    return ["--config", str(write_config(root, [])), "hits", "--since", "3x"]


def _unreal_date(root: Path) -> list[str]:
    return ["--config", str(write_config(root, [])), "search", "IOPC", "--since", "2026-02-30"]


def _unknown_watchlist(root: Path) -> list[str]:
    config = write_config(root, [])
    (root / "story.txt").write_text("IOPC report\nThe IOPC said.\n")
    return ["--config", str(config), "test", "met-polic", str(root / "story.txt")]


def _missing_file(root: Path) -> list[str]:
    return ["--config", str(write_config(root, [])), "test", "met-police", "nowhere.html"]


def _folder_as_file(root: Path) -> list[str]:
    return ["--config", str(write_config(root, [])), "test", "met-police", str(root)]


def _file_and_since(root: Path) -> list[str]:
    args = _unknown_watchlist(root)
    return [*args[:3], "met-police", args[4], "--since", "2d"]


def _export_nowhere(root: Path) -> list[str]:
    config = write_config(root, [("Ledger", "https://ledger.example/rss")])
    return ["--config", str(config), "feeds", "export", "-o", str(root / "nowhere" / "f.opml")]


def _url_not_utf8(root: Path) -> list[str]:
    config = write_config(root, [])
    # a byte that is not UTF-8 in an argument arrives as a lone surrogate
    return ["--config", str(config), "feeds", "add", "http://127.0.0.1:9/\udcff"]


def _broken_watchlist_by_name(root: Path) -> list[str]:
    args = _unknown_watchlist(root)
    (root / "watchlists" / "b.toml").write_text('name = "Desk"\nmatch = ["(Met OR"]\n')
    return [*args[:3], "Desk", args[4]]


def _not_a_database(root: Path) -> list[str]:
    config = write_config(root, [])
    (root / "monitor.db").write_bytes(b"these are my notes, not a database\n" * 200)
    return ["--config", str(config), "hits"]


USER_ERRORS = {
    # case: (make the mistake, exit status, what the line must say)
    "bad config value": (_broken_config, 1, ["config.toml:11:", "at:", "HH:MM"]),
    "unknown config key": (_unknown_key, 1, ["config.toml:11:", "send_empyt", "send_empty"]),
    "broken watchlist": (_broken_watchlist, 1, ["watchlists/bad.toml:3:26:", "NOT inside NEAR"]),
    "unknown --feed": (_unknown_feed, 2, ["--feed", "config.toml", "'BBC Londn'", "'BBC London'"]),
    "bad --since": (_bad_since, 2, ["--since", "'3x'", "2d", "2026-11-01"]),
    "unreal --since date": (_unreal_date, 2, ["--since", "'2026-02-30'", "not a real date"]),
    "unknown watchlist": (_unknown_watchlist, 2, ["'met-polic'", "watchlists/", "met-police"]),
    "missing FILE": (_missing_file, 2, ["nowhere.html", "No such file"]),
    "broken watchlist by name": (_broken_watchlist_by_name, 1, ["b.toml:2:", "OR needs a term"]),
    "FILE and --since": (_file_and_since, 2, ["FILE", "--since", "not both"]),
    "export into no folder": (_export_nowhere, 1, ["cannot write", "f.opml", "No such file"]),
    "URL not UTF-8": (_url_not_utf8, 1, ["127.0.0.1:9", "control character"]),
    "FILE is a folder": (_folder_as_file, 2, ["FILE", "is a directory"]),
    "not a database": (_not_a_database, 1, ["monitor.db", "not a SQLite database", "database"]),
}


@pytest.mark.parametrize("case", USER_ERRORS)
def test_user_errors_are_one_line_with_place_and_remedy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    make, code, fragments = USER_ERRORS[case]
    monkeypatch.chdir(tmp_path)
    args = make(tmp_path / "p")
    line = user_error(invoke(*args), code)
    for fragment in fragments:
        assert fragment in line, line


def test_a_database_not_sqlite_is_left_as_it_was(tmp_path: Path) -> None:
    args = _not_a_database(tmp_path)
    before = (tmp_path / "monitor.db").read_bytes()
    for command in (["hits"], ["poll"], ["feeds"], ["search", "IOPC"]):
        user_error(invoke(*args[:2], *command), 1)
    assert (tmp_path / "monitor.db").read_bytes() == before


@pytest.mark.parametrize("command", [["hits"], ["search", "IOPC"]])
def test_a_since_longer_ago_than_the_calendar_means_everything(
    polled: Path, command: list[str]
) -> None:
    everything = succeeded(invoke("--config", str(polled), *command, "--json")).stdout
    assert json.loads(everything)
    for ago in ("3000000d", "1000000000000d"):
        since = invoke("--config", str(polled), *command, "--since", ago, "--json")
        assert succeeded(since).stdout == everything


@pytest.mark.parametrize(
    ("command", "said"),
    [
        (["hits"], "0 hits\n"),
        (["hits", "--json"], "[]\n"),
        (["search", "IOPC"], "0 articles\n"),
        (["rematch"], "rematched 0 articles: 0 new hits\n"),
        (["digest", "--dry-run"], "archive: no new hits waiting; nothing new to send\n"),
        (["feeds", "--json"], "[]\n"),
    ],
)
def test_reading_a_database_that_does_not_exist_makes_none_and_says_so(
    tmp_path: Path, command: list[str], said: str
) -> None:
    """A mistyped `database` path, or a config copy never polled: "0 hits" alone would read as
    no news, and the file (and its folder) would be made by a command that only reads."""
    config = write_config(tmp_path, [])
    config.write_text(config.read_text().replace('"monitor.db"', '"typo/monitor.db"'))
    result = succeeded(invoke("--config", str(config), *command))
    assert result.stdout == said
    assert result.stderr == (
        f"note: no database at {tmp_path / 'typo' / 'monitor.db'}: nothing has been polled"
        " into it yet (monitor poll, or monitor run)\n"
    )
    assert not (tmp_path / "typo").exists()


def test_previewing_a_watchlist_before_any_poll_makes_no_database(tmp_path: Path) -> None:
    config = write_config(tmp_path, [])
    config.write_text(config.read_text().replace('"monitor.db"', '"typo/monitor.db"'))
    result = succeeded(invoke("--config", str(config), "test", "met-police", "--since", "30d"))
    assert "would newly match: 0" in result.stdout
    assert "nothing has been polled into it yet" in result.stderr
    assert not (tmp_path / "typo").exists()


def test_a_dry_run_with_send_empty_renders_the_empty_digest_before_any_poll(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, [], extra="[digest]\nsend_empty = true\n")
    shown = succeeded(invoke("--config", str(config), "digest", "--dry-run")).stdout.strip()
    assert shown.endswith(".html") and Path(shown).is_file()


def test_feeds_before_any_poll_lists_the_configured_feeds_as_new(tmp_path: Path) -> None:
    feeds = [("Zeta News", "https://zeta.example/rss"), ("Alpha Post", "https://alpha.example/")]
    never = write_config(tmp_path / "never", feeds)
    never.write_text(never.read_text().replace('"monitor.db"', '"typo/monitor.db"'))
    # the same feeds in a database made (by the store itself) and never polled
    made = write_config(tmp_path / "made", feeds)
    store = Store.open(tmp_path / "made" / "monitor.db")
    store.sync_feeds(load_settings(made).feeds)
    store.close()
    for as_json in ([], ["--json"]):
        shown = succeeded(invoke("--config", str(never), "feeds", *as_json)).stdout
        assert shown == succeeded(invoke("--config", str(made), "feeds", *as_json)).stdout
    listed = json.loads(succeeded(invoke("--config", str(never), "feeds", "--json")).stdout)
    assert [(f["name"], f["status"]) for f in listed] == [
        ("Alpha Post", "new"),
        ("Zeta News", "new"),
    ]
    assert not (tmp_path / "never" / "typo").exists()


def test_a_broken_watchlist_stops_rematch_before_it_looks_for_a_database(tmp_path: Path) -> None:
    config = write_config(tmp_path, [])
    (tmp_path / "watchlists" / "broken.toml").write_text("match = ['Met NEAR/0 police']\n")
    result = invoke("--config", str(config), "rematch")
    assert result.exit_code == 1 and "broken.toml:1" in result.stderr
    assert not (tmp_path / "monitor.db").exists()


def test_malformed_search_query_shows_the_query_and_a_caret(polled: Path) -> None:
    query = 'IOPC OR (Met NEAR/5 "vetting'
    result = invoke("--config", str(polled), "search", query)
    assert result.exit_code == 2 and "Traceback" not in result.output
    message, shown, caret = result.stderr.splitlines()
    assert "unclosed quote" in message
    assert shown.strip() == query
    assert caret.strip() == "^"
    assert shown.index(query) + query.index('"') == caret.index("^")


def wait_for(condition: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    """Poll a condition until it holds, or fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_a_second_daemon_names_the_running_one(tmp_path: Path) -> None:
    config = write_config(tmp_path, [])
    lock = tmp_path / "monitor.db.lock"
    daemon = subprocess.Popen(
        [sys.executable, "-m", "monitor", "--config", str(config), "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: lock.exists() and lock.read_text().strip(), "the daemon's lock")
        result = invoke("--config", str(config), "run")
        assert result.exit_code == 1 and "Traceback" not in result.output
        line = result.stderr.splitlines()[-1]  # after the daemon's own log lines
        assert f"pid {daemon.pid}" in line
        assert str(tmp_path / "monitor.db") in line and "stop it first" in line
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, err = daemon.communicate(timeout=60)
    assert daemon.returncode == 0, err
    assert "Traceback" not in err


# -- monitor test WATCHLIST FILE -----------------------------------------------------------------


def test_text_file_first_line_is_the_title(tmp_path: Path) -> None:
    config = write_config(tmp_path, [])
    (tmp_path / "watchlists" / "headlines.toml").write_text("match = ['title:IOPC']\n")
    in_title = tmp_path / "a.txt"
    in_title.write_text("IOPC opens inquiry\nA watchdog said on Monday it had opened an inquiry.\n")
    in_body = tmp_path / "b.txt"
    in_body.write_text(
        "Watchdog opens inquiry\nThe IOPC said on Monday it had opened an inquiry.\n"
    )
    got = json.loads(
        succeeded(
            invoke("--config", str(config), "test", "headlines", str(in_title), "--json")
        ).stdout
    )
    assert got["hit"] is True and got["matched"] == ["title:IOPC"]
    got = json.loads(
        succeeded(
            invoke("--config", str(config), "test", "headlines", str(in_body), "--json")
        ).stdout
    )
    assert got["hit"] is False and got["matched"] == []


def test_json_is_the_spec_object(tmp_path: Path) -> None:
    config = write_config(tmp_path, [])
    (tmp_path / "watchlists" / "met.toml").write_text(
        "name = 'Met'\nmatch = ['IOPC', 'vetting']\nexclude = ['title:obituary']\n"
    )
    story = tmp_path / "story.txt"
    story.write_text("Obituary: a former officer\nShe later worked for the IOPC in London.\n")
    result = succeeded(invoke("--config", str(config), "test", "met", str(story), "--json"))
    got = json.loads(result.stdout)
    assert {"watchlist", "hit", "matched", "excluded_by", "snippet"} <= set(got)
    assert got["watchlist"] == "Met"
    assert got["hit"] is False
    assert got["matched"] == ["IOPC"]
    assert got["excluded_by"] == ["title:obituary"]
    assert isinstance(got["snippet"], str) and "IOPC" in got["snippet"]


def test_test_tells_the_mistakes_check_would(tmp_path: Path) -> None:
    """Trying out a watchlist is when a lowercase met or a glued '*' should be pointed out;
    the JSON on stdout stays parseable."""
    config = write_config(tmp_path, [])
    (tmp_path / "watchlists" / "met.toml").write_text("match = ['met NEAR police', 'IOPC']\n")
    story = tmp_path / "story.txt"
    story.write_text("Met officers face IOPC inquiry\nThe IOPC said nine officers were involved.\n")
    result = succeeded(invoke("--config", str(config), "test", "met", str(story), "--json"))
    assert json.loads(result.stdout)["matched"] == ["IOPC"]
    assert result.stderr.startswith(f"{tmp_path}/watchlists/met.toml:1:11: warning: match: 'met'")
    assert "is all lowercase, so it also matches the verb" in result.stderr
    (tmp_path / "watchlists" / "met.toml").write_text("match = ['Met NEAR police', 'IOPC']\n")
    assert succeeded(invoke("--config", str(config), "test", "met", str(story))).stderr == ""


def test_watchlist_by_path_file_name_or_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path / "p", [])
    story = tmp_path / "story.txt"
    story.write_text("Met officers face IOPC inquiry\nThe IOPC said nine officers were involved.\n")
    monkeypatch.chdir(tmp_path)
    outputs = set()
    for spec in ("met-police", "Met Police", "p/watchlists/met-police.toml"):
        result = succeeded(invoke("--config", str(config), "test", spec, str(story)))
        outputs.add(result.stdout)
        assert result.stdout.startswith("Met Police: HIT\n")
        assert "  matched:     " in result.stdout and "IOPC" in result.stdout
        assert "[IOPC]" in result.stdout  # the snippet marks what matched
    assert len(outputs) == 1


def test_html_goes_through_the_pipelines_extraction(
    tmp_path: Path, polled: Path, demo_site: tuple[LoopbackSite, list[Feed]]
) -> None:
    site, _ = demo_site
    page = httpx.get(site.url(IOPC_PAGE)).content
    (tmp_path / "iopc.html").write_bytes(page)
    got = json.loads(
        succeeded(
            invoke(
                "--config", str(polled), "test", "met-police", str(tmp_path / "iopc.html"), "--json"
            )
        ).stdout
    )
    stored = json.loads(succeeded(invoke("--config", str(polled), "hits", "--json")).stdout)
    [hit] = [h for h in stored if h["url"] == site.url(IOPC_PAGE)]
    # the same text as the poll extracted, so the same queries and the same snippet
    assert got["hit"] is True
    assert got["matched"] == hit["matched"]
    assert got["snippet"] == hit["snippet"]


def test_a_url_is_fetched_and_extracted_as_the_poll_does(
    polled: Path, demo_site: tuple[LoopbackSite, list[Feed]]
) -> None:
    """`monitor test WATCHLIST URL`: the page of a story, straight from the web, gives the
    queries and snippet the poll stored for it; a page beside the subject is no hit."""
    site, _ = demo_site
    url = site.url(IOPC_PAGE)
    got = json.loads(
        succeeded(invoke("--config", str(polled), "test", "met-police", url, "--json")).stdout
    )
    stored = json.loads(succeeded(invoke("--config", str(polled), "hits", "--json")).stdout)
    [hit] = [h for h in stored if h["url"] == url]
    assert (got["hit"], got["matched"], got["snippet"]) == (True, hit["matched"], hit["snippet"])
    stored = dict(got["stored"])
    assert datetime.fromisoformat(stored.pop("first_seen")) == datetime.fromisoformat(
        hit["first_seen"]
    )  # the article's first sight is its hit's: both come from the one poll
    assert stored == {
        "title": hit["title"],
        "feed": hit["feed"],
        "full_text": True,
        "extract_error": None,
        "to_fetch_again": False,
        "hit_stored": True,
    }
    shown = succeeded(invoke("--config", str(polled), "test", "met-police", url)).stdout
    assert shown.startswith("Met Police: HIT\n") and "[IOPC]" in shown
    said = f"from {hit['feed']}; its text was matched; a hit stored\n"
    assert re.search(r"\n  stored: +first seen \d{4}-\d\d-\d\d \d\d:\d\d " + re.escape(said), shown)
    weather = invoke("--config", str(polled), "test", "met-police", site.url(WEATHER_PAGE))
    assert succeeded(weather).stdout.startswith("Met Police: no hit\n")
    assert succeeded(weather).stdout.endswith("; its text was matched; no hit stored\n")


def test_a_stored_page_is_tested_under_the_title_the_poll_matched_it_under(tmp_path: Path) -> None:
    """The feed calls it an obituary, the page's headline does not: the poll excluded it by
    `title:obituary`, and `monitor test URL` must say the same, not call it a hit."""
    body = "".join(
        f"<p>Tributes were paid on day {n} to PC John Smith, who served the Metropolitan Police"
        f" for {n + 20} years in south London, the IOPC said in its statement number {n}.</p>"
        for n in range(8)
    )
    page = (
        "<html><head><title>Tributes paid to PC John Smith</title></head><body><article>"
        f"<h1>Tributes paid to PC John Smith</h1>{body}</article></body></html>"
    )
    with LoopbackSite() as site:
        url = site.add("/tribute.html", page)
        rss = (
            '<?xml version="1.0"?><rss version="2.0"><channel><title>Ledger</title>'
            f"<item><title>Obituary: PC John Smith</title><link>{url}</link>"
            "<description>PC John Smith of the Metropolitan Police has died.</description>"
            "</item></channel></rss>"
        )
        config = write_config(
            tmp_path, [("Ledger", site.add("/rss.xml", rss, "application/rss+xml"))]
        )
        (tmp_path / "watchlists" / "met-police.toml").write_text(
            "name = 'Met'\nmatch = ['IOPC']\nexclude = ['title:obituary']\n"
        )
        succeeded(invoke("--config", str(config), "poll"))
        assert json.loads(succeeded(invoke("--config", str(config), "hits", "--json")).stdout) == []
        got = json.loads(
            succeeded(invoke("--config", str(config), "test", "Met", url, "--json")).stdout
        )
    assert (got["hit"], got["excluded_by"]) == (False, ["title:obituary"])
    assert got["stored"]["title"] == "Obituary: PC John Smith"


COOKIE_WALL = (
    "<html><head><title>Before you continue</title></head><body><div class='consent'>"
    "<h1>We value your privacy</h1><p>We and our 842 partners store and access information on"
    " your device, such as cookies, and process personal data such as unique identifiers for"
    " personalised advertising and content, audience research and services development.</p>"
    "<p>With your permission we and our partners may use precise geolocation data. You may"
    " click to consent to our processing as described above.</p></div></body></html>"
)


@pytest.mark.parametrize(
    "page",
    [
        Response(403, b"Forbidden", {"Content-Type": "text/html"}),  # robots turned away
        Response(200, COOKIE_WALL.encode(), {"Content-Type": "text/html; charset=utf-8"}),
    ],
    ids=["refused", "cookie-wall"],
)
def test_a_page_that_cannot_be_had_is_matched_on_the_full_text_its_feed_carries(
    tmp_path: Path, page: Response
) -> None:
    """The feed's one-line description says nothing of the Met; its content:encoded is the
    whole article. Matching the description alone missed the story."""
    paragraphs = [
        "A boy of 14 was stopped on his way home from school in Hackney on Tuesday.",
        "Video of the stop, filmed by a neighbour, was shared thousands of times.",
        "The IOPC is investigating five Metropolitan Police officers over the arrest.",
    ]
    content = "".join(f"&lt;p&gt;{p}&lt;/p&gt;" for p in paragraphs)
    with LoopbackSite() as site:
        site.routes["/estate.html"] = page
        rss = (
            '<?xml version="1.0"?><rss version="2.0"'
            ' xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel><title>Ledger'
            f"</title><item><title>Schoolboy handcuffed on estate</title>"
            f"<link>{site.url('/estate.html')}</link>"
            "<description>A boy was handcuffed on his way home.</description>"
            f"<content:encoded>{content}</content:encoded></item></channel></rss>"
        )
        config = write_config(
            tmp_path, [("Ledger", site.add("/rss.xml", rss, "application/rss+xml"))]
        )
        succeeded(invoke("--config", str(config), "poll"))
        hits = json.loads(succeeded(invoke("--config", str(config), "hits", "--json")).stdout)
    [hit] = hits
    assert hit["full_text"] is False  # the page's own text was not had
    assert "IOPC" in hit["matched"]
    assert "IOPC is investigating five Metropolitan Police officers" in hit["snippet"]


def test_a_link_copied_from_a_google_alert_is_tested_as_the_article_it_links_to(
    polled: Path, demo_site: tuple[LoopbackSite, list[Feed]], looked_up: list[str]
) -> None:
    site, _ = demo_site
    url = site.url(IOPC_PAGE)
    alert = f"https://www.google.com/url?rct=j&sa=t&url={url}&ct=ga&cd=CAIyGTg5&usg=AOvVaw2e"
    shown = [
        json.loads(
            succeeded(invoke("--config", str(polled), "test", "met-police", link, "--json")).stdout
        )
        for link in (url, alert)
    ]
    assert shown[0]["hit"] is True and shown[0]["stored"]["hit_stored"] is True
    assert shown[1] == shown[0]
    assert set(looked_up) == {"127.0.0.1"}


def test_a_url_no_polled_feed_carried_is_said_to_be_unknown(
    tmp_path: Path, demo_site: tuple[LoopbackSite, list[Feed]]
) -> None:
    site, _ = demo_site
    config = write_config(tmp_path, [])  # nothing polled yet: no database
    args = ("--config", str(config), "test", "met-police", site.url(IOPC_PAGE))
    shown = succeeded(invoke(*args)).stdout
    assert shown.endswith("\n  stored:      no; no feed that was polled has carried it\n")
    assert json.loads(succeeded(invoke(*args, "--json")).stdout)["stored"] is None
    assert not (tmp_path / "monitor.db").exists()  # looking made no database


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        ("missing", "error: page not fetched: HTTP 404 from "),
        ("pdf", "error: http://127.0.0.1:"),
        ("private", "error: page not fetched: "),
    ],
)
def test_a_url_that_gives_no_article_is_one_line_saying_why(
    tmp_path: Path, answer: str, said: str
) -> None:
    with LoopbackSite() as site:
        site.add("/report.pdf", b"%PDF-1.7 the IOPC report", "application/pdf")
        urls = {"missing": site.url("/nowhere"), "pdf": site.url("/report.pdf")}
        if answer == "private":  # a config that does not allow loopback: the guard refuses
            config = tmp_path / "config.toml"
            config.write_text('[monitor]\ndatabase = "monitor.db"\n')
            (tmp_path / "watchlists").mkdir()
            shutil.copy(MET_WATCHLIST, tmp_path / "watchlists")
            urls["private"] = site.url("/report.pdf")
        else:
            config = write_config(tmp_path, [])
        line = user_error(invoke("--config", str(config), "test", "met-police", urls[answer]), 1)
        requests = len(site.requests)
    assert line.startswith(said), line
    if answer == "pdf":
        assert line.endswith("not an HTML page (application/pdf)")
    if answer == "private":
        assert "127.0.0.1" in line and requests == 0  # refused before any request


def test_an_html_file_is_extracted_under_the_pipelines_limits(tmp_path: Path) -> None:
    """A page the pipeline would not read, or would kill, is not read in full by `monitor
    test` either: it had no byte cap, time limit or memory limit of its own (a 20 MB page
    ran on for minutes)."""
    config = write_config(tmp_path / "p", [], extra='timeout = "1s"')
    config.write_text(config.read_text().replace("[fetch]\n", '[fetch]\nmax_bytes = "2MB"\n'))
    paragraph = b"<p>Metropolitan Police officers were dismissed, the IOPC said.</p>\n"
    body = b"<html><body><article>" + paragraph * 25_000 + b"</article></body></html>"
    (tmp_path / "slow.html").write_bytes(body)
    (tmp_path / "big.html").write_bytes(body + paragraph * 10_000)
    assert 1_000_000 < len(body) < 2_000_000 < len(body + paragraph * 10_000)
    args = ["--config", str(config), "test", "met-police"]
    big = invoke(*args, str(tmp_path / "big.html"))
    assert big.exit_code == 1 and "over [fetch] max_bytes (2,000,000)" in big.stderr
    started = time.monotonic()
    slow = invoke(*args, str(tmp_path / "slow.html"))
    assert slow.exit_code == 1, slow.output
    assert "not extracted:" in slow.stderr and "1s" in slow.stderr, slow.stderr
    assert time.monotonic() - started < 30


def test_html_drops_what_is_beside_the_article(
    tmp_path: Path, demo_site: tuple[LoopbackSite, list[Feed]]
) -> None:
    """The weather page links to Met Police headlines in its sidebar and between paragraphs:
    as a page it is no hit; read as raw text, those links would make it one."""
    site, _ = demo_site
    config = write_config(tmp_path, [])
    page = httpx.get(site.url(WEATHER_PAGE)).content
    (tmp_path / "weather.html").write_bytes(page)
    (tmp_path / "weather.txt").write_bytes(page)
    as_page = succeeded(
        invoke(
            "--config", str(config), "test", "met-police", str(tmp_path / "weather.html"), "--json"
        )
    )
    as_text = succeeded(
        invoke(
            "--config", str(config), "test", "met-police", str(tmp_path / "weather.txt"), "--json"
        )
    )
    assert json.loads(as_page.stdout)["hit"] is False
    assert json.loads(as_text.stdout)["hit"] is True
    extracted = extract_page("file:///weather.html", page, {})
    w = load_watchlist(tmp_path / "watchlists" / "met-police.toml")
    assert explain(w, Document(extracted.title or "", extracted.text)).hit is False


# -- monitor test WATCHLIST --since: the preview of an edited watchlist --------------------------


def test_preview_lists_what_an_edit_would_add_and_drop(
    tmp_path: Path, demo_site: tuple[LoopbackSite, list[Feed]]
) -> None:
    _site, feeds = demo_site
    config = write_config(tmp_path, [(f.name, f.url) for f in feeds])
    watchlists = tmp_path / "watchlists"
    (watchlists / "met-police.toml").unlink()
    edited = watchlists / "desk.toml"
    edited.write_text("name = 'Desk'\nmatch = ['IOPC']\n")
    succeeded(invoke("--config", str(config), "poll"))
    # the edit: from the watchdog's name to vetting and the Casey review
    edited.write_text("name = 'Desk'\nmatch = ['vetting', '\"casey review\"']\n")

    def found(query: str) -> set[str]:
        out = succeeded(invoke("--config", str(config), "search", query, "--json")).stdout
        return {a["url"] for a in json.loads(out)}

    before, after = found("IOPC"), found('vetting OR "casey review"')
    assert before - after and after - before  # the edit both adds and drops articles
    result = succeeded(invoke("--config", str(config), "test", "Desk", "--since", "30d", "--json"))
    got = json.loads(result.stdout)
    assert {a["url"] for a in got["newly_matching"]} == after - before
    assert {a["url"] for a in got["no_longer_matching"]} == before - after
    assert got["unchanged"] == len(before & after)

    text = succeeded(invoke("--config", str(config), "test", "desk", "--since", "30d")).stdout
    titles = {a["url"]: a["title"] for a in got["newly_matching"] + got["no_longer_matching"]}
    for url in after - before:
        assert f"] {titles[url]}" in _lines_starting(text, "  + ")
    for url in before - after:
        assert f"] {titles[url]}" in _lines_starting(text, "  - ")


def _lines_starting(text: str, prefix: str) -> str:
    return "\n".join(line for line in text.splitlines() if line.startswith(prefix))


def test_preview_only_looks_back_as_far_as_asked(tmp_path: Path, polled: Path) -> None:
    config = copy_project(polled, tmp_path / "p")
    tomorrow = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%d")
    got = json.loads(
        succeeded(
            invoke("--config", str(config), "test", "met-police", "--since", tomorrow, "--json")
        ).stdout
    )
    assert got["newly_matching"] == [] and got["no_longer_matching"] == [] and got["unchanged"] == 0
    got = json.loads(
        succeeded(
            invoke("--config", str(config), "test", "met-police", "--since", "1d", "--json")
        ).stdout
    )
    assert got["unchanged"] == len(
        json.loads(succeeded(invoke("--config", str(config), "hits", "--json")).stdout)
    )


def test_preview_since_ever_says_all_stored_articles(polled: Path) -> None:
    """A --since longer ago than the calendar goes reads as since ever; the header said
    'stored articles since 1-01-01 23:58' (year 1 in London's local mean time)."""
    got = succeeded(invoke("--config", str(polled), "test", "met-police", "--since", "3000000d"))
    header = got.stdout.splitlines()[0]
    assert header.startswith("Met Police: all stored articles, as "), header
    assert "since" not in header


def test_test_needs_a_file_or_since(polled: Path) -> None:
    line = user_error(invoke("--config", str(polled), "test", "met-police"), 2)
    assert "FILE" in line and "--since" in line


# -- monitor search ------------------------------------------------------------------------------


def test_search_finds_stored_articles_newest_first(
    polled: Path, demo_site: tuple[LoopbackSite, list[Feed]]
) -> None:
    site, _ = demo_site
    articles = demo_texts()
    expected = sorted(
        (a for a in articles.values() if mentions(a, "IOPC")),
        key=lambda a: a.published,
        reverse=True,
    )
    assert len(expected) >= 2
    result = succeeded(invoke("--config", str(polled), "search", "IOPC", "--json"))
    got = json.loads(result.stdout)
    assert [a["title"] for a in got] == [a.title for a in expected]
    assert all(a["url"].startswith(site.base) and a["feed"] for a in got)
    text = succeeded(invoke("--config", str(polled), "search", "IOPC")).stdout
    assert [line.split("] ", 1)[1] for line in text.splitlines() if "] " in line] == [
        a.title for a in expected
    ]
    assert text.splitlines()[-1] == f"{len(expected)} articles"


def test_a_search_cut_short_by_its_limit_says_so(polled: Path) -> None:
    everything = json.loads(
        succeeded(invoke("--config", str(polled), "search", "IOPC", "--json")).stdout
    )
    assert len(everything) >= 2
    limit = str(len(everything) - 1)
    cut = succeeded(invoke("--config", str(polled), "search", "IOPC", "--limit", limit, "--json"))
    assert json.loads(cut.stdout) == everything[:-1]
    assert cut.stderr == f"more than {limit} match; these are the newest: raise --limit\n"
    whole = invoke("--config", str(polled), "search", "IOPC", "--limit", str(len(everything)))
    assert succeeded(whole).stderr == ""
    line = user_error(invoke("--config", str(polled), "search", "IOPC", "--limit", "0"), 2)
    assert "--limit" in line


def test_snippet_highlighting_follows_no_color(polled: Path, tmp_path: Path) -> None:
    story = tmp_path / "story.txt"
    story.write_text("Met officers face IOPC inquiry\nThe IOPC said nine officers were involved.\n")
    env = {k: v for k, v in os.environ.items() if k != "MONITOR_CONFIG"}
    command = [sys.executable, "-m", "monitor", "--config", str(polled), "test", "met-police"]
    shown = {}
    for name, extra in (("colour", {"TERM": "xterm"}), ("no colour", {"NO_COLOR": "1"})):
        master, slave = pty.openpty()
        proc = subprocess.Popen(
            [*command, str(story)], stdout=slave, stderr=subprocess.PIPE, env={**env, **extra}
        )
        os.close(slave)
        try:
            shown[name] = read_pty(master, proc).decode()
            proc.wait(timeout=60)
        finally:
            os.close(master)
            assert proc.stderr is not None
            proc.stderr.close()
    assert "\x1b[1;33mIOPC\x1b[0m" in shown["colour"]
    assert "[IOPC]" in shown["no colour"] and "\x1b[" not in shown["no colour"]


def test_search_smart_case_and_since(polled: Path) -> None:
    articles = demo_texts().values()
    upper = json.loads(succeeded(invoke("--config", str(polled), "search", "Met", "--json")).stdout)
    lower = json.loads(succeeded(invoke("--config", str(polled), "search", "met", "--json")).stdout)
    assert len(upper) == sum(mentions(a, "Met") for a in articles)
    assert len(lower) > len(upper)  # the verb too
    tomorrow = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%d")
    none = json.loads(
        succeeded(
            invoke("--config", str(polled), "search", "met", "--since", tomorrow, "--json")
        ).stdout
    )
    assert none == []


# -- monitor poll: plain lines on a pipe, a progress display on a terminal -----------------------


def _stored_articles(config: Path) -> int:
    with closing(sqlite3.connect(config.parent / "monitor.db")) as db:
        return int(db.execute("SELECT COUNT(*) FROM articles").fetchone()[0])


@pytest.mark.parametrize("output", ["reader gone", "disk full", "closed"])
def test_a_poll_whose_output_cannot_be_written_still_polls_and_stores_every_feed(
    tmp_path: Path, demo_site: tuple[LoopbackSite, list[Feed]], output: str
) -> None:
    """`monitor poll | head -1`, a log on a full disk, `monitor poll >&-`: the lines that
    cannot be written are lost, not the cycle. Only a full disk is an error: a script must not
    take a cut list for a whole."""
    _site, feeds = demo_site
    config = write_config(tmp_path, [(f.name, f.url) for f in feeds])
    env = {k: v for k, v in os.environ.items() if k != "MONITOR_CONFIG"}
    command = [sys.executable, "-m", "monitor", "--config", str(config), "poll"]
    if output == "reader gone":
        reader, writer = os.pipe()
        os.close(reader)  # every write fails with EPIPE, from the first line on
        with os.fdopen(writer, "wb") as stdout:
            done = subprocess.run(command, stdout=stdout, stderr=subprocess.PIPE, env=env)
    elif output == "disk full":
        with open("/dev/full", "wb") as stdout:
            done = subprocess.run(command, stdout=stdout, stderr=subprocess.PIPE, env=env)
    else:
        done = subprocess.run(
            command, stderr=subprocess.PIPE, env=env, preexec_fn=lambda: os.close(1)
        )
    stderr = done.stderr.decode()
    assert "Traceback" not in stderr
    if output == "disk full":
        assert done.returncode == 1
        assert stderr.strip().splitlines()[-1] == (
            "error: could not write the output: No space left on device"
        )
    else:
        assert done.returncode == 0, stderr
    total = sum(len(arts) for arts in load_demo_articles(datetime.now(UTC)).values())
    assert _stored_articles(config) == total


def test_poll_prints_plain_lines_when_not_a_terminal(
    tmp_path: Path, demo_site: tuple[LoopbackSite, list[Feed]]
) -> None:
    site, feeds = demo_site
    config = write_config(
        tmp_path, [*[(f.name, f.url) for f in feeds], ("Gone Daily", site.url("/gone/rss.xml"))]
    )
    result = succeeded(invoke("--config", str(config), "poll"))
    lines = result.stdout.splitlines()
    assert "\x1b" not in result.stdout  # no terminal control codes in a pipe
    per_outlet = {name: len(arts) for name, arts in load_demo_articles(datetime.now(UTC)).items()}
    for name, count in per_outlet.items():
        [line] = [x for x in lines if f" {name}: " in x]
        assert line.startswith("ok ") and f": {count} new articles, " in line
    [failed] = [x for x in lines if "Gone Daily" in x]
    assert failed.startswith("failed ") and "HTTP 404" in failed
    total = sum(per_outlet.values())
    assert f"polled {len(feeds) + 1} feeds in " in result.stdout
    assert f"{len(feeds)} ok, 0 not modified, 1 failed" in result.stdout
    assert f"new articles: {total}\n" in result.stdout
    # a second poll finds nothing new and says so
    again = succeeded(invoke("--config", str(config), "poll")).stdout
    assert f"0 ok, {len(feeds)} not modified, 1 failed" in again and "new articles: 0" in again


def read_pty(master: int, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> bytes:
    """Everything a subprocess wrote to its terminal until it exited."""
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the other side closed: the process is gone
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    return out


def test_poll_shows_progress_on_a_terminal(
    tmp_path: Path, demo_site: tuple[LoopbackSite, list[Feed]]
) -> None:
    site, feeds = demo_site
    # a name rich would read as markup (an unbalanced closing tag) or as an emoji code
    gone = "Gone [/] Daily :x:"
    config = write_config(
        tmp_path, [*[(f.name, f.url) for f in feeds], (gone, site.url("/gone/rss.xml"))]
    )
    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "100"}
    env.pop("MONITOR_CONFIG", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", "--config", str(config), "poll"],
        stdin=slave,
        stdout=slave,
        stderr=subprocess.PIPE,
        env=env,
    )
    os.close(slave)
    try:
        screen = read_pty(master, proc).decode("utf-8", "replace")
        proc.wait(timeout=60)
    finally:
        os.close(master)
        assert proc.stderr is not None
        stderr = proc.stderr.read().decode()
        proc.stderr.close()
    assert proc.returncode == 0, stderr
    total = len(feeds) + 1
    assert "polling" in screen and f"{total}/{total}" in screen  # the progress bar, counting
    assert "\x1b[" in screen  # drawn and redrawn in place
    assert f"failed        {gone}: HTTP 404" in screen  # failures stay on screen
    assert f"polled {total} feeds in " in screen and "1 failed" in screen
    assert "Traceback" not in screen + stderr


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--log-format", "xml", "hits"], "error: Invalid value for '--log-format': 'xml'"),
        (["--config", "{folder}", "hits"], "error: Invalid value for '--config': File '{folder}'"),
        (["hits", "--config", "{folder}"], "error: Invalid value for '--config': File '{folder}'"),
        (["hits"], "error: {folder} is a folder, not a config file"),  # from MONITOR_CONFIG
    ],
)
def test_a_usage_mistake_before_the_command_is_one_line_too(
    tmp_path: Path, args: list[str], said: str
) -> None:
    env = {**os.environ, "MONITOR_CONFIG": str(tmp_path)}
    args = [a.format(folder=tmp_path) for a in args]
    done = subprocess.run(
        [sys.executable, "-m", "monitor", *args], capture_output=True, text=True, env=env
    )
    assert done.returncode == 2
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith(said.format(folder=tmp_path)), line


# -- help and version ----------------------------------------------------------------------------


def test_python_dash_m_monitor_help() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "monitor", "--help"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("Usage: monitor ")
    commands = re.findall(r"^  (\w+)\s", proc.stdout.split("Commands:")[1], re.MULTILINE)
    assert set(commands) >= {"run", "poll", "digest", "check", "test", "hits", "feeds", "search"}
    assert {"rematch", "demo"} <= set(commands)


def test_version() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "monitor", "--version"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"monitor, version {monitor.__version__}\n"


# -- a watchlist renamed --------------------------------------------------------------------------


def test_a_renamed_watchlist_keeps_its_hits_pending_and_rematch_records_none_again(
    tmp_path: Path, polled: Path
) -> None:
    """Hits are kept under a watchlist's name. An edit of `name` left them behind: the pending
    ones were in no digest ('no new hits waiting'), and rematch recorded each again under the
    new name. The hits now follow the file's new name."""
    config = copy_project(polled, tmp_path / "project")
    db = config.parent / "monitor.db"
    with closing(sqlite3.connect(db)) as conn:
        before = conn.execute("SELECT COUNT(*) FROM hits WHERE watchlist = 'Met Police'").fetchone()
    assert before[0] > 0
    path = config.parent / "watchlists" / MET_WATCHLIST.name
    path.write_text(path.read_text().replace('name = "Met Police"', 'name = "London police"'))

    shown = succeeded(invoke("--config", str(config), "hits", "--watchlist", "London police"))
    assert f"{before[0]} hits" in shown.stdout
    preview = succeeded(invoke("--config", str(config), "test", "met-police", "--since", "30d"))
    assert "would newly match: 0" in preview.stdout, preview.stdout
    rematched = succeeded(invoke("--config", str(config), "rematch", "--since", "30d"))
    assert "0 new hits" in rematched.stdout, rematched.stdout
    digest = succeeded(invoke("--config", str(config), "digest"))
    assert digest.stdout.startswith(f"archive: {before[0]} hits, not emailed"), digest.stdout
    with closing(sqlite3.connect(db)) as conn:
        names = conn.execute("SELECT DISTINCT watchlist FROM hits").fetchall()
    assert names == [("London police",)]


def test_an_unknown_watchlist_lists_each_watchlist_once(tmp_path: Path) -> None:
    """The list named the shipped watchlist twice, by name and by file: 'Met Police,
    met-police'."""
    config = write_config(tmp_path, [])
    (tmp_path / "doc.txt").write_text("Met officer\nA Met officer spoke.\n", encoding="utf-8")
    result = invoke("--config", str(config), "test", "zebra", str(tmp_path / "doc.txt"))
    assert result.exit_code == 2
    assert result.stderr.rstrip().endswith("watchlists: Met Police (met-police.toml)")
