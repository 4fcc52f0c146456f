"""Read a TOML file with the line and column of every key and value.

tomllib parses, but forgets where things were. Users edit config and watchlist files by hand,
so every complaint about them must name `FILE:LINE[:COL]`. This module runs tomllib for the
values and then a small lexer over the already-valid text to record positions, keyed by the
same path tomllib's dict would use: ("feeds", 2, "url") or ("match", 4).
"""

from __future__ import annotations

import bisect
import re
import tomllib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from monitor.errors import ConfigError, Location

KeyPath = tuple[str | int, ...]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_TOMLLIB_AT = re.compile(r"^(?P<msg>.*?)\s*\(at line (?P<line>\d+), column (?P<col>\d+)\)$")
_TOMLLIB_EOF = re.compile(r"^(?P<msg>.*?)\s*\(at end of document\)$")
_ESCAPE_LENGTHS = {"u": 6, "U": 10}  # \uXXXX, \UXXXXXXXX; every other escape is two characters


@dataclass(frozen=True, slots=True)
class StringSpan:
    """Where a string value's content lies in the source: [start, end) and its quoting."""

    start: int
    end: int
    quote: str  # one of " ' \"\"\" '''


class Positions:
    """Line and column lookups for one parsed TOML source."""

    def __init__(self, source: str, file: str) -> None:
        self.source = source
        self.file = file

    # The source is lexed on the first lookup, not when it is parsed: lexing costs as much as
    # parsing, and a file with nothing wrong in it is never asked where anything is.

    @cached_property
    def _found(self) -> _Lexer:
        lexer = _Lexer(self.source)
        lexer.run()
        return lexer

    @cached_property
    def _line_starts(self) -> list[int]:
        return [0] + [m.end() for m in re.finditer(r"\n", self.source)]

    @property
    def keys(self) -> dict[KeyPath, int]:
        """Where each key starts: table headers, keys of key/value pairs."""
        return self._found.keys

    @property
    def values(self) -> dict[KeyPath, int]:
        """Where each value starts, array items included."""
        return self._found.values

    @property
    def strings(self) -> dict[KeyPath, StringSpan]:
        """Where each string value's content lies."""
        return self._found.strings

    def line_col(self, index: int) -> tuple[int, int]:
        """1-based line and column of a character index."""
        line = bisect.bisect_right(self._line_starts, index) - 1
        return line + 1, index - self._line_starts[line] + 1

    def location(self, path: KeyPath, *, key: bool = False) -> Location:
        """Where path's value (or key) is; falls back to the nearest ancestor, then the file."""
        table = self.keys if key else self.values
        probe = path
        while probe:
            index = table.get(probe, self.keys.get(probe))
            if index is not None:
                return Location(self.file, self.line_col(index)[0])
            probe = probe[:-1]
        return Location(self.file)

    def location_in_string(self, path: KeyPath, offset: int) -> Location:
        """Line and column of the character at offset within the string value at path."""
        span = self.strings.get(path)
        if span is None:
            return self.location(path)
        index = _raw_index(self.source, span, offset)
        line, col = self.line_col(index)
        return Location(self.file, line, col)


def _raw_index(source: str, span: StringSpan, offset: int) -> int:
    """Map an offset in a decoded string to an index in the source, following escapes."""
    i, decoded = span.start, 0
    escapes = span.quote.startswith('"')
    multiline = len(span.quote) == 3
    while i < span.end:
        if escapes and source[i] == "\\" and source[i + 1 : i + 2] in ("\n", " ", "\t", "\r"):
            # line-ending backslash: skips all whitespace, decodes to nothing, so the
            # character at offset is the first one after it
            i += 1
            while i < span.end and source[i] in " \t\r\n":
                i += 1
            continue
        if decoded == offset:
            break
        if escapes and source[i] == "\\" and i + 1 < span.end:
            i += _ESCAPE_LENGTHS.get(source[i + 1], 2)
        elif multiline and source.startswith("\r\n", i):
            i += 2  # a multi-line string's CRLF is one newline
        else:
            i += 1
        decoded += 1
    return i


