"""The Fetcher against a real HTTP server on loopback: statuses, redirects, caps, deadline."""

from __future__ import annotations

import contextlib
import gzip
import ipaddress
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from email.utils import formatdate
from pathlib import Path

import certifi
import pytest

from monitor.config import FetchSettings
from monitor.decode import BodyDecoder, content_coding, inflate_gzip_file
from monitor.errors import (
    AddressRefused,
    BadURL,
    DeadlineExceeded,
    FetchError,
    HTTPStatusError,
    ResponseTooLarge,
    transient,
)
from monitor.fetch import (
    MAX_CHAIN_COOKIES,
    RETRY_AFTER_CAP,
    Fetcher,
    is_html,
    parse_retry_after,
    redirect_target,
    validator_bytes,
)
from monitor.loopback import LoopbackSite, Request, Response
from monitor.models import Fetched
from monitor.trust import TrustStore

LOCAL = (ipaddress.ip_network("127.0.0.1/32"),)
PAGE = "<!doctype html><html><body><p>The Met said two officers were dismissed.</p></body></html>"


def settings(**overrides: object) -> FetchSettings:
    values: dict[str, object] = {"timeout": 5.0, "allow_addresses": LOCAL, "user_agent": "ua/1"}
    values.update(overrides)
    return FetchSettings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackSite]:
    # Started once: stopping a LoopbackSite waits for its half-second poll.
    with LoopbackSite() as s:
        yield s


@pytest.fixture
def site(server: LoopbackSite) -> LoopbackSite:
    server.routes.clear()
    server.requests.clear()
    server.add("/page", PAGE)
    return server


@pytest.fixture
def fetcher() -> Iterator[Fetcher]:
    with Fetcher(settings()) as f:
        yield f


# -- success, conditional requests -----------------------------------------------------------------


def test_fetch_returns_body_and_lower_case_headers(site: LoopbackSite, fetcher: Fetcher) -> None:
    fetched = fetcher.fetch(site.url("/page"))
    assert fetched.status == 200
    assert fetched.content == PAGE.encode()
    assert fetched.url == site.url("/page")
    assert fetched.moved_to is None
    assert fetched.headers["content-type"] == "text/html; charset=utf-8"
    assert all(name == name.lower() for name in fetched.headers)
    sent = site.hits("/page")[0].headers
    assert sent["user-agent"] == "ua/1"
    assert sent["accept-encoding"] == "gzip, deflate"


def test_validators_are_sent_back_exactly(site: LoopbackSite, fetcher: Fetcher) -> None:
    etag = 'W/"met-iopc 42"'
    modified = "Tue, 14 Nov 2023 22:13:20 GMT (odd server)"

    def conditional(request: Request) -> Response:
        if request.headers.get("if-none-match") == etag:
            return Response(304, headers={"ETag": etag}, validators=False)
        return Response(200, b"changed", validators=False)

    site.routes["/feed"] = conditional
    fetched = fetcher.fetch(site.url("/feed"), etag=etag, last_modified=modified)
    assert fetched.status == 304
    assert fetched.content == b""
    sent = site.hits("/feed")[0].headers
    assert sent["if-none-match"] == etag
    assert sent["if-modified-since"] == modified


def test_a_304_to_a_request_without_validators_is_a_failure(
    site: LoopbackSite, fetcher: Fetcher
) -> None:
    """A server (a broken cache) that answers 304 to a plain GET never sends the feed: taken as
    "not modified", the feed would count as healthy every poll and never be read."""
    site.routes["/feed"] = lambda request: Response(304, validators=False)
    with pytest.raises(FetchError, match="answered 304 Not Modified to a request that asked"):
        fetcher.fetch(site.url("/feed"))
    assert fetcher.fetch(site.url("/feed"), etag='"x"').status == 304  # asked: an answer


@pytest.mark.parametrize(
    ("etag", "modified"),
    [
        ('"caf\u00c3\u00a9"', "Mon, 01 Jan 2024 00:00:00 GMT"),  # UTF-8 bytes of "café"
        ('"plain"', "Mon, 01 Jan 2024 \u00e9"),  # one byte past ASCII
        ('"caf\u00c3\u00a9"', "Mon, 01 Jan 2024 \u00e9"),  # both: httpx reads all as Latin-1
    ],
    ids=["utf-8 etag", "latin-1 date", "both"],
)
def test_validators_past_ascii_are_sent_back_as_the_bytes_they_came_as(
    site: LoopbackSite, fetcher: Fetcher, etag: str, modified: str
) -> None:
    """The server writes these headers as Latin-1, one byte a character: the ETag's bytes are
    UTF-8 "café". Sending them back raised UnicodeEncodeError, which stopped the whole poll."""
    site.add(
        "/feed", b"<rss/>", "application/rss+xml", headers={"ETag": etag, "Last-Modified": modified}
    )
    first = fetcher.fetch(site.url("/feed"))
    assert (first.headers["etag"], first.headers["last-modified"]) == (etag, modified)
    again = fetcher.fetch(site.url("/feed"), etag=first.headers["etag"], last_modified=modified)
    assert again.status == 304
    sent = site.hits("/feed")[-1].headers
    assert (sent["if-none-match"], sent["if-modified-since"]) == (etag, modified)


