"""The outbox end to end: `monitor digest` against a real SMTP server (aiosmtpd on 127.0.0.1)
and a real SQLite file, with hits from a polled LoopbackSite or stored through record_items;
who receives what; a crash between making a digest and sending it.

The builders here (config, watchlists, stored hits, a clock, parsed messages) are shared with
test_delivery_faults.py and test_daemon.py.
"""

from __future__ import annotations

import email
import json
import logging
import os
import re
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import urlsplit

import lxml.html
import pytest
from click.testing import CliRunner, Result

from monitor.cli import cli
from monitor.config import EmailSettings, Settings, load_settings
from monitor.delivery import deliver_pending
from monitor.errors import StoreError
from monitor.feedstore import NewArticle, record_failure, record_items
from monitor.loopback import LoopbackSite
from monitor.models import Extracted, Feed, Fetched, Item, MatchResult, Snippet
from monitor.outbox import Route, make_alerts, make_digest, plan_routes
from monitor.report import digest_data
from monitor.sitegen import SiteArticle, add_outlet
from monitor.store import Store, to_db
from tests.smtpservers import Recorder, RefuseOne
from tests.test_digest import check_golden

TESTS = Path(__file__).resolve().parent
RELEVANT = TESTS / "data" / "relevant"
MET_WATCHLIST = TESTS.parent / "watchlists" / "met-police.toml"
UNREACHABLE = "http://127.0.0.1:9/rss"  # the feed of stored hits, unless the config names it
NOW = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)
Serve = Callable[..., EmailSettings]  # the `serve` fixture of tests/smtpservers.py


# -- builders shared by the delivery tests ------------------------------------------------------


class Clock:
    """An injected clock: stands still until moved."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def set(self, when: datetime) -> datetime:
        self.now = when
        return when

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def toml(value: object) -> str:
    # JSON strings, numbers, booleans and lists of them are valid TOML values
    return json.dumps(value)


def write_config(
    folder: Path,
    *,
    mail: EmailSettings | None = None,
    feeds: Mapping[str, str] | None = None,
    at: str = "07:00",
    send_empty: bool = False,
    timezone: str = "Europe/London",
    interval: str = "15m",
) -> Path:
    """folder/config.toml with its database, watchlists/ and digests/ beside it; [email] from
    the EmailSettings of a test SMTP server (none: archive only)."""
    (folder / "watchlists").mkdir(parents=True, exist_ok=True)
    lines = [
        "[monitor]",
        'database = "monitor.db"',
        'watchlists = "watchlists"',
        'digests = "digests"',
        f"timezone = {toml(timezone)}",
        f"poll_interval = {toml(interval)}",
        "[fetch]",
        'allow_addresses = ["127.0.0.1"]',
        'timeout = "10s"',
        "[extract]",
        "workers = 1",
        "[digest]",
        f"at = {toml(at)}",
        f"send_empty = {toml(send_empty)}",
    ]
    if mail is not None:
        lines += [
            "[email]",
            f"from = {toml(mail.sender)}",
            f"to = {toml(list(mail.to))}",
            f"smtp_host = {toml(mail.smtp_host)}",
            f"smtp_port = {mail.smtp_port}",
            f"security = {toml(mail.security)}",
            f"username = {toml(mail.username)}",
            f"password_env = {toml(mail.password_env)}",
        ]
    for name, url in (feeds or {}).items():
        lines += ["[[feeds]]", f"name = {toml(name)}", f"url = {toml(url)}"]
    path = folder / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def add_watchlist(
    config: Path,
    name: str,
    match: Sequence[str] = ("IOPC",),
    *,
    alert: str = "digest",
    recipients: Sequence[str] = (),
) -> Path:
    """watchlists/SLUG.toml beside config."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    path = config.parent / "watchlists" / f"{slug}.toml"
    path.write_text(
        f"name = {toml(name)}\nmatch = {toml(list(match))}\nalert = {toml(alert)}\n"
        f"recipients = {toml(list(recipients))}\n",
        encoding="utf-8",
    )
    return path


def backdate(settings: Settings, created: datetime) -> None:
    """Say the database was made at `created` (the schedule never owes a day before it)."""
    with Store.open(settings.monitor.database) as store, store.write() as conn:
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('created', ?)", (to_db(created),))


def store_hits(
    settings: Settings,
    now: datetime,
    titles: Sequence[str],
    watchlists: Sequence[str] = ("Met Police",),
    *,
    feed: str = "Wire",
    immediate: Sequence[str] = (),
    url: str | None = None,
    snippet: Snippet | None = None,
    page: bool = True,
) -> list[int]:
    """Store one article per title, each a hit of every watchlist, as a poll of `feed` would
    (monitor.feedstore.record_items); returns the new hit ids. A feed the config does not
    name is added to the database only, so no poll ever reaches it. Without `page`, the
    article page could not be fetched and only the feed's summary was matched."""
    new = []
    for title in titles:
        slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:60]
        text = f"The IOPC said: {title}."
        item = Item(
            guid=f"urn:{slug}",
            url=url or f"https://news.example/{slug}",
            link=url or f"https://news.example/{slug}",
            title=title,
            summary=text,
            published=now - timedelta(hours=1),
        )
        shown = snippet or Snippet(text, ((4, 8),))
        matches = tuple(MatchResult(w, True, ("IOPC",), (), shown) for w in watchlists)
        extracted, error = (Extracted(title, text), None) if page else (None, "HTTP 500")
        new.append(NewArticle(item, extracted, error, matches, frozenset(immediate)))
    with Store.open(settings.monitor.database) as store:
        known = {f.name for f in settings.feeds}
        store.sync_feeds(
            [*settings.feeds, *([] if feed in known else [Feed(feed, UNREACHABLE, 900)])]
        )
        state = store.feed_states([feed])[0]
        fetched = Fetched(state.url, 200, {}, b"")
        return record_items(store, state, 900, fetched, new, [], None, now)