class _Lexer:
    """Walks valid TOML, recording where keys and values start."""

    def __init__(self, source: str) -> None:
        self.src = source
        self.i = 0
        self.aot_counts: dict[KeyPath, int] = {}
        self.keys: dict[KeyPath, int] = {}
        self.values: dict[KeyPath, int] = {}
        self.strings: dict[KeyPath, StringSpan] = {}

    def run(self) -> None:
        current: KeyPath = ()
        while True:
            self.skip_blank(newlines=True)
            if self.i >= len(self.src):
                return
            if self.src.startswith("[[", self.i):
                self.i += 2
                start = self.i
                key = self.resolve(self.read_key())
                self.aot_counts[key] = self.aot_counts.get(key, -1) + 1
                current = (*key, self.aot_counts[key])
                self.keys.setdefault(key, start)
                self.keys[current] = start
                self.i = self.src.index("]]", self.i) + 2
            elif self.src[self.i] == "[":
                self.i += 1
                start = self.i
                current = self.resolve(self.read_key())
                self.keys[current] = start
                self.i = self.src.index("]", self.i) + 1
            else:
                self.keyval(current)

    def resolve(self, key: KeyPath) -> KeyPath:
        """Insert array-of-tables indices for prefixes that are arrays of tables."""
        out: KeyPath = ()
        for part in key:
            out = (*out, part)
            if out in self.aot_counts and out != key:
                out = (*out, self.aot_counts[out])
        return out

    def skip_blank(self, *, newlines: bool) -> None:
        src = self.src
        while self.i < len(src):
            c = src[self.i]
            if c in " \t" or (newlines and c in "\r\n"):
                self.i += 1
            elif c == "#":
                end = src.find("\n", self.i)
                self.i = len(src) if end < 0 else end
            else:
                return

    def read_key(self) -> KeyPath:
        parts: list[str] = []
        while True:
            self.skip_blank(newlines=False)
            c = self.src[self.i]
            if c in "\"'":
                span = self.read_string()
                parts.append(tomllib.loads(f"k = {self.src[span.start - 1 : span.end + 1]}")["k"])
            else:
                m = _BARE_KEY.match(self.src, self.i)
                if not m:
                    raise ValueError(f"bad key at {self.i}")
                parts.append(m.group())
                self.i = m.end()
            self.skip_blank(newlines=False)
            if self.i < len(self.src) and self.src[self.i] == ".":
                self.i += 1
                continue
            return tuple(parts)

    def keyval(self, prefix: KeyPath) -> None:
        start = self.i
        path = (*prefix, *self.read_key())
        self.keys[path] = start
        self.skip_blank(newlines=False)
        self.i += 1  # '='
        self.skip_blank(newlines=False)
        self.value(path)

    def value(self, path: KeyPath) -> None:
        self.values[path] = self.i
        c = self.src[self.i]
        if c in "\"'":
            self.strings[path] = self.read_string()
        elif c == "[":
            self.array(path)
        elif c == "{":
            self.inline_table(path)
        else:
            m = re.compile(r"[^,\]}\n#]*").match(self.src, self.i)
            assert m is not None
            self.i = m.end()

    def array(self, path: KeyPath) -> None:
        self.i += 1
        index = 0
        while True:
            self.skip_blank(newlines=True)
            if self.src[self.i] == "]":
                self.i += 1
                return
            self.value((*path, index))
            index += 1
            self.skip_blank(newlines=True)
            if self.src[self.i] == ",":
                self.i += 1

    def inline_table(self, path: KeyPath) -> None:
        self.i += 1
        while True:
            self.skip_blank(newlines=True)
            if self.src[self.i] == "}":
                self.i += 1
                return
            self.keyval(path)
            self.skip_blank(newlines=True)
            if self.src[self.i] == ",":
                self.i += 1

    def read_string(self) -> StringSpan:
        src, i = self.src, self.i
        quote = src[i : i + 3] if src[i : i + 3] in ('"""', "'''") else src[i]
        start = i + len(quote)
        if len(quote) == 3 and src.startswith("\n", start):
            start += 1
        elif len(quote) == 3 and src.startswith("\r\n", start):
            start += 2
        j = start
        while True:
            if quote[0] == '"' and src[j] == "\\":
                j += 2
                continue
            if src.startswith(quote, j):
                # a multi-line string may end with up to two extra quote characters
                while len(quote) == 3 and src.startswith(quote[0], j + 3):
                    j += 1
                break
            j += 1
        self.i = j + len(quote)
        return StringSpan(start, j, quote)


