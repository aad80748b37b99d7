"""No token around the broker: the worker cannot reach a token endpoint other than its broker.

Each test runs in a network namespace of its own (`unshare -n`, root), where a fake metadata
endpoint answers token requests on 169.254.169.254:80 as Azure's does on a VM's network, beside the
platform's identity endpoint and listeners standing for the host's gRPC port, the vault and some
other service (metadata_namespace.py). The worker code asks the metadata endpoint for a token with
`Metadata: true`, asks its broker for one, and connects to each port. Confined (Landlock ABI 4 and
later: TCP connections to the policy's ports and the launch's own only), the metadata endpoint is
refused with EACCES before any packet leaves; unconfined, it hands out a token.
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import (
    PYTHON,
    Account,
    Launcher,
    SandboxDirs,
    default_policy,
    minimal_policy,
    security_events,
)

HERE = Path(__file__).resolve().parent
APP_CLIENT_ID = "6f1c2b3a-0000-4000-8000-00000000a99a"
EXIT_SANDBOX = 72

# The worker's attempts; argv: the platform endpoint's port, another service's port, the host's
# gRPC port, then (or not) the host's arguments naming it. Each outcome is what it got, or the error's class and errno.
ATTEMPTS = """
import json, os, socket, sys, urllib.request
def attempt(call):
    try:
        return call()
    except OSError as error:
        error = getattr(error, "reason", error)
        return f"{type(error).__name__} {error.errno}"
def token(url, headers):
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as answer:
        return json.load(answer)["access_token"]
def metadata():
    return token("http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01"
                 "&resource=https://vault.azure.net", {"Metadata": "true"})
def broker():
    return token(os.environ["IDENTITY_ENDPOINT"] + "?api-version=2019-08-01&resource="
                 "https://vault.azure.net&client_id=" + os.environ["AZURE_CLIENT_ID"],
                 {"X-IDENTITY-HEADER": os.environ["IDENTITY_HEADER"]})
def connect(port):
    return lambda: socket.create_connection(("127.0.0.1", int(port)), timeout=5).close() or "connected"
vault = os.environ.get("KEY_VAULT_URL", "https://127.0.0.1:1/").split(":")[2].strip("/")
print(json.dumps({"metadata": attempt(metadata), "broker": attempt(broker),
                  "host": attempt(connect(sys.argv[3])),
                  "vault": attempt(connect(vault)), "platform": attempt(connect(sys.argv[1])),
                  "other": attempt(connect(sys.argv[2]))}))
"""
HOST_ARGUMENTS = ["--host", "127.0.0.1", "--port", "{grpc_port}", "--workerId", "w",
                  "--functions-uri", "http://127.0.0.1:{grpc_port}/"]  # fmt: skip
WORKER_ARGV = ["-c", ATTEMPTS, "{platform_port}", "{other_port}", "{grpc_port}", *HOST_ARGUMENTS]
HOST_ENV = {
    "IDENTITY_ENDPOINT": "{platform_endpoint}",
    "IDENTITY_HEADER": "{platform_header}",
    "AZURE_CLIENT_ID": APP_CLIENT_ID,
    "KEY_VAULT_URL": "https://127.0.0.1:{vault_port}/",
}
REFUSED = "PermissionError 13"


@pytest.fixture(scope="module", autouse=True)
def namespaces(broker: Account) -> None:
    """The broker's account exists (the shipped policy names one); the tools are there."""
    if not shutil.which("unshare") or not shutil.which("ip"):
        pytest.fail("the egress tests need unshare (util-linux) and ip (iproute2)")


