"""The identity broker: the worker's managed-identity endpoint, forwarding only what policy allows.

App Service's identity endpoint (IDENTITY_ENDPOINT, with the secret IDENTITY_HEADER) mints a token
for any identity assigned to the site and any audience. The launcher gives that header to this
program alone, running as its own account, and gives the worker a look-alike endpoint: this one,
on loopback, with a header made for this launch (LAUNCHER_BROKER_HEADER). A request is forwarded
only when its header is the worker's, its audience is on the policy's list
(LAUNCHER_BROKER_AUDIENCES) and its identity is the app's (AZURE_CLIENT_ID: a request naming no
identity gets the app's; one naming another client_id, object_id or mi_res_id is refused).

The protocol is the one azure-identity and MSAL speak to App Service (msal's managed_identity.py,
`_obtain_token_on_app_service`): `GET <endpoint>?api-version=2019-08-01&resource=<audience>
[&client_id=...]` with `X-IDENTITY-HEADER`; a refusal is a JSON body with `statusCode` and
`message`, which MSAL turns into the error azure-identity raises, so the message names what the
policy refused. One audit line on stderr per refusal names the audience and identity asked for,
never a header or a token.

Under abuse (the worker may be an attacker's): every request must be whole within
REQUEST_DEADLINE_SECONDS of its connection, whatever it trickles; one thread serves every connection
(selectors), so slow clients hold no thread and at most MAX_CONNECTIONS sockets, the oldest
unfinished one closed first to admit a new one. A token is reused until TOKEN_MARGIN_SECONDS before
its `expires_on`, and requests for an audience share the one platform call in flight, so a flood
becomes one call per token lifetime; a failure is reused for FAILURE_HOLD_SECONDS. The platform's
answer is never relayed: a token is re-written from its fields, anything else becomes its status
and a fixed message (an endpoint or proxy that echoes requests would echo the platform's header).
A malformed request gets one log line and an HTTP error, never a traceback; `make fuzz-broker`
runs parse_request, check and platform_answer under libFuzzer (atheris).

The launcher starts it as `python -I -S identity_broker.py` with the listening socket on
descriptor 3 (bound and listening already: requests wait in its backlog) and a pipe on 4, where it
writes "ready" once its configuration holds. The launcher starts the worker only then, so this
module imports nothing but os and sys before that line: everything else is imported where it is
used, and loads while the worker starts. Standard library only: it parses what the worker,
possibly an attacker, writes.
"""

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket

LISTEN_FD, READY_FD = 3, 4
API_VERSION = "2019-08-01"
PATH = "/msi/token"
MAX_REQUEST_HEAD = 8192
MAX_HEADER_LINES = 32
MAX_UPSTREAM_ANSWER = 65536
# A token request is one small write (azure-identity sends it whole): seconds are plenty on
# loopback, and a client that trickles bytes loses its socket when they are up.
REQUEST_DEADLINE_SECONDS = 5
UPSTREAM_TIMEOUT_SECONDS = 30
# Sockets held at once (unfinished requests and those waiting for the platform); the engine's
# default descriptor limit is 1024 and the broker needs a few of its own.
MAX_CONNECTIONS = 512
# MSAL takes a token for expired 5 minutes before its expires_on (msal's managed_identity.py and
# application.py, `expires_in < 5*60`); one handed out from the cache has twice that left.
TOKEN_MARGIN_SECONDS = 600
# A failed platform call is answered again for this long, so a flood of requests while the
# platform fails does not become one platform call each.
FAILURE_HOLD_SECONDS = 1
# How azure-identity and MSAL name another identity at App Service's endpoint.
OTHER_IDENTITY_PARAMETERS = ("object_id", "mi_res_id", "principal_id", "msi_res_id")
# RFC 9110's token characters: a method and a header name have nothing else.
TOKEN_CHARACTERS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def log(message: str) -> None:
    sys.stderr.write(f"identity-broker: {message}\n")
    sys.stderr.flush()


# A refusal is a security event (launcher/README.md, "Detection"): the launcher's shape (events.c),
# kind identity, at most EVENT_BURST lines per EVENT_WINDOW_SECONDS, the rest counted. The broker
# cannot tell which of the worker's processes asked (loopback TCP carries no credentials): pid 0.
EVENT_BURST, EVENT_WINDOW_SECONDS = 10, 10


