"""httpcore's connection pool with its assignment pass rewritten for a poll's workload.

A poll sends hundreds of requests over a pool of `[fetch] concurrency` connections, most of
them conditional requests answered 304. httpcore 1.0's pool (`ConnectionPool`) reruns its
assignment pass twice a request, and that pass:

- counts the pool's idle connections once for every idle connection (quadratic in the pool);
- asks every idle connection whether its socket is readable (a poll(2) each), every time;
- may hand a connection that is already given to a waiting request, but not yet started on,
  to a second request, or close it to make room for another host; the waiting request then
  fails (encode/httpcore#1110).

Keeping a 304's connection for the host's next feed fills the pool with idle connections, and
with 64 of them a steady-state poll of 1,000 feeds took 2-3 times as long (docs/fetching.md).
The pass here walks the connections once; looks at a socket only when its connection is about
to be used (an idle connection no request wants costs nothing until then, and the pool's size
bounds how many wait); and never gives away or closes a connection a request holds.
Everything else is httpcore's own pool: waiting for a connection, retrying one that turned
out unavailable, returning connections when a response is closed.

Between polls, `close_expired` closes the idle connections whose keep-alive has run out or
whose server has hung up: a daemon polls only the feeds that are due, so a connection to a
host that no due feed needs would otherwise stay open, half-closed, until the pool filled.
"""

from __future__ import annotations

import httpcore
from httpcore._sync.interfaces import ConnectionInterface


class PollPool(httpcore.ConnectionPool):
    """A ConnectionPool whose assignment pass is linear and never reassigns a held connection.

    Written against httpcore 1.0.9 (pinned): it overrides the private
    `_assign_requests_to_connections`, which every other method of the pool calls with the
    pool's lock held and whose contract is to return the connections to close.
    """

    def _assign_requests_to_connections(self) -> list[ConnectionInterface]:
        held = self._held()
        self._connections = [c for c in self._connections if not c.is_closed()]
        closing: list[ConnectionInterface] = []
        if self._max_keepalive_connections < self._max_connections:
            spare = [c for c in self._connections if id(c) not in held and c.is_idle()]
            for surplus in spare[: max(0, len(spare) - self._max_keepalive_connections)]:
                self._connections.remove(surplus)
                closing.append(surplus)
        for pool_request in self._requests:
            if not pool_request.is_queued():
                continue
            origin = pool_request.request.url.origin
            connection = self._reusable(origin, held, closing)
            if connection is None and len(self._connections) >= self._max_connections:
                # full: close an idle connection no request holds to make room, if any
                idle = next(
                    (c for c in self._connections if id(c) not in held and c.is_idle()), None
                )
                if idle is None:
                    continue  # the request waits for a connection to come back
                self._connections.remove(idle)
                closing.append(idle)
            if connection is None:
                connection = self.create_connection(origin)
                self._connections.append(connection)
            pool_request.assign_to_connection(connection)
            held.add(id(connection))
        return closing

    def close_expired(self) -> int:
        """Close the idle connections no request holds whose keep-alive has run out or whose
        server has closed them; returns how many."""
        with self._optional_thread_lock:
            held = self._held()
            expired = [
                c
                for c in self._connections
                if id(c) not in held and (c.is_closed() or (c.is_idle() and c.has_expired()))
            ]
            for connection in expired:
                self._connections.remove(connection)
        self._close_connections(expired)
        return len(expired)

    def _held(self) -> set[int]:
        """The ids of the connections handed to requests (call with the pool's lock held)."""
        return {id(r.connection) for r in self._requests if r.connection is not None}

    def _reusable(
        self, origin: httpcore.Origin, held: set[int], closing: list[ConnectionInterface]
    ) -> ConnectionInterface | None:
        """An idle connection to origin that no request holds and whose server has not closed
        it; connections found expired on the way are set aside for closing."""
        for connection in list(self._connections):
            if (
                id(connection) in held
                or not connection.can_handle_request(origin)
                or not connection.is_available()
            ):
                continue
            if connection.has_expired():  # idle too long, or the server hung up
                self._connections.remove(connection)
                closing.append(connection)
                continue
            return connection
        return None
