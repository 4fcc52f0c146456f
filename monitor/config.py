"""config.toml -> one frozen Settings object, checked once at start-up.

Every key is declared once in SCHEMA with its parser, default and help text; the README's
config reference is checked against this table by a test. Problems are collected, not raised
one by one, and each names `FILE:LINE`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from monitor.errors import ConfigError, ConfigErrors, Location
from monitor.models import Feed
from monitor.tomlpos import KeyPath, Positions, load_toml
from monitor.units import parse_duration, parse_size
from monitor.urls import lacks_scheme

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_EMAIL = re.compile(r"^[^@\s<>\",;]+@[^@\s<>\",;]+$")
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_TYPE_NAMES = {str: "a string", int: "an integer", bool: "true or false", list: "a list"}


# -- value parsers: raw TOML value -> typed value, ValueError(message) when wrong -------------


def _expect(value: Any, kind: type) -> Any:
    # bool is an int in Python; TOML keeps them apart, so do we
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        got = type(value).__name__
        raise ValueError(f"expected {_TYPE_NAMES[kind]}, got {got} {value!r}")
    return value


def text(value: Any) -> str:
    return str(_expect(value, str))


def nonempty_text(value: Any) -> str:
    out = text(value).strip()
    if not out:
        raise ValueError("must not be empty")
    if any(c in out for c in "\r\n\0"):
        raise ValueError("must be one line")
    if _UNPRINTABLE.search(out):
        # shown in a terminal, a digest and an OPML export, which XML could not even hold
        raise ValueError("must not hold control characters")
    return out


def is_text(value: str) -> bool:
    """Whether a string is text, not bytes that were not UTF-8 smuggled in as surrogates (a
    command-line argument, a file name)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# control characters (C0 but tab, DEL, C1), lone surrogates and the two non-characters XML
# refuses: none belongs in a name, a host or an address
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def flag(value: Any) -> bool:
    return bool(_expect(value, bool))


def count(low: int, high: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        n = int(_expect(value, int))
        if not low <= n <= high:
            raise ValueError(f"must be between {low} and {high}, got {n}")
        return n

    return parse


def duration(value: Any) -> float:
    seconds = parse_duration(text(value))
    if seconds <= 0:
        raise ValueError("must be longer than zero")
    return seconds


def size(value: Any) -> int:
    n = parse_size(text(value))
    if n < 1000:  # the least the message offers must pass: 1KB is 1,000 bytes
        raise ValueError(f"{value!r} is too small; use at least 1KB")
    return n


def timezone(value: Any) -> ZoneInfo:
    name = text(value)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}; use a name like 'Europe/London'") from exc


def clock(value: Any) -> time:
    m = _CLOCK.match(text(value))
    if not m:
        raise ValueError(f"{value!r} is not a time of day; write it as HH:MM, e.g. '07:00'")
    return time(int(m[1]), int(m[2]))


