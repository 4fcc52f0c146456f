"""`monitor check`: errors as FILE:LINE: message (exit 1), warnings for likely mistakes (exit 0),
history warnings from the database (a quiet watchlist, a feed failing for a week), templates.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import Result

from monitor.config import load_settings
from monitor.loopback import LoopbackSite
from monitor.models import Feed
from monitor.runtime import Runtime
from monitor.store import to_db
from monitor.watchlist import load_watchlist
from tests.test_cli import invoke, kept_logging, write_config

NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def demo_site() -> Iterator[tuple[LoopbackSite, list[Feed]]]:
    from monitor.sitegen import start_demo_site

    site, feeds = start_demo_site(NOW)
    yield site, feeds
    site.stop()


@pytest.fixture(autouse=True)
def _here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # messages name files relative to where the user is


def check(config: Path) -> Result:
    result = invoke("--config", str(config), "check")
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert "Traceback" not in result.output
    return result


def warnings(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if ": warning: " in line]


def poll_at(config: Path, when: datetime, names: list[str] | None = None) -> None:
    """One poll cycle as if the clock said `when`."""
    with kept_logging(), Runtime(load_settings(config), clock=lambda: when) as rt:
        rt.poll(rt.configured_states(names))


def set_created(config: Path, when: datetime) -> None:
    """Make the database look as old as `when` (the meta row the store writes on creation)."""
    with sqlite3.connect(config.parent / "monitor.db") as conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'created'", (to_db(when),))
    conn.close()


# -- errors ------------------------------------------------------------------------------------


def test_config_errors_are_file_line_message_and_exit_1(tmp_path: Path) -> None:
    config = write_config(tmp_path, [], extra='[digest]\nat = "7am"\nsend_empyt = true')
    result = check(config)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "config.toml:11: at: '7am' is not a time of day; write it as HH:MM, e.g. '07:00'",
        "config.toml:12: unknown key 'send_empyt' in [digest]; did you mean 'send_empty'?",
        "2 errors",
    ]
    assert result.stdout == ""


def test_watchlist_errors_name_file_line_and_column(tmp_path: Path) -> None:
    config = write_config(tmp_path, [("BBC London", "http://127.0.0.1:9/rss")])
    (tmp_path / "watchlists" / "desk.toml").write_text(
        "name = 'Desk'\n"
        "match = [\n"
        "  'IOPC',\n"
        "  'Met NEAR/5 (police OR NOT officer)',\n"
        "]\n"
        "feeds = ['BBC Londn']\n"
    )
    (tmp_path / "watchlists" / "typo.toml").write_text("match = ['IOPC']\nalret = 'immediate'\n")
    result = check(config)
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if ": warning: " not in line]
    assert errors == [
        "watchlists/desk.toml:4:26: match: NOT inside NEAR: write (A NEAR B) AND NOT C instead",
        # told with the file's other errors, not only once they are mended
        "watchlists/desk.toml:6: feeds: no feed named 'BBC Londn' in the config; "
        "did you mean 'BBC London'?",
        "watchlists/typo.toml:2: unknown key 'alret'; did you mean 'alert'?",
        "3 errors",
    ]


def test_feed_names_in_a_watchlist_must_exist(tmp_path: Path) -> None:
    config = write_config(tmp_path, [("BBC London", "http://127.0.0.1:9/rss")])
    (tmp_path / "watchlists" / "desk.toml").write_text(
        "name = 'Desk'\nmatch = ['IOPC']\nfeeds = [\n  'BBC London',\n  'BBC Londn',\n]\n"
    )
    result = check(config)
    assert result.exit_code == 1
    assert (
        "watchlists/desk.toml:5: feeds: no feed named 'BBC Londn' in the config; "
        "did you mean 'BBC London'?"
    ) in result.stderr.splitlines()


def test_a_config_with_errors_does_not_hide_the_watchlists_errors(tmp_path: Path) -> None:
    """Every problem in one run: the config's errors, then each watchlist's, the feed names
    checked against the [[feeds]] tables the config has."""
    config = write_config(tmp_path, [("BBC London", "http://127.0.0.1:9/rss")])
    config.write_text(
        config.read_text().replace("[fetch]", "[fetch]\nconcurency = 8", 1)
        + "\n[[feeds]]\nname = 5\nurl = 'http://127.0.0.1:9/other'\n"  # a name not a string
        + "\n[digest]\ntemplates = 'mine'\n"
    )
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "digest.txt.j2").write_text("{% for s in sections %}\n", encoding="utf-8")
    (tmp_path / "watchlists" / "desk.toml").write_text(
        "name = 'Desk'\nmatch = ['IOPC AND (']\nfeeds = ['BBC Londn']\n"
    )
    result = check(config)
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert any(line.startswith("config.toml:") and "concurency" in line for line in lines)
    assert any(line.startswith("watchlists/desk.toml:2:") for line in lines)
    assert "watchlists/desk.toml:3: feeds: no feed named 'BBC Londn' in the config; " in (
        "\n".join(lines)
    )
    assert any("mine/digest.txt.j2:" in line and "'endfor'" in line for line in lines)
    assert lines[-1] == "5 errors"


def test_a_config_that_is_not_toml_is_told_alone(tmp_path: Path) -> None:
    config = write_config(tmp_path, [])
    config.write_text("[monitor\n")
    (tmp_path / "watchlists" / "desk.toml").write_text("match = ['IOPC AND (']\n")
    result = check(config)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == "1 error"
    assert "desk.toml" not in result.stderr


def test_a_database_that_is_not_sqlite_is_an_error(tmp_path: Path) -> None:
    config = write_config(tmp_path, [])
    (tmp_path / "monitor.db").write_text("meeting notes\n" * 100)
    result = check(config)
    assert result.exit_code == 1
    assert any(
        line.startswith(
            "monitor.db: not a SQLite database; point [monitor] database in config.toml"
        )
        for line in result.stderr.splitlines()
    )


def test_a_database_from_a_newer_monitor_is_an_error(tmp_path: Path) -> None:
    """Every other command refuses it; check must not say ok."""
    config = write_config(tmp_path, [])
    with sqlite3.connect(tmp_path / "monitor.db") as db:
        db.execute("PRAGMA user_version = 99")
    db.close()
    result = check(config)
    assert result.exit_code == 1
    [line] = [x for x in result.stderr.splitlines() if x.startswith("monitor.db: ")]
    assert line.startswith("monitor.db: cannot use the database: ") and "upgrade monitor" in line


# -- warnings: likely mistakes, exit 0 ---------------------------------------------------------


def test_lowercase_met_is_a_warning_with_its_column(tmp_path: Path) -> None:
    config = write_config(tmp_path, [("BBC London", "http://127.0.0.1:9/rss")])
    (tmp_path / "watchlists" / "desk.toml").write_text(
        "match = [\n  'IOPC',\n  'met NEAR/12 police',\n]\n"
    )
    result = check(config)
    assert result.exit_code == 0
    [warning] = warnings(result)
    assert warning.startswith("watchlists/desk.toml:3:4: warning: match: 'met' is all lowercase")
    assert '"met with"' in warning and "Met" in warning
    # warnings on stderr, the verdict on stdout
    met = load_watchlist(tmp_path / "watchlists" / "met-police.toml")
    queries = len(met.match) + len(met.exclude) + 2
    assert result.stdout == f"config.toml: ok: 1 feed, 2 watchlists ({queries} queries)\n"


def test_capital_met_is_no_warning(tmp_path: Path) -> None:
    config = write_config(tmp_path, [("BBC London", "http://127.0.0.1:9/rss")])
    (tmp_path / "watchlists" / "desk.toml").write_text("match = ['Met NEAR/12 police']\n")
    result = check(config)
    assert result.exit_code == 0
    assert warnings(result) == []
    assert result.stderr == ""


def test_empty_watchlists_folder_is_one_warning(tmp_path: Path) -> None:
    config = write_config(tmp_path, [("BBC London", "http://127.0.0.1:9/rss")])
    (tmp_path / "watchlists" / "met-police.toml").unlink()
    result = check(config)
    assert result.exit_code == 0
    assert warnings(result) == [
        "watchlists: warning: no watchlist files (*.toml): nothing will match"
    ]


def test_a_feed_url_listed_twice_is_a_warning(tmp_path: Path) -> None:
    """Under two names (an OPML export pasted beside [[feeds]], say) it is fetched twice a
    cycle; http and https, or a tracking parameter, make no difference."""
    config = write_config(
        tmp_path,
        [
            ("BBC London", "http://127.0.0.1:9/rss"),
            ("Other", "http://127.0.0.1:9/other"),
            ("BBC again", "https://127.0.0.1:9/rss?utm_source=x"),
        ],
    )
    result = check(config)
    assert result.exit_code == 0
    [warning] = warnings(result)
    assert warning.startswith("config.toml:")
    assert warning.endswith(
        "warning: feed 'BBC again' has the URL of 'BBC London': it is polled twice; remove one"
    )


# -- warnings from history: the database must be old enough to tell ---------------------------


def test_watchlist_quiet_for_30_days_is_a_warning(
    tmp_path: Path, demo_site: tuple[LoopbackSite, list[Feed]]
) -> None:
    _site, feeds = demo_site
    config = write_config(tmp_path, [(f.name, f.url) for f in feeds])
    watchlists = tmp_path / "watchlists"
    (watchlists / "helicopters.toml").write_text("match = ['\"police helicopter\"']\n")
    poll_at(config, NOW - timedelta(days=40))  # Met Police's hits are all 40 days old
    (watchlists / "watchdog.toml").write_text("match = ['IOPC']\n")
    assert invoke("--config", str(config), "rematch", "--since", "60d").exit_code == 0

    set_created(config, NOW - timedelta(days=40))
    result = check(config)
    assert result.exit_code == 0
    quiet = sorted(warnings(result))
    assert quiet == [
        "watchlists/helicopters.toml: warning: watchlist 'helicopters' has matched nothing "
        "in 30 days: check its queries with `monitor test` and `monitor search`",
        "watchlists/met-police.toml: warning: watchlist 'Met Police' has matched nothing "
        "in 30 days: check its queries with `monitor test` and `monitor search`",
    ]
    # a younger database cannot tell a quiet watchlist from a new one
    set_created(config, NOW - timedelta(days=10))
    assert warnings(check(config)) == []


def test_feed_failing_for_a_week_is_a_warning_at_its_table(
    tmp_path: Path, demo_site: tuple[LoopbackSite, list[Feed]]
) -> None:
    site, feeds = demo_site
    config = write_config(
        tmp_path,
        [
            (feeds[0].name, feeds[0].url),
            ("Gone Daily", site.url("/gone-daily/rss.xml")),
            ("Flaky Post", site.url("/flaky/rss.xml")),
        ],
    )
    poll_at(config, NOW - timedelta(days=8, hours=1), ["Gone Daily"])
    poll_at(config, NOW - timedelta(days=2), ["Flaky Post"])
    poll_at(config, NOW - timedelta(hours=1), [feeds[0].name])
    result = check(config)
    assert result.exit_code == 0  # warnings only
    url_line = config.read_text().splitlines().index(f'url = "{site.url("/gone-daily/rss.xml")}"')
    assert warnings(result) == [
        f"config.toml:{url_line + 1}: warning: feed 'Gone Daily' has failed for 8 days "
        f"(HTTP 404 from {site.url('/gone-daily/rss.xml')}); fix its URL or remove it"
    ]
    assert result.stdout.startswith("config.toml: ok: 3 feeds, 1 watchlist")


# -- templates ---------------------------------------------------------------------------------


def test_broken_user_template_is_reported_with_its_line(tmp_path: Path) -> None:
    config = write_config(tmp_path, [], extra='[digest]\ntemplates = "my-templates"')
    folder = tmp_path / "my-templates"
    folder.mkdir()
    (folder / "digest.txt.j2").write_text(
        "Good morning\n{% for section in sections %}\n{{ section.name }\n{% endfor %}\n"
    )
    (folder / "alert.txt.j2").write_text("Alert\n\n{{ no_such_thing.title }}\n")
    result = check(config)
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if ": warning: " not in line]
    assert errors[-1] == "2 errors"
    assert errors[0].startswith("my-templates/digest.txt.j2:3: ")
    assert errors[1].startswith("my-templates/alert.txt.j2:3: ") and "no_such_thing" in errors[1]


def test_missing_template_folder_names_the_config_line(tmp_path: Path) -> None:
    config = write_config(tmp_path, [], extra='[digest]\ntemplates = "my-templates"')
    result = check(config)
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-2:] == [
        "config.toml:11: [digest] templates: no folder my-templates; create it or remove the key",
        "1 error",
    ]


def test_good_user_templates_pass(tmp_path: Path) -> None:
    config = write_config(tmp_path, [], extra='[digest]\ntemplates = "my-templates"')
    folder = tmp_path / "my-templates"
    folder.mkdir()
    (folder / "digest.txt.j2").write_text(
        "Good morning\n{% for section in sections %}{{ section.name }}\n{% endfor %}\n"
    )
    result = check(config)
    assert result.exit_code == 0, result.stderr
