"""The one error tree of the project.

::

    MonitorError                 anything a user can cause; the CLI prints it in one line
     +-- ConfigError             a config or watchlist file is wrong (file, line, column)
     |    +-- ConfigErrors       several of them, reported together
     +-- FetchError              one request failed (network, status, guard, caps)
     |    +-- AddressRefused     the address guard refused the target or a redirect hop
     |    +-- BadURL             not http(s), userinfo, control characters, too long
     |    +-- ResponseTooLarge   more than [fetch].max_bytes after decompression
     |    +-- DeadlineExceeded   the whole request took longer than [fetch].timeout
     |    +-- HTTPStatusError    an HTTP status that is a failure (4xx/5xx)
     +-- ParseError              a feed body is not a usable feed
     +-- ExtractError            an article page could not be extracted
     +-- StoreError              SQLite failed (disk full, locked, corrupt)
     |    +-- AlreadyRunning     another daemon holds the database's lock
     +-- NotifyError             a digest could not be archived or sent
          +-- SMTPTemporaryError the server may accept it later: retry
          +-- SMTPPermanentError retrying will not help (authentication, refusal)

A failing feed or page is recorded and backed off; it never stops a cycle. Bugs (anything not a
MonitorError) propagate with their traceback.
"""

from __future__ import annotations

from dataclasses import dataclass


class MonitorError(Exception):
    """Base of every error a user, a feed or the environment can cause."""

    exit_code = 1


@dataclass(frozen=True)
class Location:
    """Where in a user-edited file a problem is."""

    file: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        parts = [self.file]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)


class ConfigError(MonitorError):
    """A config or watchlist file is wrong; str() is `FILE:LINE[:COL]: message`."""

    def __init__(self, message: str, location: Location | None = None) -> None:
        self.message = message
        self.location = location
        super().__init__(f"{location}: {message}" if location else message)


class ConfigErrors(ConfigError):
    """Several ConfigErrors found in one pass, so the user can fix them all at once."""

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = in_file_order(errors)  # as monitor check prints them, whoever raises
        first = self.errors[0]
        super().__init__(first.message, first.location)
        self.args = ("\n".join(str(e) for e in self.errors),)

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


def in_file_order(problems: list[ConfigError]) -> list[ConfigError]:
    """Grouped by file (in the order files first appear), then by line and column."""
    files: dict[str, int] = {}
    for p in problems:
        files.setdefault(p.location.file if p.location else "", len(files))

    def key(p: ConfigError) -> tuple[int, int, int]:
        loc = p.location
        if loc is None:
            return files[""], 0, 0
        return files[loc.file], loc.line or 0, loc.column or 0

    return sorted(problems, key=key)


class FetchError(MonitorError):
    """One request failed."""


class AddressRefused(FetchError):
    """The address guard refused a target (private, loopback, link-local, reserved...)."""


class BadURL(FetchError):
    """The URL is not one we fetch."""


class ResponseTooLarge(FetchError):
    """The body exceeded the byte cap after decompression."""


class DeadlineExceeded(FetchError):
    """The request as a whole took longer than its deadline."""


class HTTPStatusError(FetchError):
    """The server answered with a failing status."""

    def __init__(self, status: int, url: str, retry_after: float | None = None) -> None:
        self.status = status
        self.url = url
        self.retry_after = retry_after
        super().__init__(f"HTTP {status} from {url}")


def transient(error: FetchError) -> bool:
    """Whether a request that failed this way may well succeed later: a timeout, a dropped
    connection, 408, 425, 429 or a 5xx other than 501. Refused addresses, bad URLs and bodies
    over the cap fail the same way every time."""
    if isinstance(error, HTTPStatusError):
        return error.status in (408, 425, 429) or (
            500 <= error.status <= 599 and error.status != 501
        )
    return not isinstance(error, AddressRefused | BadURL | ResponseTooLarge)


class ParseError(MonitorError):
    """A feed body could not be parsed as a feed."""


class ExtractError(MonitorError):
    """An article page could not be extracted."""


class StoreError(MonitorError):
    """The database failed."""


class AlreadyRunning(StoreError):
    """Another daemon holds the database's lock."""


class NotifyError(MonitorError):
    """A digest could not be archived or delivered."""


class SMTPTemporaryError(NotifyError):
    """The mail server may accept the message later."""


class SMTPPermanentError(NotifyError):
    """Retrying will not help (authentication failed, every recipient refused)."""