def choice(*options: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if text(value) not in options:
            raise ValueError(f"must be one of {', '.join(options)}; got {value!r}")
        return str(value)

    return parse


def email_address(value: Any) -> str:
    addr = text(value).strip()
    if not _EMAIL.match(addr):
        raise ValueError(f"{value!r} is not an email address")
    return addr


def email_list(value: Any) -> tuple[str, ...]:
    items = _expect(value, list)
    if not items:
        raise ValueError("needs at least one address")
    return tuple(email_address(v) for v in items)


def networks(value: Any) -> tuple[IPNetwork, ...]:
    out = []
    for item in _expect(value, list):
        try:
            out.append(ipaddress.ip_network(text(item), strict=False))
        except ValueError as exc:
            raise ValueError(f"{item!r} is not an IP address or network") from exc
    return tuple(out)


def env_name(value: Any) -> str:
    name = text(value)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        # not shown: what was written here is often the password itself, and this line
        # goes to a terminal, a log or the journal
        raise ValueError(
            "is not an environment variable name (letters, digits and _); name the variable"
            " that holds the password, and never write the password in this file"
        )
    return name


def http_url(value: Any) -> str:
    url = nonempty_text(value)
    if not re.match(r"^https?://[^\s/]+", url, re.IGNORECASE):
        if lacks_scheme(url):
            raise ValueError(f"{url!r} has no scheme; write it as 'https://{url.strip()}'")
        raise ValueError(f"{url!r} is not an http or https URL")
    if "@" in urlsplit(url).netloc:
        # refused by every poll; said here, where the file is checked, and without the URL
        # (what comes before the @ may be a password)
        raise ValueError(
            "the URL carries a user name or password (user@host), which is never sent: a feed "
            "behind a login cannot be polled"
        )
    return url


# -- the schema ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Key:
    """One config key: how to read it, its default, and what it means."""

    name: str
    parse: Callable[[Any], Any]
    default: Any
    help: str
    required: bool = False

    def fallback(self) -> Any:
        """The value when the key is missing or wrong: its default, read; None without one."""
        return None if self.default is None else self.parse(self.default)


SCHEMA: dict[str, tuple[Key, ...]] = {
    "monitor": (
        Key("database", text, "monitor.db", "SQLite file; created on first run"),
        Key("watchlists", text, "watchlists", "folder of watchlist files (*.toml)"),
        Key("digests", text, "digests", "folder where every rendered digest is archived"),
        Key("timezone", timezone, "Europe/London", "time zone for the digest hour and dates"),
        Key("poll_interval", duration, "15m", "default time between polls of a feed"),
    ),
    "fetch": (
        Key(
            "user_agent",
            nonempty_text,
            "monitor/1.0 (+https://example.org/contact)",
            "User-Agent header sent with every request",
        ),
        Key("timeout", duration, "20s", "deadline for a whole request, body included"),
        Key("concurrency", count(1, 512), 32, "requests in flight overall"),
        Key("per_host", count(1, 64), 4, "requests in flight per host"),
        Key("max_bytes", size, "10MB", "largest response body, counted after decompression"),
        Key(
            "allow_private_networks",
            flag,
            False,
            "fetch loopback, private, link-local and reserved addresses",
        ),
        Key(
            "allow_addresses",
            networks,
            [],
            "addresses or networks fetched even though they are private",
        ),
    ),
    "extract": (
        Key("workers", count(0, 64), 0, "extraction processes; 0 means one per core"),
        Key("timeout", duration, "30s", "time limit for extracting one page"),
        Key("max_memory", size, "1GB", "memory limit of an extraction process"),
    ),
    "digest": (
        Key("at", clock, "07:00", "local time the daily digest is sent, in [monitor].timezone"),
        Key("send_empty", flag, False, "send a digest on days with no hits"),
        Key("templates", text, "", "folder whose files override the built-in templates"),
    ),
    "email": (
        Key("from", email_address, None, "sender address of digests and alerts", required=True),
        Key("to", email_list, None, "default recipients", required=True),
        Key("smtp_host", nonempty_text, "localhost", "SMTP server"),
        Key("smtp_port", count(1, 65535), 587, "SMTP port"),
        Key(
            "security",
            choice("starttls", "tls", "none"),
            "starttls",
            "starttls, tls (implicit TLS, usually port 465) or none",
        ),
        Key("username", text, "", "SMTP login; empty for none"),
        Key(
            "password_env",
            env_name,
            "MONITOR_SMTP_PASSWORD",
            "environment variable that holds the SMTP password",
        ),
    ),
}

FEED_KEYS: tuple[Key, ...] = (
    Key("name", nonempty_text, None, "name shown in digests and used by watchlists", required=True),
    Key("url", http_url, None, "feed URL (RSS or Atom)", required=True),
    Key("interval", duration, None, "time between polls; default [monitor].poll_interval"),
)

TOP_LEVEL = {*SCHEMA, "feeds", "opml"}


# -- the settings ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MonitorSettings:
    database: Path
    watchlists: Path
    digests: Path
    timezone: ZoneInfo
    poll_interval: float


@dataclass(frozen=True, slots=True)
class FetchSettings:
    user_agent: str = "monitor/1.0 (+https://example.org/contact)"
    timeout: float = 20.0
    concurrency: int = 32
    per_host: int = 4
    max_bytes: int = 10_000_000
    allow_private_networks: bool = False
    allow_addresses: tuple[IPNetwork, ...] = ()


@dataclass(frozen=True, slots=True)
class ExtractSettings:
    workers: int = 0
    timeout: float = 30.0
    max_memory: int = 1_000_000_000


@dataclass(frozen=True, slots=True)
class DigestSettings:
    at: time
    send_empty: bool
    templates: Path | None


@dataclass(frozen=True, slots=True)
class EmailSettings:
    sender: str
    to: tuple[str, ...]
    smtp_host: str
    smtp_port: int
    security: str
    username: str
    password_env: str


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything config.toml says, validated, with paths made absolute."""

    path: Path
    monitor: MonitorSettings
    fetch: FetchSettings
    extract: ExtractSettings
    digest: DigestSettings
    email: EmailSettings | None
    feeds: tuple[Feed, ...]
    opml: Path | None = None  # the OPML file `opml = ...` names: the daemon watches it too

    @property
    def base(self) -> Path:
        return self.path.parent

    def feed(self, name: str) -> Feed:
        for feed in self.feeds:
            if feed.name == name:
                return feed
        raise ConfigError(f"no feed named {name!r} in the config", Location(str(self.path)))


# -- loading ----------------------------------------------------------------------------------


class _Collector:
    """Gathers problems with their locations while a file is read."""

    def __init__(self, positions: Positions) -> None:
        self.positions = positions
        self.errors: list[ConfigError] = []

    def error(self, path: KeyPath, message: str, *, key: bool = False) -> None:
        self.errors.append(ConfigError(message, self.positions.location(path, key=key)))

    def table(self, raw: Any, path: KeyPath, keys: tuple[Key, ...]) -> dict[str, Any]:
        """Parse one table against its keys; unknown keys and bad values are recorded."""
        name = f"[{path[0]}]" if len(path) == 1 else f"[[{path[0]}]] number {int(path[1]) + 1}"
        if not isinstance(raw, dict):  # said once: its keys are not missing, it has none
            self.error(path, f"{name} must be a table")
            return {k.name: k.fallback() for k in keys}
        known = {k.name: k for k in keys}
        for unknown in sorted(set(raw) - set(known)):
            hint = _suggest(unknown, list(known))
            self.error((*path, unknown), f"unknown key {unknown!r} in {name}{hint}", key=True)
        out: dict[str, Any] = {}
        for key in keys:
            if key.name not in raw:
                if key.required:
                    self.error(path, f"{name} needs {key.name!r} ({key.help})", key=True)
                out[key.name] = key.fallback()
                continue
            try:
                out[key.name] = key.parse(raw[key.name])
            except ValueError as exc:
                self.error((*path, key.name), f"{key.name}: {exc}")
                out[key.name] = key.fallback()
        return out


def _suggest(word: str, options: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(word, options, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def load_settings(path: Path) -> Settings:
    """Read and check config.toml; raises ConfigErrors listing every problem found."""
    path = path.resolve()
    try:
        data, positions = load_toml(path, _display(path))
    except ConfigError as exc:
        raise ConfigErrors([exc]) from exc
    c = _Collector(positions)
    for unknown in sorted(set(data) - TOP_LEVEL):
        hint = _suggest(unknown, sorted(TOP_LEVEL))
        c.error((unknown,), f"unknown section or key {unknown!r}{hint}", key=True)
    sections = {
        name: c.table(data.get(name, {}), (name,), keys)
        for name, keys in SCHEMA.items()
        if name in data or name != "email"
    }
    base = path.parent
    mon = sections["monitor"]
    monitor = MonitorSettings(
        database=base / mon["database"],
        watchlists=base / mon["watchlists"],
        digests=base / mon["digests"],
        timezone=mon["timezone"],
        poll_interval=mon["poll_interval"],
    )
    feeds = _load_feeds(data, c, base, monitor.poll_interval)
    dig = sections["digest"]
    email = None
    if "email" in data:
        e = sections["email"]
        email = EmailSettings(
            sender=e["from"] or "",
            to=e["to"] or (),
            smtp_host=e["smtp_host"],
            smtp_port=e["smtp_port"],
            security=e["security"],
            username=e["username"],
            password_env=e["password_env"],
        )
    if c.errors:
        raise ConfigErrors(c.errors)
    return Settings(
        path=path,
        monitor=monitor,
        fetch=FetchSettings(**sections["fetch"]),
        extract=ExtractSettings(**sections["extract"]),
        digest=DigestSettings(
            at=dig["at"],
            send_empty=dig["send_empty"],
            templates=(base / dig["templates"]) if dig["templates"] else None,
        ),
        email=email,
        feeds=feeds,
        opml=(base / data["opml"]) if isinstance(data.get("opml"), str) else None,
    )


def _display(path: Path) -> str:
    """A path as short as is unambiguous: relative to the working folder when inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _load_feeds(
    data: dict[str, Any], c: _Collector, base: Path, default: float
) -> tuple[Feed, ...]:
    feeds: list[Feed] = []
    raw_feeds = data.get("feeds", [])
    if not isinstance(raw_feeds, list):
        c.error(("feeds",), "feeds must be written as [[feeds]] tables")
        raw_feeds = []
    seen: dict[str, KeyPath | Location] = {}
    for i, raw in enumerate(raw_feeds):
        values = c.table(raw, ("feeds", i), FEED_KEYS)
        if values["name"] and values["url"]:
            feed = Feed(values["name"], values["url"], values["interval"] or default)
            _add_feed(feeds, seen, feed, ("feeds", i, "name"), c)
    if "opml" in data:
        for feed, where in _load_opml(data["opml"], c, base, default):
            _add_feed(feeds, seen, feed, where, c)
    return tuple(feeds)


def _load_opml(
    value: Any, c: _Collector, base: Path, default: float
) -> list[tuple[Feed, Location]]:
    """The feeds of the OPML file `opml = ...` names, each with its outline's place; the
    file's problems are recorded at their place in it, every bad outline at once."""
    # imported here: most configs list their feeds, and every command reads the config
    from monitor.opml import OPMLSyntaxError, read_opml

    try:
        opml = base / text(value)
        listed = read_opml(opml)
    except OPMLSyntaxError as exc:
        where = Location(_display(opml), exc.line, exc.column)
        c.errors.append(ConfigError(f"not valid OPML: {exc}", where))
        return []
    except ValueError as exc:  # not a string
        c.error(("opml",), f"opml: {exc}")
        return []
    except OSError as exc:
        c.error(("opml",), f"opml: cannot read {_display(opml)}: {exc.strerror or exc}")
        return []
    feeds = []
    for outline in listed:
        where = Location(_display(opml), outline.line)
        try:
            feed = Feed(nonempty_text(outline.name), http_url(outline.url), default)
        except ValueError as exc:
            c.errors.append(ConfigError(f"outline {outline.name!r}: {exc}", where))
        else:
            feeds.append((feed, where))
    return feeds


def _add_feed(
    feeds: list[Feed],
    seen: dict[str, KeyPath | Location],
    feed: Feed,
    place: KeyPath | Location,
    c: _Collector,
) -> None:
    """Add the feed unless its name is taken; place is a key of the config or an OPML line."""

    def located(place: KeyPath | Location) -> Location:
        return place if isinstance(place, Location) else c.positions.location(place)

    if feed.name in seen:
        message = f"feed name {feed.name!r} is used twice (first at {located(seen[feed.name])})"
        c.errors.append(ConfigError(message, located(place)))
        return
    seen[feed.name] = place
    feeds.append(feed)