def test_a_validator_stored_as_other_text_is_sent_as_utf8() -> None:
    assert validator_bytes('"caf\u00e9"') == b'"caf\xe9"'  # Latin-1: the bytes as received
    assert validator_bytes('"\u20ac5"') == '"\u20ac5"'.encode()  # beyond Latin-1: never an error


def test_a_304_keeps_its_connection_for_the_next_request(
    site: LoopbackSite, fetcher: Fetcher
) -> None:
    first = fetcher.fetch(site.url("/page"))
    for _ in range(3):  # conditional requests, one after the other, as a poll's thread sends
        again = fetcher.fetch(site.url("/page"), etag=first.headers["etag"])
        assert again.status == 304
    assert fetcher.fetch(site.url("/page")).content == PAGE.encode()
    ports = {r.client_port for r in site.hits("/page")}
    assert len(site.hits("/page")) == 5
    assert len(ports) == 1  # one connection carried all five


def test_a_304_with_a_body_after_it_costs_only_its_connection(server: LoopbackSite) -> None:
    """A server that sends bytes after a 304 (which has no body) leaves garbage on the
    connection: the next request must not read it as its answer."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        answers = [
            b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\nJUNK!",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        ]

        def serve() -> None:
            for answer in answers:
                conn, _ = listener.accept()
                with conn:
                    conn.recv(65536)
                    conn.sendall(answer)
                    time.sleep(0.3)  # the connection stays open, garbage and all

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        with Fetcher(settings()) as f:
            url = f"http://127.0.0.1:{port}/feed"
            assert f.fetch(url, etag='"x"').status == 304
            time.sleep(0.1)  # the junk has arrived
            second = f.fetch(url)
        thread.join(5)
        assert (second.status, second.content) == (200, b"ok")


def test_between_polls_a_connection_the_server_closed_is_closed_too() -> None:
    """A server that hangs up on an idle keep-alive connection leaves it half-closed: the
    sweep a daemon runs between polls closes it, and leaves a healthy one alone."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        hung_up = threading.Event()

        def serve() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            hung_up.set()  # closed without a word, as an idle timeout does

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        with Fetcher(settings()) as f:
            assert f.fetch(f"http://127.0.0.1:{port}/feed").content == b"ok"
            assert hung_up.wait(5)
            pool = f._transport._pool
            for _ in range(50):  # the FIN may take a moment to arrive
                if pool.close_expired():
                    break
                time.sleep(0.02)
            assert pool.connections == []
        thread.join(5)


