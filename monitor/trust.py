"""The CA certificates https requests are checked against, read on a thread.

Reading certifi's bundle (the one httpx uses) takes about 30 ms. OpenSSL lets go of the GIL
while it reads, so a command that will fetch starts the reading first (`Runtime.trust`), and
it goes on beside the rest of start-up: importing the HTTP client, loading the watchlists and
the feeds' states. An https request waits for it; a plain http request never does. This
module imports neither httpx nor any of monitor's modules but its errors, so the reading can
start before they are imported.
"""

from __future__ import annotations

import ssl
import threading

import certifi

from monitor.errors import FetchError


class TrustStore:
    """The TLS context of every https request; its CA certificates are read on a thread."""

    def __init__(self, ca_file: str | None = None) -> None:
        """ca_file: the certificates to trust (PEM); certifi's bundle by default."""
        # what ssl.create_default_context(cafile=...) makes, as httpx does, minus the read;
        # the certificates are in it once wait() has returned
        self.ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.ssl_context.verify_mode = ssl.CERT_REQUIRED
        self.ssl_context.check_hostname = True
        self._ca_file = ca_file or certifi.where()
        self._error: str | None = None
        # not a daemon: the interpreter must not tear down while OpenSSL still reads
        self._reader = threading.Thread(target=self._read, name="ca-certificates")
        self._reader.start()

    def _read(self) -> None:
        try:
            self.ssl_context.load_verify_locations(cafile=self._ca_file)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            self._error = f"cannot read the CA certificates in {self._ca_file}: {exc}"

    def wait(self) -> None:
        """Return once the certificates are read; FetchError when they cannot be."""
        self._reader.join()
        if self._error is not None:
            raise FetchError(self._error)

    def close(self) -> None:
        """Let the reading end: a process that exits while OpenSSL reads can crash."""
        self._reader.join()
