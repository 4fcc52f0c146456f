"""The poll's connection pool: which connection each queued request gets, with stand-in
connections (the pool's bookkeeping is what is tested; the fetch tests cover real sockets)."""

from __future__ import annotations

import httpcore
from httpcore._sync.connection_pool import PoolRequest
from httpcore._sync.interfaces import ConnectionInterface

from monitor.connpool import PollPool


class Stand(ConnectionInterface):
    """A connection to one origin that is idle or busy, and has expired or not."""

    def __init__(self, origin: str, *, idle: bool = True, expired: bool = False) -> None:
        self.origin = httpcore.URL(origin).origin
        self.idle, self.expired, self.closed = idle, expired, False
        self.expiry_checks = 0

    def can_handle_request(self, origin: httpcore.Origin) -> bool:
        return origin == self.origin

    def is_available(self) -> bool:
        return self.idle and not self.closed

    def is_idle(self) -> bool:
        return self.idle

    def is_closed(self) -> bool:
        return self.closed

    def has_expired(self) -> bool:
        self.expiry_checks += 1
        return self.expired

    def close(self) -> None:
        self.closed = True

    def info(self) -> str:
        return f"stand-in for {self.origin}"

    def handle_request(self, request: httpcore.Request) -> httpcore.Response:
        raise AssertionError("the pool's bookkeeping never sends a request")


def pool(connections: list[Stand], limit: int, keep: int | None = None) -> PollPool:
    p = PollPool(max_connections=limit, max_keepalive_connections=keep or limit)
    p._connections = list(connections)
    p.create_connection = lambda origin: Stand(str(origin))  # type: ignore[method-assign]
    return p


def queue(p: PollPool, url: str) -> PoolRequest:
    request = PoolRequest(httpcore.Request("GET", url))
    p._requests.append(request)
    return request


def test_an_idle_connection_to_the_origin_is_reused() -> None:
    a = Stand("http://a.example")
    p = pool([Stand("http://b.example"), a], limit=2)
    request = queue(p, "http://a.example/feed")
    assert p._assign_requests_to_connections() == []
    assert request.connection is a


def test_a_connection_handed_to_a_waiting_request_is_neither_shared_nor_closed() -> None:
    a = Stand("http://a.example")
    p = pool([a], limit=1)
    first = queue(p, "http://a.example/one")
    p._assign_requests_to_connections()
    assert first.connection is a  # handed over; still idle until the request starts on it
    second = queue(p, "http://a.example/two")  # same origin: must not get the same one
    other = queue(p, "http://b.example/feed")  # the pool is full: must not close it for b
    assert p._assign_requests_to_connections() == []
    assert second.is_queued() and other.is_queued()
    assert not a.closed and p._connections == [a]


def test_a_full_pool_closes_an_idle_connection_nobody_holds_for_a_new_origin() -> None:
    a, b = Stand("http://a.example"), Stand("http://b.example", idle=False)
    p = pool([a, b], limit=2)
    request = queue(p, "http://c.example/feed")
    assert p._assign_requests_to_connections() == [a]
    assert request.connection is not None and request.connection not in (a, b)
    assert p._connections == [b, request.connection]


def test_an_expired_connection_is_closed_and_a_fresh_one_made() -> None:
    stale = Stand("http://a.example", expired=True)
    p = pool([stale], limit=2)
    request = queue(p, "http://a.example/feed")
    assert p._assign_requests_to_connections() == [stale]
    assert request.connection is not None and request.connection is not stale


def test_only_a_connection_about_to_be_used_is_checked_for_expiry() -> None:
    others = [Stand(f"http://host{n}.example") for n in range(30)]
    mine = Stand("http://a.example")
    p = pool([*others, mine], limit=64)
    queue(p, "http://a.example/feed")
    for _ in range(3):  # a pass runs with every request added and every response closed
        p._assign_requests_to_connections()
    assert mine.expiry_checks == 1
    assert all(c.expiry_checks == 0 for c in others)


def test_idle_connections_beyond_the_keepalive_limit_are_closed() -> None:
    idle = [Stand(f"http://host{n}.example") for n in range(4)]
    busy = Stand("http://busy.example", idle=False)
    p = pool([*idle, busy], limit=8, keep=2)
    closing = p._assign_requests_to_connections()
    assert closing == idle[:2]
    assert p._connections == [*idle[2:], busy]


def test_closed_connections_leave_the_pool() -> None:
    gone = Stand("http://a.example")
    gone.closed = True
    p = pool([gone], limit=2)
    assert p._assign_requests_to_connections() == []
    assert p._connections == []


def test_between_polls_only_idle_expired_connections_nobody_holds_are_closed() -> None:
    fresh = Stand("http://fresh.example")
    stale = Stand("http://stale.example", expired=True)
    busy = Stand("http://busy.example", idle=False, expired=True)  # a response is being read
    gone = Stand("http://gone.example")
    gone.closed = True
    handed = Stand("http://handed.example", expired=True)  # given to a request, not started
    p = pool([fresh, stale, busy, gone, handed], limit=8)
    queue(p, "http://handed.example/feed").assign_to_connection(handed)
    assert p.close_expired() == 2
    assert stale.closed and gone.closed
    assert not fresh.closed and not busy.closed and not handed.closed
    assert p._connections == [fresh, busy, handed]
