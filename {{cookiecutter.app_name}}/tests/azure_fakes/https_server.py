"""TEST FIXTURE: a threaded HTTPS (or plain HTTP) server on 127.0.0.1 that counts its requests
and notes when each connection was accepted."""

import json
import selectors
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.azure_fakes.tls import TestCA


class QuietHandler(BaseHTTPRequestHandler):
    """Answers JSON; logs nothing (a request line may carry a bearer token's audience)."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, the client's delayed ACK adds 40 ms.
    disable_nagle_algorithm = True
    server: "CountingHTTPSServer"

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: test output stays readable and carries no request details."""

    def send_json(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)


class CountingHTTPSServer(ThreadingHTTPServer):
    """TLS on 127.0.0.1 at a free port, served from a daemon thread; `requests` counts calls,
    `connected_at` holds the `time.monotonic()` of every connection accepted.
    Without a CA it speaks plain HTTP, as App Service's own identity endpoint does."""

    daemon_threads = True
    # Twenty clients connect at once; the default backlog of 5 drops SYNs (1 s retransmits).
    request_queue_size = 128

    def __init__(self, handler: type[QuietHandler], ca: TestCA | None) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.scheme = "http" if ca is None else "https"
        if ca is not None:
            # The handshake runs in each request's thread, not serially in the accept loop.
            self.socket = ca.server_context().wrap_socket(
                self.socket, server_side=True, do_handshake_on_connect=False
            )
        self._count_lock = threading.Lock()
        self.requests = 0
        self.connected_at: list[float] = []
        # stop() writes a byte here: the accept loop wakes at once instead of at its next poll.
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._thread = threading.Thread(target=self._accept_until_stopped, daemon=True)

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server_address[1]}"

    def count_request(self) -> None:
        with self._count_lock:
            self.requests += 1

    def get_request(self) -> tuple[socket.socket, Any]:
        accepted = super().get_request()
        with self._count_lock:
            self.connected_at.append(time.monotonic())
        return accepted

    def start(self) -> None:
        self._thread.start()

    def _accept_until_stopped(self) -> None:
        """serve_forever without its 0.5 s shutdown poll: waits on the socket and the wake pair."""
        with selectors.DefaultSelector() as selector:
            selector.register(self.socket, selectors.EVENT_READ)
            selector.register(self._wake_reader, selectors.EVENT_READ)
            while True:
                ready = {key.fileobj for key, _ in selector.select()}
                if self._wake_reader in ready:
                    return
                # The socket is ready: accepts at once, then answers in a thread of its own.
                self.handle_request()

    def stop(self) -> None:
        self._wake_writer.send(b"x")
        if self._thread.ident is not None:  # started
            self._thread.join(timeout=5)
        self.server_close()
        self._wake_reader.close()
        self._wake_writer.close()
