"""`make run` in a baked project: the hardened image (on the stand-in base) answers on localhost,
with the secret from the local development source and a real Azurite the container reaches, and
`make stop` leaves nothing running.

The stand-in host does not use storage; Azurite is proven by asking it from inside the container,
at the address `UseDevelopmentStorage=true` names.
"""

import hashlib
import hmac
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from image.engine import ENGINE, TEST_IMAGES, in_network_of, podman
from image.standins import ensure_builder, ensure_standin

from conftest import TEMPLATE, require_tool, run

VERSION = "3.13"  # the default answer, so the default bake is the one run here
SIGNING_KEY = "local-signing-key-for-the-run-test"
AZURITE_PORTS = (10000, 10001, 10002)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def readme_offline_run() -> tuple[list[str], list[str]]:
    """The template README's two offline lines, as a person copies them: `make standin` (in the
    template), then `cd build/demo && make run BASE_IMAGE=... BUILDER_IMAGE=...`."""
    lines = [line.split("#")[0].strip() for line in (TEMPLATE / "README.md").read_text().splitlines()]
    standin = next(line for line in lines if line.startswith("make standin"))
    cd, make_run = next(line for line in lines if "make run BASE_IMAGE=" in line).split(" && ")
    assert cd == "cd build/demo", cd  # the demo is the default bake, as here
    return shlex.split(standin), shlex.split(make_run)


def wait_for_health(port: int, make_run: subprocess.Popen[str], log: Path) -> None:
    deadline = time.monotonic() + 1200  # a cold image build comes first
    while time.monotonic() < deadline:
        if make_run.poll() is not None:
            pytest.fail(f"make run exited {make_run.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if get(f"http://127.0.0.1:{port}/api/health")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(1)  # polling the app, bounded by the deadline
    pytest.fail(f"the app never answered on port {port}:\n{log.read_text()[-4000:]}")


def test_a_taken_port_stops_make_run_before_it_starts_anything(bake) -> None:
    require_tool("podman", "run the image")
    project = bake()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "image/dev/run_local.py", "run", "--engine", ENGINE, "--image", "absent",
             "--name", "absent", "--port", str(port)],
            cwd=project, capture_output=True, text=True, check=False,
        )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"make run: port {port} is in use (a `make run` already?): `make stop`, or choose PORT=."
    )
    assert not (project / ".run").exists() and not (project / "local.secrets.json").exists()


def test_make_run_serves_the_app_with_azurite_and_make_stop_ends_everything(
    bake, tmp_path: Path
) -> None:
    require_tool("podman", "build and run the image")
    require_tool("npm", "install Azurite for make run")
    busy = [port for port in AZURITE_PORTS if listening(port)]
    assert not busy, f"Azurite's ports {busy} are taken on this machine before the test"
    project = bake(python_version=VERSION)
    (project / "local.secrets.json").write_text(json.dumps({"greeting-signing-key": SIGNING_KEY}))
    port = free_port()
    name = f"{TEST_IMAGES.rsplit('/', 1)[1]}-run-local-{os.getpid()}"
    options = [f"ENGINE={ENGINE}", f"RUN_NAME={name}", f"PYTHON={sys.executable}"]
    log = tmp_path / "make-run.log"
    ensure_standin(VERSION)  # a failed build fails here, with its log
    ensure_builder()
    standin, readme_make_run = readme_offline_run()
    run(standin, cwd=TEMPLATE, timeout=1200)  # tags the stable name the README's make run uses
    with log.open("w") as output:
        make_run = subprocess.Popen(
            [*readme_make_run, *options, f"PORT={port}", f"IMAGE={TEST_IMAGES}/run-local:{VERSION}"],
            cwd=project, stdout=output, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )  # fmt: skip
    try:
        wait_for_health(port, make_run, log)
        azurite_pid = int((project / ".run/azurite.pid").read_text())

        status, body = get(f"http://127.0.0.1:{port}/api/health")
        assert (status, json.loads(body)) == (200, {"status": "ok"})
        key = (project / ".run/function-key").read_text()
        status, body = get(
            f"http://127.0.0.1:{port}/api/hello?name=newcomer", {"x-functions-key": key}
        )
        assert status == 200, body
        hello = json.loads(body)
        assert hello["message"] == "Hello, newcomer!"
        expected = hmac.new(SIGNING_KEY.encode(), b"Hello, newcomer!", hashlib.sha256).hexdigest()
        assert hello["signature"] == expected, "the secret did not come from local.secrets.json"

        # The host as root, the worker through the launcher as another account.
        host = json.loads(get(f"http://127.0.0.1:{port}/admin/host/status")[1])
        assert host["state"] == "Running" and host["worker"]["uid"] not in (0, None), host
        # Azurite answers the container where the host's storage setting points (asked from the
        # container's network, as the host asks: the worker may connect only to its policy's ports).
        asked = in_network_of(name, (
            "import urllib.request, urllib.error\n"
            "try:\n    urllib.request.urlopen('http://127.0.0.1:10000/devstoreaccount1?comp=list')\n"
            "except urllib.error.HTTPError as e:\n    print(e.headers.get('Server'))"
        ))  # fmt: skip
        assert asked.stdout.startswith("Azurite-Blob/"), asked.stdout + asked.stderr
        assert "standin-host: stand-in host" in log.read_text(), "the host's log is not on the console"

        stopped = run(["make", "stop", *options], cwd=project, timeout=120)
        assert f"ended the container {name} and Azurite" in stopped.stdout
        assert make_run.wait(timeout=60) == 0, log.read_text()[-3000:]
    finally:
        if make_run.poll() is None:
            subprocess.run(["make", "stop", *options], cwd=project, capture_output=True, check=False)
            os.killpg(make_run.pid, signal.SIGTERM)
            make_run.wait(timeout=60)

    assert podman("ps", "--all", "--quiet", "--filter", f"name=^{name}$").stdout.strip() == ""
    assert not Path(f"/proc/{azurite_pid}").exists(), "Azurite still runs"
    assert not any(listening(p) for p in (port, *AZURITE_PORTS)), "a port still answers"
    assert not (project / ".run/azurite.pid").exists()
    assert "stopped: the container and Azurite have ended" in log.read_text()


def test_make_run_shows_a_security_event_apart_from_the_hosts_chatter(bake) -> None:
    """What make run prints for each line of the host's log: an event stands out, wherever the
    host's prefix put it; a worker's forgery (defanged by the launcher) and the rest pass as they are."""
    project = bake()
    sys.path.insert(0, str(project / "image" / "dev"))
    try:
        import run_local
    finally:
        sys.path.remove(str(project / "image" / "dev"))
        sys.modules.pop("run_local", None)
    event = ("launcher-security-event: warning v1 kind=syscall pid=41 time=2026-01-01T00:00:00Z "
             "suppressed=0 detail=unshare refused (system call 272)")  # fmt: skip
    banner = "make run: SECURITY EVENT (an attack refused; the deployed app alerts on this):"
    for host_line in (event, f"worker: {event}", f"      {event}"):
        assert run_local.shown(host_line, colour=False) == f"{banner}\n    {event}"
        assert run_local.shown(host_line, colour=True).startswith(f"\033[1;31m{banner}\033[0m\n")
    chatter = ["standin-host: worker indexed 2 function(s)",
               "worker: (forged) launcher_security_event: warning v1 kind=syscall pid=1"]  # fmt: skip
    for line in chatter:
        assert run_local.shown(line, colour=True) == line