def in_namespace(runs: list[dict[str, object]]) -> dict:
    """Runs each command in one fresh network namespace; their outcomes and the servers' tokens."""
    spec = {"client_id": APP_CLIENT_ID, "runs": runs}
    result = subprocess.run(
        ["unshare", "-n", sys.executable, str(HERE / "metadata_namespace.py")],
        input=json.dumps(spec).encode(),
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    return json.loads(result.stdout)


def attempts(run: dict) -> dict[str, str]:
    assert run["returncode"] == 0, run["stderr"]
    return json.loads(run["stdout"].splitlines()[-1])


def launch(launcher: Launcher, **extra: object) -> dict[str, object]:
    return {"argv": [str(launcher.binary), *WORKER_ARGV], "env": HOST_ENV} | extra


def test_worker_cannot_get_a_token_from_the_metadata_endpoint(
    launcher: Launcher, worker: Account, sandbox_dirs: SandboxDirs
) -> None:
    launcher.write_policy(default_policy(worker, "audit\n", dirs=sandbox_dirs))
    unconfined = {"argv": [PYTHON, *WORKER_ARGV], "env": HOST_ENV, "user": worker.uid,
                  "group": worker.gid}  # fmt: skip
    seen = in_namespace([unconfined, launch(launcher)])
    before, after = (attempts(run) for run in seen["runs"])
    # Without the launcher, the worker's account gets a token from the metadata endpoint and
    # reaches the platform's identity endpoint (its header is all it would still need).
    assert before["metadata"].startswith("imds-token-") and before["platform"] == "connected"
    assert seen["metadata_tokens"] == [before["metadata"]], "one token, to the unconfined run"
    # Through the launcher: refused before any packet leaves; the broker still answers, and
    # the ports the worker needs connect.
    assert after["metadata"] == REFUSED and after["platform"] == REFUSED
    assert after["other"] == REFUSED
    assert after["broker"] in seen["platform_tokens"]
    assert after["host"] == after["vault"] == "connected"
    audit = [line for line in seen["runs"][1]["stderr"].splitlines() if "audit: sandbox" in line]
    assert len(audit) == 1 and "; connects: TCP 443 " in audit[0], audit


def test_an_allowed_port_connects_and_only_while_allowed(
    launcher: Launcher, worker: Account, sandbox_dirs: SandboxDirs
) -> None:
    """The host's port is the worker's because argv names it (`--port`, `--functions-uri`, either
    alone): without them the same listener is refused."""
    launcher.write_policy(default_policy(worker, dirs=sandbox_dirs))
    port_only, uri_only = HOST_ARGUMENTS[:4], ["--functions-uri", "http://127.0.0.1:{grpc_port}/"]
    seen = in_namespace([
        {"argv": [str(launcher.binary), *WORKER_ARGV[:5], *host], "env": HOST_ENV}
        for host in (port_only, uri_only, [])
    ])  # fmt: skip
    by_port, by_uri, unnamed = (attempts(run) for run in seen["runs"])
    assert by_port["host"] == by_uri["host"] == "connected"
    assert unnamed["host"] == REFUSED
    assert by_port["broker"] in seen["platform_tokens"] and by_port["vault"] == "connected"


def test_without_landlock_the_worker_reaches_the_metadata_endpoint_and_it_is_said(
    launcher: Launcher, worker: Account, sandbox_dirs: SandboxDirs
) -> None:
    """What the kernel cannot enforce: `landlock off` in the policy, a kernel without Landlock
    under best-effort (a filter answers its calls ENOSYS), and `required`, which stops."""
    policy = default_policy(worker, "audit\n", dirs=sandbox_dirs)
    launcher.write_policy(policy.replace("landlock best-effort", "landlock off"))
    off = in_namespace([launch(launcher)])["runs"][0]
    launcher.write_policy(policy)
    best_effort = in_namespace([launch(launcher, no_landlock=True)])["runs"][0]
    launcher.write_policy(policy.replace("landlock best-effort", "landlock required"))
    # No identity for it: the broker, confined alike, would stop first (exit 69).
    no_identity = {"AZURE_CLIENT_ID": APP_CLIENT_ID, "KEY_VAULT_URL": HOST_ENV["KEY_VAULT_URL"]}
    required = in_namespace([launch(launcher, no_landlock=True, env=no_identity)])["runs"][0]
    for run in (off, best_effort):
        got = attempts(run)
        assert got["metadata"].startswith("imds-token-") and got["other"] == "connected"
        assert got["broker"].startswith("fake-token-")
    assert "landlock off (connects: any port)" in off["stderr"]
    assert "warning" not in off["stderr"], "off is the policy's own choice: the audit line says it"
    assert (
        "launcher: warning: connect not enforced: no Landlock here; the worker may connect to any "
        "port, a metadata endpoint's included (launcher/README.md, Egress)\n"
    ) in best_effort["stderr"]
    assert "landlock unavailable (Function not implemented), best-effort (connects: any port)" in (
        best_effort["stderr"]
    )
    assert required["returncode"] == EXIT_SANDBOX and required["stdout"] == ""
    assert required["stderr"].endswith(
        "launcher: landlock_create_ruleset(VERSION): Function not implemented "
        "(the policy says landlock required)\n"
    )


# Landlock's connect rules hold for TCP sockets: MPTCP falls back to plain TCP with a server that
# speaks nothing else, and SMC likewise. The system-call filter refuses both kinds of socket.
AROUND = """
import json, socket
def attempt(family, protocol):
    try:
        with socket.socket(family, socket.SOCK_STREAM, protocol) as s:
            s.settimeout(5)
            s.connect(("169.254.169.254", 80))
            s.sendall(b"GET /metadata/identity/oauth2/token?resource=x HTTP/1.0\\r\\nMetadata: true\\r\\n\\r\\n")
            answer = b"".join(iter(lambda: s.recv(4096), b""))
            return json.loads(answer.split(b"\\r\\n\\r\\n", 1)[1])["access_token"]
    except OSError as error:
        return f"{type(error).__name__} {error.errno}"
print(json.dumps({"mptcp": attempt(socket.AF_INET, 262), "smc": attempt(43, 0)}))
"""


def test_no_way_around_by_another_stream_protocol(
    launcher: Launcher, worker: Account, sandbox_dirs: SandboxDirs
) -> None:
    launcher.write_policy(default_policy(worker, dirs=sandbox_dirs))
    seen = in_namespace([
        {"argv": [PYTHON, "-c", AROUND], "env": {}, "user": worker.uid, "group": worker.gid},
        {"argv": [str(launcher.binary), "-c", AROUND], "env": {}},
    ])  # fmt: skip
    before, after = (attempts(run) for run in seen["runs"])
    assert before["mptcp"].startswith("imds-token-"), "MPTCP reaches a plain TCP server"
    assert after == {"mptcp": "PermissionError 1", "smc": "PermissionError 1"}
    details = [event["detail"] for event in security_events(seen["runs"][1]["stderr"])]
    assert details and all(detail.startswith("socket refused") for detail in details), details


def test_more_ports_than_fit_stop_the_worker(launcher: Launcher, worker: Account) -> None:
    """Bounded: 16 connect lines and 8 ports of the launch's own fit; one more is refused."""
    lines = [f"connect {port}" for port in range(1000, 1016)]
    launcher.write_policy(minimal_policy(worker, *lines))
    fits = [arg for port in range(2000, 2008) for arg in ("--port", str(port))]
    assert launcher.run(["-c", "print('ran')", *fits]).stdout == b"ran\n"
    result = launcher.run(["-c", "print('ran')", *fits, "--port", "2008"])
    assert result.returncode == EXIT_SANDBOX and result.stdout == b""
    assert result.stderr == (
        b"launcher: egress: more than 24 ports to allow (connect lines and the launch's own)\n"
    )
