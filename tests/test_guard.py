"""The address guard: every spelling of an internal address is refused, at connect time."""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterator

import pytest

from monitor.config import FetchSettings
from monitor.errors import AddressRefused, BadURL, DeadlineExceeded, FetchError
from monitor.fetch import Fetcher
from monitor.guard import (
    NAME_CACHE_SIZE,
    AddressPolicy,
    GuardedBackend,
    NameCache,
    clamp_timeout,
    classify_address,
    deadline_scope,
)
from monitor.loopback import LoopbackSite, Response

ALLOW_LOCAL = (ipaddress.ip_network("127.0.0.1/32"),)


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[LoopbackSite, LoopbackSite]]:
    # Started once: stopping a LoopbackSite waits for its half-second poll.
    with LoopbackSite() as public, LoopbackSite(host="127.0.0.2") as internal:
        yield public, internal


@pytest.fixture
def site(servers: tuple[LoopbackSite, LoopbackSite]) -> LoopbackSite:
    s = servers[0]
    s.routes.clear()
    s.requests.clear()
    s.add("/a", "<html><body>ok</body></html>")
    return s


@pytest.fixture
def internal(servers: tuple[LoopbackSite, LoopbackSite]) -> LoopbackSite:
    """A second loopback address standing for a host inside the network."""
    s = servers[1]
    s.requests.clear()
    s.add("/admin", "secret")
    return s


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("100.64.0.1", "shared"),
        ("224.0.0.251", "multicast"),
        ("240.0.0.1", "private"),
        ("255.255.255.255", "private"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fd00::1", "private"),
        ("fe80::1", "link-local"),
        ("ff02::1", "multicast"),
        ("::ffff:127.0.0.1", "loopback (IPv4 inside IPv6)"),
        ("::ffff:169.254.169.254", "link-local (IPv4 inside IPv6)"),
        ("64:ff9b::a00:1", "private (IPv4 inside IPv6)"),
        ("2002:7f00:1::", "loopback (IPv4 inside IPv6)"),
        ("::7f00:1", "reserved"),
        # called global by ipaddress before Python 3.11.10 (CVE-2024-4032)
        ("192.0.0.8", "non-global"),
        ("192.0.0.200", "non-global"),
        ("64:ff9b:1::a00:1", "reserved"),  # local-use NAT64
    ],
)
def test_classify_address_names_internal_addresses(address: str, reason: str) -> None:
    assert classify_address(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize(
    "address", ["93.184.215.14", "2606:4700::1111", "::ffff:8.8.8.8", "192.0.0.9", "192.0.0.10"]
)
def test_classify_address_passes_public_addresses(address: str) -> None:
    assert classify_address(ipaddress.ip_address(address)) is None


def test_policy_exceptions() -> None:
    strict = AddressPolicy()
    listed = AddressPolicy(allow_addresses=(ipaddress.ip_network("10.1.2.0/24"),))
    anything = AddressPolicy(allow_private_networks=True)
    assert strict.refusal("10.1.2.3") == "private"
    assert listed.refusal("10.1.2.3") is None
    assert listed.refusal("::ffff:10.1.2.3") is None  # the same host, spelled as IPv6
    assert listed.refusal("10.1.3.3") == "private"
    assert anything.refusal("169.254.169.254") is None
    assert strict.refusal("not-an-address") == "not an IP address"


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "2130706433",  # decimal
        "0x7f000001",  # hex
        "0177.0.0.1",  # octal
        "127.1",  # short form
        "0.0.0.0",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "169.254.169.254",
        "[fd00::1]",
        "100.64.0.1",
        "10.0.0.1",
        "192.168.0.1",
        "[fe80::1]",
    ],
)
def test_every_spelling_of_an_internal_address_is_refused(site: LoopbackSite, host: str) -> None:
    with Fetcher(FetchSettings(timeout=5)) as fetcher, pytest.raises((AddressRefused, BadURL)):
        fetcher.fetch(f"http://{host}:{site.port}/a")
    assert site.requests == []


