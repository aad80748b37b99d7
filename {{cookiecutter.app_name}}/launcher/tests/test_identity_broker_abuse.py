"""The identity broker under abuse from inside the worker: slow clients, floods, a platform that
fails or echoes, and malformed requests. Each test's worker code is the attacker; the platform is
a scripted local endpoint that counts its calls (or the project's managed-identity test server).
"""

import json
import secrets
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import Launcher, security_events
from test_identity_broker import (  # noqa: F401  (fixtures)
    APP_CLIENT_ID,
    brokered,
    platform,
    platform_env,
    run_json,
    site,
)

from tests.azure_fakes.managed_identity import ManagedIdentityEndpoint

REQUEST_DEADLINE_SECONDS, MAX_CONNECTIONS = 5, 512  # identity_broker.py's
# What a test's script makes of the broker's request: status, extra headers, body.
Answer = Callable[[dict[str, str]], tuple[int, dict[str, str], bytes]]


class ScriptedPlatform(ThreadingHTTPServer):
    """The platform's endpoint on loopback (plain HTTP, as App Service's), answering what the
    test scripts and counting every call it receives."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(("127.0.0.1", 0), ScriptedHandler)
        self.answer = answer
        self.identity_header = secrets.token_hex(16)
        self.calls = 0
        self.lock = threading.Lock()

    def env(self) -> dict[str, str]:
        return {
            "IDENTITY_ENDPOINT": f"http://127.0.0.1:{self.server_address[1]}/msi/token",
            "IDENTITY_HEADER": self.identity_header,
            "AZURE_CLIENT_ID": APP_CLIENT_ID,
        }


class ScriptedHandler(BaseHTTPRequestHandler):
    server: ScriptedPlatform

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.calls += 1
        status, headers, body = self.server.answer(dict(self.headers))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # the test asserts on the broker's log, not this one


@pytest.fixture
def scripted() -> Iterator[Callable[[Answer], ScriptedPlatform]]:
    started: list[ScriptedPlatform] = []

    def start(answer: Answer) -> ScriptedPlatform:
        server = ScriptedPlatform(answer)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


def token_answer(lifetime: dict[str, int]) -> Answer:
    """A token answer with expires_on (or expires_in) `lifetime` seconds away."""

    def answer(headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        import time

        token = {"access_token": "token-" + secrets.token_hex(8), "token_type": "Bearer"}
        for name, seconds in lifetime.items():
            token[name] = str(int(time.time()) + seconds) if name == "expires_on" else seconds
        return 200, {"Content-Type": "application/json"}, json.dumps(token).encode()

    return answer


# The worker's side: raw requests, all sent at once on connections of their own, each answer read
# to its end (or to the deadline). A request's text holds {header} for the worker's own header;
# "half-close" ends the request there (shutdown) before its head is whole.
RAW_REQUESTS = """
import json, os, selectors, socket, sys, time
from urllib.parse import urlsplit
url = urlsplit(os.environ["IDENTITY_ENDPOINT"])
cases, deadline = json.loads(sys.argv[1]), time.monotonic() + float(sys.argv[2])
selector, answers = selectors.DefaultSelector(), [b""] * len(cases)
for index, case in enumerate(cases):
    conn = socket.create_connection((url.hostname, url.port))
    conn.sendall(case["text"].replace("{header}", os.environ["IDENTITY_HEADER"]).encode("latin-1"))
    if case.get("half_close"):
        conn.shutdown(socket.SHUT_WR)
    conn.setblocking(False)
    selector.register(conn, selectors.EVENT_READ, index)
while selector.get_map() and time.monotonic() < deadline:
    for key, _ in selector.select(deadline - time.monotonic()):
        try:
            chunk = key.fileobj.recv(65536)
        except ConnectionResetError:
            chunk = b""
        answers[key.data] += chunk
        if not chunk:
            selector.unregister(key.fileobj)
            key.fileobj.close()
