"""The address guard and the request deadline, enforced where sockets are opened and read.

A URL's host is only a name; what matters is the address a socket actually connects to. So
the guard is an httpcore network backend: it resolves the name itself, checks every address
it gets, and connects to a checked address, never to the name. A name that resolves to a
public address when looked up and to 127.0.0.1 a second later (DNS rebinding) is therefore
looked up once, and what is connected to is what was checked. A name's addresses are used
again for a minute (NameCache), and checked again on every connection. TLS still verifies the
certificate against the host name, which httpcore passes to start_tls separately.

httpx's timeouts apply to each read or write, so a server that trickles one byte every few
seconds never trips them. Every socket operation here is given at most the time left before
the deadline of the request running on the calling thread (see deadline_scope).
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httpcore

from monitor.config import FetchSettings, IPNetwork
from monitor.errors import AddressRefused, DeadlineExceeded, FetchError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

_SHARED = ipaddress.IPv4Network("100.64.0.0/10")  # carrier-grade NAT, RFC 6598
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # IPv4 reached through a NAT64 gateway
# IETF protocol assignments, not globally reachable but for two anycast addresses: ipaddress
# before Python 3.11.10 and 3.12.4 called most of the block global (CVE-2024-4032)
_IETF = ipaddress.IPv4Network("192.0.0.0/24")
_IETF_GLOBAL = (ipaddress.IPv4Address("192.0.0.9"), ipaddress.IPv4Address("192.0.0.10"))
_local = threading.local()


# -- which addresses may be connected to --------------------------------------------------------


def classify_address(address: IPAddress) -> str | None:
    """Why address is not a public internet address ("loopback", "private"...), or None."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        reason = classify_address(embedded)
        return None if reason is None else f"{reason} (IPv4 inside IPv6)"
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("shared", isinstance(address, ipaddress.IPv4Address) and address in _SHARED),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("non-global", not address.is_global or _ietf(address)),
    )
    return next((name for name, hit in checks if hit), None)


def _ietf(address: IPAddress) -> bool:
    """Whether address is one of the IETF protocol assignments that are not global."""
    return address.version == 4 and address in _IETF and address not in _IETF_GLOBAL


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """Which addresses may be fetched: public ones, plus the listed exceptions."""

    allow_private_networks: bool = False
    allow_addresses: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_settings(cls, settings: FetchSettings) -> AddressPolicy:
        """The policy [fetch] describes."""
        return cls(settings.allow_private_networks, settings.allow_addresses)

    def refusal(self, address: str) -> str | None:
        """None when address may be connected to, else a short reason it may not."""
        return _refusal(self, address)


# Every request asks both questions below, almost always about addresses asked about before.


@functools.lru_cache(maxsize=4096)
def _refusal(policy: AddressPolicy, address: str) -> str | None:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "not an IP address"
    if policy.allow_private_networks:
        return None
    plain = _embedded_ipv4(ip) or ip
    if any(ip in net or plain in net for net in policy.allow_addresses):
        return None
    return classify_address(ip)


@functools.lru_cache(maxsize=4096)
def address_literal(host: str) -> str | None:
    """host in the normal spelling of an IP address, when it is one; else None."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


def resolve_host(host: str, port: int) -> list[str]:
    """Every address host resolves to, in the resolver's order, without duplicates."""
    literal = address_literal(host)
    if literal is not None:
        return [literal]
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise FetchError(f"cannot resolve {host}: {reason}") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def resolve_by_deadline(
    resolve: Resolver, host: str, port: int, timeout: float | None
) -> list[str]:
    """resolve(host, port), given up at the calling thread's deadline.

    getaddrinfo cannot be interrupted and waits as long as the system resolver does, so a name
    (not an address) is looked up on a thread of its own; on a hung resolver the request ends
    on time and the lookup finishes, or not, in the background."""
    literal = address_literal(host)
    if literal is not None:
        return [literal]
    wait = clamp_timeout(timeout)
    if wait is None:
        return resolve(host, port)
    answer: list[list[str] | BaseException] = []
    done = threading.Event()

    def lookup() -> None:
        try:
            answer.append(resolve(host, port))
        except BaseException as exc:  # handed to the waiting thread, which raises it
            answer.append(exc)
        finally:
            done.set()

    threading.Thread(target=lookup, name=f"resolve {host}", daemon=True).start()
    if not done.wait(wait):
        raise DeadlineExceeded(f"request deadline passed while resolving {host}")
    if isinstance(answer[0], BaseException):
        raise answer[0]
    return answer[0]


# -- the request deadline -----------------------------------------------------------------------


class deadline_scope:  # used like a function, as contextlib's helpers are
    """Socket operations on this thread give up at deadline (a time.monotonic() value)."""

    __slots__ = ("_deadline", "_previous")

    def __init__(self, deadline: float) -> None:
        self._deadline = deadline

    def __enter__(self) -> None:
        self._previous = getattr(_local, "deadline", None)
        _local.deadline = self._deadline

    def __exit__(self, *exc: object) -> None:
        _local.deadline = self._previous