def test_the_refusal_reads_as_english() -> None:
    refused = pytest.raises(AddressRefused, match=r"^0\.0\.0\.0 is an unspecified address; ")
    with Fetcher(FetchSettings(timeout=5)) as fetcher, refused:
        fetcher.fetch("http://0.0.0.0:9/a")


def test_allow_addresses_lets_one_loopback_address_through(
    site: LoopbackSite, internal: LoopbackSite
) -> None:
    with Fetcher(FetchSettings(timeout=5, allow_addresses=ALLOW_LOCAL)) as fetcher:
        assert fetcher.fetch(site.url("/a")).status == 200
        with pytest.raises(AddressRefused, match=r"127\.0\.0\.2 is a loopback address"):
            fetcher.fetch(internal.url("/admin"))
    assert internal.requests == []


def test_allow_private_networks_lets_everything_through(internal: LoopbackSite) -> None:
    with Fetcher(FetchSettings(timeout=5, allow_private_networks=True)) as fetcher:
        assert fetcher.fetch(internal.url("/admin")).content == b"secret"


def test_redirect_into_an_internal_host_is_refused(
    site: LoopbackSite, internal: LoopbackSite
) -> None:
    site.routes["/go"] = Response(302, headers={"Location": internal.url("/admin")})
    fetcher = Fetcher(FetchSettings(timeout=5, allow_addresses=ALLOW_LOCAL))
    with fetcher, pytest.raises(AddressRefused):
        fetcher.fetch(site.url("/go"))
    assert len(site.hits("/go")) == 1
    assert internal.requests == []


def test_the_address_checked_is_the_address_connected_to(site: LoopbackSite) -> None:
    """DNS rebinding: the name resolves to an allowed address, then to an internal one."""
    with LoopbackSite(host="127.0.0.2", port=site.port) as internal:
        internal.add("/a", "internal")
        answers = [["127.0.0.1"], ["127.0.0.2"], ["127.0.0.2"]]
        asked: list[str] = []

        def rebinding_resolver(host: str, port: int) -> list[str]:
            asked.append(host)
            return answers[len(asked) - 1]

        settings = FetchSettings(timeout=5, allow_addresses=ALLOW_LOCAL)
        with Fetcher(settings, resolve=rebinding_resolver) as fetcher:
            fetched = fetcher.fetch(f"http://news.example:{site.port}/a")
        assert fetched.content == b"<html><body>ok</body></html>"
        assert asked == ["news.example"]
        assert [r.headers["host"] for r in site.requests] == [f"news.example:{site.port}"]
        assert internal.requests == []


def test_a_name_is_looked_up_once_for_many_connections(site: LoopbackSite) -> None:
    # the server closes each connection, so every fetch connects anew
    site.add("/closing", "<p>ok</p>", headers={"Connection": "close"})
    asked: list[str] = []

    def counting(host: str, port: int) -> list[str]:
        asked.append(host)
        return ["127.0.0.1"]

    settings = FetchSettings(timeout=5, allow_addresses=ALLOW_LOCAL)
    with Fetcher(settings, resolve=counting) as fetcher:
        for host in ("news.example", "NEWS.example", "news.example"):
            assert fetcher.fetch(f"http://{host}:{site.port}/closing").status == 200
        fetcher.fetch(f"http://other.example:{site.port}/closing")
    assert len(site.hits("/closing")) == 4
    assert asked == ["news.example", "other.example"]


def test_a_cached_name_is_checked_again_on_every_connection(site: LoopbackSite) -> None:
    names = NameCache()
    names.put("news.example", ["127.0.0.1"])
    refusing = GuardedBackend(AddressPolicy.from_settings(FetchSettings()), names=names)
    with pytest.raises(AddressRefused, match=r"news\.example \(127\.0\.0\.1\) is a loopback"):
        refusing.connect_tcp("news.example", site.port, timeout=5)
    assert site.requests == []


