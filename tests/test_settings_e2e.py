"""End to end (issue 5): in the hardened image, the stand-in host starts the worker through the
launcher; `hello` reads its signing key from the generated project's local Key Vault (TEST
FIXTURE, over TLS with a test CA) with a token from the App Service managed-identity fake (plain
HTTP, as the platform's endpoint is), asked through the launcher's identity broker; the
platform's secret variables, its identity header included, stay invisible to the worker.

The container shares the host's network (`--network host`) so that it reaches the fakes on
127.0.0.1; the test CA is mounted read-only and named by REQUESTS_CA_BUNDLE. Images come from
test_image's session cache (built once, not rebuilt here).
"""

import contextlib
import hashlib
import hmac
import json
import re
import secrets
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from image.engine import podman
from test_image import VERSIONS, Built, build

from conftest import show_in_log

CLIENT_ID = "e2e00000-0000-4000-8000-00000000c11d"
SIGNING_KEY = "e2e-signing-key-" + secrets.token_hex(8)
CONTAINER_CA = "/etc/ssl/test-ca.pem"
# Secrets the platform puts into the host's environment (DESIGN.md); each gets a canary value.
PLATFORM_SECRET_VARIABLES = (
    "AzureWebJobsStorage",
    "CONTAINER_ENCRYPTION_KEY",
    "WEBSITE_AUTH_ENCRYPTION_KEY",
    "MSI_SECRET",
    "DOCKER_REGISTRY_SERVER_PASSWORD",
    "APPSETTING_DATABASE_PASSWORD",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
)


def fakes(project: Path) -> tuple[ModuleType, ModuleType, ModuleType]:
    """The baked project's own `tests.azure_fakes` modules (tls, managed_identity, key_vault)."""
    sys.path.insert(0, str(project))
    try:
        from tests.azure_fakes import key_vault, managed_identity, tls
    finally:
        sys.path.remove(str(project))
    return tls, managed_identity, key_vault


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - local host
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def wait_until_running(base_url: str, deadline_seconds: float = 90) -> dict:
    deadline = time.monotonic() + deadline_seconds
    last: object = None
    while time.monotonic() < deadline:
        try:
            status, body = get(f"{base_url}/admin/host/status")
            last = json.loads(body)
            if status == 200 and last.get("state") == "Running":
                return last
            if last.get("state") == "Error":
                break
        except (OSError, ValueError) as error:
            last = repr(error)
        time.sleep(0.3)  # polling the host, bounded by the deadline
    pytest.fail(f"the stand-in host never reported Running: {last}")


def worker_under(pid: int, uid: int) -> int:
    """The process of the worker's account below pid (the launcher stays between host and worker)."""
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        status = Path(f"/proc/{child}/status").read_text()
        if re.search(rf"^Uid:\s+{uid}\s", status, re.M):
            return int(child)
        with contextlib.suppress(LookupError):
            return worker_under(int(child), uid)
    raise LookupError(f"no process of uid {uid} below pid {pid}")


