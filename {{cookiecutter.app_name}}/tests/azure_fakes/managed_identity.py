"""TEST FIXTURE: App Service's managed-identity endpoint (the one `IDENTITY_ENDPOINT` names).

Wire format as the real clients use it (MSAL's `_obtain_token_on_app_service`, called by
azure-identity's `ManagedIdentityCredential`): `GET {IDENTITY_ENDPOINT}?api-version=2019-08-01
&resource=...&client_id=...` with header `X-IDENTITY-HEADER: {IDENTITY_HEADER}`; the answer is
`{"access_token", "expires_on" (epoch seconds as a string), "resource", "token_type", "client_id"}`.
A wrong or missing header is refused with 400, as App Service does, and no token. `received`
lists every query it was sent (header checked or not), so tests can prove what never reached it.
Without a CA it speaks plain HTTP on loopback, as App Service's endpoint does in a container.
"""

import secrets
import time
from urllib.parse import parse_qs, urlsplit

from tests.azure_fakes.https_server import CountingHTTPSServer, QuietHandler
from tests.azure_fakes.tls import TestCA

TOKEN_LIFETIME_SECONDS = 3600


class _IdentityHandler(QuietHandler):
    server: "ManagedIdentityEndpoint"

    def do_GET(self) -> None:
        self.server.count_request()
        url = urlsplit(self.path)
        query = {key: values[0] for key, values in parse_qs(url.query).items()}
        self.server.received.append(query)
        if url.path != "/msi/token" or query.get("api-version") != "2019-08-01":
            self.send_json(404, {"statusCode": 404, "message": "unknown endpoint or api-version"})
            return
        if not secrets.compare_digest(
            self.headers.get("X-IDENTITY-HEADER", ""), self.server.identity_header
        ):
            self.server.rejected += 1
            self.send_json(400, {"statusCode": 400, "message": "invalid X-IDENTITY-HEADER"})
            return
        if query.get("client_id") != self.server.client_id:
            self.send_json(
                400, {"statusCode": 400, "message": "no user-assigned identity with that client_id"}
            )
            return
        resource = query.get("resource", "")
        token = "fake-token-" + secrets.token_hex(16)
        self.server.issued[token] = resource
        self.send_json(
            200,
            {
                "access_token": token,
                "expires_on": str(int(time.time()) + TOKEN_LIFETIME_SECONDS),
                "resource": resource,
                "token_type": "Bearer",
                "client_id": self.server.client_id,
            },
        )


class ManagedIdentityEndpoint(CountingHTTPSServer):
    """`endpoint` and `identity_header` are what App Service puts into IDENTITY_ENDPOINT and
    IDENTITY_HEADER; `issued` maps each token handed out to its resource (Key Vault checks it)."""

    def __init__(self, ca: TestCA | None, client_id: str) -> None:
        super().__init__(_IdentityHandler, ca)
        self.client_id = client_id
        self.identity_header = secrets.token_hex(16)
        self.issued: dict[str, str] = {}
        self.received: list[dict[str, str]] = []
        self.rejected = 0

    @property
    def endpoint(self) -> str:
        return f"{self.base_url}/msi/token"