def test_names_are_kept_a_minute_and_failures_not_at_all() -> None:
    now = [1000.0]
    names = NameCache(lifetime=60.0, clock=lambda: now[0])
    names.put("news.example", ["192.0.2.1", "2001:db8::1"])
    assert names.get("news.example") == ["192.0.2.1", "2001:db8::1"]
    now[0] += 59.9
    assert names.get("news.example") == ["192.0.2.1", "2001:db8::1"]
    now[0] += 0.1
    assert names.get("news.example") is None
    answers = [[], ["127.0.0.1"]]
    asked: list[str] = []

    def flaky(host: str, port: int) -> list[str]:
        asked.append(host)
        return answers[len(asked) - 1]

    backend = GuardedBackend(AddressPolicy.from_settings(FetchSettings()), flaky, NameCache())
    with pytest.raises(FetchError, match="no addresses"):
        backend.connect_tcp("news.example", 80, timeout=5)
    with pytest.raises(AddressRefused):  # asked again: the empty answer was not kept
        backend.connect_tcp("news.example", 80, timeout=5)
    assert asked == ["news.example", "news.example"]


def test_the_name_cache_stays_bounded() -> None:
    now = [0.0]
    names = NameCache(lifetime=60.0, clock=lambda: now[0])
    names.put("old.example", ["192.0.2.1"])
    now[0] += 61
    for n in range(NAME_CACHE_SIZE - 1):
        names.put(f"host{n}.example", ["192.0.2.2"])
    names.put("one-more.example", ["192.0.2.3"])  # full: the expired name makes room
    assert names.get("host0.example") == ["192.0.2.2"]
    names.put("and-another.example", ["192.0.2.4"])  # full of live names: start afresh
    assert names.get("host0.example") is None
    assert names.get("and-another.example") == ["192.0.2.4"]


def test_a_name_with_any_internal_address_is_refused(site: LoopbackSite) -> None:
    def mixed(host: str, port: int) -> list[str]:
        return ["127.0.0.1", "10.0.0.5"]

    settings = FetchSettings(timeout=5, allow_addresses=ALLOW_LOCAL)
    fetcher = Fetcher(settings, resolve=mixed)
    with (
        fetcher,
        pytest.raises(AddressRefused, match=r"\(10\.0\.0\.5\) is a private"),
    ):
        fetcher.fetch(f"http://news.example:{site.port}/a")
    assert site.requests == []


def test_a_name_that_does_not_resolve_is_a_fetch_error() -> None:
    def nothing(host: str, port: int) -> list[str]:
        return []

    fetcher = Fetcher(FetchSettings(timeout=5), resolve=nothing)
    with fetcher, pytest.raises(FetchError, match=r"cannot resolve news\.example"):
        fetcher.fetch("http://news.example/a")


def test_clamp_timeout_gives_at_most_the_time_left() -> None:
    assert clamp_timeout(7.0) == 7.0  # no deadline on this thread
    with deadline_scope(float("inf")):
        assert clamp_timeout(7.0) == 7.0
    with deadline_scope(0.0), pytest.raises(FetchError, match="deadline"):
        clamp_timeout(7.0)


def test_a_resolver_that_hangs_ends_the_request_at_its_deadline() -> None:
    released = threading.Event()
    answered: list[str] = []

    def hanging(host: str, port: int) -> list[str]:
        released.wait(10)  # as getaddrinfo does when the resolver never answers
        answered.append(host)
        return ["127.0.0.1"]

    fetcher = Fetcher(FetchSettings(timeout=0.5), resolve=hanging)
    try:
        with fetcher, pytest.raises(DeadlineExceeded, match=r"no complete answer within 0\.5s"):
            fetcher.fetch("http://news.example/a")
        assert answered == []  # the request ended while the lookup was still waiting
    finally:
        released.set()


def test_a_resolver_error_on_its_thread_reaches_the_request() -> None:
    def failing(host: str, port: int) -> list[str]:
        raise FetchError(f"cannot resolve {host}: Name or service not known")

    fetcher = Fetcher(FetchSettings(timeout=5), resolve=failing)
    with fetcher, pytest.raises(FetchError, match=r"cannot resolve news\.example: Name"):
        fetcher.fetch("http://news.example/a")
