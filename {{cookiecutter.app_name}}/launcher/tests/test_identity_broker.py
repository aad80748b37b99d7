"""The identity broker, attacked from inside the worker: the platform's identity header stays out of
reach, and only a Key Vault token for the app's own identity can be had.

The platform's endpoint is the project's managed-identity test server (tests/azure_fakes), on plain
HTTP as App Service's is; it records every query it receives, so a refusal is proven never to have
reached it. The worker code uses the real azure-identity, copied where the worker account can
read it.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest
from conftest import (
    EXIT_BROKER,
    EXIT_POLICY,
    LAUNCHER_DIR,
    Account,
    Launcher,
    children,
    minimal_policy,
    security_events,
)

sys.path.insert(0, str(LAUNCHER_DIR.parent))  # the project root: its tests.azure_fakes
from tests.azure_fakes.managed_identity import ManagedIdentityEndpoint

APP_CLIENT_ID = "6f1c2b3a-0000-4000-8000-00000000a99a"
HOST_CLIENT_ID = "0d5e7f11-0000-4000-8000-00000000b0b0"
VAULT = "https://vault.azure.net/.default"
DEADLINE_SECONDS = 20


def readable_copy(distributions: list[str], top: Path) -> Path:
    """The distributions and what they require, copied where any account can import them."""
    seen: set[str] = set()
    todo = list(distributions)
    while todo:
        try:
            dist = metadata.distribution(todo.pop())
        except metadata.PackageNotFoundError:
            continue  # a requirement for another platform or Python
        name = dist.metadata["Name"].lower()
        if name in seen:
            continue
        seen.add(name)
        for file in dist.files or []:
            source = Path(str(dist.locate_file(file)))
            if not str(file).startswith("..") and source.is_file():
                (top / file).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, top / file)
        todo += [
            re.split(r"[ ;<>=!~\[(]", r)[0] for r in dist.requires or [] if "extra ==" not in r
        ]
    for path in [top, *top.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return top


@pytest.fixture(scope="module")
def site() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="launcher-site-") as directory:
        os.chmod(directory, 0o755)
        yield readable_copy(["azure-identity"], Path(directory))


@pytest.fixture
def platform() -> Iterator[ManagedIdentityEndpoint]:
    endpoint = ManagedIdentityEndpoint(None, APP_CLIENT_ID)
    endpoint.start()
    yield endpoint
    endpoint.stop()


def policy(worker: Account, broker: Account, site: Path, *extra: str) -> str:
    return minimal_policy(
        worker,
        f"broker {broker.name}",
        "allow AZURE_CLIENT_ID",
        "nonroot filter",
        f"set PYTHONPATH={site}",
        "set PATH=/usr/bin:/bin",
        *extra,
    )


def platform_env(platform: ManagedIdentityEndpoint) -> dict[str, str]:
    return {
        "IDENTITY_ENDPOINT": platform.endpoint,
        "IDENTITY_HEADER": platform.identity_header,
        "AZURE_CLIENT_ID": APP_CLIENT_ID,
    }


@pytest.fixture
def brokered(launcher: Launcher, worker: Account, broker: Account, site: Path) -> Launcher:
    launcher.write_policy(policy(worker, broker, site, "audit"))
    return launcher


def run_json(launcher: Launcher, code: str, env: dict[str, str], *args: str) -> tuple[dict, str]:
    result = launcher.run(["-c", code, *args], env=env)
    stderr = result.stderr.decode()
    assert result.returncode == 0, stderr
    return json.loads(result.stdout.decode().splitlines()[-1]), stderr


# Every process's environ and mem the worker can open: none may be another's but its own.
LOOK_AROUND = """
import json, os
me = os.getpid()
environs, mems = {}, {}
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        environs[pid] = open(f"/proc/{pid}/environ", "rb").read().hex()
    except OSError:
        pass
    try:
        with open(f"/proc/{pid}/mem", "rb") as mem:
            mems[pid] = os.fstat(mem.fileno()).st_uid
    except OSError:
        pass
print(json.dumps({"me": me, "uid": os.getuid(), "environs": environs, "mems": mems,
                  "env": dict(os.environ)}))
