"""The hardened image of the default project with one function more, a probe that exploited code
could be: it names the variables of the worker's environment whose value is a test's canary
(names only) and can hold an invocation open. The tests that attack a running worker from the
host's side (an environment reload, a kill mid-invocation) need it; the generated app has nothing
of the kind, and must not."""

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from image.engine import TEST_IMAGES, in_network_command, in_network_of, make_image, podman
from image.standins import ensure_builder, ensure_standin

PROBE = '''
import json
import os
import time

import azure.functions as func

bp = func.Blueprint()


@bp.route(route="probe/{action?}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def probe(req: func.HttpRequest) -> func.HttpResponse:
    if req.route_params.get("action") == "hold":
        time.sleep(60)
    # Names only: those whose value is a test's canary ("canary-..."), never a value.
    canaries = sorted(name for name, value in os.environ.items() if value.startswith("canary-"))
    facts = {"uid": os.getuid(), "pid": os.getpid(), "canaries": canaries}
    return func.HttpResponse(json.dumps(facts), mimetype="application/json")
'''
_BUILT: dict[str, str] = {}


def probe_image(version: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The hardened image with the probe, built once a session per version."""
    if version not in _BUILT:
        from test_image import bake

        project = bake(tmp_path_factory.mktemp(f"probe-{version}"), python_version=version)
        (project / "blueprints/probe.py").write_text(PROBE)
        with (project / "function_app.py").open("a") as app:
            app.write("\nfrom blueprints.probe import bp as probe_bp\n\n"
                      "app.register_functions(probe_bp)\n")  # fmt: skip
        image = f"{TEST_IMAGES}/probe:{version}"
        make_image(project, image, ensure_standin(version), ensure_builder())
        _BUILT[version] = image
    return _BUILT[version]


REQUEST = """
import json, sys, urllib.error, urllib.request
request = urllib.request.Request('http://127.0.0.1:80' + sys.argv[1], method=sys.argv[2])
try:
    with urllib.request.urlopen(request, timeout=90) as answer:
        print(answer.status, answer.read().decode())
except urllib.error.HTTPError as error:
    print(error.code, error.read().decode() or '{}')
"""


def request_command(container: str, path: str, method: str = "GET") -> list[str]:
    """An HTTP request to the host from the container's network (the containers run without one
    of the machine's), by the test's interpreter, not the container's confined `python`."""
    return in_network_command(container, REQUEST, path, method)


def parse(result: subprocess.CompletedProcess[str]) -> tuple[int, object]:
    status, _, body = result.stdout.strip().partition(" ")
    if not status.isdigit():
        pytest.fail(f"no HTTP answer: {result.stdout[-500:]} {result.stderr[-500:]}")
    return int(status), json.loads(body)


def http(container: str, path: str, method: str = "GET") -> tuple[int, object]:
    return parse(subprocess.run(request_command(container, path, method), capture_output=True,
                                text=True, timeout=120, check=False))  # fmt: skip


def status_when(
    container: str, ready: Callable[[dict[str, Any]], bool], deadline_seconds: float = 90
) -> dict[str, Any]:
    """The host's first status for which `ready` holds, polled."""
    code = ("import urllib.request\nprint(urllib.request.urlopen("
            "'http://127.0.0.1:80/admin/host/status', timeout=5).read().decode())")  # fmt: skip
    deadline, last = time.monotonic() + deadline_seconds, "no answer"
    while time.monotonic() < deadline:
        result = in_network_of(container, code)
        if result.returncode == 0:
            status = json.loads(result.stdout)
            if ready(status):
                return dict(status)
            last = result.stdout[-500:]
        time.sleep(0.3)  # polling the host, bounded by the deadline
    pytest.fail(f"the host's status never became ready: {last}")


def host_pid(container: str, pid: int) -> int:
    """The machine's pid of the container's process `pid` (its own pid namespace's number)."""
    root = podman("inspect", "--format", "{{.State.Pid}}", container).stdout.strip()
    namespace = os.readlink(f"/proc/{root}/ns/pid")
    for entry in Path("/proc").iterdir():
        try:
            if not entry.name.isdigit() or os.readlink(entry / "ns/pid") != namespace:
                continue
            status = (entry / "status").read_text().splitlines()
        except OSError:
            continue
        nspid = next(line for line in status if line.startswith("NSpid:")).split()
        if int(nspid[-1]) == pid:
            return int(entry.name)
    pytest.fail(f"no process {pid} in {container}")
