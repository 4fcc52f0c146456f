"""Picking up edited watchlists and config in a running daemon, keeping the last good ones.

A file is read again when its size or modification time changes. An edit that breaks a file
keeps that file's last good version and logs the problem once; a file caught half-written is
read again on the next check, since it changes again when the editor finishes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from monitor.config import Settings, load_settings
from monitor.errors import ConfigErrors
from monitor.logs import event, get_logger

if TYPE_CHECKING:
    from monitor.watchlist import Watchlist

log = get_logger("reload")
Stamp = tuple[int, int]  # (mtime_ns, size)
_UNREAD: Stamp = (-1, -1)  # what no file has: it is read again at the next check


def stamp(path: Path) -> Stamp | None:
    """What tells us a file changed; None when it is gone."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


@dataclass
class WatchlistReloader:
    """The daemon's current watchlists, refreshed from their folder."""

    folder: Path
    good: dict[Path, Watchlist] = field(default_factory=dict)
    seen: dict[Path, Stamp] = field(default_factory=dict)
    doubted: dict[Path, Stamp] = field(default_factory=dict)  # emptied: read once more first

    def refresh(self) -> bool:
        """Re-read changed files; True when the set of watchlists in use changed."""
        from monitor.watchlist import load_watchlist

        files = {
            p: s
            for p in sorted(self.folder.glob("*.toml"))
            if not p.name.startswith(".") and (s := stamp(p)) is not None
        }
        if files == self.seen:
            return False
        changed = False
        for path in set(self.good) - set(files):
            del self.good[path]
            event(log, 20, "watchlist removed", file=str(path))
            changed = True
        for path, st in files.items():
            if self.seen.get(path) == st:
                continue
            try:
                loaded = load_watchlist(path)
                if not loaded.match and path in self.good and self.doubted.get(path) != st:
                    # an editor that saves in place empties the file first: caught then, the
                    # file is read again next check, and only still empty does it count
                    self.doubted[path] = st
                    files[path] = _UNREAD
                    continue
                self.doubted.pop(path, None)
                self.good[path] = loaded
                changed = True
                event(log, 20, "watchlist loaded", file=str(path), name=loaded.name)
            except ConfigErrors as exc:
                kept = "keeping the last good version" if path in self.good else "not in use"
                for error in exc.errors:
                    event(log, 40, f"watchlist error, {kept}: {error}", file=str(path))
        self.seen = files
        return changed

    @property
    def watchlists(self) -> tuple[Watchlist, ...]:
        """The watchlists in use, one per name (the first file in name order wins)."""
        by_name: dict[str, Watchlist] = {}
        for path in sorted(self.good):
            w = self.good[path]
            if w.name in by_name:
                event(
                    log,
                    40,
                    "two watchlists share a name; ignoring the second",
                    name=w.name,
                    file=str(path),
                )
                continue
            by_name[w.name] = w
        return tuple(by_name.values())


@dataclass
class ConfigReloader:
    """The daemon's current settings, re-read when the file changes and still valid."""

    settings: Settings
    seen: tuple[Stamp | None, Stamp | None] | None = None
    doubted: tuple[Stamp | None, Stamp | None] | None = None  # emptied: read once more first

    def __post_init__(self) -> None:
        self.seen = self._stamps(self.settings)

    @staticmethod
    def _stamps(settings: Settings) -> tuple[Stamp | None, Stamp | None]:
        """The config file's stamp and the OPML file's it names: an edit to either counts."""
        return stamp(settings.path), stamp(settings.opml) if settings.opml else None

    def refresh(self) -> bool:
        """Re-read the config if it changed; True when new settings were taken."""
        current = self._stamps(self.settings)
        if current == self.seen or current[0] is None:
            return False
        self.seen = current
        try:
            loaded = load_settings(self.settings.path)
        except ConfigErrors as exc:
            for error in exc.errors:
                event(log, 40, f"config error, keeping the running config: {error}")
            return False
        if loaded.feeds == () and self.settings.feeds and self.doubted != current:
            # an editor saving in place empties the file first: caught then, it is read
            # again next check, and only still without feeds does it count
            self.doubted, self.seen = current, None
            return False
        self.doubted = None
        self.settings = _keep_database(self.settings, loaded)
        self.seen = self._stamps(self.settings)  # the OPML file may be another one now
        event(log, 20, "config reloaded", file=str(self.settings.path))
        return True


def _keep_database(running: Settings, loaded: Settings) -> Settings:
    """The loaded settings, but on the running database: the daemon's lock and its digest
    record are there, and a second daemon could take the other one. Say what a reload gives
    up that is probably a mistake: every feed, or [email]."""
    if loaded.feeds == () and running.feeds:
        event(log, 30, "the config lists no feeds now: nothing will be polled")
    if loaded.email is None and running.email is not None:
        event(log, 30, "the config has no [email] now: digests will only be archived")
    if loaded.monitor.database == running.monitor.database:
        return loaded
    event(
        log,
        40,
        "the database changed in the config; restart monitor to use it."
        f" Still using {running.monitor.database}",
        file=str(running.path),
    )
    return replace(loaded, monitor=replace(loaded.monitor, database=running.monitor.database))