class Events:
    def __init__(self) -> None:
        self.window_start = -float(EVENT_WINDOW_SECONDS)
        self.printed = 0
        self.suppressed = 0

    def report(self, detail: str) -> None:
        import time

        now = time.monotonic()
        if now - self.window_start >= EVENT_WINDOW_SECONDS:
            self.window_start, self.printed = now, 0
        if self.printed >= EVENT_BURST:
            self.suppressed += 1
            return
        self.printed += 1
        self.write(detail)

    def write(self, detail: str) -> None:
        import time

        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        shown = "".join(c if 32 <= ord(c) < 127 else "?" for c in detail[:200])
        sys.stderr.write(
            f"launcher-security-event: warning v1 kind=identity pid=0 time={when} "
            f"suppressed={self.suppressed} detail={shown}\n"
        )
        sys.stderr.flush()
        self.suppressed = 0

    def flush(self) -> None:
        """At the launch's end (the supervisor's SIGTERM): the count still untold."""
        if self.suppressed:
            self.write("summary: the rest of a flood, counted")


events = Events()


def printable(value: str) -> str:
    """What the worker sent, fit for one log line: printable ASCII, at most 200 characters."""
    shown = "".join(c if 32 < ord(c) < 127 else "?" for c in value[:200])
    return shown + ("..." if len(value) > 200 else "")


def normalised(audience: str) -> str:
    """azure-identity sends a scope's resource without /.default; some send a trailing slash."""
    audience = audience.removesuffix("/.default").rstrip("/")
    return audience.lower()


def json_message(status: int, message: str) -> bytes:
    """A refusal as App Service words it, which MSAL reads (see the module's docstring)."""
    import json

    return json.dumps({"statusCode": status, "message": f"identity broker: {message}"}).encode()


class Config:
    def __init__(self, env: dict[str, str]) -> None:
        endpoint = env.get("IDENTITY_ENDPOINT", "")
        # App Service's endpoint: plain HTTP on a private address (port 8081 in custom containers).
        address, _, path = endpoint.removeprefix("http://").partition("/")
        if not endpoint.startswith("http://") or not address or "@" in address:
            raise SystemExit(
                "identity-broker: IDENTITY_ENDPOINT must be an http://HOST[:PORT]/PATH URL"
            )
        has_port = ":" in address and not address.endswith("]")  # [IPv6] alone has no port
        host, _, port = address.rpartition(":") if has_port else (address, "", "80")
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise SystemExit("identity-broker: IDENTITY_ENDPOINT has no valid port")
        self.upstream_host, self.upstream_port, self.upstream_path = host, int(port), "/" + path
        self.upstream_header = env.get("IDENTITY_HEADER", "")
        self.client_id = env.get("AZURE_CLIENT_ID", "")
        self.worker_header = env.get("LAUNCHER_BROKER_HEADER", "")
        audiences = env.get("LAUNCHER_BROKER_AUDIENCES", "").split()
        if not (
            self.upstream_header and self.client_id and len(self.worker_header) >= 32 and audiences
        ):
            raise SystemExit(
                "identity-broker: started without its configuration (run by the launcher only)"
            )
        if any(
            not value.isprintable() for value in (endpoint, self.upstream_header, self.client_id)
        ):
            raise SystemExit(
                "identity-broker: IDENTITY_ENDPOINT, IDENTITY_HEADER or AZURE_CLIENT_ID "
                "holds a control character"
            )
        self.audiences = {normalised(a): a for a in audiences}


def same_secret(given: str, expected: str) -> bool:
    """Compares every character whatever the first difference (hmac's compare_digest would load
    OpenSSL: 4 MB more of the broker's memory)."""
    difference = len(given) ^ len(expected)
    for a, b in zip(given.ljust(len(expected)), expected, strict=False):
        difference |= ord(a) ^ ord(b)
    return difference == 0


def head_end(data: bytes | bytearray) -> int:
    """Where the request's head ends (its blank line, CRLF or bare LF), or -1 while it has not."""
    ends = [i for i in (data.find(b"\r\n\r\n"), data.find(b"\n\n")) if i >= 0]
    return min(ends) if ends else -1


def parse_request(head: bytes) -> tuple[str, str, dict[str, str]]:
    """Method, target and headers (names in lower case) of a request's head, or Refused."""
    lines = head.decode("latin-1").split("\r\n")
    if any("\r" in line or "\n" in line for line in lines):
        raise Refused(400, "malformed line ending: lines end with CRLF")
    if len(lines) > MAX_HEADER_LINES + 1:
        raise Refused(431, f"more than {MAX_HEADER_LINES} header lines")
    parts = lines[0].split(" ")
    if (
        len(parts) != 3
        or not parts[0]
        or not set(parts[0]) <= TOKEN_CHARACTERS
        or not parts[1]
        or not all(32 < ord(c) < 127 for c in parts[1])
        or parts[2] not in ("HTTP/1.0", "HTTP/1.1")
    ):
        raise Refused(400, "malformed request line")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or not set(name) <= TOKEN_CHARACTERS:
            raise Refused(400, "malformed header line")
        if any((ord(c) < 32 and c != "\t") or ord(c) == 127 for c in value):
            raise Refused(400, f"header {name} holds a control character")
        if name.lower() in headers:
            raise Refused(400, f"header {name} is given twice")
        headers[name.lower()] = value.strip(" \t")
    return parts[0], parts[1], headers