def parse_message(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=default_policy)
    assert isinstance(message, EmailMessage)
    return message


def messages(recorder: Recorder) -> list[tuple[list[str], EmailMessage]]:
    """What the server received: (envelope recipients, parsed message), in order."""
    return [(rcpts, parse_message(raw)) for rcpts, raw in recorder.received]


def parts(message: EmailMessage) -> tuple[str, str]:
    """The text/plain and text/html parts of a multipart/alternative message (LF line ends)."""
    assert message.get_content_type() == "multipart/alternative"
    found = {
        p.get_content_type(): p.get_content().replace("\r\n", "\n") for p in message.iter_parts()
    }
    assert set(found) == {"text/plain", "text/html"}
    return found["text/plain"], found["text/html"]


def flat(text: str) -> str:
    """Whitespace collapsed, so wrapped headlines can be found."""
    return " ".join(text.split())


def rows(settings: Settings, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
    """A query on the database from a connection of its own, as another process would."""
    with Store.open(settings.monitor.database) as store:
        return [tuple(r) for r in store.read(sql, params)]


@pytest.fixture(autouse=True)
def default_logging() -> Iterator[None]:
    """The CLI sends the project's log to its own stderr; each test starts from the default."""
    log = logging.getLogger("monitor")
    saved = (log.handlers[:], log.level, log.propagate)
    log.handlers[:], log.propagate = [], True
    log.setLevel(logging.NOTSET)
    yield
    log.handlers[:], level, log.propagate = saved
    log.setLevel(level)


def run_cli(config: Path, *args: str) -> Result:
    """`monitor --config CONFIG ARGS...` in this process."""
    return CliRunner().invoke(cli, ["--config", str(config), *args])


def site_articles(folder: Path, now: datetime) -> list[SiteArticle]:
    """Every text file of a tests/data folder as an article (first line the headline), an hour
    apart before now."""
    out = []
    for i, path in enumerate(sorted(folder.glob("*.txt"))):
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        lines = [line for line in lines if line]
        out.append(SiteArticle(path.stem, lines[0], tuple(lines[1:]), now - timedelta(hours=i)))
    return out


@pytest.fixture
def site() -> Iterator[LoopbackSite]:
    with LoopbackSite("127.0.0.1") as s:
        yield s


# -- `monitor digest` end to end ----------------------------------------------------------------


def desk_with_a_hit(tmp_path: Path, serve: Serve, title: str) -> tuple[Recorder, Path, Settings]:
    """A desk's project mailing a test SMTP server, its Met Police watchlist holding one hit;
    returns the server's recorder, the config and the settings."""
    rec = Recorder()
    config = write_config(tmp_path, mail=serve(rec))
    add_watchlist(config, "Met Police")
    settings = load_settings(config)
    store_hits(settings, NOW, [title])
    return rec, config, settings


def test_monitor_digest_sends_one_multipart_message_and_marks_the_hits(
    tmp_path: Path, site: LoopbackSite, serve: Serve
) -> None:
    rec = Recorder()
    articles = site_articles(RELEVANT, datetime.now(UTC))
    feed = add_outlet(site, "The London Ledger", articles, prefix="/ledger")
    config = write_config(tmp_path, mail=serve(rec), feeds={"The London Ledger": feed})
    (tmp_path / "watchlists" / MET_WATCHLIST.name).write_bytes(MET_WATCHLIST.read_bytes())

    polled = run_cli(config, "poll")
    assert polled.exit_code == 0, polled.output
    assert f"new hits: {len(articles)}" in polled.stdout
    sent = run_cli(config, "digest")
    assert sent.exit_code == 0, sent.output
    assert f"desk@example.org: sent {len(articles)} hits" in sent.stdout

    [(envelope, message)] = messages(rec)
    assert envelope == ["desk@example.org"]
    assert message["From"] == "monitor@example.org" and message["To"] == "desk@example.org"
    assert parsedate_to_datetime(message["Date"]).tzinfo is not None
    assert re.fullmatch(r"<[^<>@\s]+@[^<>@\s]+>", message["Message-ID"])
    assert message["Subject"].startswith("monitor digest: ")
    assert message["Subject"].endswith(f", {len(articles)} new hits")
    text, html = parts(message)
    doc = lxml.html.document_fromstring(html)
    hrefs = [a.get("href", "") for a in doc.iter("a")]
    external = [h for h in hrefs if not h.startswith("#")]
    assert external and all(urlsplit(h).scheme in ("http", "https") for h in external)
    for article in articles:
        url = site.url(f"/ledger/{article.slug}")
        assert flat(article.title) in flat(text) and url in text
        assert flat(article.title) in flat(doc.text_content()) and url in external

    [(digest_id, status)] = rows(load_settings(config), "SELECT id, status FROM digests")
    assert status == "sent"
    listed = json.loads(run_cli(config, "hits", "--json").stdout)
    assert len(listed) == len(articles) and {h["digest"] for h in listed} == {digest_id}

    again = run_cli(config, "digest")
    assert again.exit_code == 0 and "no new hits waiting" in again.stdout
    assert len(rec.received) == 1

    archive = tmp_path / "digests"
    pages = sorted(p.name for p in archive.glob("*.html") if p.name != "index.html")
    assert len(pages) == 1 and re.fullmatch(r"\d{4}-\d\d-\d\d_\d{4}_.+\.html", pages[0])
    # the archive holds what was sent (MIME only adds a final line break)
    assert (archive / pages[0]).read_text(encoding="utf-8").rstrip() == html.rstrip()
    archived_text = (archive / pages[0].replace(".html", ".txt")).read_text(encoding="utf-8")
    assert archived_text.rstrip() == text.rstrip()
    index = lxml.html.document_fromstring((archive / "index.html").read_text(encoding="utf-8"))
    assert {a.get("href") for a in index.iter("a")} == {pages[0], pages[0][:-5] + ".txt"}


HOSTILE_TITLE = (
    '<script>alert(1)</script><img src=x onerror="alert(2)">'
    "Met \u202eflog\u202c officers\x07 \x1b[31msacked\u2066 today\u2069"
)
HOSTILE_SNIPPET = Snippet('<a href="javascript:alert(4)">IOPC</a>\u200f said\x00 so', ((30, 34),))
INVISIBLE = "\u202e\u202c\u2066\u2069\u200f\x07\x1b\x00"


def test_hostile_titles_snippets_and_links_never_reach_the_message_live(
    tmp_path: Path, serve: Serve
) -> None:
    rec, config, settings = desk_with_a_hit(
        tmp_path, serve, "Met officer sacked after IOPC inquiry"
    )
    store_hits(settings, NOW, [HOSTILE_TITLE], url="javascript:alert(3)", snippet=HOSTILE_SNIPPET)

    assert run_cli(config, "digest").exit_code == 0
    [(_, message)] = messages(rec)
    text, html = parts(message)
    doc = lxml.html.document_fromstring(html)
    assert not doc.xpath("//script | //img | //iframe | //svg | //object")
    for element in doc.iter():
        for name, value in element.attrib.items():
            assert not name.lower().startswith("on"), (element.tag, name)
            assert "javascript" not in value.lower(), (element.tag, name, value)
    for a in doc.iter("a"):
        href = a.get("href", "")
        assert href.startswith("#") or urlsplit(href).scheme in ("http", "https"), href
    assert "https://news.example/met-officer-sacked-after-iopc-inquiry" in [
        a.get("href") for a in doc.iter("a")
    ]
    shown = flat("".join(c for c in HOSTILE_TITLE if c not in INVISIBLE))
    assert shown in flat(doc.text_content()) and shown in flat(text)
    assert [m.text_content() for m in doc.iter("mark") if "IOPC" in m.text_content()]
    for part in (text, html, str(message["Subject"])):
        assert not set(INVISIBLE) & set(part)
        assert "javascript:alert(3)" not in part  # the link; the snippet's text may say it
    assert "<" not in str(message["Subject"])


def test_dry_run_prints_the_archive_path_and_sends_and_marks_nothing(
    tmp_path: Path, serve: Serve
) -> None:
    rec, config, settings = desk_with_a_hit(
        tmp_path, serve, "IOPC opens inquiry into Met custody death"
    )

    dry = run_cli(config, "digest", "--dry-run")
    assert dry.exit_code == 0, dry.output
    path = Path(dry.stdout.strip())
    assert path.parent == tmp_path / "digests" and path.suffix == ".html"
    assert "IOPC opens inquiry into Met custody death" in path.read_text(encoding="utf-8")
    assert path.with_suffix(".txt").exists()
    assert rec.received == []
    assert rows(settings, "SELECT COUNT(*) FROM digests") == [(0,)]
    assert [h["digest"] for h in json.loads(run_cli(config, "hits", "--json").stdout)] == [None]

    real = run_cli(config, "digest")
    assert real.exit_code == 0 and "sent 1 hit" in real.stdout
    [(_, message)] = messages(rec)
    assert "IOPC opens inquiry into Met custody death" in parts(message)[0]


def test_a_dry_run_with_nothing_to_send_says_so_and_archives_nothing(tmp_path: Path) -> None:
    """It shows what `monitor digest` would do: with no hits waiting (and send_empty off),
    send nothing; it wrote an empty digest into the archive beside the real ones."""
    config = write_config(tmp_path)
    add_watchlist(config, "Met Police")
    result = run_cli(config, "digest", "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.stdout == "archive: no new hits waiting; nothing new to send\n"
    assert not (tmp_path / "digests").exists() or not any((tmp_path / "digests").iterdir())


def test_a_broken_watchlist_does_not_hold_back_the_digest_of_the_others(
    tmp_path: Path, serve: Serve
) -> None:
    rec, config, _ = desk_with_a_hit(tmp_path, serve, "Met officers face misconduct hearing")
    broken = config.parent / "watchlists" / "vetting.toml"
    broken.write_text("name = 'Vetting'\nmatch = ['(vetting OR']\n", encoding="utf-8")
    result = run_cli(config, "digest")
    assert result.exit_code == 1
    assert "desk@example.org: sent 1 hit" in result.stdout
    assert len(rec.received) == 1
    errors = result.stderr.splitlines()
    assert "vetting.toml:2:" in errors[0] and "OR needs a term after it" in errors[0]
    assert errors[-1].startswith("error: the watchlists above were left out of this digest")


def test_without_email_the_digest_is_archived_and_the_hits_marked(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    add_watchlist(config, "Met Police")
    settings = load_settings(config)
    store_hits(settings, NOW, ["Met vetting failures named by IOPC"])

    result = run_cli(config, "digest")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(
        "archive: 1 hit, not emailed (no [email] in the config); archived at "
    )
    archived = Path(result.stdout.strip().rsplit(" ", 1)[-1])
    assert "Met vetting failures named by IOPC" in archived.read_text(encoding="utf-8")
    assert rows(settings, "SELECT recipient, status FROM digests") == [("", "sent")]
    assert "no new hits waiting" in run_cli(config, "digest").stdout


def test_an_archive_that_could_not_be_written_is_written_later_and_no_hit_is_lost(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path)  # no [email]: the archive is the only copy
    add_watchlist(config, "Met Police")
    settings = load_settings(config)
    store_hits(settings, NOW, ["Met officers face gross misconduct hearing"])
    (tmp_path / "digests").write_text("not a folder", encoding="utf-8")  # as a full disk fails

    failed = run_cli(config, "digest")
    assert failed.exit_code == 1 and "could not archive the digest" in failed.stderr
    assert rows(settings, "SELECT status FROM digests") == [("pending",)]

    (tmp_path / "digests").unlink()
    again = run_cli(config, "digest")
    assert again.exit_code == 0, again.output
    assert (
        "archive: 1 hit queued earlier, not emailed (no [email] in the config); archived at "
    ) in again.stdout
    [(archive, status)] = rows(settings, "SELECT archive, status FROM digests")
    assert status == "sent"
    text = Path(str(archive)).read_text(encoding="utf-8")
    assert "Met officers face gross misconduct hearing" in text
    [listed] = json.loads(run_cli(config, "hits", "--json").stdout)
    assert listed["digest"] is not None


def test_an_emailed_digest_is_sent_without_its_archive_and_archived_once_there_is_room(
    tmp_path: Path, serve: Serve
) -> None:
    """The email need not wait for the disk; the archive is written at the next attempt."""
    rec, config, settings = desk_with_a_hit(
        tmp_path, serve, "Met officers face gross misconduct hearing"
    )
    (tmp_path / "digests").write_text("not a folder", encoding="utf-8")  # as a full disk fails
    sent = run_cli(config, "digest")
    assert sent.exit_code == 0, sent.output
    assert "desk@example.org: sent 1 hit; not archived yet" in sent.stdout
    assert len(rec.received) == 1
    assert rows(settings, "SELECT status, archive FROM digests") == [("sent", None)]

    (tmp_path / "digests").unlink()
    with Store.open(settings.monitor.database) as store:
        assert deliver_pending(store, settings, NOW) == []  # nothing to send; archived
    [(archive,)] = rows(settings, "SELECT archive FROM digests")
    text = Path(str(archive)).with_suffix(".txt").read_text(encoding="utf-8")
    assert "Met officers face gross misconduct hearing" in text
    assert len(rec.received) == 1


def test_an_alert_whose_archive_cannot_be_written_is_still_made_and_sent(
    tmp_path: Path, serve: Serve
) -> None:
    """An immediate watchlist's alert does not wait for the disk either (making it raised,
    and the poll job reported a failure for an alert that was queued all the same)."""
    rec = Recorder()
    config = write_config(tmp_path, mail=serve(rec))
    add_watchlist(config, "Met Police", alert="immediate")
    settings = load_settings(config)
    store_hits(settings, NOW, ["Met officers suspended"], immediate=["Met Police"])
    (tmp_path / "digests").write_text("not a folder", encoding="utf-8")  # as a full disk fails
    with Store.open(settings.monitor.database) as store:
        [route] = plan_routes(settings, [("Met Police", ())])
        [alert] = make_alerts(store, settings, [route], NOW)
        assert (alert.status, alert.archive) == ("pending", None)
        [sent] = deliver_pending(store, settings, NOW)
    assert sent.status == "sent" and len(rec.received) == 1
    (tmp_path / "digests").unlink()
    with Store.open(settings.monitor.database) as store:
        deliver_pending(store, settings, NOW)
    [(archive,)] = rows(settings, "SELECT archive FROM digests")
    assert Path(str(archive)).exists()


def test_digest_of_stored_hits_matches_golden(tmp_path: Path) -> None:
    """What report.py gathers from the database: sections, chart, alerts counted, failing
    feeds, failed polls and pages not read."""
    mail = EmailSettings(
        "monitor@example.org", ("desk@example.org",), "127.0.0.1", 25, "none", "", "X"
    )
    config = write_config(tmp_path, mail=mail, feeds={"Evening Paper": UNREACHABLE})
    add_watchlist(config, "Met Police", alert="immediate")
    add_watchlist(config, "Vetting", ["vetting"])
    settings = load_settings(config)
    day, hour = timedelta(days=1), timedelta(hours=1)
    store_hits(settings, NOW - 3 * day, ["Met officer sacked after IOPC inquiry"], ["Vetting"])
    store_hits(settings, NOW - 2 * day, ["Vetting failures: 100 officers named"], ["Vetting"])
    store_hits(settings, NOW - 5 * hour, ["Met sergeant charged"], ["Vetting"])
    store_hits(settings, NOW - 4 * hour, ["IOPC report"], ["Vetting"], page=False)
    store_hits(settings, NOW - 3 * hour, ["Met stop and search"], immediate=["Met Police"])
    route = Route("desk@example.org", ("Met Police", "Vetting"))
    with Store.open(settings.monitor.database) as store:
        for failed_at in (NOW - 30 * hour, NOW - 2 * hour):  # failing for more than a day
            [paper] = store.feed_states(["Evening Paper"])
            record_failure(store, paper, 900, "HTTP 503", failed_at)
        alerted = Route("desk@example.org", ("Met Police",))
        [alert] = make_alerts(store, settings, [alerted], NOW - 2 * hour)
        with store.write() as conn:  # the server took it
            conn.execute("UPDATE digests SET status = 'sent' WHERE id = ?", (alert.digest_id,))
        outcome = make_digest(store, settings, route, "daily", NOW.date(), NOW)
        [(text,)] = store.read("SELECT text FROM digests WHERE id = ?", (outcome.digest_id,))
    check_golden("digest-stored.txt", text)


# -- who receives what ------------------------------------------------------------------------


def test_each_recipient_gets_one_digest_holding_exactly_their_watchlists(
    tmp_path: Path, serve: Serve
) -> None:
    rec = Recorder()
    config = write_config(tmp_path, mail=serve(rec))
    add_watchlist(config, "Met Police", recipients=["alice@example.org", "bob@example.org"])
    add_watchlist(config, "Vetting", recipients=["bob@example.org"])
    add_watchlist(config, "Casey review")  # nobody named: [email].to
    settings = load_settings(config)
    store_hits(settings, NOW, ["Met officers face misconduct hearing"], ["Met Police"])
    store_hits(settings, NOW, ["Thousands of officers to be re-vetted"], ["Vetting"])
    store_hits(settings, NOW, ["Casey review: two years on"], ["Casey review"])

    result = run_cli(config, "digest")
    assert result.exit_code == 0, result.output
    received = {tuple(envelope): message for envelope, message in messages(rec)}
    assert set(received) == {("alice@example.org",), ("bob@example.org",), ("desk@example.org",)}
    expected = {
        "alice@example.org": {"Met officers face misconduct hearing"},
        "bob@example.org": {
            "Met officers face misconduct hearing",
            "Thousands of officers to be re-vetted",
        },
        "desk@example.org": {"Casey review: two years on"},
    }
    everything = set().union(*expected.values())
    for (who,), message in received.items():
        assert message["To"] == who
        text, html = parts(message)
        shown = {t for t in everything if t in text and t in html}
        assert shown == expected[who], who
    carried = rows(
        settings,
        "SELECT dh.recipient, h.watchlist FROM digest_hits dh JOIN hits h ON h.id = dh.hit_id"
        " ORDER BY 1, 2",
    )
    assert carried == [
        ("alice@example.org", "Met Police"),
        ("bob@example.org", "Met Police"),
        ("bob@example.org", "Vetting"),
        ("desk@example.org", "Casey review"),
    ]


def test_an_address_written_in_two_cases_is_one_recipient(tmp_path: Path, serve: Serve) -> None:
    """Desk@Example.org and desk@example.org are one mailbox: one digest a day, not two."""
    rec = Recorder()
    config = write_config(tmp_path, mail=serve(rec))
    add_watchlist(config, "Met Police")  # [email].to: desk@example.org
    add_watchlist(config, "Vetting", recipients=["Desk@Example.org"])
    settings = load_settings(config)
    routes = plan_routes(settings, [("Met Police", ()), ("Vetting", ("Desk@Example.org",))])
    assert routes == [Route("desk@example.org", ("Met Police", "Vetting"))]
    store_hits(settings, NOW, ["Met officers face misconduct hearing"], ["Met Police", "Vetting"])
    assert run_cli(config, "digest").exit_code == 0
    assert [envelope for envelope, _ in messages(rec)] == [["desk@example.org"]]


def test_the_message_id_is_in_the_senders_domain(tmp_path: Path, serve: Serve) -> None:
    rec = Recorder()
    config = write_config(tmp_path, mail=serve(rec))
    add_watchlist(config, "Met Police", recipients=["editor@newsroom.example"])
    settings = load_settings(config)
    store_hits(settings, NOW, ["Met officers face misconduct hearing"])
    assert run_cli(config, "digest").exit_code == 0
    [(_, message)] = messages(rec)
    assert settings.email is not None and settings.email.sender.endswith("@example.org")
    assert message["Message-ID"].endswith(".monitor@example.org>")


def test_a_recipient_removed_from_the_config_is_not_sent_what_was_held_for_them(
    tmp_path: Path, serve: Serve
) -> None:
    """Someone who left: their refused digest is released by the next `monitor digest` (or
    a config edit), and must then not be sent to them; it is kept, not dropped, in case the
    removal was a mistake."""
    rec = RefuseOne()
    mail = serve(rec)
    config = write_config(tmp_path, mail=replace(mail, to=("desk@example.org", "gone@example.org")))
    add_watchlist(config, "Met Police")
    settings = load_settings(config)
    store_hits(settings, NOW, ["Met officers face misconduct hearing"])
    first = run_cli(config, "digest")
    assert "gone@example.org: not sent (held)" in first.stderr
    config.write_text(config.read_text().replace(', "gone@example.org"', ""))
    again = run_cli(config, "digest")
    assert again.exit_code == 0, again.output
    kept = "gone@example.org: kept, not sent: the recipient is not in the config now"
    assert kept in again.stdout
    assert [envelope for envelope, _ in messages(rec)] == [["desk@example.org"]]
    [(status,)] = rows(settings, "SELECT status FROM digests WHERE recipient = 'gone@example.org'")
    assert status == "pending"


def test_a_digest_whose_watchlist_is_broken_for_a_moment_is_kept_and_sent_once_mended(
    tmp_path: Path, serve: Serve
) -> None:
    """A pending digest whose recipient no watchlist names while a file is broken: kept, not
    dropped (its hits counted as carried and were never sent)."""
    rec, config, settings = desk_with_a_hit(tmp_path, serve, "Met officers face misconduct hearing")
    with Store.open(settings.monitor.database) as store:
        [route] = plan_routes(settings, [("Met Police", ())])
        made = make_digest(store, settings, route, "manual", NOW.date(), NOW)
    watchlist = config.parent / "watchlists" / "met-police.toml"
    good = watchlist.read_text(encoding="utf-8")
    watchlist.write_text("match = ['(IOPC OR']\n", encoding="utf-8")
    broken = run_cli(config, "digest")
    assert broken.exit_code == 1 and rec.received == []
    watchlist.write_text(good, encoding="utf-8")
    mended = run_cli(config, "digest")
    assert mended.exit_code == 0, mended.output
    assert "desk@example.org: sent 1 hit queued earlier" in mended.stdout
    assert len(rec.received) == 1
    assert rows(settings, "SELECT status FROM digests WHERE id = ?", (made.digest_id,)) == [
        ("sent",)
    ]


def test_changing_the_case_of_an_address_sends_nothing_again(tmp_path: Path, serve: Serve) -> None:
    rec, config, _ = desk_with_a_hit(tmp_path, serve, "Met officers face misconduct hearing")
    assert run_cli(config, "digest").exit_code == 0
    config.write_text(config.read_text().replace('"desk@example.org"', '"Desk@Example.org"'))
    again = run_cli(config, "digest")
    assert again.exit_code == 0, again.output
    assert "no new hits waiting" in again.stdout
    assert len(rec.received) == 1


def test_an_address_in_new_capitals_keeps_its_window_alerts_and_one_daily(
    tmp_path: Path, serve: Serve
) -> None:
    """The config spells the same mailbox in other capitals: the digest's window still starts
    at the last digest, alerts already sent still count, and today's daily is not made twice."""
    config = write_config(tmp_path, mail=serve(Recorder()), send_empty=True)
    add_watchlist(config, "Met Police", alert="immediate")
    settings = load_settings(config)
    store_hits(settings, NOW, ["Met officers face misconduct hearing"], immediate=["Met Police"])
    desk = Route("desk@example.org", ("Met Police",))
    shouted = Route("DESK@Example.ORG", ("Met Police",))
    later = NOW + timedelta(hours=1)
    with Store.open(settings.monitor.database) as store:
        make_alerts(store, settings, [desk], NOW)
        [sent] = deliver_pending(store, settings, NOW)
        assert sent.status == "sent"
        assert digest_data(store, settings, shouted, [], later).sections[0].alerted == 1
        daily = make_digest(store, settings, desk, "daily", NOW.date(), NOW)
        assert daily.digest_id is not None
        assert digest_data(store, settings, shouted, [], later).window_start == NOW
        again = make_digest(store, settings, shouted, "daily", NOW.date(), later)
    assert (again.digest_id, again.status) == (None, "skipped")
    assert rows(settings, "SELECT COUNT(*) FROM digests WHERE kind = 'daily'") == [(1,)]


def test_monitor_digest_sends_a_digest_that_is_waiting_to_be_retried_now(
    tmp_path: Path, serve: Serve
) -> None:
    """Asked by hand (the server is fixed), it does not answer "nothing new to send" while a
    digest waits out its back-off."""
    rec, config, settings = desk_with_a_hit(tmp_path, serve, "Met officers face misconduct hearing")
    with Store.open(settings.monitor.database) as store:
        [route] = plan_routes(settings, [("Met Police", ())])
        made = make_digest(store, settings, route, "manual", NOW.date(), NOW)
        with store.write() as conn:  # a failed attempt: retried an hour from now
            conn.execute(
                "UPDATE digests SET attempts = 1, next_attempt = ? WHERE id = ?",
                (to_db(datetime.now(UTC) + timedelta(hours=1)), made.digest_id),
            )
    result = run_cli(config, "digest")
    assert result.exit_code == 0, result.output
    assert "desk@example.org: sent 1 hit queued earlier" in result.stdout
    assert len(rec.received) == 1


def test_only_alerts_the_server_took_count_as_already_sent(tmp_path: Path, serve: Serve) -> None:
    """An alert still waiting (or refused) has not reached anyone: the digest must not tell
    the reader it did."""
    rec = Recorder()
    config = write_config(tmp_path, mail=serve(rec), send_empty=True)  # alerts' only count
    add_watchlist(config, "Met Police", alert="immediate")
    settings = load_settings(config)
    now = datetime.now(UTC)  # the dry run's window ends now
    store_hits(settings, now, ["Met officers face misconduct hearing"], immediate=["Met Police"])
    with Store.open(settings.monitor.database) as store:
        [route] = plan_routes(settings, [("Met Police", ())])
        [alert] = make_alerts(store, settings, [route], now)

    def preview() -> str:
        result = run_cli(config, "digest", "--dry-run")
        assert result.exit_code == 0, result.output
        return Path(result.stdout.strip()).with_suffix(".txt").read_text(encoding="utf-8")

    assert "already sent as alerts" not in preview()
    with Store.open(settings.monitor.database) as store:
        [sent] = deliver_pending(store, settings, now)
    assert (sent.digest_id, sent.status) == (alert.digest_id, "sent")
    assert "(already sent as alerts: 1)" in preview()


# -- crash safety -------------------------------------------------------------------------------

CRASH_AFTER_MAKING = """
import os, signal, sys
from datetime import UTC, datetime
from pathlib import Path
from monitor.config import load_settings
from monitor.outbox import make_digest, plan_routes
from monitor.runtime import Runtime

settings = load_settings(Path(sys.argv[1]))
with Runtime(settings) as rt:
    [route] = plan_routes(settings, [(w.name, w.recipients) for w in rt.watchlists])
    now = datetime.now(UTC)
    outcome = make_digest(rt.store, settings, route, "manual", now.date(), now)
    print(outcome.digest_id, outcome.status, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # before anything is sent
"""


def test_a_digest_made_before_a_crash_is_sent_once_after_restart(
    tmp_path: Path, serve: Serve
) -> None:
    rec = Recorder()
    config = write_config(tmp_path, mail=serve(rec))
    add_watchlist(config, "Met Police")
    settings = load_settings(config)
    hit_ids = store_hits(settings, NOW, ["Met sergeant charged", "IOPC finds failings"])

    crashed = subprocess.run(
        [sys.executable, "-c", CRASH_AFTER_MAKING, str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=TESTS.parent,
        env={**os.environ, "PYTHONPATH": str(TESTS.parent)},
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    digest_id = int(crashed.stdout.split()[0])
    assert crashed.stdout.split()[1] == "pending"
    assert rec.received == []
    carried = rows(settings, "SELECT hit_id FROM digest_hits WHERE digest_id = ?", (digest_id,))
    assert sorted(h for (h,) in carried) == sorted(hit_ids)

    # a fresh process state: a new Store, nothing remembered but the database
    with Store.open(settings.monitor.database) as store:
        [outcome] = deliver_pending(store, settings, datetime.now(UTC))
        assert (outcome.digest_id, outcome.status) == (digest_id, "sent")
        assert deliver_pending(store, settings, datetime.now(UTC) + timedelta(days=1)) == []
    [(_, message)] = messages(rec)
    [(message_id,)] = rows(settings, "SELECT message_id FROM digests WHERE id = ?", (digest_id,))
    assert message["Message-ID"] == message_id
    assert "Met sergeant charged" in parts(message)[0]

    # the restarted command neither resends it nor makes a second digest of the same hits
    again = run_cli(config, "digest")
    assert again.exit_code == 0 and "no new hits waiting" in again.stdout
    assert len(rec.received) == 1
    assert rows(settings, "SELECT COUNT(*) FROM digests") == [(1,)]


def test_the_database_refuses_a_hit_in_two_digests_for_one_recipient(
    tmp_path: Path, serve: Serve
) -> None:
    rec = Recorder()
    config = write_config(tmp_path, mail=serve(rec))
    add_watchlist(config, "Met Police")
    settings = load_settings(config)
    [hit] = store_hits(settings, NOW, ["Met officer dismissed for gross misconduct"])
    assert run_cli(config, "digest").exit_code == 0
    with Store.open(settings.monitor.database) as store:
        with pytest.raises(StoreError) as refused, store.write() as conn:
            cur = conn.execute(
                "INSERT INTO digests (kind, recipient, day, message_id, created, status,"
                " subject, text, html) VALUES ('manual', 'desk@example.org', '2026-11-22',"
                " '<other@example.org>', ?, 'pending', '', '', '')",
                (to_db(NOW),),
            )
            conn.execute(
                "INSERT INTO digest_hits VALUES (?, ?, 'desk@example.org')", (cur.lastrowid, hit)
            )
        assert isinstance(refused.value.__cause__, sqlite3.IntegrityError)
        assert store.read("SELECT COUNT(*) FROM digests")[0][0] == 1  # rolled back whole
    assert rows(settings, "SELECT hit_id, recipient FROM digest_hits") == [
        (hit, "desk@example.org")
    ]


def test_hits_follow_a_renamed_watchlist_file_but_not_a_name_still_in_use(tmp_path: Path) -> None:
    """ledger.follow_renames: the hits of a file's old name take its new one; an old name
    that another watchlist now has keeps its hits; a hit the new name already has for the
    same article keeps the old name (the pair stays unique)."""
    from monitor.ledger import follow_renames
    from monitor.query import parse_query
    from monitor.watchlist import Watchlist

    config = write_config(tmp_path)
    settings = load_settings(config)
    store_hits(settings, NOW, ["Met vetting failures"], ["Met Police", "Vetting"])
    store_hits(settings, NOW, ["IOPC report published"], ["Met Police"])

    def named(file: str, name: str) -> Watchlist:
        return Watchlist(name, tmp_path / "watchlists" / file, match=(parse_query("IOPC"),))

    def hits() -> list[tuple[str, str]]:
        sql = "SELECT a.title, h.watchlist FROM hits h JOIN articles a ON a.id = h.article_id"
        return sorted(rows(settings, sql))

    with Store.open(settings.monitor.database) as store:
        # first seen: the names are recorded, nothing moves
        assert (
            follow_renames(store, [named("met.toml", "Met Police"), named("v.toml", "Vetting")])
            == 0
        )
        # renamed: its hit follows
        assert follow_renames(store, [named("v.toml", "Vetting hearings")]) == 1
        assert ("Met vetting failures", "Vetting hearings") in hits()
        # met.toml renamed while a new file took its old name: the hits stay with that name
        taken = [named("met.toml", "London"), named("new.toml", "Met Police")]
        assert follow_renames(store, taken) == 0
        # v.toml renamed to a name that has a hit for the same article: that hit stays put
        assert follow_renames(store, [named("v.toml", "Met Police")]) == 0
    assert hits() == [
        ("IOPC report published", "Met Police"),
        ("Met vetting failures", "Met Police"),
        ("Met vetting failures", "Vetting hearings"),
    ]


def test_the_digest_names_the_other_feeds_that_carried_an_article(tmp_path: Path) -> None:
    """One article in two feeds is stored once; the digest shows it under the feed that
    brought it and says the other carried it too ('Also carried by'), as the built-in
    templates always could: the hits read from the store never said which feeds had it."""
    config = write_config(tmp_path)
    add_watchlist(config, "Met Police")
    settings = load_settings(config)
    url = "https://news.example/met-vetting"
    store_hits(settings, NOW, ["Met vetting failures named by IOPC"], feed="Wire", url=url)
    store_hits(settings, NOW, ["Met vetting failures named by IOPC"], feed="Ledger", url=url)
    assert rows(settings, "SELECT COUNT(*) FROM articles") == [(1,)]

    result = run_cli(config, "digest")
    assert result.exit_code == 0, result.output
    archived = Path(result.stdout.strip().rsplit(" ", 1)[-1])
    text = archived.with_suffix(".txt").read_text(encoding="utf-8")
    assert "Also carried by: Ledger" in text
    assert "Also:" in archived.read_text(encoding="utf-8")


def test_a_broken_user_template_is_logged_for_the_operator(tmp_path: Path) -> None:
    """The built-in template stands in and the mail says so, but only the readers saw that:
    `monitor digest` said 'sent' and nothing else."""
    templates = tmp_path / "tpl"
    templates.mkdir()
    (templates / "digest.txt.j2").write_text("{{ story.headline }}\n", encoding="utf-8")
    config = write_config(tmp_path)
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("[digest]\n", '[digest]\ntemplates = "tpl"\n'), encoding="utf-8")
    add_watchlist(config, "Met Police")
    store_hits(load_settings(config), NOW, ["Met vetting failures named by IOPC"])
    result = run_cli(config, "digest")
    assert result.exit_code == 0, result.output
    [line] = [x for x in result.stderr.splitlines() if "template error" in x]
    assert f"{templates / 'digest.txt.j2'}:1: " in line and "built-in digest.txt.j2" in line


def test_a_recipient_added_later_is_owed_the_hits_since_the_last_digest_not_all(
    tmp_path: Path, serve: Serve
) -> None:
    """A colleague added to a watchlist's recipients (or to [email].to) got every hit ever
    stored, as new, in one digest: the owed hits had no time bound. A new recipient starts at
    the last digest made for anyone; a preview records nothing."""
    rec = Recorder()
    config = write_config(tmp_path, mail=serve(rec))
    add_watchlist(config, "Met Police")
    settings = load_settings(config)
    store_hits(settings, NOW, ["Old Met story already sent"])
    assert run_cli(config, "digest").exit_code == 0
    store_hits(settings, datetime.now(UTC), ["New Met story"])
    add_watchlist(config, "Met Police", recipients=["desk@example.org", "boss@example.org"])

    preview = run_cli(config, "digest", "--dry-run")
    assert preview.exit_code == 0, preview.output
    assert rows(settings, "SELECT address FROM recipients ORDER BY 1") == [("desk@example.org",)]
    result = run_cli(config, "digest")
    assert result.exit_code == 0, result.output
    got = {tuple(envelope): parts(message)[0] for envelope, message in messages(rec)[1:]}
    assert set(got) == {("desk@example.org",), ("boss@example.org",)}
    for text in got.values():
        assert "New Met story" in text and "Old Met story" not in text