def test_between_polls_a_connection_idle_past_its_keepalive_is_closed(
    site: LoopbackSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a second: long enough that no loaded machine lets the fresh connection expire unseen
    monkeypatch.setattr("monitor.fetch.KEEPALIVE_EXPIRY", 1.0)
    with Fetcher(settings()) as f:
        f.fetch(site.url("/page"))
        assert f.close_expired() == 0  # still fresh: kept for the host's next feed
        f.fetch(site.url("/page"))
        assert len({r.client_port for r in site.hits("/page")}) == 1
        time.sleep(1.2)
        assert f.close_expired() == 1
        assert f._transport._pool.connections == []
        f.fetch(site.url("/page"))
    assert len({r.client_port for r in site.hits("/page")}) == 2


def test_many_threads_over_more_hosts_than_connections_all_succeed() -> None:
    """Conditional requests from 8 threads to 6 origins over a pool of 3 connections: idle
    connections are closed to make room for other hosts all the time, and kept for their own
    host otherwise. (The race of encode/httpcore#1110 is too rare to show here: its rule is
    tested on the pool itself in test_connpool.py.)"""
    with contextlib.ExitStack() as stack:
        sites = [stack.enter_context(LoopbackSite()) for _ in range(6)]
        for s in sites:
            s.add("/feed", PAGE)
        etags = {}
        with Fetcher(settings(concurrency=3, per_host=3)) as f:
            for s in sites:
                etags[s.url("/feed")] = f.fetch(s.url("/feed")).headers["etag"]
            # bursts of four to one host, host after host: each burst closes other hosts'
            # idle connections to make room, and within it connections carry several requests
            # (round robin over six hosts with three connections would leave reuse to luck)
            urls = [s.url("/feed") for _ in range(10) for s in sites for _ in range(4)]

            def poll(url: str) -> int:
                return f.fetch(url, etag=etags[url]).status

            with ThreadPoolExecutor(8) as pool:
                statuses = list(pool.map(poll, urls))
        assert statuses == [304] * len(urls)
        reused = sum(len(s.requests) - len({r.client_port for r in s.requests}) for s in sites)
        assert reused > 0  # connections did carry more than one request


def test_loopback_validators_round_trip(site: LoopbackSite, fetcher: Fetcher) -> None:
    first = fetcher.fetch(site.url("/page"))
    again = fetcher.fetch(
        site.url("/page"), etag=first.headers["etag"], last_modified=first.headers["last-modified"]
    )
    assert (first.status, again.status) == (200, 304)
    unconditional = site.hits("/page")[0].headers
    assert "if-none-match" not in unconditional and "if-modified-since" not in unconditional


# -- failing statuses ------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_in_seconds(site: LoopbackSite, fetcher: Fetcher, status: int) -> None:
    site.routes["/busy"] = Response(status, b"slow down", {"Retry-After": "120"})
    with pytest.raises(HTTPStatusError) as caught:
        fetcher.fetch(site.url("/busy"))
    assert (caught.value.status, caught.value.retry_after) == (status, 120.0)
    assert caught.value.url == site.url("/busy")


def test_retry_after_as_a_date(site: LoopbackSite, fetcher: Fetcher) -> None:
    site.routes["/busy"] = Response(503, headers={"Retry-After": formatdate(time.time() + 600)})
    with pytest.raises(HTTPStatusError) as caught:
        fetcher.fetch(site.url("/busy"))
    assert caught.value.retry_after is not None
    assert 500 <= caught.value.retry_after <= 600


def test_other_failures_carry_no_retry_after(site: LoopbackSite, fetcher: Fetcher) -> None:
    site.routes["/gone"] = Response(410, b"gone", {"Retry-After": "60"})
    with pytest.raises(HTTPStatusError, match="HTTP 410") as caught:
        fetcher.fetch(site.url("/gone"))
    assert caught.value.retry_after is None
    with pytest.raises(HTTPStatusError, match="HTTP 404"):
        fetcher.fetch(site.url("/missing"))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", 0.0),
        ("3600", 3600.0),
        ("99999999999", RETRY_AFTER_CAP),
        ("99999999999999999999", RETRY_AFTER_CAP),  # more digits than a date has: the cap
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # in the past: retry now
        ("Wed, 21 Oct 2015 07:30:00 GMT", 120.0),
        ("Wed, 21 Oct 2099 07:28:00 GMT", RETRY_AFTER_CAP),
        ("-5", None),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    now = 1445412480.0  # Wed, 21 Oct 2015 07:28:00 GMT
    assert parse_retry_after(value, now) == expected


# -- redirects -------------------------------------------------------------------------------------


def chain(site: LoopbackSite, statuses: list[int]) -> str:
    """Routes /hop0 -> /hop1 -> ... -> /page with the given statuses; the first URL."""
    for i, status in enumerate(statuses):
        target = f"/hop{i + 1}" if i + 1 < len(statuses) else "/page"
        site.routes[f"/hop{i}"] = Response(status, headers={"Location": target}, validators=False)
    return site.url("/hop0")


def test_permanent_redirects_set_moved_to(site: LoopbackSite, fetcher: Fetcher) -> None:
    fetched = fetcher.fetch(chain(site, [301, 308, 301]))
    assert fetched.status == 200
    assert fetched.url == fetched.moved_to == site.url("/page")


@pytest.mark.parametrize("temporary", [302, 303, 307])
def test_one_temporary_hop_means_not_moved(
    site: LoopbackSite, fetcher: Fetcher, temporary: int
) -> None:
    fetched = fetcher.fetch(chain(site, [301, temporary]))
    assert fetched.url == site.url("/page")
    assert fetched.moved_to is None


def test_five_redirects_are_followed_six_are_not(site: LoopbackSite, fetcher: Fetcher) -> None:
    assert fetcher.fetch(chain(site, [302] * 5)).status == 200
    site.requests.clear()
    with pytest.raises(FetchError, match="more than 5 redirects"):
        fetcher.fetch(chain(site, [302] * 6))
    assert site.hits("/page") == []


@pytest.mark.parametrize(
    "location",
    ["ftp://127.0.0.1/feed", "file:///etc/passwd", "javascript:alert(1)", "http://u@127.0.0.1/"],
)
def test_redirect_to_what_is_never_fetched(
    site: LoopbackSite, fetcher: Fetcher, location: str
) -> None:
    site.routes["/go"] = Response(302, headers={"Location": location}, validators=False)
    with pytest.raises(BadURL):
        fetcher.fetch(site.url("/go"))


def test_redirect_without_location(site: LoopbackSite, fetcher: Fetcher) -> None:
    site.routes["/go"] = Response(301, validators=False)
    with pytest.raises(FetchError, match="without a Location"):
        fetcher.fetch(site.url("/go"))


def test_redirect_target_refuses_https_to_http() -> None:
    assert redirect_target("http://a.example/x", "https://b.example/y") == "https://b.example/y"
    assert redirect_target("https://a.example/x/y", "../z") == "https://a.example/z"
    assert redirect_target("https://a.example/x", "/met police") == "https://a.example/met%20police"
    with pytest.raises(BadURL, match="https to plain http"):
        redirect_target("https://a.example/x", "http://a.example/x")


def test_redirect_to_a_malformed_url_is_a_bad_url(site: LoopbackSite, fetcher: Fetcher) -> None:
    for location in ("http://[127.0.0.1/", "http://xn--zz-/feed"):
        site.routes["/go"] = Response(302, headers={"Location": location}, validators=False)
        with pytest.raises(BadURL, match="malformed URL"):
            fetcher.fetch(site.url("/go"))


def test_a_host_that_is_not_valid_idna_is_a_bad_url(fetcher: Fetcher) -> None:
    # httpx decodes a host starting "xn--" and raises idna's own error, not InvalidURL
    for url in ("http://xn--zz-/page", "http://xn--/page"):
        with pytest.raises(BadURL, match="malformed URL"):
            fetcher.fetch(url)


def test_meta_refresh_is_not_followed(site: LoopbackSite, fetcher: Fetcher) -> None:
    site.add("/refresh", '<html><head><meta http-equiv="refresh" content="0;url=/page"></head>')
    fetched = fetcher.fetch(site.url("/refresh"))
    assert b"http-equiv" in fetched.content
    assert site.hits("/page") == []


# -- environment and state -------------------------------------------------------------------------


def test_proxies_from_the_environment_are_ignored(
    site: LoopbackSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    with LoopbackSite(host="127.0.0.2") as proxy:
        for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "ALL_PROXY", "all_proxy"):
            monkeypatch.setenv(name, proxy.base)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        with Fetcher(settings()) as fetcher:
            assert fetcher.fetch(site.url("/page")).status == 200
        assert proxy.requests == []
    assert len(site.hits("/page")) == 1


def test_cookies_are_not_kept_between_requests(site: LoopbackSite, fetcher: Fetcher) -> None:
    site.add("/login", "hi", headers={"Set-Cookie": "session=abc; Path=/"})
    fetcher.fetch(site.url("/login"))
    fetcher.fetch(site.url("/page"))
    assert "cookie" not in site.hits("/page")[0].headers


def cookie_check(page: str) -> Callable[[Request], Response]:
    """A site that redirects a visitor without its cookie to the same address, setting it."""

    def answer(request: Request) -> Response:
        if "check=1" in request.headers.get("cookie", ""):
            return Response(200, page.encode(), {"Content-Type": "text/html"})
        location = {"Location": request.path, "Set-Cookie": "check=1; Path=/; HttpOnly"}
        return Response(302, b"", location)

    return answer


def test_a_cookie_check_redirect_gets_its_cookie_back(site: LoopbackSite, fetcher: Fetcher) -> None:
    site.routes["/check"] = cookie_check(PAGE)
    fetched = fetcher.fetch(site.url("/check"))
    assert (fetched.status, fetched.content) == (200, PAGE.encode())
    assert [r.headers.get("cookie") for r in site.hits("/check")] == [None, "check=1"]
    fetcher.fetch(site.url("/page"))  # and the cookie ends with the fetch
    assert "cookie" not in site.hits("/page")[0].headers


def test_a_redirect_s_cookie_goes_to_no_other_host(site: LoopbackSite) -> None:
    with LoopbackSite(host="127.0.0.2") as other:
        other.add("/page", PAGE)
        site.add(
            "/away", "", status=302, headers={"Location": other.url("/page"), "Set-Cookie": "s=1"}
        )
        both = (*LOCAL, ipaddress.ip_network("127.0.0.2/32"))
        with Fetcher(settings(allow_addresses=both)) as fetcher:
            assert fetcher.fetch(site.url("/away")).status == 200
        assert "cookie" not in other.hits("/page")[0].headers


@pytest.mark.parametrize(
    ("set_cookie", "sent"),
    [
        ("bad\x7fname=1", None),
        ('name=va;lue"', "name=va"),  # the value ends at the ';'
        ("na me=1", None),
        ("=1", None),
        ("k=" + "v" * 512, "k=" + "v" * 512),
        ("k=" + "v" * 513, None),  # longer than a cookie check needs
        ("n\u00e9=1", None),
        ('q="quoted"', None),
    ],
)
def test_a_cookie_that_is_not_plain_name_value_is_not_sent(
    site: LoopbackSite, fetcher: Fetcher, set_cookie: str, sent: str | None
) -> None:
    site.routes["/odd"] = Response(302, b"", {"Location": "/page", "Set-Cookie": set_cookie})
    assert fetcher.fetch(site.url("/odd")).status == 200
    assert site.hits("/page")[0].headers.get("cookie") == sent


def test_a_redirect_chain_keeps_at_most_ten_cookies_in_all(site: LoopbackSite) -> None:
    spellings = ("Set-Cookie", "set-cookie", "SET-COOKIE", "Set-cookie")  # four header lines
    with LoopbackSite(host="127.0.0.2") as other:
        # hops take turns between the two hosts, each setting four new cookies: 4 + 4 + 2
        # are kept, the last hop's host has 6 of its 8, and its page gets those
        hosts = (site, other, site, other)
        for hop, host in enumerate(hosts):
            headers = {name: f"c{hop}{n}=1" for n, name in enumerate(spellings)}
            after = hosts[hop + 1] if hop < 3 else site
            headers["Location"] = after.url(f"/hop{hop + 1}" if hop < 3 else "/page")
            host.routes[f"/hop{hop}"] = Response(302, b"", headers)
        both = (*LOCAL, ipaddress.ip_network("127.0.0.2/32"))
        with Fetcher(settings(allow_addresses=both)) as fetcher:
            assert fetcher.fetch(site.url("/hop0")).status == 200
    sent = site.hits("/page")[0].headers["cookie"].split("; ")
    assert sent == [f"c0{n}=1" for n in range(4)] + ["c20=1", "c21=1"]
    assert MAX_CHAIN_COOKIES == 10


def test_a_bad_url_is_refused_before_any_request(site: LoopbackSite, fetcher: Fetcher) -> None:
    with pytest.raises(BadURL):
        fetcher.fetch(site.url("/page") + "\r\nX: y")
    assert site.requests == []


# -- network failures ------------------------------------------------------------------------------


def test_connection_refused_is_one_short_line(fetcher: Fetcher) -> None:
    with socket_on_closed_port() as port, pytest.raises(FetchError) as caught:
        fetcher.fetch(f"http://127.0.0.1:{port}/feed")
    message = str(caught.value)
    assert message.startswith("cannot connect to 127.0.0.1")
    assert "\n" not in message and "Traceback" not in message


def test_server_closing_without_answer(site: LoopbackSite, fetcher: Fetcher) -> None:
    site.routes["/drop"] = Response(drop=True)
    with pytest.raises(FetchError, match=r"127\.0\.0\.1") as caught:
        fetcher.fetch(site.url("/drop"))
    assert "\n" not in str(caught.value)


class socket_on_closed_port:
    """A port on 127.0.0.1 that nothing listens on."""

    def __enter__(self) -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        pass


# -- https ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_site(certificate: tuple[Path, Path]) -> Iterator[LoopbackSite]:
    cert, key = certificate
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with LoopbackSite(tls=context) as s:
        s.add("/page", PAGE)
        yield s


def test_https_with_a_trusted_certificate(
    tls_site: LoopbackSite, certificate: tuple[Path, Path]
) -> None:
    with Fetcher(settings(), ca_file=str(certificate[0])) as fetcher:
        fetched = fetcher.fetch(tls_site.url("/page"))
    assert tls_site.url("/page").startswith("https://")
    assert fetched.status == 200 and b"two officers" in fetched.content


def test_https_with_an_untrusted_certificate_is_refused(
    tls_site: LoopbackSite, fetcher: Fetcher
) -> None:
    tls_site.requests.clear()
    with pytest.raises(FetchError, match="certificate verify failed") as caught:
        fetcher.fetch(tls_site.url("/page"))
    assert "\n" not in str(caught.value)
    assert tls_site.requests == []  # the handshake failed: no request was sent


def test_a_redirect_from_https_to_http_is_refused_before_any_plain_request(
    tls_site: LoopbackSite, site: LoopbackSite, certificate: tuple[Path, Path]
) -> None:
    tls_site.routes["/down"] = Response(301, headers={"Location": site.url("/page")})
    with (
        Fetcher(settings(), ca_file=str(certificate[0])) as fetcher,
        pytest.raises(BadURL, match="https to plain http"),
    ):
        fetcher.fetch(tls_site.url("/down"))
    assert [r.path for r in tls_site.hits("/down")] == ["/down"]  # the https hop was made
    assert site.hits("/page") == []  # the plain one never was


def test_the_tls_context_is_the_one_httpx_would_make() -> None:
    made = TrustStore(certifi.where())
    made.wait()
    ours, reference = made.ssl_context, ssl.create_default_context(cafile=certifi.where())
    for name in ("protocol", "verify_mode", "check_hostname", "options", "verify_flags"):
        assert getattr(ours, name) == getattr(reference, name), name
    assert (ours.minimum_version, ours.maximum_version) == (
        reference.minimum_version,
        reference.maximum_version,
    )
    assert ours.cert_store_stats() == reference.cert_store_stats()
    assert ours.cert_store_stats()["x509_ca"] > 50


def test_certificates_are_read_beside_start_up_and_https_waits_for_them(
    site: LoopbackSite, tls_site: LoopbackSite, certificate: tuple[Path, Path], tmp_path: Path
) -> None:
    # A named pipe stands for a CA file still being read: reading it blocks until written.
    pipe = tmp_path / "ca.pem"
    os.mkfifo(pipe)
    pool = ThreadPoolExecutor(2)
    made = pool.submit(Fetcher, settings(), ca_file=str(pipe))
    try:
        fetcher = made.result(timeout=10)  # construction does not wait for the file
        assert fetcher.fetch(site.url("/page")).status == 200  # nor does plain http
        secure = pool.submit(fetcher.fetch, tls_site.url("/page"))
        time.sleep(0.3)
        assert not secure.done()  # https waits for the certificates
        pipe.write_bytes(certificate[0].read_bytes())
        assert secure.result(timeout=10).status == 200
        fetcher.close()
    finally:
        with contextlib.suppress(OSError):  # a reader still waiting gets an empty file
            os.close(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))
        pool.shutdown()