print(json.dumps([answer.decode("latin-1") for answer in answers]))
"""


def raw_requests(
    launcher: Launcher, env: dict[str, str], cases: list[dict[str, object]], seconds: float = 8
) -> tuple[list[str], str]:
    answers, stderr = run_json(launcher, RAW_REQUESTS, env, json.dumps(cases), str(seconds))
    return answers, stderr


def token_request(header_text: str = "X-IDENTITY-HEADER: {header}\r\n") -> str:
    query = f"api-version=2019-08-01&resource=https://vault.azure.net&client_id={APP_CLIENT_ID}"
    return f"GET /msi/token?{query} HTTP/1.1\r\nHost: x\r\n{header_text}\r\n"


def broker_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("identity-broker: ")]


def refusals(stderr: str) -> tuple[list[str], int]:
    """The broker's refusals as security events: the details printed, and how many refusals
    they stand for (each line one, plus the counts the rate limit kept back)."""
    events = [e for e in security_events(stderr) if e["kind"] == "identity"]
    printed = [e["detail"] for e in events if not e["detail"].startswith("summary")]
    return printed, len(printed) + sum(int(e["suppressed"]) for e in events)


TRICKLE = """
import json, os, socket, sys, time
from urllib.parse import urlsplit
url = urlsplit(os.environ["IDENTITY_ENDPOINT"])
request = b"GET /msi/token?api-version=2019-08-01&resource=https://vault.azure.net HTTP/1.1\\r\\n"
start, conns, closed = time.monotonic(), {}, {}
for index in range(int(sys.argv[1])):
    conns[index] = socket.create_connection((url.hostname, url.port))
    conns[index].setblocking(False)
sent = 0
while conns and time.monotonic() - start < float(sys.argv[2]):
    for index, conn in list(conns.items()):
        try:
            conn.recv(65536)  # an answer, the end or a reset: the broker let go
        except BlockingIOError:  # nothing yet: one more byte
            conn.send(request[sent % len(request):][:1])
            continue
        except OSError:
            pass
        closed[index] = time.monotonic() - start
        del conns[index]
    sent += 1
    time.sleep(1)  # the trickle's pace (a byte a second), not a wait for the broker
