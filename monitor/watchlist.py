"""watchlists/NAME.toml -> frozen Watchlist records, with FILE:LINE:COL for every problem.

A watchlist file::

    name = "Met Police"          # default: the file name
    match = ['"Metropolitan Police"', 'IOPC']   # a hit if any of these matches...
    exclude = ['title:obituary']               # ...and none of these does
    ignore = ['"Met Office"']                  # masked before matching
    alert = "digest"                           # or "immediate"
    feeds = []                                 # only these feed names (default: all)
    recipients = []                            # default: [email].to

A file holding nothing (only comments) is an empty watchlist, loaded with a warning so that
silence is never mistaken for "no news". A watchlist holds at most MAX_QUERIES queries: a
bigger one is refused rather than left to slow down every poll.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitor.config import choice, email_address, is_text, nonempty_text
from monitor.errors import ConfigError, ConfigErrors, Location
from monitor.query import Phrase, Query, QuerySyntaxError, Word, parse_query
from monitor.tomlpos import KeyPath, Positions, load_toml

MAX_QUERIES = 50_000  # match + exclude + ignore, per watchlist
MAX_FILE_BYTES = 16_000_000
KEYS = ("name", "match", "exclude", "ignore", "alert", "feeds", "recipients")
ROLES = ("match", "exclude", "ignore")
ALERTS = ("digest", "immediate")


@dataclass(frozen=True, slots=True)
class Watchlist:
    """One watchlist file, checked: its queries parsed, its settings validated."""

    name: str
    path: Path
    match: tuple[Query, ...] = ()
    exclude: tuple[Query, ...] = ()
    ignore: tuple[Query, ...] = ()
    alert: str = "digest"
    feeds: tuple[str, ...] = ()
    recipients: tuple[str, ...] = ()
    # where each key and query came from, for warnings that name a line and column
    positions: Positions | None = field(default=None, compare=False, repr=False)

    def location(self, path: KeyPath, offset: int | None = None) -> Location:
        """FILE:LINE[:COL] of a key's value, or of a character inside a query string."""
        if self.positions is None:
            return Location(str(self.path))
        if offset is None:
            return self.positions.location(path)
        return self.positions.location_in_string(path, offset)


@dataclass(frozen=True)
class WatchlistSet:
    """Every watchlist of a folder that loaded, and what was wrong with the others."""

    watchlists: tuple[Watchlist, ...]
    errors: list[ConfigError]
    warnings: list[ConfigError]

    def get(self, name: str) -> Watchlist | None:
        """The watchlist with this name, if one loaded."""
        return next((w for w in self.watchlists if w.name == name), None)