def test_a_process_may_exit_while_the_certificates_are_read() -> None:
    """Exiting just after the Fetcher is made (no feed due) must not crash the interpreter,
    as OpenSSL still reading on a daemon thread at exit does; `monitor` also freezes the
    collector before it exits, as this does."""
    code = (
        "import gc\n"
        "from monitor.config import FetchSettings\n"
        "from monitor.fetch import Fetcher\n"
        "fetcher = Fetcher(FetchSettings())\n"
        "gc.freeze()\n"
    )
    for _ in range(3):
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
        assert done.returncode == 0, done.stderr[-2000:]


def test_a_tls_handshake_that_never_ends_hits_the_deadline(
    certificate: tuple[Path, Path],
) -> None:
    # The server takes the connection and never answers the client's hello.
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        with (
            Fetcher(settings(timeout=0.5), ca_file=str(certificate[0])) as fetcher,
            pytest.raises(DeadlineExceeded) as caught,
        ):
            fetcher.fetch(f"https://127.0.0.1:{port}/feed")
    assert "within 0.5s" in str(caught.value)


def test_an_unreadable_ca_file_fails_https_requests_only(
    site: LoopbackSite, tls_site: LoopbackSite, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-file.pem"
    with Fetcher(settings(), ca_file=str(missing)) as fetcher:
        assert fetcher.fetch(site.url("/page")).status == 200
        with pytest.raises(FetchError, match=r"cannot read the CA certificates in .*no-such-file"):
            fetcher.fetch(tls_site.url("/page"))


# -- caps and deadline -----------------------------------------------------------------------------


def test_trickling_server_hits_the_total_deadline(site: LoopbackSite) -> None:
    # Each byte arrives well within the per-read timeout; only a total deadline stops it.
    site.routes["/slow"] = Response(body=b"x" * 200, trickle=0.05)
    with Fetcher(settings(timeout=0.5)) as fetcher, pytest.raises(DeadlineExceeded) as caught:
        fetcher.fetch(site.url("/slow"))
    assert "within 0.5s" in str(caught.value)


class HeaderTrickler:
    """A raw server that sends a status line, then one header line every 50 ms for 3 s."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> HeaderTrickler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._listener.close()
        self._thread.join()

    def _serve(self) -> None:
        conn, _ = self._listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\n")
            for _ in range(60):
                if self._stop.wait(0.05):  # the pace of a hostile server
                    return
                try:
                    conn.sendall(b"X-Pad: 1\r\n")
                except OSError:
                    return


def test_headers_trickling_in_hit_the_deadline() -> None:
    # httpcore reads headers with one read per line; each read is quick, the whole is not.
    fetcher = Fetcher(settings(timeout=0.5))
    with HeaderTrickler() as server, fetcher, pytest.raises(DeadlineExceeded):
        fetcher.fetch(f"http://127.0.0.1:{server.port}/feed")


def test_slow_first_byte_hits_the_deadline(site: LoopbackSite) -> None:
    site.routes["/late"] = Response(body=b"late", delay=2.0)
    with Fetcher(settings(timeout=0.3)) as fetcher, pytest.raises(DeadlineExceeded):
        fetcher.fetch(site.url("/late"))


def test_body_over_max_bytes_is_refused_by_content_length(site: LoopbackSite) -> None:
    site.add("/big", b"x" * 5000, content_type="application/rss+xml")
    with Fetcher(settings(max_bytes=4096)) as fetcher:
        with pytest.raises(ResponseTooLarge, match="5,000 bytes"):
            fetcher.fetch(site.url("/big"))
        site.add("/fits", b"x" * 4096, content_type="application/rss+xml")
        assert len(fetcher.fetch(site.url("/fits")).content) == 4096


def gzip_bomb(inflated: int) -> bytes:
    """A gzip member of `inflated` zero bytes: a few kilobytes on the wire."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(1024 * 1024)
    bomb = b"".join(packer.compress(zeros) for _ in range(inflated // len(zeros)))
    return bomb + packer.flush()


@pytest.mark.parametrize(
    ("kind", "headers", "refused"),
    [
        ("application/rss+xml", {"Content-Encoding": "gzip"}, "body larger"),
        ("application/x-gzip", {}, "gzip file larger"),  # a sitemap.xml.gz
    ],
    ids=["content coding", "gzip file"],
)
def test_gzip_bomb_is_refused_with_bounded_memory(
    site: LoopbackSite, kind: str, headers: dict[str, str], refused: str
) -> None:
    inflated = 64 * 1024 * 1024
    bomb = gzip_bomb(inflated)
    site.add("/bomb", bomb, content_type=kind, headers=headers)
    with Fetcher(settings(max_bytes=1_000_000)) as fetcher:
        tracemalloc.start()
        try:
            with pytest.raises(ResponseTooLarge, match=rf"^{refused} .* after decompression"):
                fetcher.fetch(site.url("/bomb"))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert len(bomb) < 1_000_000 < inflated
    assert peak < 8_000_000, peak


@pytest.mark.parametrize("coding", ["gzip", "x-gzip", "deflate"])
def test_compressed_bodies_are_decoded(site: LoopbackSite, fetcher: Fetcher, coding: str) -> None:
    packed = gzip.compress(PAGE.encode()) if "gzip" in coding else zlib.compress(PAGE.encode())
    site.add("/z", packed, headers={"Content-Encoding": coding})
    fetched = fetcher.fetch(site.url("/z"))
    assert fetched.content == PAGE.encode()
    assert "content-encoding" not in fetched.headers


def test_raw_deflate_is_decoded_too() -> None:
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    raw = packer.compress(PAGE.encode()) + packer.flush()
    decoder = BodyDecoder("deflate", 10_000)
    decoder.feed(raw)
    assert decoder.finish() == PAGE.encode()


SITEMAP = (
    b'<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
    b"<url><loc>https://news.example/a</loc></url></urlset>"
)


@pytest.mark.parametrize("coding", [None, "gzip"])
def test_a_gzip_file_is_read_for_what_it_holds(
    site: LoopbackSite, fetcher: Fetcher, coding: str | None
) -> None:
    """A sitemap.xml.gz is a gzip file, sent with no content coding (or inside one)."""
    packed = gzip.compress(SITEMAP)
    body = gzip.compress(packed) if coding else packed
    headers = {"Content-Encoding": coding} if coding else {}
    site.add("/sitemap.xml.gz", body, content_type="application/x-gzip", headers=headers)
    assert fetcher.fetch(site.url("/sitemap.xml.gz")).content == SITEMAP


def test_a_gzip_file_is_inflated_once_only(site: LoopbackSite, fetcher: Fetcher) -> None:
    inner = gzip.compress(SITEMAP)
    site.add("/twice.xml.gz", gzip.compress(inner), content_type="application/gzip")
    assert fetcher.fetch(site.url("/twice.xml.gz")).content == inner


def test_a_corrupt_gzip_file_is_a_fetch_error(site: LoopbackSite, fetcher: Fetcher) -> None:
    site.add("/broken.xml.gz", b"\x1f\x8b\x08" + bytes(range(256)), content_type="application/gzip")
    with pytest.raises(FetchError, match=r"^corrupt gzip file: "):
        fetcher.fetch(site.url("/broken.xml.gz"))


def test_a_body_that_only_begins_like_gzip_is_left_alone(
    site: LoopbackSite, fetcher: Fetcher
) -> None:
    body = b"\x1f\x8b\x00 not a gzip member"  # the magic number, but no deflate method
    site.add("/odd", body, content_type="application/octet-stream")
    assert fetcher.fetch(site.url("/odd")).content == body


@pytest.mark.parametrize(
    ("header", "message"),
    [("gzip, gzip", "more than one"), ("deflate, gzip", "more than one"), ("br", "unknown")],
)
def test_refused_content_codings(
    site: LoopbackSite, fetcher: Fetcher, header: str, message: str
) -> None:
    site.add("/z", gzip.compress(b"<rss/>"), headers={"Content-Encoding": header})
    with pytest.raises(FetchError, match=message):
        fetcher.fetch(site.url("/z"))


def test_a_gzip_file_cut_short_keeps_what_it_holds_up_to_the_cut() -> None:
    """A sitemap.xml.gz truncated on the server: what was inflated is kept, and the sitemap
    reader then keeps its complete entries."""
    body = SITEMAP * 200
    packed = gzip.compress(body)
    inflated = inflate_gzip_file(packed[: len(packed) // 2], 1_000_000)
    assert 0 < len(inflated) < len(body) and body.startswith(inflated)


def test_a_body_that_is_not_deflate_either_way_is_a_fetch_error() -> None:
    decoder = BodyDecoder("deflate", 10_000)
    with pytest.raises(FetchError, match=r"^corrupt deflate body: "):
        decoder.feed(b"\xff" * 64)


def test_content_coding_reads_identity_as_none() -> None:
    assert content_coding({}) == ""
    assert content_coding({"content-encoding": "identity"}) == ""
    assert content_coding({"content-encoding": " GZIP "}) == "gzip"


def test_identity_body_is_counted_as_it_arrives() -> None:
    decoder = BodyDecoder("", 10)
    decoder.feed(b"x" * 10)
    with pytest.raises(ResponseTooLarge):
        decoder.feed(b"x")


def test_corrupt_gzip_is_a_fetch_error(site: LoopbackSite, fetcher: Fetcher) -> None:
    site.add("/z", b"\x1f\x8b\x08\x00garbage-not-gzip", headers={"Content-Encoding": "gzip"})
    with pytest.raises(FetchError, match="corrupt gzip"):
        fetcher.fetch(site.url("/z"))


# -- limits on requests in flight ------------------------------------------------------------------


def count_in_flight(site: LoopbackSite, path: str) -> list[int]:
    """Route path to a slow handler; the returned list's one value is the most seen at once."""
    lock = threading.Lock()
    state = {"now": 0}
    peak = [0]

    def slow(request: Request) -> Response:
        with lock:
            state["now"] += 1
            peak[0] = max(peak[0], state["now"])
        time.sleep(0.1)  # a slow server, so that requests overlap
        with lock:
            state["now"] -= 1
        return Response(200, b"ok", validators=False)

    site.routes[path] = slow
    return peak


@pytest.mark.parametrize(("concurrency", "per_host", "limit"), [(16, 2, 2), (3, 16, 3)])
def test_requests_in_flight_are_limited(
    site: LoopbackSite, concurrency: int, per_host: int, limit: int
) -> None:
    peak = count_in_flight(site, "/slow")
    fetcher = Fetcher(settings(concurrency=concurrency, per_host=per_host))
    with fetcher, ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: fetcher.fetch(site.url(f"/slow?{i}")), range(8)))
    assert [r.status for r in results] == [200] * 8
    assert 1 <= peak[0] <= limit


# -- what gets extracted ---------------------------------------------------------------------------


XHTML = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 '
    b'Strict//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">\n'
    b'<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en"><head><title>Met</title>'
)


def fetched(content_type: str | None, body: bytes) -> Fetched:
    headers = {"content-type": content_type} if content_type is not None else {}
    return Fetched("https://news.example/a", 200, headers, body)


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        ("text/html; charset=utf-8", b"anything", True),
        ("application/xhtml+xml", b"<html/>", True),
        ("TEXT/HTML", b"", True),
        ("application/pdf", b"%PDF-1.7 <html>", False),
        ("image/jpeg", b"\xff\xd8\xff\xe0", False),
        ("application/rss+xml", b"<rss/>", False),
        (None, b"\xef\xbb\xbf  <!DOCTYPE html><html>", True),
        (None, b"\n<html lang=en>", True),
        (None, b"<p>Just a paragraph", True),
        (None, b"%PDF-1.4\n", False),
        (None, b"\x89PNG\r\n\x1a\n", False),
        (None, b'<?xml version="1.0"?><rss>', False),
        ("application/octet-stream", b"<html><body>", True),
        ("text/plain", b"The Met said", False),
        ("", b"<head><title>x", True),
        ("application/xml", XHTML, True),  # XHTML served as plain XML
        ("text/xml; charset=utf-8", XHTML.replace(b"\n", b"\r\n"), True),
        ("application/xml", b'<?xml version="1.0"?><rss version="2.0"><channel>', False),
        (
            "application/xml",
            b'<feed xmlns="http://www.w3.org/2005/Atom"><entry><content '
            b'type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">',
            False,
        ),
        ("application/xml", b"<html><body>no namespace: not XHTML</body></html>", False),
    ],
)
def test_is_html(content_type: str | None, body: bytes, expected: bool) -> None:
    assert is_html(fetched(content_type, body)) is expected


@pytest.mark.parametrize(
    ("error", "passes"),
    [
        (DeadlineExceeded("deadline"), True),
        (FetchError("a.example: timed out"), True),
        (FetchError("a.example: connection refused"), True),
        (HTTPStatusError(503, "http://a.example/"), True),
        (HTTPStatusError(500, "http://a.example/"), True),
        (HTTPStatusError(429, "http://a.example/", 60.0), True),
        (HTTPStatusError(408, "http://a.example/"), True),
        (HTTPStatusError(501, "http://a.example/"), False),
        (HTTPStatusError(404, "http://a.example/"), False),
        (HTTPStatusError(410, "http://a.example/"), False),
        (HTTPStatusError(403, "http://a.example/"), False),
        (AddressRefused("10.0.0.1 is private"), False),
        (BadURL("not http"), False),
        (ResponseTooLarge("over 10 MB"), False),
    ],
)
def test_a_failure_that_passes_is_told_from_one_that_does_not(
    error: FetchError, passes: bool
) -> None:
    assert transient(error) is passes
