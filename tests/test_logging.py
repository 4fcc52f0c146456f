"""Logging: one JSON object a line with --log-format json, readable key=value text with -v, one
event per feed poll with its fields, and never a secret: the SMTP password appears in no output,
log line, archive or database row, whatever the mail server does."""

from __future__ import annotations

import base64
import json
import logging
import os
import pty
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, AuthResult
from click.testing import Result

from monitor.logs import TextFormatter
from monitor.loopback import LoopbackSite
from monitor.models import Feed
from monitor.sitegen import load_demo_articles, start_demo_site
from tests.smtpservers import BusyGreeting, LoopbackController, Recorder
from tests.test_cli import copy_project, invoke, read_pty, succeeded, write_config

SECRET = "hunter2-Correct-Horse-Battery"
LOG_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4} (?P<level>[A-Z]+) +(?P<message>.+?)"
    r"(?:  (?P<fields>\w+=.*))?$"
)
FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')


@pytest.fixture(scope="module")
def demo_site() -> Iterator[tuple[LoopbackSite, list[Feed]]]:
    site, feeds = start_demo_site(datetime.now(UTC))
    yield site, feeds
    site.stop()


@pytest.fixture
def config(tmp_path: Path, demo_site: tuple[LoopbackSite, list[Feed]]) -> Path:
    """The demo's outlets and one feed that has closed down (404)."""
    site, feeds = demo_site
    return write_config(
        tmp_path, [*[(f.name, f.url) for f in feeds], ("Closed Down", site.url("/closed/rss"))]
    )


def per_outlet() -> dict[str, int]:
    return {name: len(arts) for name, arts in load_demo_articles(datetime.now(UTC)).items()}


def text_fields(line: str) -> dict[str, str]:
    """key=value fields of a text log line, quotes removed."""
    m = LOG_LINE.match(line)
    assert m is not None, line
    return {
        k: json.loads(v) if v.startswith('"') else v for k, v in FIELD.findall(m["fields"] or "")
    }


# -- JSON ----------------------------------------------------------------------------------------


def test_json_logs_one_object_per_line_one_event_per_feed(config: Path) -> None:
    result = succeeded(invoke("--log-format", "json", "--config", str(config), "poll"))
    records = [json.loads(line) for line in result.stderr.splitlines()]  # every line is JSON
    polls = [r for r in records if r["message"] == "feed polled"]
    assert sorted(r["feed"] for r in polls) == sorted([*per_outlet(), "Closed Down"])
    for r in polls:
        assert {"time", "level", "logger", "feed", "status", "new_articles", "duration"} <= set(r)
        assert isinstance(r["duration"], float) and r["duration"] >= 0
        datetime.fromisoformat(r["time"])
    for name, count in per_outlet().items():
        [r] = [r for r in polls if r["feed"] == name]
        assert (r["level"], r["status"], r["new_articles"]) == ("info", "ok", count)
    [gone] = [r for r in polls if r["feed"] == "Closed Down"]
    assert (gone["level"], gone["status"], gone["new_articles"]) == ("warning", "failed", 0)
    assert gone["error"].startswith("HTTP 404 from ")
    # the summary for the person at the terminal is still on stdout, not in the log
    assert "new hits: " in result.stdout and "{" not in result.stdout


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (["--log-format", "json", "-v"], []),
        ([], ["--log-format", "json", "-v"]),  # global options after the command, as --config
        (["--log-format", "json"], ["-v"]),
    ],
    ids=["before the command", "after it", "one on each side"],
)
def test_json_with_verbose_is_the_same_events(
    config: Path, before: list[str], after: list[str]
) -> None:
    result = succeeded(invoke(*before, "--config", str(config), "poll", *after))
    polls = [json.loads(line) for line in result.stderr.splitlines()]
    assert len([r for r in polls if r["message"] == "feed polled"]) == len(per_outlet()) + 1


# -- text ----------------------------------------------------------------------------------------


def test_verbose_text_is_key_value(config: Path) -> None:
    result = succeeded(invoke("-v", "--config", str(config), "poll"))
    lines = result.stderr.splitlines()
    events = {f["feed"]: f for f in map(text_fields, lines) if "feed" in f}
    assert set(events) == {*per_outlet(), "Closed Down"}
    for name, count in per_outlet().items():
        assert events[name]["status"] == "ok" and events[name]["new_articles"] == str(count)
        assert re.fullmatch(r"\d+\.\d{3}", events[name]["duration"])
    assert events["Closed Down"]["status"] == "failed"
    assert events["Closed Down"]["error"].startswith("HTTP 404 from ")
    # names with spaces are quoted, plain values are not
    [ledger] = [line for line in lines if "The London Ledger" in line]
    assert ' feed="The London Ledger" status=ok ' in ledger and " INFO " in ledger


@pytest.fixture
def london_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "Europe/London")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_text_log_times_say_their_offset_so_the_repeated_hour_is_told_apart(
    london_time: None,
) -> None:
    def line(utc: datetime) -> str:
        record = logging.LogRecord("monitor", logging.INFO, __file__, 1, "tick", None, None)
        record.created = utc.timestamp()
        return TextFormatter().format(record)

    # the clocks went back at 02:00 BST on 2026-10-25: 01:30 came twice
    first = line(datetime(2026, 10, 25, 0, 30, tzinfo=UTC))
    second = line(datetime(2026, 10, 25, 1, 30, tzinfo=UTC))
    assert first == "2026-10-25 01:30:00 +0100 INFO    tick"
    assert second == "2026-10-25 01:30:00 +0000 INFO    tick"
    assert LOG_LINE.match(first)


