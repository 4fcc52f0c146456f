"""Response bodies decoded by our own code, under a byte cap counted after decompression.

httpx decompresses a whole network chunk in one call, so a few kilobytes of gzip can become
gigabytes before any check of ours runs. Here the raw stream is inflated with zlib's
max_length, never producing more than one byte past the cap, so a gzip bomb costs at most
max_bytes of memory and is refused.

A body that is itself a gzip file (a sitemap.xml.gz, sent as application/gzip with no content
coding) is inflated once more, under the same cap: feeds and sitemaps are read as text.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping

from monitor.errors import FetchError, ResponseTooLarge

CODINGS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
ACCEPT_ENCODING = "gzip, deflate"
GZIP_FILE = b"\x1f\x8b\x08"  # a gzip member's magic number and its one method, deflate


def content_coding(headers: Mapping[str, str]) -> str:
    """The one content coding of a response ("" for none); FetchError for several or unknown."""
    raw = headers.get("content-encoding", "")
    codings = [c.strip().lower() for c in raw.split(",")]
    codings = [c for c in codings if c and c != "identity"]
    if len(codings) > 1:
        raise FetchError(f"more than one content coding ({raw}) is refused")
    if codings and codings[0] not in CODINGS:
        raise FetchError(f"unknown content coding {codings[0]!r}")
    return codings[0] if codings else ""


def check_declared_length(headers: Mapping[str, str], max_bytes: int) -> None:
    """Refuse early a body whose Content-Length already exceeds the cap (never trusted more)."""
    declared = headers.get("content-length", "").strip()
    if declared.isascii() and declared.isdigit() and int(declared) > max_bytes:
        raise ResponseTooLarge(f"body of {int(declared):,} bytes is over the {max_bytes:,} cap")


class BodyDecoder:
    """Accumulates raw body chunks, decompressing as they come, up to max_bytes of output."""

    def __init__(self, coding: str, max_bytes: int, what: str = "") -> None:
        self._what = what or "body"  # named in errors; a gzip file's coding is its name
        self._corrupt = f"corrupt {what}" if what else f"corrupt {coding} body"
        self._max = max_bytes
        self._raw = 0
        self._size = 0
        self._parts: list[bytes] = []
        self._coding = coding
        self._inflater = zlib.decompressobj(CODINGS[coding]) if coding else None
        self._first = True

    def feed(self, data: bytes) -> None:
        """Take the next raw chunk; ResponseTooLarge once the output passes the cap."""
        self._raw += len(data)
        if self._raw > self._max:
            raise ResponseTooLarge(f"body larger than the {self._max:,} byte cap")
        if self._inflater is None:
            self._append(data)
            return
        try:
            self._inflate(data)
        except zlib.error as exc:
            if not (self._first and self._coding == "deflate"):
                raise FetchError(f"{self._corrupt}: {exc}") from exc
            # "deflate" is sent both with and without its zlib wrapper; httpx and browsers
            # accept both, so retry the first chunk as raw deflate.
            self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
            self._inflate_or_fail(data)
        self._first = False

    def finish(self) -> bytes:
        """The decoded body. A truncated compressed body keeps what could be decoded."""
        if self._inflater is not None and not self._inflater.eof:
            try:
                self._append(self._inflater.flush())
            except zlib.error as exc:
                raise FetchError(f"{self._corrupt}: {exc}") from exc
        return b"".join(self._parts)

    def _inflate_or_fail(self, data: bytes) -> None:
        try:
            self._inflate(data)
        except zlib.error as exc:
            raise FetchError(f"{self._corrupt}: {exc}") from exc

    def _inflate(self, data: bytes) -> None:
        assert self._inflater is not None
        while data and not self._inflater.eof:
            room = self._max - self._size + 1  # one byte over the cap is enough to know
            self._append(self._inflater.decompress(data, room))
            data = self._inflater.unconsumed_tail

    def _append(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._size > self._max:
            after = " after decompression" if self._coding else ""
            raise ResponseTooLarge(f"{self._what} larger than the {self._max:,} byte cap{after}")
        if chunk:
            self._parts.append(chunk)


def inflate_gzip_file(body: bytes, max_bytes: int) -> bytes:
    """The contents of a body that is a gzip file, inflated once under the byte cap; any
    other body as it is. A gzip file inside it stays packed: one layer, never a chain."""
    if not body.startswith(GZIP_FILE):
        return body
    decoder = BodyDecoder("gzip", max_bytes, "gzip file")
    decoder.feed(body)
    return decoder.finish()
