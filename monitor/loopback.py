"""A real HTTP server on a loopback address, for the demo, the benchmarks and the tests.

Routes map a path to a fixed Response or to a function of the request. Fixed responses get
ETag and Last-Modified validators and answer conditional requests with 304, as real news sites
do. Every request is recorded, so a test can prove that a refused host was never contacted.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import ssl


@dataclass
class Response:
    """What the server answers; `trickle` sends the body one byte every that many seconds."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    trickle: float | None = None
    validators: bool = True  # add ETag/Last-Modified and honour conditional requests
    drop: bool = False  # close the connection without answering


@dataclass(frozen=True)
class Request:
    """One request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]
    client: str
    client_port: int = 0  # one port per client connection: how many connections were opened


Handler = Callable[[Request], Response]


class LoopbackSite:
    """A threaded HTTP/1.1 server bound to a loopback address; use as a context manager."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """tls: a server context (certificate loaded) to serve https instead of http."""
        self.host = host
        self.latency = latency
        self.routes: dict[str, Response | Handler] = {}
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._server = _QuietServer((host, port), _make_handler(self))
        self._server.daemon_threads = True
        self.scheme = "http"
        if tls is not None:
            # the handshake happens in the connection's own thread, not in the accept loop
            self._server.socket = tls.wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False
            )
            self.scheme = "https"
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        return self.base + path

    def add(
        self,
        path: str,
        body: bytes | str,
        content_type: str = "text/html; charset=utf-8",
        **kwargs: Any,
    ) -> str:
        """Serve body at path; returns the full URL."""
        data = body.encode("utf-8") if isinstance(body, str) else body
        headers = {"Content-Type": content_type, **kwargs.pop("headers", {})}
        self.routes[path] = Response(body=data, headers=headers, **kwargs)
        return self.url(path)

    def hits(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def start(self) -> LoopbackSite:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> LoopbackSite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)


class _QuietServer(ThreadingHTTPServer):
    """A client that gives up mid-answer (a deadline, a refused body) or refuses the
    certificate is expected here."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        import ssl
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError | ssl.SSLError):
            super().handle_error(request, client_address)


def _validators(body: bytes) -> dict[str, str]:
    digest = hashlib.sha256(body).hexdigest()[:16]
    return {"ETag": f'"{digest}"', "Last-Modified": formatdate(1_700_000_000, usegmt=True)}


def _make_handler(site: LoopbackSite) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # headers and body go out in two writes; without this the body waits ~40 ms for the
        # client's delayed acknowledgement
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_HEAD(self) -> None:
            self._answer(head=True)

        def do_GET(self) -> None:
            self._answer(head=False)

        def _answer(self, head: bool) -> None:
            request = Request(
                "HEAD" if head else "GET",
                self.path,
                {k.lower(): v for k, v in self.headers.items()},
                self.client_address[0],
                self.client_address[1],
            )
            site._record(request)
            route = site.routes.get(self.path) or site.routes.get(self.path.split("?", 1)[0])
            if route is None:
                response = Response(404, b"not found", {"Content-Type": "text/plain"})
            else:
                response = route(request) if callable(route) else route
            if site.latency:
                time.sleep(site.latency)
            if response.delay:
                time.sleep(response.delay)
            if response.drop:
                self.close_connection = True
                return
            self._send(request, response, head)

        def _send(self, request: Request, response: Response, head: bool) -> None:
            headers = dict(response.headers)
            status, body = response.status, response.body
            if response.validators and status == 200:
                headers = {**_validators(body), **headers}
                if request.headers.get("if-none-match") == headers.get("ETag") or (
                    "if-none-match" not in request.headers
                    and request.headers.get("if-modified-since") == headers.get("Last-Modified")
                ):
                    status, body = 304, b""
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if "Content-Length" not in headers:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if head or status == 304:
                return
            if response.trickle is None:
                self.wfile.write(body)
                return
            for i in range(len(body)):
                self.wfile.write(body[i : i + 1])
                self.wfile.flush()
                time.sleep(response.trickle)

    return _Handler
