"""The only module that speaks HTTP: one reused httpx transport, guarded, capped and polite.

A Fetcher is shared by the threads of the poll's pool. It enforces, by itself, the number of
requests in flight overall and per host; it follows redirects by hand, checking every hop
like the first; it reads the raw body and decompresses it under the byte cap (monitor.decode),
as it does a body that is a gzip file (a sitemap.xml.gz); every socket operation ends by
the request's total deadline (monitor.guard).

A sync client on threads was chosen over httpx's AsyncClient by measurement: see
docs/fetching.md and bench/bench_fetch_model.py.
"""

from __future__ import annotations

import email.utils
import re
import threading
import time
from dataclasses import dataclass
from datetime import UTC
from types import TracebackType
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx

from monitor.config import FetchSettings
from monitor.connpool import PollPool
from monitor.decode import (
    ACCEPT_ENCODING,
    BodyDecoder,
    check_declared_length,
    content_coding,
    inflate_gzip_file,
)
from monitor.errors import BadURL, DeadlineExceeded, FetchError, HTTPStatusError
from monitor.guard import AddressPolicy, GuardedBackend, Resolver, deadline_scope, resolve_host
from monitor.models import Fetched
from monitor.trust import TrustStore
from monitor.urls import check_url

MAX_REDIRECTS = 5
KEEPALIVE_EXPIRY = 30.0  # seconds an idle connection is kept for the host's next request
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
PERMANENT_STATUSES = frozenset({301, 308})
RETRY_AFTER_STATUSES = frozenset({429, 503})
# A server may ask for any pause; a buggy or hostile one must not silence a feed for days.
RETRY_AFTER_CAP = 6 * 3600.0
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
# Types that say nothing about the body, so the body is looked at instead.
VAGUE_TYPES = frozenset(
    {"", "application/octet-stream", "binary/octet-stream", "application/unknown", "text/plain"}
)
# Generic XML types: an XHTML page served so declares the XHTML namespace on its root, near
# the start, where a feed (even one carrying XHTML content) has rss, feed or rdf instead.
XML_TYPES = frozenset({"application/xml", "text/xml"})
_XHTML_ROOT = re.compile(rb"<html\b[^>]*\bxmlns\s*=\s*[\"']http://www\.w3\.org/1999/xhtml", re.I)
_HTML_START = re.compile(
    rb"<(!doctype\s+html|html|head|body|script|iframe|h1|div|font|table|a|style|title|b|br|p)"
    rb"[\s>]|<!--",
    re.IGNORECASE,
)
_SECONDS = re.compile(r"^[0-9]+$")  # any number of seconds: too many is the cap, not ignored
_DROPPED_HEADERS = ("content-encoding", "content-length")  # they describe the raw body
_VALIDATORS = (b"etag", b"last-modified")