def clamp_timeout(timeout: float | None) -> float | None:
    """timeout, shortened to the time left before this thread's deadline."""
    deadline: float | None = getattr(_local, "deadline", None)
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise DeadlineExceeded("request deadline passed")
    return left if timeout is None else min(timeout, left)


# -- the network backend ------------------------------------------------------------------------


NAME_LIFETIME = 60.0  # seconds a looked-up name's addresses are used again
NAME_CACHE_SIZE = 1024  # names kept at most


class NameCache:
    """The addresses of recently looked-up names, each kept NAME_LIFETIME seconds.

    A poll opens up to `per_host` connections to each host at once, and opens more whenever a
    full pool closes one to make room for another host; without this each of them asks the
    system resolver again: on a machine with no caching resolver (many containers), a DNS round
    trip each. Only answers are kept, never failures, and the guard checks the addresses it
    connects to every time, cached or not.
    """

    def __init__(
        self, lifetime: float = NAME_LIFETIME, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._lifetime = lifetime
        self._clock = clock
        self._answers: dict[str, tuple[float, list[str]]] = {}
        self._lock = threading.Lock()

    def get(self, host: str) -> list[str] | None:
        """The addresses host resolved to less than `lifetime` ago, or None."""
        with self._lock:
            found = self._answers.get(host)
        if found is None or found[0] <= self._clock():
            return None
        return list(found[1])

    def put(self, host: str, addresses: list[str]) -> None:
        """Keep host's addresses (a non-empty answer) for `lifetime` seconds."""
        now = self._clock()
        with self._lock:
            if len(self._answers) >= NAME_CACHE_SIZE:
                self._answers = {h: a for h, a in self._answers.items() if a[0] > now}
                if len(self._answers) >= NAME_CACHE_SIZE:
                    self._answers.clear()
            self._answers[host] = (now + self._lifetime, list(addresses))


class GuardedBackend(httpcore.NetworkBackend):
    """Resolves, checks and connects to addresses itself; every stream obeys the deadline."""

    def __init__(
        self,
        policy: AddressPolicy,
        resolve: Resolver = resolve_host,
        names: NameCache | None = None,
    ) -> None:
        self._policy = policy
        self._resolve = resolve
        self._names = names or NameCache()
        self._inner = httpcore.SyncBackend()

    def _addresses(self, host: str, port: int, timeout: float | None) -> list[str]:
        """host's addresses: looked up, or as looked up less than a minute ago."""
        literal = address_literal(host)
        if literal is not None:
            return [literal]
        addresses = self._names.get(host)  # httpx hands over host names in lower case
        if addresses is None:
            addresses = resolve_by_deadline(self._resolve, host, port, timeout)
            if addresses:
                self._names.put(host, addresses)
        return addresses

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        """Connect to a checked address of host; AddressRefused if any address is refused."""
        addresses = self._addresses(host, port, timeout)
        if not addresses:
            raise FetchError(f"cannot resolve {host}: no addresses")
        # One refused address refuses the name: a public site has no business resolving to
        # an internal address, and trying the others would only hide the trick.
        for address in addresses:
            reason = self._policy.refusal(address)
            if reason is not None:
                named = address if host == address else f"{host} ({address})"
                article = "an" if reason[0] in "aeiou" else "a"  # an unspecified address
                raise AddressRefused(
                    f"{named} is {article} {reason} address; refused (see [fetch] allow_addresses)"
                )
        error: Exception | None = None
        for address in addresses:
            try:
                stream = self._inner.connect_tcp(
                    address, port, clamp_timeout(timeout), local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
                continue
            return DeadlineStream(stream)
        assert error is not None
        raise error

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        """Never: feeds and pages are fetched over TCP only."""
        raise AddressRefused("unix sockets are never fetched")

    def sleep(self, seconds: float) -> None:
        """Wait between connection retries (httpcore's interface)."""
        self._inner.sleep(seconds)


class DeadlineStream(httpcore.NetworkStream):
    """A connection whose every operation ends by the calling thread's deadline."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        """Read up to max_bytes, waiting no later than the deadline."""
        return self._inner.read(max_bytes, clamp_timeout(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        """Write buffer, waiting no later than the deadline."""
        self._inner.write(buffer, clamp_timeout(timeout))

    def close(self) -> None:
        """Close the connection."""
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        """Upgrade to TLS; the certificate is checked against server_hostname, the URL's host."""
        upgraded = self._inner.start_tls(ssl_context, server_hostname, clamp_timeout(timeout))
        return DeadlineStream(upgraded)

    def get_extra_info(self, info: str) -> Any:
        """Socket details, as httpcore asks for them."""
        return self._inner.get_extra_info(info)