def check(config: Config, method: str, target: str, headers: dict[str, str]) -> str:
    """The audience to forward, or Refused with the status and the reason."""
    from urllib.parse import parse_qsl, urlsplit

    if method != "GET":
        raise Refused(405, f"method {printable(method)} is not allowed: GET only")
    try:
        url = urlsplit(target)
    except ValueError:  # an unclosed [ in the authority, as in http://[::1/
        raise Refused(400, f"malformed request target {printable(target)}") from None
    if url.path != PATH:
        raise Refused(404, f"no endpoint {printable(url.path)}: the identity endpoint is {PATH}")
    if not same_secret(headers.get("x-identity-header", ""), config.worker_header):
        raise Refused(401, "X-IDENTITY-HEADER is missing or wrong")
    if headers.get("content-length", "0") != "0" or "transfer-encoding" in headers:
        raise Refused(400, "a token request has no body")
    try:
        pairs = parse_qsl(
            url.query, keep_blank_values=True, strict_parsing=bool(url.query), max_num_fields=16
        )
    except ValueError:
        raise Refused(400, "the query string is malformed") from None
    query: dict[str, str] = {}
    for name, value in pairs:
        if name in query:
            raise Refused(400, f"parameter {printable(name)} is given twice")
        query[name] = value
    for name in OTHER_IDENTITY_PARAMETERS:
        if name in query:
            raise Refused(
                403,
                f"identity {name}={printable(query[name])} is refused by the launcher's policy: "
                "only the app's own identity (AZURE_CLIENT_ID)",
            )
    client_id = query.pop("client_id", config.client_id)
    if client_id.lower() != config.client_id.lower():
        raise Refused(
            403,
            f"identity client_id={printable(client_id)} is refused by the launcher's policy: "
            "only the app's own identity (AZURE_CLIENT_ID)",
        )
    if query.pop("api-version", None) != API_VERSION:
        raise Refused(400, f"api-version must be {API_VERSION}")
    audience = query.pop("resource", "")
    if query:
        raise Refused(400, f"unknown parameter {printable(sorted(query)[0])}")
    allowed = config.audiences.get(normalised(audience))
    if allowed is None:
        raise Refused(
            403,
            f"audience {printable(audience) or '(none)'} is refused by the launcher's policy "
            f"(allowed: {', '.join(config.audiences.values())})",
        )
    return allowed


def platform_answer(config: Config, raw: bytes | None, now: float) -> tuple[int, bytes, float]:
    """What the worker is told of the platform's raw answer (None: no answer), and until when
    that may be told again: a token re-written from its fields (MSAL's
    `_obtain_token_on_app_service`, which azure-identity's AppServiceCredential calls, reads
    access_token and expires_on, an integer of epoch seconds), else the status and a fixed
    message. Nothing the platform wrote reaches the worker but a token's fields, and none
    holding its header."""
    import json

    if raw is None:
        return 502, json_message(502, "the platform's identity endpoint did not answer"), now + 1
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split(b" ")
    status = 0  # not HTTP
    if len(status_line) >= 2 and status_line[0].startswith(b"HTTP/1."):
        code = status_line[1]
        status = int(code) if code.isdigit() and len(code) == 3 and code.isascii() else 0
    token: dict[str, str] = {}
    if status == 200 and config.upstream_header.encode() not in raw:
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        if isinstance(payload, dict):
            token = token_fields(payload, now)
    if token:
        until = int(token["expires_on"]) - TOKEN_MARGIN_SECONDS
        return 200, json.dumps(token).encode(), float(until)
    what = {0: "no HTTP status", 200: "200 without a token"}.get(status, f"status {status}")
    message = f"the platform's identity endpoint answered {what}"
    status = status if 400 <= status <= 599 else 502
    log(f"{message}: answered {status}")
    return status, json_message(status, message), now + FAILURE_HOLD_SECONDS