class Fetcher:
    """Fetches URLs for many threads at once, within [fetch]'s limits and guard."""

    def __init__(
        self,
        settings: FetchSettings,
        *,
        resolve: Resolver = resolve_host,
        ca_file: str | None = None,
        trust: TrustStore | None = None,
    ) -> None:
        """ca_file: the certificates trusted for https (PEM), by default certifi's bundle,
        which httpx uses too; or trust: a TrustStore already reading them."""
        self.settings = settings
        self._slots = _Slots(settings.concurrency, settings.per_host)
        backend = GuardedBackend(AddressPolicy.from_settings(settings), resolve)
        # The transport is the pooled half of an httpx.Client; the other half (merging URLs
        # and headers, cookies, auth, redirects, proxies from the environment) is all turned
        # off here, yet cost about a seventh of the CPU of each request (docs/fetching.md).
        # No cookie is kept past one fetch: one feed's cookies are no business of another
        # request. Within one, a redirect's cookies go back to its host (see _ChainCookies).
        self._transport = _GuardedTransport(
            backend, settings.concurrency, trust or TrustStore(ca_file)
        )
        # as bytes, the form a validator is sent back in (see validator_bytes)
        self._headers = {
            b"Accept": b"*/*",
            b"Accept-Encoding": ACCEPT_ENCODING.encode(),
            b"User-Agent": settings.user_agent.encode(),
        }
        self._timeout = httpx.Timeout(settings.timeout).as_dict()

    def fetch(
        self, url: str, *, etag: str | None = None, last_modified: str | None = None
    ) -> Fetched:
        """GET url; Fetched for 2xx and 304, HTTPStatusError for other statuses."""
        check_url(url)
        headers: dict[bytes, bytes] = {}
        if etag:
            headers[b"If-None-Match"] = validator_bytes(etag)
        if last_modified:
            headers[b"If-Modified-Since"] = validator_bytes(last_modified)
        started = time.monotonic()
        deadline: float | None = None
        current, permanent = url, True
        cookies = _ChainCookies()
        for hops in range(MAX_REDIRECTS + 1):
            host = urlsplit(current).hostname or ""
            self._slots.take(host)
            try:
                # The deadline starts when the first request may go out, not while queued.
                deadline = deadline or time.monotonic() + self.settings.timeout
                hop = headers | cookies.header(host)
                answer = self._request(current, host or current, hop, deadline)
            finally:
                self._slots.give_back(host)
            if answer.status == 304 and not headers:
                # nothing was asked conditionally, so "not modified" has nothing to refer to:
                # taken as an answer, the feed would be "ok" every poll and never read
                raise FetchError(
                    "answered 304 Not Modified to a request that asked for the whole resource "
                    "(no ETag or Last-Modified was sent)"
                )
            if answer.status not in REDIRECT_STATUSES:
                moved = current if permanent and hops else None
                elapsed = time.monotonic() - started
                return Fetched(
                    current, answer.status, answer.headers, answer.content, moved, elapsed
                )
            permanent = permanent and answer.status in PERMANENT_STATUSES
            cookies.keep(host, answer.cookies)
            current = redirect_target(current, answer.headers.get("location", ""))
        raise FetchError(f"more than {MAX_REDIRECTS} redirects from {url}")

    def close_expired(self) -> int:
        """Close the pooled connections that are idle past their keep-alive or that their
        server has closed (a daemon calls this between polls); returns how many."""
        return self._transport.close_expired()

    def close(self) -> None:
        """Close every pooled connection (once the CA certificates are read)."""
        self._transport.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _request(
        self, url: str, host: str, headers: dict[bytes, bytes], deadline: float
    ) -> _Answer:
        try:
            request = httpx.Request(
                "GET",
                url,
                headers={**self._headers, **headers},
                extensions={"timeout": self._timeout},
            )
        except (httpx.InvalidURL, ValueError) as exc:
            # httpx reads a host starting "xn--" as IDNA and lets idna's error through
            # ("http://xn--zz-/"): a URL no request can carry, not a bug of ours
            raise BadURL(f"malformed URL {url[:100]!r}: {exc}") from exc
        try:
            with deadline_scope(deadline):
                response = self._transport.handle_request(request)
                try:
                    return self._answer(url, response, deadline)
                finally:
                    response.close()
        except DeadlineExceeded:
            raise DeadlineExceeded(self._late(url)) from None
        except httpx.TimeoutException as exc:
            if time.monotonic() >= deadline:
                raise DeadlineExceeded(self._late(url)) from exc
            raise FetchError(f"{host}: timed out") from exc
        except httpx.InvalidURL as exc:
            raise BadURL(f"malformed URL {url[:100]!r}: {exc}") from exc
        except httpx.TransportError as exc:
            raise FetchError(describe_transport_error(host, exc)) from exc

    def _answer(self, url: str, response: httpx.Response, deadline: float) -> _Answer:
        status = response.status_code
        headers = {k: v for k, v in response.headers.items() if k not in _DROPPED_HEADERS}
        # validators are kept as the bytes they came as (Latin-1 maps each byte to one
        # character), whatever encoding httpx guessed for the headers as a whole
        for name, value in response.headers.raw:
            if name.lower() in _VALIDATORS:
                headers[name.decode("ascii").lower()] = value.decode("latin-1")
        if status == 304:
            # A 304 has no body: reading to its end keeps the connection for the host's next
            # feed. One that declares a body anyway may have sent it; its connection is closed,
            # so those bytes are never read as the next request's answer.
            if response.headers.get("content-length", "0") == "0" and (
                "transfer-encoding" not in response.headers
            ):
                for _ in response.iter_raw():
                    break
            return _Answer(status, headers, b"")
        if status in REDIRECT_STATUSES:
            return _Answer(status, headers, b"", tuple(response.headers.get_list("set-cookie")))
        if not 200 <= status < 300:
            retry = None
            if status in RETRY_AFTER_STATUSES:
                retry = parse_retry_after(response.headers.get("retry-after"), time.time())
            raise HTTPStatusError(status, url, retry)
        max_bytes = self.settings.max_bytes
        check_declared_length(response.headers, max_bytes)
        decoder = BodyDecoder(content_coding(response.headers), max_bytes)
        for chunk in response.iter_raw():
            decoder.feed(chunk)
            if time.monotonic() >= deadline:
                raise DeadlineExceeded(self._late(url))
        # a gzip file (a sitemap.xml.gz) is read for what it holds, as a feed or a page
        return _Answer(status, headers, inflate_gzip_file(decoder.finish(), max_bytes))

    def _late(self, url: str) -> str:
        return f"{url}: no complete answer within {self.settings.timeout:g}s"