"""


def test_worker_never_holds_the_platform_header(
    brokered: Launcher, platform: ManagedIdentityEndpoint, worker: Account
) -> None:
    report, stderr = run_json(brokered, LOOK_AROUND, platform_env(platform))
    canary = platform.identity_header
    env = report["env"]
    assert env["IDENTITY_ENDPOINT"].startswith("http://127.0.0.1:")
    assert env["IDENTITY_ENDPOINT"] != platform.endpoint
    assert re.fullmatch(r"[0-9a-f]{64}", env["IDENTITY_HEADER"]), "a fresh 256-bit header"
    assert canary not in json.dumps(env)
    readable = {pid: bytes.fromhex(raw) for pid, raw in report["environs"].items()}
    assert not [pid for pid, raw in readable.items() if canary.encode() in raw]
    others = {pid: uid for pid, uid in report["mems"].items() if uid != worker.uid}
    assert others == {}, "the worker opened the memory of another account's process"
    broker_pid = int(re.search(r"identity broker pid (\d+)", stderr)[1])
    assert str(broker_pid) not in readable and str(broker_pid) not in report["mems"]
    assert canary not in stderr


GET_TOKEN = """
import json, sys
from azure.identity import ManagedIdentityCredential
kwargs = json.loads(sys.argv[1])
token = ManagedIdentityCredential(**kwargs).get_token(sys.argv[2])
print(json.dumps({"token": token.token}))
"""


@pytest.mark.parametrize(
    "kwargs", [{"client_id": APP_CLIENT_ID}, {}], ids=["app client id", "no identity named"]
)
def test_key_vault_token_for_the_app_identity_is_granted(
    brokered: Launcher, platform: ManagedIdentityEndpoint, kwargs: dict[str, str]
) -> None:
    report, _ = run_json(brokered, GET_TOKEN, platform_env(platform), json.dumps(kwargs), VAULT)
    assert platform.issued[report["token"]] == "https://vault.azure.net"
    assert platform.received == [
        {
            "api-version": "2019-08-01",
            "resource": "https://vault.azure.net",
            "client_id": APP_CLIENT_ID,
        }
    ]
    assert platform.rejected == 0


# Each refused request: what azure-identity asks for, and what the error and audit line must name.
REFUSALS = {
    "storage": (
        {"client_id": APP_CLIENT_ID},
        "https://storage.azure.com/.default",
        "audience https://storage.azure.com is refused",
    ),
    "management": (
        {"client_id": APP_CLIENT_ID},
        "https://management.azure.com/.default",
        "audience https://management.azure.com is refused",
    ),
    "graph": (
        {"client_id": APP_CLIENT_ID},
        "https://graph.microsoft.com/.default",
        "audience https://graph.microsoft.com is refused",
    ),
    "host's client id": (
        {"client_id": HOST_CLIENT_ID},
        VAULT,
        f"identity client_id={HOST_CLIENT_ID} is refused",
    ),
    "object id": (
        {"identity_config": {"object_id": HOST_CLIENT_ID}},
        VAULT,
        f"identity object_id={HOST_CLIENT_ID} is refused",
    ),
    "resource id": (
        {"identity_config": {"resource_id": "/subscriptions/0/host-identity"}},
        VAULT,
        "identity mi_res_id=/subscriptions/0/host-identity is refused",
    ),
}
TRY_TOKENS = """
import json, sys
from azure.identity import ManagedIdentityCredential
outcomes = {}
for name, (kwargs, scope, _) in json.loads(sys.argv[1]).items():
    try:
        ManagedIdentityCredential(**kwargs).get_token(scope)
        outcomes[name] = "granted"
    except Exception as error:
        outcomes[name] = f"{type(error).__name__}: {error}"
print(json.dumps(outcomes))
"""


def test_other_audiences_and_identities_are_refused_before_the_platform(
    brokered: Launcher, platform: ManagedIdentityEndpoint
) -> None:
    outcomes, stderr = run_json(brokered, TRY_TOKENS, platform_env(platform), json.dumps(REFUSALS))
    for name, (_, _, reason) in REFUSALS.items():
        assert outcomes[name].startswith(
            ("CredentialUnavailableError", "ClientAuthenticationError")
        ), name
        assert reason in outcomes[name], outcomes[name]
        details = [e["detail"] for e in security_events(stderr) if e["kind"] == "identity"]
        assert any(d.startswith(f"refused (403): {reason}") for d in details), (name, details)
    assert platform.received == [], "a refused request reached the platform"
    assert platform.identity_header not in stderr


def test_the_workers_header_is_refused_by_the_platform(
    brokered: Launcher, platform: ManagedIdentityEndpoint
) -> None:
    code = """
import json, os, sys, urllib.error, urllib.request
query = "?api-version=2019-08-01&resource=https://vault.azure.net&client_id=" + sys.argv[2]
url = sys.argv[1] + query
request = urllib.request.Request(url, headers={"X-IDENTITY-HEADER": os.environ["IDENTITY_HEADER"]})
try:
    print(json.dumps({"status": urllib.request.urlopen(request).status}))
except urllib.error.HTTPError as error:
    print(json.dumps({"status": error.code}))
