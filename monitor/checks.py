"""`monitor check`: every problem with the config and the watchlists, and likely mistakes.

Errors make `check` exit 1; warnings are things that work but probably do not do what the user
meant (a lowercase `met`, a watchlist that has matched nothing for a month, a feed failing
for a week).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from monitor.config import Settings, load_settings
from monitor.errors import ConfigError, ConfigErrors, Location, MonitorError, in_file_order
from monitor.store import Store, to_db
from monitor.tomlpos import KeyPath, load_toml
from monitor.units import plural

QUIET_WATCHLIST = timedelta(days=30)
FAILING_FEED = timedelta(days=7)
SQLITE_HEADER = b"SQLite format 3\x00"


def shown(path: Path) -> str:
    """A path as the user would type it: relative to the working folder when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def database_problem(s: Settings) -> ConfigError | None:
    """An error when [monitor].database names a file that is not a SQLite database: opening
    it would fail on every command (and a typo could point it at someone's notes)."""
    db = s.monitor.database
    try:
        with db.open("rb") as f:
            head = f.read(len(SQLITE_HEADER))
    except FileNotFoundError:
        return None  # created on first use
    except OSError as exc:
        return ConfigError(f"cannot read the database: {exc.strerror}", Location(shown(db)))
    if head and head != SQLITE_HEADER:
        return ConfigError(
            f"not a SQLite database; point [monitor] database in {shown(s.path)} at the "
            "monitor's database file, or move this file away",
            Location(shown(db)),
        )
    return None


def run_checks(
    config: Path, now: datetime | None = None
) -> tuple[list[ConfigError], list[ConfigError], str]:
    """(errors, warnings, one-line summary) for a config file and what it points to."""
    from monitor.watchlist import load_watchlists

    now = now or datetime.now(UTC)
    if not config.is_file():  # for check, a problem with the config like any other
        message = "no config file; pass --config PATH or set MONITOR_CONFIG"
        return [ConfigError(message, Location(shown(config)))], [], ""
    try:
        s = load_settings(config)
    except ConfigErrors as exc:
        # the watchlists and templates are checked too, so every problem is told in one run
        return _check_what_a_broken_config_names(config.resolve(), exc.errors)
    loaded = load_watchlists(s.monitor.watchlists, {f.name for f in s.feeds})
    errors: list[ConfigError] = list(loaded.errors)
    warnings: list[ConfigError] = list(loaded.warnings)  # lint_watchlist's, among others
    errors += _check_templates(s.digest.templates, s.path)
    warnings += _check_setup(s)
    bad_database = database_problem(s)
    if bad_database is not None:
        errors.append(bad_database)
    else:
        unusable, told = _check_history(s, [(w.name, w.path) for w in loaded.watchlists], now)
        errors += unusable
        warnings += told
    queries = sum(len(w.match) + len(w.exclude) for w in loaded.watchlists)
    summary = (
        f"{shown(s.path)}: ok: {plural(len(s.feeds), 'feed')}, "
        f"{plural(len(loaded.watchlists), 'watchlist')} ({plural(queries, 'query', 'queries')})"
    )
    return in_file_order(errors), in_file_order(warnings), summary


def _check_what_a_broken_config_names(
    config: Path, errors: list[ConfigError]
) -> tuple[list[ConfigError], list[ConfigError], str]:
    """The config's errors, and those of the watchlists and templates folders it names as far
    as it still tells them: nothing more when it is not TOML, no watchlists when its
    `watchlists` key is itself wrong, and no feed-name check when an OPML file lists feeds."""
    from monitor.watchlist import load_watchlists

    try:
        data, _ = load_toml(config, shown(config))
    except ConfigError:
        return errors, [], ""
    monitor, digest = (_table(data, name) for name in ("monitor", "digest"))
    told = list(errors)
    warnings: list[ConfigError] = []
    watchlists = monitor.get("watchlists", "watchlists")
    if isinstance(watchlists, str) and watchlists.strip():
        tables = data.get("feeds", [])
        names = None
        if "opml" not in data and isinstance(tables, list):
            names = frozenset(
                t["name"] for t in tables if isinstance(t, dict) and isinstance(t.get("name"), str)
            )
        loaded = load_watchlists(config.parent / watchlists, names)
        told += loaded.errors
        warnings += loaded.warnings
    templates = digest.get("templates")
    if isinstance(templates, str) and templates.strip():
        told += _check_templates(config.parent / templates, config)
    return in_file_order(told), in_file_order(warnings), ""