@dataclass(frozen=True, slots=True)
class _Answer:
    """Status, headers (lower-case names) and decoded body of one hop."""

    status: int
    headers: dict[str, str]
    content: bytes
    cookies: tuple[str, ...] = ()  # a redirect's Set-Cookie values


# a cookie as a redirect may set it: name=value, printable ASCII without separators
_COOKIE = re.compile(
    r"\s*([!#$%&'*+.^`|~\w-]{1,64})=([\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]{0,512})\s*(?:;|$)",
    re.ASCII,
)
MAX_CHAIN_COOKIES = 10


class _ChainCookies:
    """The cookies that one fetch's redirects set, sent back to the host that set each.

    A site that checks for cookies redirects a first visit to the same address with a
    Set-Cookie: without them the chain loops until MAX_REDIRECTS, and the article is lost.
    Only name=value is kept (no Domain, so never sent to another host; no Path), at most
    MAX_CHAIN_COOKIES, and nothing outlives the fetch.
    """

    def __init__(self) -> None:
        self._by_host: dict[str, dict[str, str]] = {}

    def keep(self, host: str, set_cookies: tuple[str, ...]) -> None:
        jar = self._by_host.setdefault(host, {})
        for value in set_cookies:
            m = _COOKIE.match(value)
            if m and (m[1] in jar or self._count() < MAX_CHAIN_COOKIES):
                jar[m[1]] = m[2]

    def _count(self) -> int:
        return sum(map(len, self._by_host.values()))

    def header(self, host: str) -> dict[bytes, bytes]:
        jar = self._by_host.get(host)
        if not jar:
            return {}
        return {b"Cookie": "; ".join(f"{k}={v}" for k, v in jar.items()).encode("ascii")}


def validator_bytes(value: str) -> bytes:
    """A stored ETag or Last-Modified as the bytes to send back: the bytes it came as, since it
    is kept decoded as Latin-1 (one character a byte). A value stored before that, decoded
    otherwise, is sent as UTF-8. Never an error: a server's odd validator (a UTF-8 "café")
    must not stop the poll that sends it back."""
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


