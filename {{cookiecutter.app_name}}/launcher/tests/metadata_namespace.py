"""TEST FIXTURE, run by test_egress.py inside a network namespace of its own (`unshare -n`): the
metadata endpoint on 169.254.169.254:80, the platform's identity endpoint, and listeners standing
for the host's gRPC port, the vault and some other service, all on this namespace's loopback only.

The fake metadata endpoint answers as Azure's Instance Metadata Service does a managed-identity
token request: `GET /metadata/identity/oauth2/token?api-version=...&resource=...` with the header
`Metadata: true`, a token in JSON (learn.microsoft.com, "How to use managed identities for Azure
resources on an Azure VM to acquire an access token"). Reads the runs as JSON on stdin, replaces
`{name}` in each argument and value, runs them, and prints their outcomes and what each server saw.
"""

import json
import secrets
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the project: tests.azure_fakes
sys.path.insert(0, str(Path(__file__).resolve().parent))  # conftest's seccomp helper
from conftest import refuse_before_exec  # noqa: E402
from tests.azure_fakes.managed_identity import ManagedIdentityEndpoint  # noqa: E402

METADATA_ADDRESS = "169.254.169.254"
LANDLOCK_CREATE_RULESET, ENOSYS = 444, 38


class MetadataHandler(BaseHTTPRequestHandler):
    issued: list[str] = []

    def log_message(self, format: str, *args: Any) -> None:
        """Silent."""

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path != "/metadata/identity/oauth2/token" or self.headers.get("Metadata") != "true":
            self.send_response(400)
            self.end_headers()
            return
        token = "imds-token-" + secrets.token_hex(8)
        self.issued.append(token)
        body = json.dumps({"access_token": token, "token_type": "Bearer"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def listener() -> int:
    """A loopback port that accepts connections (and closes them): a service on that port."""
    server = socket.create_server(("127.0.0.1", 0))

    def accept() -> None:
        while True:
            connection, _ = server.accept()
            connection.close()

    threading.Thread(target=accept, daemon=True).start()
    return server.getsockname()[1]


def fill(text: str, names: dict[str, str]) -> str:
    """`{name}` replaced by its value, for the names above only (the worker's code has braces)."""
    for name, value in names.items():
        text = text.replace("{" + name + "}", value)
    return text


def main() -> None:
    spec = json.load(sys.stdin)
    for command in (["ip", "link", "set", "lo", "up"],
                    ["ip", "addr", "add", f"{METADATA_ADDRESS}/32", "dev", "lo"]):  # fmt: skip
        subprocess.run(command, check=True)
    metadata = ThreadingHTTPServer((METADATA_ADDRESS, 80), MetadataHandler)
    threading.Thread(target=metadata.serve_forever, daemon=True).start()
    platform = ManagedIdentityEndpoint(None, spec["client_id"])
    platform.start()
    names = {
        "grpc_port": str(listener()),
        "vault_port": str(listener()),
        "other_port": str(listener()),
        "platform_endpoint": platform.endpoint,
        "platform_header": platform.identity_header,
        "platform_port": str(urlsplit(platform.endpoint).port),
    }
    outcomes = []
    for run in spec["runs"]:
        argv = [fill(arg, names) for arg in run["argv"]]
        env = {name: fill(value, names) for name, value in run["env"].items()}
        preexec = (lambda: refuse_before_exec(LANDLOCK_CREATE_RULESET, ENOSYS)) if run.get("no_landlock") else None
        result = subprocess.run(argv, env=env, cwd="/", capture_output=True, timeout=60, check=False,
                                user=run.get("user"), group=run.get("group"),
                                extra_groups=[] if run.get("user") else None, preexec_fn=preexec)  # fmt: skip
        outcomes.append({"returncode": result.returncode, "stdout": result.stdout.decode(),
                         "stderr": result.stderr.decode()})  # fmt: skip
    platform.stop()
    print(json.dumps({"runs": outcomes, "metadata_tokens": MetadataHandler.issued,
                      "platform_tokens": list(platform.issued)}))  # fmt: skip


if __name__ == "__main__":
    main()