def token_fields(payload: dict[str, object], now: float) -> dict[str, str]:
    """The fields MSAL reads, expires_on made absolute from expires_in where the platform gave
    only that; {} when there is no usable token."""
    access_token = payload.get("access_token")
    expires_on = seconds(payload.get("expires_on"))
    expires_in = seconds(payload.get("expires_in"))
    if expires_on is None and expires_in is not None:
        expires_on = int(now) + expires_in
    if not (isinstance(access_token, str) and access_token.isprintable() and access_token):
        return {}
    if expires_on is None:
        return {}
    fields = {"access_token": access_token, "expires_on": str(expires_on)}
    for name in ("resource", "token_type", "client_id"):
        value = payload.get(name)
        if isinstance(value, str):
            fields[name] = value
    return fields


def seconds(value: object) -> int | None:
    """A count of seconds as the platform writes it: digits, in a string or not."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 12:
        return int(value)
    return None


def forward(config: Config, audience: str) -> bytes | None:
    """The platform's raw answer for the policy's own spelling of the audience and the app's
    identity, or None when it gave none.

    HTTP/1.0 by hand over a socket, read to the end: the answer comes whole (no chunks), and
    http.client would load the email package and OpenSSL (8 MB more of the broker's memory).
    """
    import socket
    import time
    from urllib.parse import urlencode

    query = urlencode(
        {"api-version": API_VERSION, "resource": audience, "client_id": config.client_id}
    )
    separator = "&" if "?" in config.upstream_path else "?"
    request = (
        f"GET {config.upstream_path}{separator}{query} HTTP/1.0\r\n"
        f"Host: {config.upstream_host}:{config.upstream_port}\r\n"
        f"X-IDENTITY-HEADER: {config.upstream_header}\r\nMetadata: true\r\n\r\n"
    )
    host = config.upstream_host.strip("[]")
    deadline = time.monotonic() + UPSTREAM_TIMEOUT_SECONDS  # for the whole call, not a recv
    try:
        with socket.create_connection(
            (host, config.upstream_port), timeout=UPSTREAM_TIMEOUT_SECONDS
        ) as upstream:
            upstream.sendall(request.encode())
            data = b""
            while True:
                upstream.settimeout(max(deadline - time.monotonic(), 0.001))
                if not (chunk := upstream.recv(65536)):
                    return data
                data += chunk
                if len(data) > MAX_UPSTREAM_ANSWER:
                    raise OSError("the platform's answer is too long")
    except OSError as error:
        log(f"the platform's identity endpoint did not answer ({type(error).__name__})")
        return None


def http_answer(status: int, body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body


class Broker:
    """One thread, every connection: reads heads against their deadline, answers from the token
    cache, and starts one thread per platform call (one an audience at a time)."""

    def __init__(self, config: Config, listener: "socket.socket") -> None:
        import selectors
        import socket
        import threading

        self.config = config
        self.selector = selectors.DefaultSelector()
        self.listener = listener
        listener.setblocking(False)
        self.selector.register(listener, selectors.EVENT_READ, self.accept)
        self.wake_reader, self.wake_writer = socket.socketpair()
        self.wake_reader.setblocking(False)
        self.selector.register(self.wake_reader, selectors.EVENT_READ, self.finish_calls)
        # Unfinished requests, oldest first (one deadline length for all): (deadline, head).
        self.reading: dict[socket.socket, tuple[float, bytearray]] = {}
        self.waiting: dict[str, list[socket.socket]] = {}  # audience -> requests for its token
        self.answers: dict[str, tuple[float, int, bytes]] = {}  # audience -> (until, status, body)
        self.finished: list[tuple[str, int, bytes, float]] = []
        self.lock = threading.Lock()

    def run(self) -> None:
        import time

        while True:
            oldest = next(iter(self.reading.values()), None)
            timeout = max(0.0, oldest[0] - time.monotonic()) if oldest else None
            for key, _ in self.selector.select(timeout):
                key.data(key.fileobj)
            self.expire(time.monotonic())

    def accept(self, _: object) -> None:
        import selectors
        import time

        while True:
            try:
                conn, _ = self.listener.accept()
            except BlockingIOError:
                return
            except OSError as error:  # out of descriptors: make room, as for MAX_CONNECTIONS
                log(f"accept: {type(error).__name__}")
                if not self.reading:
                    return
                self.refuse(next(iter(self.reading)), Refused(503, "the broker is out of sockets"))
                continue
            if len(self.reading) + sum(map(len, self.waiting.values())) >= MAX_CONNECTIONS:
                if not self.reading:
                    conn.close()
                    continue
                self.refuse(
                    next(iter(self.reading)),
                    Refused(503, f"{MAX_CONNECTIONS} connections open: the oldest unfinished one"),
                )
            conn.setblocking(False)
            self.reading[conn] = (time.monotonic() + REQUEST_DEADLINE_SECONDS, bytearray())
            self.selector.register(conn, selectors.EVENT_READ, self.read)

    def read(self, conn: "socket.socket") -> None:
        try:
            chunk = conn.recv(4096)
        except BlockingIOError:
            return
        except OSError:  # a reset, or closed already (made room for another in this round)
            self.close(conn)
            conn.close()
            return
        head = self.reading[conn][1]
        head += chunk
        end = head_end(head)
        try:
            if end < 0 and not chunk:
                raise Refused(400, "the request ended before its headers did")
            if (end < 0 and len(head) > MAX_REQUEST_HEAD) or end > MAX_REQUEST_HEAD:
                raise Refused(431, f"request headers longer than {MAX_REQUEST_HEAD} bytes")
            if end < 0:
                return
            audience = check(self.config, *parse_request(bytes(head[:end])))
        except Refused as refusal:
            self.refuse(conn, refusal)
            return
        except Exception as error:  # a bug of ours must not end the broker or print a traceback
            self.refuse(conn, Refused(500, f"internal error ({type(error).__name__})"))
            return
        self.selector.unregister(conn)
        del self.reading[conn]
        self.serve_token(conn, audience)

    def serve_token(self, conn: "socket.socket", audience: str) -> None:
        import threading
        import time

        until, status, body = self.answers.get(audience, (0.0, 0, b""))
        if time.time() < until:
            self.send_and_close(conn, status, body)
            return
        self.waiting.setdefault(audience, []).append(conn)
        if len(self.waiting[audience]) == 1:  # no call for it in flight
            threading.Thread(target=self.call_platform, args=(audience,), daemon=True).start()

    def call_platform(self, audience: str) -> None:
        """In a thread of its own: the platform's answer, handed back to the loop."""
        import time

        try:
            raw = forward(self.config, audience)
            status, body, until = platform_answer(self.config, raw, time.time())
        except Exception as error:  # never a traceback, never a waiter left without an answer
            log(f"internal error calling the platform ({type(error).__name__})")
            message = json_message(500, "internal error")
            status, body, until = 500, message, time.time() + FAILURE_HOLD_SECONDS
        with self.lock:
            self.finished.append((audience, status, body, until))
        self.wake_writer.send(b"x")

    def finish_calls(self, _: object) -> None:
        from contextlib import suppress

        with suppress(BlockingIOError):  # woken already by an earlier byte
            self.wake_reader.recv(4096)
        with self.lock:
            finished, self.finished = self.finished, []
        for audience, status, body, until in finished:
            self.answers[audience] = (until, status, body)
            for conn in self.waiting.pop(audience, []):
                self.send_and_close(conn, status, body)

    def expire(self, now: float) -> None:
        while self.reading:
            conn, (deadline, _) = next(iter(self.reading.items()))
            if deadline > now:
                return
            self.refuse(
                conn, Refused(408, f"the request was not whole within {REQUEST_DEADLINE_SECONDS} s")
            )

    def refuse(self, conn: "socket.socket", refusal: Refused) -> None:
        events.report(f"refused ({refusal.status}): {refusal}")
        self.close(conn)
        self.send_and_close(conn, refusal.status, json_message(refusal.status, str(refusal)))

    def close(self, conn: "socket.socket") -> None:
        """Forgets a connection that is still reading (the caller answers or closes it)."""
        if self.reading.pop(conn, None) is not None:
            self.selector.unregister(conn)

    @staticmethod
    def send_and_close(conn: "socket.socket", status: int, body: bytes) -> None:
        """One send: an answer is a few hundred bytes to a few KB, which a fresh socket's buffer
        holds, so the loop never waits on a client that does not read."""
        try:
            for _ in range(16):  # unread input would make close() reset the answer away
                if not conn.recv(4096):
                    break
        except OSError:
            pass  # none left (BlockingIOError), or the worker hung up
        try:
            conn.send(http_answer(status, body))
            conn.shutdown(2)  # socket.SHUT_RDWR
        except OSError:
            pass  # the worker hung up; nothing to answer
        conn.close()


def end_of_launch(*_: object) -> None:
    events.flush()
    os._exit(0)


def main() -> None:
    config = Config(dict(os.environ))
    os.write(READY_FD, b"ready\n")
    os.close(READY_FD)
    import signal
    import socket

    signal.signal(signal.SIGTERM, end_of_launch)

    Broker(config, socket.socket(fileno=LISTEN_FD)).run()


if __name__ == "__main__":
    main()