def redirect_target(current: str, location: str) -> str:
    """The absolute URL a redirect points to, checked like any URL; BadURL when refused."""
    location = location.strip()
    if not location:
        raise FetchError(f"redirect from {current} without a Location")
    # Browsers encode a raw space in Location; refusing it would lose the page for nothing.
    try:
        joined = urljoin(current, location.replace(" ", "%20"))
    except ValueError as exc:  # an unclosed "[" in the host: "http://[127.0.0.1/"
        raise BadURL(f"redirect to a malformed URL {location[:100]!r}: {exc}") from None
    target = check_url(joined)
    if urlsplit(current).scheme.lower() == "https" and urlsplit(target).scheme.lower() != "https":
        raise BadURL(f"redirect from https to plain http refused: {target[:100]}")
    return target


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After value (seconds or HTTP-date), capped at 6 hours."""
    if not value:
        return None
    value = value.strip()
    if _SECONDS.match(value):
        seconds = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - now
    return min(max(seconds, 0.0), RETRY_AFTER_CAP)


def is_html(fetched: Fetched) -> bool:
    """True when the body is an HTML page worth extracting (not a PDF, image or feed)."""
    kind = fetched.content_type
    if kind in HTML_TYPES:
        return True
    if kind in XML_TYPES:
        return bool(_XHTML_ROOT.search(fetched.content[:2048]))
    if kind not in VAGUE_TYPES:
        return False
    head = fetched.content[:1024].lstrip(b"\xef\xbb\xbf \t\r\n\f")
    return bool(_HTML_START.match(head))


def describe_transport_error(host: str, exc: httpx.TransportError) -> str:
    """One short line for a network failure, without traceback or C source references."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = re.sub(r"\s*\(_ssl\.c:\d+\)", "", text)
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect to {host}: {text}"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"{host} broke the HTTP exchange: {text}"
    return f"{host}: {text}"


class _Slots:
    """Counts requests in flight, overall and per host, and makes callers wait their turn."""

    def __init__(self, total: int, per_host: int) -> None:
        self._total = total
        self._per_host = per_host
        self._busy = 0
        self._hosts: dict[str, int] = {}
        self._cond = threading.Condition()

    def take(self, host: str) -> None:
        """Wait for a free slot for host and take it; give it back with give_back(host)."""
        hosts = self._hosts
        with self._cond:
            while self._busy >= self._total or hosts.get(host, 0) >= self._per_host:
                self._cond.wait()
            self._busy += 1
            hosts[host] = hosts.get(host, 0) + 1

    def give_back(self, host: str) -> None:
        """Free a slot taken for host."""
        with self._cond:
            self._busy -= 1
            self._hosts[host] -= 1
            if not self._hosts[host]:
                del self._hosts[host]
            self._cond.notify_all()


class _GuardedTransport(httpx.HTTPTransport):
    """httpx's own transport, over a connection pool that connects through the guard."""

    _pool: PollPool

    def __init__(
        self, backend: httpcore.NetworkBackend, connections: int, trust: TrustStore
    ) -> None:
        self._trust = trust
        # complete before any https request uses it: handle_request waits for it
        context = trust.ssl_context
        super().__init__(verify=context, trust_env=False)
        # httpx gives no way to choose the pool's network backend, so the pool is replaced
        # by one with the same settings and the guarded backend (httpx 0.28, httpcore 1.0),
        # whose assignment pass suits a poll (monitor.connpool)
        self._pool = PollPool(
            ssl_context=context,
            max_connections=connections,
            max_keepalive_connections=connections,  # every connection may be kept
            keepalive_expiry=KEEPALIVE_EXPIRY,
            network_backend=backend,
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        """Send one request; an https one once the CA certificates are read."""
        if request.url.scheme == "https":
            self._trust.wait()
        return super().handle_request(request)

    def close_expired(self) -> int:
        """See PollPool.close_expired."""
        return self._pool.close_expired()

    def close(self) -> None:
        super().close()
        self._trust.close()