def _table(data: dict[str, Any], name: str) -> dict[str, Any]:
    table = data.get(name)
    return table if isinstance(table, dict) else {}


def _config_location(config: Path, path: KeyPath) -> Location:
    """FILE:LINE of a key in the config file (just FILE if it cannot be found)."""
    try:
        _, positions = load_toml(config, shown(config))
    except ConfigError:
        return Location(shown(config))
    return positions.location(path)


def _feed_location(s: Settings, name: str) -> Location:
    """FILE:LINE of a feed's url in its [[feeds]] table, or of the opml key listing it."""
    try:
        data, positions = load_toml(s.path, shown(s.path))
    except ConfigError:
        return Location(shown(s.path))
    tables = data.get("feeds", [])
    for i, table in enumerate(tables if isinstance(tables, list) else []):
        if isinstance(table, dict) and table.get("name") == name:
            return positions.location(("feeds", i, "url"))
    return positions.location(("opml",))


def _check_templates(folder: Path | None, config: Path) -> list[ConfigError]:
    """Problems of the [digest] templates folder a config names (none when it names none)."""
    if folder is None:
        return []
    if not folder.is_dir():
        message = f"[digest] templates: no folder {shown(folder)}; create it or remove the key"
        return [ConfigError(message, _config_location(config, ("digest", "templates")))]
    from monitor.digest import check_templates

    return [
        ConfigError(e.message, Location(shown(Path(e.location.file)), e.location.line))
        if e.location is not None
        else e
        for e in check_templates(folder)
    ]


def _check_setup(s: Settings) -> list[ConfigError]:
    # an empty watchlists folder is already reported by load_watchlists
    here = Location(shown(s.path))
    out = []
    if not s.feeds:
        out.append(ConfigError('no feeds: add [[feeds]] tables or opml = "feeds.opml"', here))
    out += _twice_polled(s)
    email = s.email
    if email is not None and email.username and not os.environ.get(email.password_env):
        out.append(
            ConfigError(
                f"[email] username is set but ${email.password_env} is empty: "
                "set it in the daemon's environment",
                here,
            )
        )
    return out


def _twice_polled(s: Settings) -> list[ConfigError]:
    """A warning for each feed whose URL an earlier one already has (an OPML export pasted
    beside [[feeds]], say): it would be fetched twice a cycle, for the same articles."""
    from monitor.urls import same_feed

    first: dict[str, str] = {}
    out = []
    for feed in s.feeds:
        key = same_feed(feed.url)
        if key in first:
            message = f"feed {feed.name!r} has the URL of {first[key]!r}: it is polled twice"
            out.append(ConfigError(f"{message}; remove one", _feed_location(s, feed.name)))
        else:
            first[key] = feed.name
    return out


def _check_history(
    s: Settings, watchlists: list[tuple[str, Path]], now: datetime
) -> tuple[list[ConfigError], list[ConfigError]]:
    """(errors, warnings) that need the database: the error of a database no command can
    use (damaged, or from a newer monitor); warnings of quiet watchlists and failing feeds."""
    if not s.monitor.database.exists():
        return [], []
    out = []
    try:
        with Store.open(s.monitor.database) as store:
            created = store.created()
            if now - created >= QUIET_WATCHLIST:
                since = to_db(now - QUIET_WATCHLIST)
                for name, path in watchlists:
                    rows = store.read(
                        "SELECT 1 FROM hits WHERE watchlist = ? AND first_seen >= ? LIMIT 1",
                        (name, since),
                    )
                    if not rows:
                        out.append(
                            ConfigError(
                                f"watchlist {name!r} has matched nothing in 30 days: check its "
                                "queries with `monitor test` and `monitor search`",
                                Location(shown(path)),
                            )
                        )
            out += _failing_feeds(s, store, now)
    except MonitorError as exc:
        return [
            ConfigError(f"cannot use the database: {exc}", Location(shown(s.monitor.database)))
        ], out
    return [], out


def _failing_feeds(s: Settings, store: Store, now: datetime) -> list[ConfigError]:
    """A warning, at the feed's [[feeds]] table, for each feed failing for a week or more."""
    out = []
    for st in store.feed_states([f.name for f in s.feeds]):
        if st.failing_since is None or now - st.failing_since < FAILING_FEED:
            continue
        days = (now - st.failing_since).days
        where = _feed_location(s, st.name)
        message = f"feed {st.name!r} has failed for {days} days ({st.last_error}); fix its URL"
        out.append(ConfigError(f"{message} or remove it", where))
    return out