"""
    report, _ = run_json(brokered, code, platform_env(platform), platform.endpoint, APP_CLIENT_ID)
    assert report == {"status": 400}
    assert platform.rejected == 1 and platform.issued == {}


def test_exit_status_and_death_by_signal_reach_the_host(
    brokered: Launcher, platform: ManagedIdentityEndpoint
) -> None:
    assert brokered.run(["-c", "raise SystemExit(7)"], env=platform_env(platform)).returncode == 7
    killed = brokered.run(
        ["-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"],
        env=platform_env(platform),
    )
    assert killed.returncode == -signal.SIGKILL


def start(launcher: Launcher, code: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [launcher.binary, "-c", code],
        env=env,
        cwd="/",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def processes_of(pid: int, broker: Account, worker: Account) -> tuple[int, int]:
    """(broker pid, worker pid) among the children of the launcher's supervisor (its one child),
    polled until both run."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        below = [grandchild for child in children(pid) for grandchild in children(child)]
        owners = {os.stat(f"/proc/{child}").st_uid: child for child in below}
        if broker.uid in owners and worker.uid in owners:
            return owners[broker.uid], owners[worker.uid]
        time.sleep(0.05)  # polling the process table, bounded by the deadline
    pytest.fail(f"launcher {pid} never had both children: {children(pid)}")


WAIT_FOR_TERM = """
import os, signal, sys, time
def stop(signum, frame):
    os.write(1, b"worker got SIGTERM\\n")  # not print: the signal may land inside the print below
    raise SystemExit(3)
signal.signal(signal.SIGTERM, stop)
print("ready", flush=True)
time.sleep(60)
"""


def test_sigterm_from_the_host_reaches_the_worker(
    brokered: Launcher, platform: ManagedIdentityEndpoint, broker: Account, worker: Account
) -> None:
    process = start(brokered, WAIT_FOR_TERM, platform_env(platform))
    assert process.stdout and process.stderr
    assert process.stdout.readline() == b"ready\n", process.stderr.read().decode()
    broker_pid, _ = processes_of(process.pid, broker, worker)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=DEADLINE_SECONDS)
    assert (out, process.returncode) == (b"worker got SIGTERM\n", 3), err.decode()
    assert not Path(f"/proc/{broker_pid}").exists(), "the broker outlived the worker"


def test_broker_death_stops_the_worker(
    brokered: Launcher, platform: ManagedIdentityEndpoint, broker: Account, worker: Account
) -> None:
    process = start(brokered, "import time; time.sleep(60)", platform_env(platform))
    broker_pid, worker_pid = processes_of(process.pid, broker, worker)
    os.kill(broker_pid, signal.SIGKILL)
    _, err = process.communicate(timeout=DEADLINE_SECONDS)
    assert process.returncode == EXIT_BROKER
    assert (
        f"launcher: identity broker (pid {broker_pid}) ended with status 137: "
        "the worker was stopped" in err.decode()
    )
    assert not Path(f"/proc/{worker_pid}").exists()


def test_killing_the_launcher_takes_broker_and_worker_with_it(
    brokered: Launcher, platform: ManagedIdentityEndpoint, broker: Account, worker: Account
) -> None:
    process = start(brokered, "import time; time.sleep(60)", platform_env(platform))
    pids = processes_of(process.pid, broker, worker)
    process.kill()
    process.communicate(timeout=DEADLINE_SECONDS)
    deadline = time.monotonic() + DEADLINE_SECONDS
    while any(Path(f"/proc/{pid}").exists() for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)  # the kernel delivers PR_SET_PDEATHSIG; bounded by the deadline
    assert not [pid for pid in pids if Path(f"/proc/{pid}").exists()]


ORPHAN = """
import os, time
if os.fork() == 0:
    if os.fork() == 0:
        os._exit(0)  # an orphan: its parent is gone before it exits
    os._exit(0)
os.wait()
print(os.getpid(), flush=True)
time.sleep(60)
"""


def test_orphans_of_the_worker_leave_no_zombie(
    brokered: Launcher, platform: ManagedIdentityEndpoint, broker: Account, worker: Account
) -> None:
    process = start(brokered, ORPHAN, platform_env(platform))
    assert process.stdout
    worker_pid = int(process.stdout.readline())
    (supervisor,) = children(process.pid)
    broker_pid = next(
        c for c in children(supervisor) if os.stat(f"/proc/{c}").st_uid == broker.uid
    )
    expected = {broker_pid, worker_pid}
    deadline = time.monotonic() + DEADLINE_SECONDS
    while set(children(supervisor)) != expected and time.monotonic() < deadline:
        time.sleep(0.05)  # the supervisor reaps the orphan when its SIGCHLD arrives
    remaining = set(children(supervisor))
    process.kill()
    process.communicate(timeout=DEADLINE_SECONDS)
    assert remaining == expected