def environ_of(host_pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{host_pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)


@pytest.fixture(scope="module", params=VERSIONS)
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build(request.param, tmp_path_factory)


@pytest.fixture
def azure(built: Built, tmp_path: Path) -> Iterator[tuple[object, object, Path]]:
    tls, managed_identity, key_vault = fakes(built.project)
    ca = tls.make_test_ca(tmp_path)
    ca.ca_file.chmod(0o644)  # the worker user reads it through the read-only mount
    identity = managed_identity.ManagedIdentityEndpoint(None, CLIENT_ID)
    vault = key_vault.FakeKeyVault(ca, identity)
    vault.set_secret("greeting-signing-key", SIGNING_KEY)
    identity.start()
    vault.start()
    yield identity, vault, ca.ca_file
    vault.stop()
    identity.stop()


def function_keys(directory: Path) -> str:
    """The host's files key store (what `make run` gives it): a host function key, returned."""
    key = secrets.token_urlsafe(32)
    (directory / "host.json").write_text(json.dumps({
        "masterKey": {"name": "master", "value": secrets.token_urlsafe(32), "encrypted": False},
        "functionKeys": [{"name": "default", "value": key, "encrypted": False}],
    }))  # fmt: skip
    return key


def test_hello_signs_with_the_key_vault_secret_and_the_worker_sees_no_canary(
    built: Built, azure: tuple, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    identity, vault, ca_file = azure
    keys = tmp_path / "keys"
    keys.mkdir()
    key = function_keys(keys)
    canaries = {name: f"canary-{name}-{secrets.token_hex(6)}" for name in PLATFORM_SECRET_VARIABLES}
    port = free_port()
    env = {
        **canaries,
        "ASPNETCORE_URLS": f"http://+:{port}",
        "KEY_VAULT_URL": vault.url,
        "AZURE_CLIENT_ID": CLIENT_ID,
        "IDENTITY_ENDPOINT": identity.endpoint,
        "IDENTITY_HEADER": identity.identity_header,
        "REQUESTS_CA_BUNDLE": CONTAINER_CA,
        "AzureWebJobsSecretStorageType": "files",
        "FUNCTIONS_SECRETS_PATH": "/run/functions-keys",
    }
    name = f"test-settings-e2e-{secrets.token_hex(4)}"
    env_args = [arg for key, value in env.items() for arg in ("--env", f"{key}={value}")]
    try:
        podman("run", "--detach", "--network", "host", "--name", name, *env_args,
               "--volume", f"{ca_file}:{CONTAINER_CA}:ro",
               "--volume", f"{keys}:/run/functions-keys:ro,Z", built.image)  # fmt: skip
        base_url = f"http://127.0.0.1:{port}"
        status = wait_until_running(base_url)
        # hello is at the function level, as in Azure: no key or a wrong one, 401.
        without_key = get(f"{base_url}/api/hello?name=e2e")[0]
        wrong_key = get(f"{base_url}/api/hello?name=e2e", {"x-functions-key": "wrong"})[0]
        code, body = get(f"{base_url}/api/hello?name=e2e", {"x-functions-key": key})
        host_pid = int(podman("inspect", "--format", "{{.State.Pid}}", name).stdout)
        worker_environ = environ_of(worker_under(host_pid, status["worker"]["uid"]))
        host_environ = environ_of(host_pid)
        logs = podman("logs", name).stdout + podman("logs", name).stderr
    finally:
        podman("rm", "--force", name, check=False)

    show_in_log(capsys, f"settings e2e, Python {built.version}: hello {code}, worker uid "
                        f"{status['worker']['uid']}, Key Vault requests {vault.requests}, identity "
                        f"requests {identity.requests}, canaries checked: {', '.join(canaries)}")  # fmt: skip
    assert (without_key, wrong_key) == (401, 401)
    assert key not in logs, "the host logged the function key"
    assert code == 200, body[-500:]
    answer = json.loads(body)
    expected = hmac.new(SIGNING_KEY.encode(), b"Hello, e2e!", hashlib.sha256).hexdigest()
    assert answer == {"message": "Hello, e2e!", "signature": expected}
    assert status["worker"]["uid"] != 0
    assert identity.requests >= 1 and identity.rejected == 0, "token came by managed identity"
    # Through the broker: only Key Vault, only the app's identity, and the platform's header
    # never in the worker (its endpoint and header there are the broker's).
    assert {(q["resource"], q["client_id"]) for q in identity.received} == {
        ("https://vault.azure.net", CLIENT_ID)
    }
    assert worker_environ.get("IDENTITY_ENDPOINT", "").startswith("http://127.0.0.1:")
    assert worker_environ.get("IDENTITY_ENDPOINT") != identity.endpoint
    assert vault.requests >= 2, "the challenge, then the authorised read"
    # The canaries really were given (the host holds them), and the worker has none of them.
    assert all(host_environ.get(key) == value for key, value in canaries.items())
    assert worker_environ.get("KEY_VAULT_URL") == vault.url
    assert len(worker_environ.get("IDENTITY_HEADER", "")) == 64
    worker_text = "\0".join(worker_environ.values())
    canaries["IDENTITY_HEADER"] = identity.identity_header
    for where, text in {"worker environ": worker_text, "container log": logs,
                        "response": body.decode()}.items():  # fmt: skip
        assert SIGNING_KEY not in text, f"the secret's value is in the {where}"
        shown = [key for key, value in canaries.items() if value in text]
        assert not shown, f"canaries in the {where}: {shown}"
