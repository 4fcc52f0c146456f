"""Immediate alerts from `monitor poll` (a cron set-up without the daemon), archive-only wording,
and a non-ASCII SMTP password."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.digest import Rendered
from monitor.errors import SMTPPermanentError
from monitor.loopback import LoopbackSite, Response
from monitor.notify import build_message, make_message_id, send_message
from monitor.sitegen import add_outlet, render_page
from monitor.store import Store
from tests.sites import add_feed
from tests.smtpservers import LoopbackController, Recorder, settings_for
from tests.test_outbox import (
    RELEVANT,
    Serve,
    add_watchlist,
    messages,
    parts,
    run_cli,
    site,
    site_articles,
    write_config,
)
from tests.test_pipeline_faults import BANTER

__all__ = ["site"]
MET = 'IOPC OR Met OR "Metropolitan Police"'


def test_monitor_poll_alerts_immediate_watchlists_once(
    tmp_path: Path, site: LoopbackSite, serve: Serve
) -> None:
    rec = Recorder()
    feed = add_outlet(
        site, "The London Ledger", site_articles(RELEVANT, datetime.now(UTC)), prefix="/ledger"
    )
    config = write_config(tmp_path, mail=serve(rec), feeds={"The London Ledger": feed})
    add_watchlist(config, "Met Police", [MET], alert="immediate")
    first = run_cli(config, "poll")
    assert first.exit_code == 0, first.output
    assert "alerts: 1 made" in first.output
    [(_, alert)] = messages(rec)
    assert alert["Subject"].startswith("monitor alert: Met Police")
    again = run_cli(config, "poll")
    assert again.exit_code == 0 and "alerts:" not in again.output
    assert len(rec.received) == 1, "an alert is sent once"


def test_a_page_read_on_a_retry_alerts_an_immediate_watchlist(tmp_path: Path, serve: Serve) -> None:
    """The page answers 503 when its entry is new, and the entry's title and summary name no
    one: no alert. Fetched again, its text names the Metropolitan Police: one alert."""
    rec = Recorder()
    with LoopbackSite() as news:
        news.routes["/news/banter"] = Response(status=503, body=b"busy")
        feed = add_feed(news, "/rss.xml", [(BANTER, news.url("/news/banter"))])
        config = write_config(tmp_path, mail=serve(rec), feeds={"Agency": feed})
        add_watchlist(config, "Met Police", ['"Metropolitan Police"'], alert="immediate")
        first = run_cli(config, "poll")
        news.add("/news/banter", render_page(BANTER, "Agency"))
        with Store.open(tmp_path / "monitor.db") as store, store.write() as conn:  # due now
            conn.execute("UPDATE articles SET page_retry_at = '2000-01-01T00:00:00+00:00'")
        again = run_cli(config, "poll")
    assert first.exit_code == 0 and "alerts:" not in first.output, first.output
    assert again.exit_code == 0 and "alerts: 1 made" in again.output, again.output
    [(_, alert)] = messages(rec)
    assert alert["Subject"].startswith("monitor alert: Met Police")
    assert BANTER.title in parts(alert)[0]


def test_archive_only_digest_says_archived_not_sent_to_nobody(
    tmp_path: Path, site: LoopbackSite
) -> None:
    feed = add_outlet(
        site, "The London Ledger", site_articles(RELEVANT, datetime.now(UTC)), prefix="/ledger"
    )
    config = write_config(tmp_path, feeds={"The London Ledger": feed})
    add_watchlist(config, "Met Police", [MET])
    assert run_cli(config, "poll").exit_code == 0
    assert run_cli(config, "digest").exit_code == 0
    [archive] = (tmp_path / "digests").glob("*.txt")
    text = archive.read_text(encoding="utf-8")
    assert "Archived by monitor" in text and "Sent to  by" not in text


def test_created_time_follows_the_injected_clock(tmp_path: Path) -> None:
    when = datetime(2020, 1, 2, 3, 4, tzinfo=UTC)
    with Store.open(tmp_path / "m.db") as store:
        assert store.created(when) == when
        assert store.created(datetime(2030, 1, 1, tzinfo=UTC)) == when  # recorded once


@pytest.mark.parametrize("password", ["pässwörd-ß", "密码"])
def test_non_ascii_password_logs_in_with_utf8_plain(
    password: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: list[bytes] = []

    class Auth(Recorder):
        def authenticate(self, server, session, envelope, mechanism, data):  # type: ignore[no-untyped-def]
            from aiosmtpd.smtp import AuthResult

            seen.append(data.password)
            return AuthResult(success=data.password == password.encode(), handled=False)

    handler = Auth()
    controller = LoopbackController(handler)
    controller.start()
    try:
        settings = settings_for(controller.port, username="monitor")
        message = build_message(
            Rendered("s", "t", "<p>t</p>"),
            settings.sender,
            ["desk@example.org"],
            make_message_id("k", "example.org"),
            datetime(2026, 11, 22, tzinfo=UTC),
        )
        result = send_message(message, settings, password)
        assert result.accepted == ("desk@example.org",)
        assert seen == [password.encode()]
        with pytest.raises(SMTPPermanentError) as info:
            send_message(message, settings, password + "-wrong")
        assert password not in str(info.value)
    finally:
        controller.stop()


def test_daily_prune_drops_only_story_rows_out_of_reach(tmp_path: Path) -> None:
    from datetime import timedelta

    from monitor.daemon import STORY_KEEP, Daemon
    from monitor.storyindex import StoryIndex

    now = datetime(2026, 11, 22, 7, tzinfo=UTC)
    with Store.open(tmp_path / "m.db") as store:
        with store.write() as conn:
            index = StoryIndex(conn)
            index.assign(
                1,
                "Old Met story",
                "IOPC finds officers shared messages " * 5,
                now - STORY_KEEP - timedelta(days=1),
            )
            index.assign(
                2,
                "New Met story",
                "Casey review follow-up on vetting " * 5,
                now - timedelta(days=1),
            )
        Daemon._prune(store, now)
        kept = [r[0] for r in store.read("SELECT article_id FROM story_article")]
    assert kept == [2]


def test_daily_prune_keeps_a_month_of_poll_records_and_two_days_of_unchanged_ones(
    tmp_path: Path,
) -> None:
    from datetime import timedelta

    from monitor.daemon import Daemon
    from monitor.feedstore import POLL_KEEP, POLL_KEEP_UNCHANGED, _log_poll
    from monitor.models import Feed

    now = datetime(2026, 11, 22, 7, tzinfo=UTC)
    ages = {
        "failed": [POLL_KEEP - timedelta(hours=1), POLL_KEEP + timedelta(hours=1)],
        "ok": [POLL_KEEP - timedelta(hours=1), POLL_KEEP + timedelta(hours=1)],
        "not_modified": [
            POLL_KEEP_UNCHANGED - timedelta(hours=1),
            POLL_KEEP_UNCHANGED + timedelta(hours=1),
        ],
    }
    with Store.open(tmp_path / "m.db") as store:
        store.sync_feeds([Feed("Ledger", "http://news.example/feed", 900.0)])
        [(feed_id,)] = store.read("SELECT id FROM feeds")
        with store.write() as conn:
            for status, times in ages.items():
                for age in times:
                    _log_poll(conn, feed_id, now - age, status, None, 0, 0, 0.1)
        Daemon._prune(store, now)
        kept = sorted(tuple(r) for r in store.read("SELECT status, at FROM polls"))
    assert [status for status, _ in kept] == ["failed", "not_modified", "ok"]
