"""Workshop only: the platform's managed-identity endpoint, played on the lab's own container.

App Service's endpoint (IDENTITY_ENDPOINT, plain HTTP, port 8081 in custom containers) mints a
token for any identity assigned to the site and any audience to whoever sends IDENTITY_HEADER.
This stand-in does the same with fake tokens: `GET /msi/token?api-version=2019-08-01&resource=R`
with the right `X-IDENTITY-HEADER` answers a token for R; anything else is a 400, as App Service
answers a wrong header. docs/workshop.md starts it in the app container's network namespace.
"""

import json
import os
import signal
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlsplit

PORT = 8081


class Endpoint(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {key: values[0] for key, values in parse_qs(url.query).items()}
        granted = (
            url.path == "/msi/token"
            and self.headers.get("X-IDENTITY-HEADER") == os.environ["IDENTITY_HEADER"]
            and "resource" in query
        )
        body = (
            {"access_token": f"lab-token-for-{query['resource']}", "token_type": "Bearer",
             "expires_on": str(int(time.time()) + 3600), "resource": query["resource"]}
            if granted else {"statusCode": 400, "message": "wrong X-IDENTITY-HEADER"}
        )  # fmt: skip
        payload = json.dumps(body).encode()
        self.send_response(200 if granted else 400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


# PID 1 of its container: without a handler SIGTERM would be ignored and `rm -f` would wait.
signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
HTTPServer(("127.0.0.1", PORT), Endpoint).serve_forever()