def load_toml(path: Path, display: str | None = None) -> tuple[dict[str, Any], Positions]:
    """Parse a TOML file; syntax errors become ConfigError at FILE:LINE:COL."""
    file = display or str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read file: {exc.strerror or exc}", Location(file)) from exc
    try:
        source = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError("file is not valid UTF-8", Location(file, line)) from exc
    # a byte order mark, as some Windows editors save it: invisible, so not the user's text
    return loads_toml(source.removeprefix("\ufeff"), file)


def loads_toml(source: str, file: str) -> tuple[dict[str, Any], Positions]:
    """Parse TOML text; syntax errors become ConfigError at FILE:LINE:COL."""
    try:
        data = tomllib.loads(source)
    except tomllib.TOMLDecodeError as exc:
        raise _syntax_error(exc, source, file) from exc
    return data, Positions(source, file)


def _syntax_error(exc: tomllib.TOMLDecodeError, source: str, file: str) -> ConfigError:
    text = str(exc)
    m = _TOMLLIB_AT.match(text)
    if m:
        line, col = int(m["line"]), int(m["col"])
        hint = _unquoted_text_hint(source, line, col, m["msg"])
        loc = Location(file, line, col)
        return ConfigError(f"TOML syntax error: {_lower_first(m['msg'])}{hint}", loc)
    m = _TOMLLIB_EOF.match(text)
    if m:
        loc = Location(file, source.count("\n") + 1)
        return ConfigError(f"TOML syntax error at end of file: {_lower_first(m['msg'])}", loc)
    return ConfigError(f"TOML syntax error: {text}", Location(file))


_BARE_TOKEN = re.compile(r"[^\s,\[\]{}#=\"']+")
_TOML_WORDS = frozenset({"true", "false", "inf", "nan", "+inf", "-inf", "+nan", "-nan"})
_QUOTES = frozenset({'"', "'"})


def _unquoted_text_hint(source: str, line: int, col: int, message: str) -> str:
    """'; text needs quotes: "..."' when the error falls on a value written without quotes
    (`poll_interval = 15m`, `match = [IOPC]`), the commonest mistake of a first edit."""
    lines = source.split("\n")
    if not 1 <= line <= len(lines):
        return ""
    text = lines[line - 1]
    token = next((t for t in _BARE_TOKEN.finditer(text) if t.start() <= col - 1 < t.end()), None)
    if token is None or not any(c.isalpha() for c in token[0]) or token[0] in _TOML_WORDS:
        return ""
    if {text[token.start() - 1 : token.start()], text[token.end() : token.end() + 1]} & _QUOTES:
        return ""  # beside a quote: a quoting mistake of another kind
    before = text[: token.start()]
    if "=" in before and "[" not in before.split("=", 1)[1]:
        value = text[before.index("=") + 1 :].split(" #")[0].strip()  # the whole value
    elif "=" in before or message == "Invalid value":
        value = re.split(r"[,\]]", text[token.start() :])[0].strip()  # one element of a list
    else:
        return ""
    quote = "'" if '"' in value else '"'
    return f"; text needs quotes: {quote}{value}{quote}"


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]