# As the Python worker does (worker.py re-executes sys.executable, which is the launcher): the
# second start runs as the worker, not root, and must keep the broker's endpoint and header.
REEXEC = """
import json, os, sys
environ = os.environ
print(json.dumps({"endpoint": environ["IDENTITY_ENDPOINT"], "header": environ["IDENTITY_HEADER"],
                  "uid": os.getuid(), "executable": sys.executable}), flush=True)
if sys.argv[1:] != ["again"]:
    os.execv(sys.executable, [sys.executable, sys.argv[0], "again"])
"""


def test_the_workers_own_reexec_keeps_the_broker_and_starts_no_second(
    brokered: Launcher, platform: ManagedIdentityEndpoint, worker: Account
) -> None:
    script = brokered.policy.parent / "reexec.py"  # a directory the worker can read
    script.write_text(REEXEC)
    script.chmod(0o644)
    try:
        result = brokered.run([str(script)], env=platform_env(platform))
    finally:
        script.unlink()
    assert result.returncode == 0, result.stderr.decode()
    first, second = (json.loads(line) for line in result.stdout.decode().splitlines())
    assert first["executable"] == str(brokered.binary), "the re-exec goes through the launcher"
    assert second == first, "the second start lost the broker's endpoint or header"
    assert second["uid"] == worker.uid
    assert result.stderr.decode().count("identity broker pid") == 1, "a second broker started"


def test_no_platform_identity_means_no_broker_and_no_identity_variables(brokered: Launcher) -> None:
    report, stderr = run_json(brokered, LOOK_AROUND, {"AZURE_CLIENT_ID": APP_CLIENT_ID})
    assert "IDENTITY_ENDPOINT" not in report["env"] and "IDENTITY_HEADER" not in report["env"]
    assert "identity broker" not in stderr


# Start-up failures: (case, policy lines added, environment change, exit status, message).
FAILURES = [
    ("no client id", [], {"AZURE_CLIENT_ID": None}, EXIT_BROKER, "AZURE_CLIENT_ID is not set"),
    (
        "a client id that is no GUID",
        [],
        {"AZURE_CLIENT_ID": "a b&c"},
        EXIT_BROKER,
        "AZURE_CLIENT_ID is not a client id",
    ),
    (
        "endpoint without header",
        [],
        {"IDENTITY_HEADER": None},
        EXIT_BROKER,
        "IDENTITY_ENDPOINT is set but IDENTITY_HEADER is not",
    ),
    (
        "header without endpoint",
        [],
        {"IDENTITY_ENDPOINT": None},
        EXIT_BROKER,
        "IDENTITY_HEADER is set but IDENTITY_ENDPOINT is not",
    ),
    (
        "an https endpoint",
        [],
        {"IDENTITY_ENDPOINT": "https://127.0.0.1:1/msi/token"},
        EXIT_BROKER,
        "exited with status 1 before it was ready",
    ),
]


@pytest.mark.parametrize(
    "case, environment, status, message",
    [f[:1] + f[2:] for f in FAILURES],
    ids=[f[0] for f in FAILURES],
)
def test_a_broker_that_cannot_start_stops_the_launch_before_the_worker(
    brokered: Launcher,
    platform: ManagedIdentityEndpoint,
    tmp_path: Path,
    case: str,
    environment: dict[str, str | None],
    status: int,
    message: str,
) -> None:
    tmp_path.chmod(0o777)
    env = {**platform_env(platform), **environment}
    env = {name: value for name, value in env.items() if value is not None}
    result = brokered.run(["-c", f"open({str(tmp_path / 'ran')!r}, 'w')"], env=env)
    assert result.returncode == status, result.stderr.decode()
    assert message in result.stderr.decode()
    assert not (tmp_path / "ran").exists(), "the worker ran"
    assert platform.identity_header not in result.stderr.decode()


def test_broker_account_must_differ_from_the_worker(
    launcher: Launcher, worker: Account, site: Path, platform: ManagedIdentityEndpoint
) -> None:
    launcher.write_policy(minimal_policy(worker, f"broker {worker.name}", "allow AZURE_CLIENT_ID"))
    result = launcher.run(["-c", "pass"], env=platform_env(platform))
    assert result.returncode == EXIT_POLICY
    assert f"broker {worker.name} shares uid {worker.uid}" in result.stderr.decode()


def test_broker_program_writable_by_others_is_refused(
    brokered: Launcher, platform: ManagedIdentityEndpoint
) -> None:
    program = brokered.policy.parent / "identity_broker.py"
    program.chmod(0o666)
    try:
        result = brokered.run(["-c", "pass"], env=platform_env(platform))
    finally:
        program.chmod(0o644)
    assert result.returncode == EXIT_BROKER
    assert result.stderr.decode().splitlines()[-1] == (
        f"launcher: {program}: must be owned by root and writable by nobody else"
    )