class _Reader:
    """Reads one file's values, collecting every problem with its location."""

    def __init__(self, data: dict[str, Any], positions: Positions) -> None:
        self.data = data
        self.positions = positions
        self.errors: list[ConfigError] = []

    def error(self, path: KeyPath, message: str, offset: int | None = None) -> None:
        """Record a problem at a value, or at a character inside a query string."""
        if offset is None:
            location = self.positions.location(path)
        else:
            location = self.positions.location_in_string(path, offset)
        self.errors.append(ConfigError(message, location))

    def check_keys(self) -> None:
        for key in self.data:
            if key not in KEYS:
                close = difflib.get_close_matches(key, KEYS, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                self.errors.append(
                    ConfigError(
                        f"unknown key {key!r}{hint}", self.positions.location((key,), key=True)
                    )
                )

    def value(self, key: str, parse: Callable[[Any], Any], default: Any) -> Any:
        """A parsed scalar value, or the default when absent or wrong."""
        if key not in self.data:
            return default
        try:
            return parse(self.data[key])
        except ValueError as exc:
            self.error((key,), f"{key}: {exc}")
            return default

    def items(self, key: str, example: str) -> list[tuple[int, Any]]:
        """The entries of a list value, or none (with an error) when it is not a list."""
        raw = self.data.get(key, [])
        if not isinstance(raw, list):
            got = "a single string" if isinstance(raw, str) else type(raw).__name__
            self.error((key,), f"{key} must be a list, e.g. {key} = [{example}]; got {got}")
            return []
        return list(enumerate(raw))

    def strings(self, key: str, parse: Callable[[Any], str], example: str) -> tuple[str, ...]:
        """A list of strings, each parsed; bad entries are recorded and left out."""
        out: list[str] = []
        for i, item in self.items(key, example):
            try:
                out.append(parse(item))
            except ValueError as exc:
                self.error((key, i), f"{key}: {exc}")
        return tuple(out)

    def queries(self, role: str) -> tuple[Query, ...]:
        """The parsed queries of match, exclude or ignore; bad ones are recorded."""
        out: list[Query] = []
        for i, item in self.items(role, "'IOPC'"):
            if not isinstance(item, str):
                self.error((role, i), f"{role}: expected a query string, got {item!r}")
                continue
            try:
                query = parse_query(item, positive=role == "match")
            except QuerySyntaxError as exc:
                self.error((role, i), f"{role}: {exc.message}", exc.offset)
                continue
            if role == "ignore" and not _is_plain_text(query):
                self.error((role, i), 'ignore: each entry must be a word or a "phrase"', 0)
                continue
            out.append(query)
        return tuple(out)


def _is_plain_text(query: Query) -> bool:
    root = query.root
    return isinstance(root, Word | Phrase) and not root.title


def _display(path: Path) -> str:
    """A path as short as is unambiguous: relative to the working folder when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def load_watchlist(path: Path, feed_names: Collection[str] | None = None) -> Watchlist:
    """Read and check one watchlist file; raises ConfigErrors listing every problem. With
    the config's feed names, a `feeds` entry that names none of them is one of the problems."""
    file = _display(path)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ConfigError(f"file is larger than {MAX_FILE_BYTES:,} bytes", Location(file))
        data, positions = load_toml(path, file)
    except OSError as exc:
        raise ConfigErrors(
            [ConfigError(f"cannot read file: {exc.strerror}", Location(file))]
        ) from exc
    except ConfigError as exc:
        raise ConfigErrors([exc]) from exc
    if not data:
        stem_problem = _stem_problem(path, data)
        if stem_problem is not None:
            raise ConfigErrors([stem_problem])
        return Watchlist(path.stem, path, positions=positions)
    return _read_watchlist(path, data, positions, feed_names)


def _stem_problem(path: Path, data: dict[str, Any]) -> ConfigError | None:
    """The error of a file without `name` whose file name cannot name it (bytes that are not
    UTF-8, control characters): the name goes into the database, the digest and the logs."""
    if "name" in data:
        return None
    try:
        nonempty_text(path.stem)
        return None
    except ValueError as exc:  # a byte that was not UTF-8 is refused as a control character
        reason = str(exc) if is_text(path.stem) else "is not UTF-8"
    message = (
        f"the file name {reason}, so it cannot name the watchlist:"
        ' rename the file or add name = "..."'
    )
    return ConfigError(message, Location(_display(path)))


def _read_watchlist(
    path: Path, data: dict[str, Any], positions: Positions, feed_names: Collection[str] | None
) -> Watchlist:
    reader = _Reader(data, positions)
    reader.check_keys()
    stem_problem = _stem_problem(path, data)
    if stem_problem is not None:
        reader.errors.append(stem_problem)
    total = sum(len(v) for k in ROLES if isinstance(v := data.get(k), list))
    if total > MAX_QUERIES:
        message = f"{total:,} queries; a watchlist holds at most {MAX_QUERIES:,}: split the file"
        raise ConfigErrors([ConfigError(message, Location(positions.file))])
    if "match" not in data:
        reader.errors.append(
            ConfigError(
                "no 'match' list: add the queries this watchlist looks for",
                Location(positions.file),
            )
        )
    elif data["match"] == []:
        reader.error(("match",), "match is empty: add at least one query")
    watchlist = Watchlist(
        name=reader.value("name", nonempty_text, path.stem),
        path=path,
        match=reader.queries("match"),
        exclude=reader.queries("exclude"),
        ignore=reader.queries("ignore"),
        alert=reader.value("alert", choice(*ALERTS), "digest"),
        feeds=reader.strings("feeds", nonempty_text, "'BBC UK'"),
        recipients=reader.strings("recipients", email_address, "'desk@example.org'"),
        positions=positions,
    )
    if feed_names is not None:
        reader.errors += check_feed_names(watchlist, feed_names)
    if reader.errors:
        raise ConfigErrors(reader.errors)
    return watchlist


def load_watchlists(folder: Path, feed_names: Collection[str] | None = None) -> WatchlistSet:
    """Every *.toml in a folder; one broken file never hides the others. With the config's
    feed names, each `feeds` entry must name one of them (see load_watchlist)."""
    from monitor.watchlint import lint_watchlist  # it reads Watchlist records: imported here

    if not folder.is_dir():
        error = ConfigError(
            "watchlists folder not found; create it and put your watchlists (NAME.toml) in it,"
            " or point [monitor] watchlists in the config at the folder that holds them",
            Location(_display(folder)),
        )
        return WatchlistSet((), [error], [])
    loaded: list[Watchlist] = []
    errors: list[ConfigError] = []
    warnings: list[ConfigError] = []
    by_name: dict[str, Watchlist] = {}
    # dot-files are editor lock and swap files, not watchlists
    for path in sorted(p for p in folder.glob("*.toml") if not p.name.startswith(".")):
        try:
            watchlist = load_watchlist(path, feed_names)
        except ConfigErrors as exc:
            errors.extend(exc.errors)
            continue
        first = by_name.get(watchlist.name)
        if first is not None:
            message = (
                f"watchlist name {watchlist.name!r} is already used by {_display(first.path)};"
                ' give this one a name of its own (name = "...")'
            )
            errors.append(ConfigError(message, watchlist.location(("name",))))
            continue
        by_name[watchlist.name] = watchlist
        loaded.append(watchlist)
        warnings.extend(lint_watchlist(watchlist))
    warnings += _unread_files(folder)
    if not loaded and not errors:
        warnings.append(
            ConfigError(
                "no watchlist files (*.toml): nothing will match", Location(_display(folder))
            )
        )
    return WatchlistSet(tuple(loaded), errors, warnings)


def _unread_files(folder: Path) -> list[ConfigError]:
    """Warnings for what looks meant as a watchlist but is never read: `Casey.TOML`, a file
    an editor saved as `vetting.toml.txt`, watchlists in a subfolder."""
    out = []
    for path in sorted(folder.iterdir()):
        name = path.name.lower()
        if path.name.startswith("."):
            continue
        if path.is_dir() and next(path.rglob("*.toml"), None) is not None:
            message = f"{path.name}/ is a folder: watchlists in it are not read"
        elif path.is_file() and path.suffix != ".toml" and name.endswith((".toml", ".toml.txt")):
            message = "not read: a watchlist's file name ends in .toml"
        else:
            continue
        out.append(ConfigError(message, Location(_display(path))))
    return out


def check_feed_names(w: Watchlist, feed_names: Collection[str]) -> list[ConfigError]:
    """Errors for each `feeds` entry that names no configured feed."""
    out = []
    for i, name in enumerate(w.feeds):
        if name not in feed_names:
            close = difflib.get_close_matches(name, sorted(feed_names), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            out.append(
                ConfigError(
                    f"feeds: no feed named {name!r} in the config{hint}", w.location(("feeds", i))
                )
            )
    return out