def test_without_verbose_only_problems_are_logged(config: Path) -> None:
    result = succeeded(invoke("--config", str(config), "poll"))
    [line] = result.stderr.splitlines()
    assert LOG_LINE.match(line) and " WARNING " in line and 'feed="Closed Down"' in line


def test_log_lines_on_a_terminal_stay_whole(config: Path) -> None:
    """With stdout and stderr on one terminal, each log line is a line of its own, above the
    progress display, not spliced into it."""
    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120"}
    env.pop("MONITOR_CONFIG", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", "-v", "--config", str(config), "poll"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
    )
    os.close(slave)
    try:
        screen = read_pty(master, proc).decode("utf-8", "replace")
        proc.wait(timeout=60)
    finally:
        os.close(master)
    assert proc.returncode == 0, screen
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen)
    logged = [line for line in plain.replace("\r", "\n").split("\n") if "feed polled" in line]
    assert len(logged) == len(per_outlet()) + 1
    for line in logged:
        assert LOG_LINE.match(line), line  # starts with the time: nothing drawn before it
        assert "polling" not in line and "━" not in line


# -- no secret in any output ---------------------------------------------------------------------


class RefuseLogin(Recorder):
    """Refuses every login with 535."""

    def authenticate(self, *args: Any) -> AuthResult:
        return AuthResult(success=False, handled=False)


class EchoAuth(SMTP):
    """A broken server that quotes the client's AUTH command back in its refusal."""

    async def smtp_AUTH(self, arg: str) -> None:
        await self.push(f"535 5.7.8 rejected AUTH {arg}")


class EchoLogin(SMTP):
    """A broken server that takes AUTH LOGIN and quotes each answer back, decoded."""

    async def smtp_AUTH(self, arg: str) -> None:
        if not arg.upper().startswith("LOGIN"):
            await self.push("504 5.5.4 only LOGIN here")
            return
        user = await self.challenge_auth("Username:")
        password = await self.challenge_auth("Password:")
        said = [bytes(x).decode("utf-8", "replace") for x in (user, password) if x]
        await self.push(f"535 5.7.8 no such login: {' / '.join(said)}")


SERVERS: dict[str, tuple[type[Recorder], type[SMTP]]] = {
    "login refused": (RefuseLogin, SMTP),
    "busy greeting": (Recorder, BusyGreeting),
    "echoes AUTH": (Recorder, EchoAuth),
    "echoes LOGIN decoded": (Recorder, EchoLogin),
}


@pytest.fixture(scope="module")
def polled(
    tmp_path_factory: pytest.TempPathFactory, demo_site: tuple[LoopbackSite, list[Feed]]
) -> Path:
    _site, feeds = demo_site
    config = write_config(tmp_path_factory.mktemp("polled"), [(f.name, f.url) for f in feeds])
    succeeded(invoke("--config", str(config), "poll"))
    return config


def secret_forms(secret: str) -> list[str]:
    raw = secret.encode()
    return [
        secret,
        base64.b64encode(raw).decode(),
        base64.b64encode(b"\0monitor\0" + raw).decode(),  # AUTH PLAIN
        base64.b64encode(b"monitor\0monitor\0" + raw).decode(),
    ]


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("log_format", [["--log-format", "json", "-v"], ["-v"], []])
def test_the_smtp_password_is_never_shown(
    tmp_path: Path, polled: Path, server: str, log_format: list[str]
) -> None:
    handler_class, smtp_class = SERVERS[server]
    controller = LoopbackController(handler_class(), smtp_class)
    controller.start()
    try:
        config = copy_project(polled, tmp_path / "p")
        with config.open("a") as f:
            f.write(
                "\n[email]\n"
                'from = "monitor@example.org"\n'
                'to = ["desk@example.org"]\n'
                'smtp_host = "127.0.0.1"\n'
                f"smtp_port = {controller.port}\n"
                'security = "none"\n'
                'username = "monitor"\n'
            )
        env = {"MONITOR_SMTP_PASSWORD": SECRET}
        results: list[Result] = [
            invoke(*log_format, "--config", str(config), "digest", env=env),
            invoke(*log_format, "--config", str(config), "digest", env=env),  # the retry
            invoke(*log_format, "--config", str(config), "check", env=env),
            invoke(*log_format, "--config", str(config), "feeds", "--json", env=env),
        ]
    finally:
        controller.stop()
    first = results[0]
    assert first.exit_code == 1, first.output  # not sent, and said so
    assert "not sent" in first.stderr and "Traceback" not in first.output
    shown = "\n".join(r.output for r in results)
    stored = _database_text(config.parent / "monitor.db")
    archived = "\n".join(p.read_text() for p in (config.parent / "digests").iterdir())
    for form in secret_forms(SECRET):
        assert form not in shown
        assert form not in stored
        assert form not in archived


def _database_text(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        return "\n".join(conn.iterdump())


def test_a_skipped_poll_tick_is_not_logged_other_scheduler_warnings_are(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # a poll longer than the daemon's tick makes APScheduler skip the tick and warn, every
    # tick, in its own words: the skip is the design, not a fault to show an operator
    from monitor.logs import setup_logging

    setup_logging("text")
    scheduler = logging.getLogger("apscheduler.scheduler")
    scheduler.warning(
        'Execution of job "%s" skipped: maximum number of running instances reached (%d)',
        "Daemon.poll_job (trigger: interval[0:00:15], next run at: 2026-12-08 01:18:26 UTC)",
        1,
    )
    scheduler.warning("Scheduler has been shut down unexpectedly")
    err = capsys.readouterr().err
    assert "running instances" not in err
    assert "shut down unexpectedly" in err
