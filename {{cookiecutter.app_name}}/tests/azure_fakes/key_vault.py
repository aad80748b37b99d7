"""TEST FIXTURE: Key Vault's secrets API, as much of it as `SecretClient.get_secret` uses.

- `GET /secrets/{name}/?api-version=...` (latest) and `GET /secrets/{name}/{version}?...`;
- no valid bearer token: 401 with Key Vault's challenge, `WWW-Authenticate: Bearer
  authorization="https://login.microsoftonline.com/<tenant>", resource="https://vault.azure.net"`;
  a token counts as valid when the managed-identity fake issued it for that resource;
- bodies as Key Vault returns them: the secret bundle (`value`, `id`, `attributes`), or
  `{"error": {"code", "message"}}` for 404 SecretNotFound, 403 Forbidden, 429 Throttled;
- knobs for tests: `latency` (seconds added to every answer), `forbidden` names, `throttle`
  (name -> how many 429s before it answers, with `retry_after` seconds), `requests` counter,
  `challenged_at` (the `time.monotonic()` of every 401 challenge sent).
"""

import re
import threading
import time
import uuid
from urllib.parse import parse_qs, urlsplit

from tests.azure_fakes.https_server import CountingHTTPSServer, QuietHandler
from tests.azure_fakes.managed_identity import ManagedIdentityEndpoint
from tests.azure_fakes.tls import TestCA

RESOURCE = "https://vault.azure.net"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
SECRET_PATH = re.compile(r"^/secrets/(?P<name>[0-9A-Za-z-]{1,127})/?(?P<version>[0-9a-f]{32})?$")


def _error(code: str, message: str) -> dict[str, object]:
    return {"error": {"code": code, "message": message}}


class _VaultHandler(QuietHandler):
    server: "FakeKeyVault"

    def do_GET(self) -> None:
        vault = self.server
        vault.count_request()
        if vault.latency:
            time.sleep(vault.latency)  # each request runs in its own thread: latency, not a queue
        url = urlsplit(self.path)
        if "api-version" not in parse_qs(url.query):
            self.send_json(400, _error("BadParameter", "The api-version parameter is missing"))
            return
        if not vault.authorised(self.headers.get("Authorization", "")):
            vault.challenged_at.append(time.monotonic())
            challenge = (
                f'Bearer authorization="https://login.microsoftonline.com/{TENANT}", '
                f'resource="{RESOURCE}"'
            )
            self.send_json(
                401,
                _error("Unauthorized", "AKV10000: Request is missing a Bearer or PoP token."),
                {"WWW-Authenticate": challenge},
            )
            return
        match = SECRET_PATH.match(url.path)
        if match is None:
            self.send_json(400, _error("BadParameter", "Unknown operation"))
            return
        self._answer_secret(match["name"], match["version"])

    def _answer_secret(self, name: str, version: str | None) -> None:
        vault = self.server
        if name in vault.forbidden:
            message = (
                f"Caller is not authorized to perform action on resource. Action: "
                f"'Microsoft.KeyVault/vaults/secrets/getSecret/action' Resource: 'secrets/{name}'"
            )
            self.send_json(
                403,
                {
                    "error": {
                        "code": "Forbidden",
                        "message": message,
                        "innererror": {"code": "ForbiddenByRbac"},
                    }
                },
            )
            return
        if vault.take_throttle(name):
            self.send_json(
                429,
                _error(
                    "Throttled",
                    "Request was not processed because too many requests were received.",
                ),
                {"Retry-After": str(vault.retry_after)},
            )
            return
        stored = vault.stored(name)
        if stored is None or (version is not None and version != stored[1]):
            self.send_json(
                404,
                _error(
                    "SecretNotFound",
                    f"A secret with (name/id) {name} was not found in this key vault.",
                ),
            )
            return
        value, current_version, created = stored
        self.send_json(
            200,
            {
                "value": value,
                "id": f"{vault.base_url}/secrets/{name}/{current_version}",
                "attributes": {
                    "enabled": True,
                    "created": created,
                    "updated": created,
                    "recoveryLevel": "Recoverable+Purgeable",
                    "recoverableDays": 90,
                },
                "tags": {},
            },
        )


class FakeKeyVault(CountingHTTPSServer):
    """`set_secret` stores a new version; tests flip `forbidden`, `throttle`, `latency`."""

    def __init__(self, ca: TestCA, identity: ManagedIdentityEndpoint) -> None:
        super().__init__(_VaultHandler, ca)
        self._identity = identity
        self._lock = threading.Lock()
        self._secrets: dict[str, tuple[str, str, int]] = {}
        self.forbidden: set[str] = set()
        self.throttle: dict[str, int] = {}
        self.retry_after = 1
        self.latency = 0.0
        self.challenged_at: list[float] = []

    @property
    def url(self) -> str:
        return self.base_url + "/"

    def set_secret(self, name: str, value: str) -> None:
        with self._lock:
            self._secrets[name] = (value, uuid.uuid4().hex, int(time.time()))

    def stored(self, name: str) -> tuple[str, str, int] | None:
        with self._lock:
            return self._secrets.get(name)

    def take_throttle(self, name: str) -> bool:
        with self._lock:
            remaining = self.throttle.get(name, 0)
            if remaining > 0:
                self.throttle[name] = remaining - 1
            return remaining > 0

    def authorised(self, authorization: str) -> bool:
        scheme, _, token = authorization.partition(" ")
        return scheme == "Bearer" and self._identity.issued.get(token) == RESOURCE
