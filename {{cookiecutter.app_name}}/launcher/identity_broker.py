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
    import threading

LISTEN_FD, READY_FD = 3, 4
API_VERSION = "2019-08-01"
PATH = "/msi/token"
MAX_REQUEST_HEAD = 8192
MAX_UPSTREAM_BODY = 65536
CLIENT_TIMEOUT_SECONDS = 10
UPSTREAM_TIMEOUT_SECONDS = 30
MAX_CONNECTIONS = 64
# How azure-identity and MSAL name another identity at App Service's endpoint.
OTHER_IDENTITY_PARAMETERS = ("object_id", "mi_res_id", "principal_id", "msi_res_id")


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def log(message: str) -> None:
    sys.stderr.write(f"identity-broker: {message}\n")
    sys.stderr.flush()


def printable(value: str) -> str:
    """What the worker sent, fit for one log line: printable ASCII, at most 200 characters."""
    shown = "".join(c if 32 < ord(c) < 127 else "?" for c in value[:200])
    return shown + ("..." if len(value) > 200 else "")


def normalised(audience: str) -> str:
    """azure-identity sends a scope's resource without /.default; some send a trailing slash."""
    audience = audience.removesuffix("/.default").rstrip("/")
    return audience.lower()


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


def check(config: Config, method: str, target: str, headers: dict[str, str]) -> str:
    """The audience to forward, or Refused with the status and the reason."""
    from urllib.parse import parse_qsl, urlsplit

    if method != "GET":
        raise Refused(405, f"method {printable(method)} is not allowed: GET only")
    url = urlsplit(target)
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


def forward(config: Config, audience: str) -> tuple[int, bytes]:
    """The platform's answer for the policy's own spelling of the audience and the app's identity.

    HTTP/1.0 by hand over a socket, read to the end: the answer comes whole (no chunks), and
    http.client would load the email package and OpenSSL (8 MB more of the broker's memory).
    """
    import socket
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
    with socket.create_connection(
        (host, config.upstream_port), timeout=UPSTREAM_TIMEOUT_SECONDS
    ) as upstream:
        upstream.sendall(request.encode())
        data = b""
        while chunk := upstream.recv(65536):
            data += chunk
            if len(data) > MAX_UPSTREAM_BODY:
                raise OSError("the platform's answer is too long")
    head, _, body = data.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].split(b" ")
    if len(status) < 2 or not status[0].startswith(b"HTTP/1.") or not status[1].isdigit():
        raise OSError("the platform's answer is not HTTP")
    return int(status[1]), body


def read_head(conn: "socket.socket") -> tuple[str, str, dict[str, str]]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            raise Refused(400, "the request ended before its headers did")
        data += chunk
        if len(data) > MAX_REQUEST_HEAD:
            raise Refused(431, f"request headers longer than {MAX_REQUEST_HEAD} bytes")
    lines = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise Refused(400, "malformed request line")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise Refused(400, "malformed header line")
        if name.lower() in headers:
            raise Refused(400, f"header {printable(name)} is given twice")
        headers[name.lower()] = value.strip()
    return parts[0], parts[1], headers


def answer(conn: "socket.socket", status: int, body: bytes) -> None:
    head = (
        f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    conn.sendall(head.encode() + body)


def serve_one(config: Config, conn: "socket.socket", slots: "threading.BoundedSemaphore") -> None:
    import json

    try:
        conn.settimeout(CLIENT_TIMEOUT_SECONDS)
        try:
            method, target, headers = read_head(conn)
            audience = check(config, method, target, headers)
        except Refused as refusal:
            log(f"refused ({refusal.status}): {refusal}")
            answer(
                conn,
                refusal.status,
                json.dumps(
                    {"statusCode": refusal.status, "message": f"identity broker: {refusal}"}
                ).encode(),
            )
            return
        try:
            status, body = forward(config, audience)
        except OSError as error:
            log(f"the platform's identity endpoint did not answer ({type(error).__name__})")
            status, body = (
                502,
                json.dumps(
                    {
                        "statusCode": 502,
                        "message": "identity broker: the platform's "
                        "identity endpoint did not answer",
                    }
                ).encode(),
            )
        answer(conn, status, body)
    except OSError:
        pass  # the worker hung up or stalled; nothing to answer
    finally:
        conn.close()
        slots.release()


def main() -> None:
    config = Config(dict(os.environ))
    os.write(READY_FD, b"ready\n")
    os.close(READY_FD)
    import socket
    import threading

    listener = socket.socket(fileno=LISTEN_FD)
    slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
    while True:
        conn, _ = listener.accept()
        slots.acquire()
        threading.Thread(target=serve_one, args=(config, conn, slots), daemon=True).start()


if __name__ == "__main__":
    main()