print(json.dumps({"open": len(conns), "closed_after": max(closed.values(), default=0)}))
"""


def test_a_slow_client_loses_its_socket_within_the_deadline(
    brokered: Launcher, platform: ManagedIdentityEndpoint
) -> None:
    """70 connections trickling a byte a second: each is closed within the deadline, whatever
    it sends (the old broker's timeout was per recv: a trickle held its thread forever)."""
    report, stderr = run_json(brokered, TRICKLE, platform_env(platform), "70", "15")
    assert report["open"] == 0, f"{report['open']} slow clients still held a socket after 15 s"
    assert report["closed_after"] < REQUEST_DEADLINE_SECONDS + 3  # polled once a second
    printed, total = refusals(stderr)
    assert total == 70 and all(d.startswith("refused (408)") for d in printed), stderr[-2000:]
    assert len(printed) <= 10  # rate-limited: the rest counted
    assert platform.received == []


SLOW_CROWD_THEN_TOKEN = """
import json, os, socket, sys, time
from urllib.parse import urlsplit
from azure.identity import ManagedIdentityCredential
url = urlsplit(os.environ["IDENTITY_ENDPOINT"])
crowd = [socket.create_connection((url.hostname, url.port)) for _ in range(int(sys.argv[1]))]
for conn in crowd:
    conn.sendall(b"GET /msi/token?api-version=2019-08-01 HTTP/1.1\\r\\n")  # never finished
credential = ManagedIdentityCredential(client_id=sys.argv[2])
start = time.monotonic()
token = credential.get_token("https://vault.azure.net/.default")
elapsed = time.monotonic() - start
still_open = 0
for conn in crowd:  # no answer yet: the broker still holds it
    conn.setblocking(False)
    try:
        conn.recv(1)
    except BlockingIOError:
        still_open += 1
print(json.dumps({"seconds": elapsed, "token": token.token, "crowd": still_open}))
"""


@pytest.mark.parametrize("crowd", [300, 600], ids=["300 slow", "600 slow (over the cap)"])
def test_the_apps_token_comes_within_a_second_while_hundreds_of_slow_clients_wait(
    brokered: Launcher, platform: ManagedIdentityEndpoint, crowd: int
) -> None:
    """Over MAX_CONNECTIONS (512), the oldest unfinished requests make room for the newest."""
    report, stderr = run_json(
        brokered, SLOW_CROWD_THEN_TOKEN, platform_env(platform), str(crowd), APP_CLIENT_ID
    )
    assert report["seconds"] < 1, f"the app's token took {report['seconds']:.1f} s"
    held = min(crowd, MAX_CONNECTIONS - 1)  # the app's own request holds one
    assert report["crowd"] == held
    # Every crowd connection is refused in the end (evicted with 503, or at its deadline or the
    # worker's exit): as events, rate-limited, each counted.
    printed, total = refusals(stderr)
    assert total == crowd and all(d.startswith("refused (") for d in printed), printed
    assert any(d.startswith("refused (503)") for d in printed) == (crowd > held)
    assert platform.issued[report["token"]] == "https://vault.azure.net"


FLOOD = """
import json, os, socket, sys, time
from urllib.parse import urlsplit
url = urlsplit(os.environ["IDENTITY_ENDPOINT"])
request = sys.argv[1].replace("{header}", os.environ["IDENTITY_HEADER"]).encode()
batches, size = int(sys.argv[2]), int(sys.argv[3])
statuses, bodies, start = {}, set(), time.monotonic()
for batch in range(batches):  # `size` at once: the first batch finds no token yet
    conns = [socket.create_connection((url.hostname, url.port), timeout=10) for _ in range(size)]
    for conn in conns:
        conn.sendall(request)
    for conn in conns:
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
        conn.close()
        head, _, body = answer.partition(b"\\r\\n\\r\\n")
        status = head.split(b" ")[1].decode()
        statuses[status] = statuses.get(status, 0) + 1
        bodies.add(body.decode())
print(json.dumps({"statuses": statuses, "bodies": sorted(bodies),
                  "seconds": time.monotonic() - start}))
"""


@pytest.mark.parametrize(
    "answer, status, bodies",
    [
        (token_answer({"expires_on": 3600}), "200", 1),
        (token_answer({"expires_in": 3600}), "200", 1),
        (lambda headers: (500, {}, b'{"statusCode": 500, "message": "busy"}'), "500", 1),
    ],
    ids=["token with expires_on", "token with expires_in", "platform failing"],
)
def test_a_flood_of_a_thousand_requests_makes_one_platform_call(
    brokered: Launcher,
    scripted: Callable[[Answer], ScriptedPlatform],
    answer: Answer,
    status: str,
    bodies: int,
) -> None:
    """A token is reused within its lifetime; a failure for a second (FAILURE_HOLD_SECONDS):
    one call a second of the flood, at most."""
    platform = scripted(answer)
    report, _ = run_json(brokered, FLOOD, platform.env(), token_request(), "10", "100")
    assert report["statuses"] == {status: 1000}
    if status == "200":
        assert platform.calls == 1
        assert len(report["bodies"]) == bodies, "every request got the one token"
        assert "expires_on" in json.loads(report["bodies"][0])  # what MSAL reads
    else:
        bound = report["seconds"] + 1
        assert platform.calls <= bound, f"{platform.calls} calls in {report['seconds']:.1f} s"


def test_a_token_near_its_expiry_is_not_reused(
    brokered: Launcher, scripted: Callable[[Answer], ScriptedPlatform]
) -> None:
    """MSAL takes a token for expired 5 minutes before expires_on: one with 9 left is not
    handed out again."""
    platform = scripted(token_answer({"expires_on": 540}))
    report, _ = run_json(brokered, FLOOD, platform.env(), token_request(), "3", "1")
    assert report["statuses"] == {"200": 3}
    assert platform.calls == 3


def echo(status: int) -> Answer:
    """A platform (or a proxy before it) that echoes every request header, in its body and in
    its own headers."""

    def answer(headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        echoed = {f"X-Echo-{name}": value for name, value in headers.items()}
        body = {"statusCode": status, "message": "echo", "request": headers}
        return status, echoed, json.dumps(body).encode()

    return answer


@pytest.mark.parametrize(
    "answer, status",
    [
        (echo(500), 500),
        (echo(400), 400),
        (echo(302), 502),
        (echo(200), 502),  # a 200 with no token in it is no token
        (lambda h: (200, {}, json.dumps({"access_token": h["X-IDENTITY-HEADER"],
                                         "expires_on": "9999999999"}).encode()), 502),
    ],
    ids=["500 echoing", "400 echoing", "302 echoing", "200 echoing", "200 with the header as token"],
)  # fmt: skip
def test_a_platform_error_reaches_the_worker_as_its_status_and_a_fixed_message(
    brokered: Launcher,
    scripted: Callable[[Answer], ScriptedPlatform],
    answer: Answer,
    status: int,
) -> None:
    platform = scripted(answer)
    answers, stderr = raw_requests(brokered, platform.env(), [{"text": token_request()}])
    head, _, body = answers[0].partition("\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status} "), answers[0]
    assert platform.identity_header not in answers[0] and "echo" not in answers[0].lower()
    message = json.loads(body)
    assert message["statusCode"] == status
    assert message["message"].startswith("identity broker: the platform's identity endpoint ")
    assert platform.calls == 1
    assert platform.identity_header not in stderr


# Malformed requests: each gets an HTTP error and one log line, never a traceback.
MALFORMED = {
    "unclosed IPv6 authority": "GET http://[::1/msi/token HTTP/1.1\r\n\r\n",
    "unclosed IPv6 with header": token_request().replace("GET /", "GET http://[::1/", 1),
    "empty request line": "\r\n\r\n",
    "two spaces": "GET  /msi/token HTTP/1.1\r\n\r\n",
    "HTTP/2.0": "GET /msi/token HTTP/2.0\r\n\r\n",
    "NUL in target": "GET /msi/token\x00 HTTP/1.1\r\n\r\n",
    "byte 0xff in method": "G\xffT /msi/token HTTP/1.1\r\n\r\n",
    "folded header": "GET /msi/token HTTP/1.1\r\n folded: x\r\n\r\n",
    "header without colon": "GET /msi/token HTTP/1.1\r\nNoColon\r\n\r\n",
    "header twice": "GET /msi/token HTTP/1.1\r\nA: 1\r\na: 2\r\n\r\n",
    "control character in a value": "GET /msi/token HTTP/1.1\r\nX: \x01\r\n\r\n",
    "bare LF": "GET /msi/token HTTP/1.1\nX-IDENTITY-HEADER: {header}\n\n",
    "CR inside a line": "GET /msi/token HTTP/1.1\r\nX: a\rb\r\n\r\n",
    "head too long": "GET /msi/token HTTP/1.1\r\nX: " + "a" * 9000 + "\r\n\r\n",
    "too many headers": "GET /msi/token HTTP/1.1\r\n" + "H: v\r\n" * 40 + "\r\n",
    "percent-escape not UTF-8": token_request().replace("vault.azure.net", "%ff%fe", 1),
    "broken query": token_request().replace("?", "?%zz&&=&", 1),
    "too many parameters": token_request().replace("?", "?" + "a=1&" * 20, 1),
    "a body": token_request("X-IDENTITY-HEADER: {header}\r\nContent-Length: 5\r\n") + "hello",
    "chunked": token_request("X-IDENTITY-HEADER: {header}\r\nTransfer-Encoding: chunked\r\n"),
}
HALF_CLOSED = {"ended before its head": "GET /msi/tok"}


def test_every_malformed_request_gets_an_error_and_one_log_line(
    brokered: Launcher, platform: ManagedIdentityEndpoint
) -> None:
    cases = [{"text": text} for text in MALFORMED.values()]
    cases += [{"text": text, "half_close": True} for text in HALF_CLOSED.values()]
    answers, stderr = raw_requests(brokered, platform_env(platform), cases)
    names = [*MALFORMED, *HALF_CLOSED]
    unanswered = [name for name, answer in zip(names, answers, strict=True)
                  if not answer.startswith("HTTP/1.1 4")]  # fmt: skip
    assert unanswered == [], "no HTTP error for these"
    assert "Traceback" not in stderr
    printed, total = refusals(stderr)
    assert total == len(cases), stderr[-3000:]
    assert all(detail.startswith("refused (4") for detail in printed), printed
    assert all(len(line) < 400 for line in stderr.splitlines())
    assert broker_lines(stderr) == []  # the events are the broker's only lines here
    assert platform.received == []
