"""The stand-in base images (test fixtures) imitate the official one where the product relies on it.

If a stand-in drifted from the official layout, the image tests built on it would prove nothing:
these check the layout the hardening relies on and that the stand-in host really runs a worker.
"""

import json
import secrets
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from image.standins import STANDIN_VERSIONS, ensure_builder, ensure_standin

from conftest import run

CANARY_NAME = "AzureWebJobsStorage"
FUNCTION_APP = """
import json
import os

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="probe/{action?}", methods=["GET", "POST"])
def probe(req: func.HttpRequest) -> func.HttpResponse:
    action = req.route_params.get("action")
    if action == "raise":
        raise LookupError("raised on purpose")
    if action == "exit":
        os._exit(3)
    facts = {"uid": os.getuid(), "canary_seen": "AzureWebJobsStorage" in os.environ,
             "name": req.params.get("name"), "body": req.get_body().decode()}
    return func.HttpResponse(json.dumps(facts), mimetype="application/json")
"""

# Collected inside the stand-in by its own `python`, as facts, so the test can assert on each.
LAYOUT_PROBE = r"""
import json, os, shutil, stat
python = shutil.which("python")
config_path = "/azure-functions-host/workers/python/worker.config.json"
config = json.load(open(config_path))["description"]
version = os.environ["FUNCTIONS_WORKER_RUNTIME_VERSION"]
setuid = [os.path.join(d, f) for d, _, files in os.walk("/usr") for f in files
          if not os.path.islink(os.path.join(d, f))
          and os.stat(os.path.join(d, f)).st_mode & (stat.S_ISUID | stat.S_ISGID)]
root_hash = next(l.split(":")[1] for l in open("/etc/shadow") if l.startswith("root:"))
print(json.dumps({
    "python": python, "python_is_link": os.path.islink(python),
    "python_real": os.path.realpath(python),
    "executable_path": config["defaultExecutablePath"],
    "worker": os.path.isfile(f"/azure-functions-host/workers/python/{version}/LINUX/X64/worker.py"),
    "host": os.access("/azure-functions-host/Microsoft.Azure.WebJobs.Script.WebHost", os.X_OK),
    "host_shebang": open("/azure-functions-host/Microsoft.Azure.WebJobs.Script.WebHost").readline(),
    "tools": {t: shutil.which(t) for t in ("sshd", "curl", "wget", "perl", "bash", "apt", "dpkg")},
    "setuid": setuid, "root_password_set": root_hash not in ("", "*", "!") and root_hash[0] != "!",
}))
"""


def podman(*args: str, timeout: float = 300) -> str:
    return run(["podman", *args], timeout=timeout).stdout.strip()


@pytest.fixture(scope="module", params=STANDIN_VERSIONS)
def version(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def app_image(version: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The stand-in plus azure-functions and a tiny function app, as a product image would add."""
    context = tmp_path_factory.mktemp(f"standin-app-{version}")
    (context / "function_app.py").write_text(FUNCTION_APP)
    (context / "Containerfile").write_text(
        f"FROM {ensure_standin(version)}\n"
        "RUN pip install --quiet --no-cache-dir --root-user-action=ignore azure-functions\n"
        "COPY function_app.py /home/site/wwwroot/\n"
    )
    image = f"localhost/standin-test/app:{version}"
    podman("build", "--quiet", "-t", image, str(context), timeout=600)
    return image


@pytest.fixture
def host_url(app_image: str) -> Iterator[str]:
    """Base URL of a started container of the app image (its own CMD: the stand-in host)."""
    name = f"standin-test-{secrets.token_hex(4)}"
    podman("run", "--detach", "--name", name, "-p", "127.0.0.1::80",
           "-e", f"{CANARY_NAME}=canary-{secrets.token_hex(8)}", app_image)  # fmt: skip
    try:
        yield f"http://{podman('port', name, '80')}"
    finally:
        logs = subprocess.run(["podman", "logs", name], capture_output=True, text=True, check=False)
        assert "canary-" not in logs.stdout + logs.stderr, "the stand-in logged a variable's value"
        subprocess.run(["podman", "rm", "--force", name], capture_output=True, check=False)


def fetch(url: str, data: bytes | None = None) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, data=data, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def status_when(
    host_url: str,
    states: set[str],
    deadline_seconds: float = 60,
    also: Callable[[dict[str, Any]], bool] = lambda status: True,
) -> dict[str, Any]:
    """The host's first status in one of `states` (and for which `also` holds), polled."""
    deadline = time.monotonic() + deadline_seconds
    last: object = "no answer"
    while time.monotonic() < deadline:
        try:
            _, status = fetch(f"{host_url}/admin/host/status")
        except (OSError, ValueError) as error:  # the container is still starting
            last = type(error).__name__
        else:
            if status["state"] in states and also(status):
                return status
            last = status
        time.sleep(0.2)  # polling, bounded by the deadline
    pytest.fail(f"the stand-in host never reached {states}: {last}")


def test_standin_has_the_official_layout(version: str) -> None:
    facts = json.loads(podman("run", "--rm", ensure_standin(version), "python", "-c", LAYOUT_PROBE))
    link_dir = "/usr/local/bin" if version == "3.11" else "/usr/bin"
    assert facts["python"] == f"{link_dir}/python" and facts["python_is_link"]
    assert facts["python_real"].startswith("/opt/python/") and facts["python_real"].endswith(
        f"/bin/python{version}"
    )
    assert facts["executable_path"] == "python"
    assert facts["worker"] and facts["host"]
    assert facts["host_shebang"].startswith("#!/opt/python/")
    assert all(facts["tools"].values()), facts["tools"]
    assert "/usr/bin/su" in facts["setuid"]
    assert facts["root_password_set"]
    config = json.loads(podman("image", "inspect", ensure_standin(version)))[0]["Config"]
    assert config["Cmd"] == ["/opt/startup/start_nonappservice.sh"]
    assert f"FUNCTIONS_WORKER_RUNTIME_VERSION={version}" in config["Env"]
    assert "AzureWebJobsScriptRoot=/home/site/wwwroot" in config["Env"]


def test_builder_compiles_a_static_binary(tmp_path: Path) -> None:
    (tmp_path / "hello.c").write_text('#include <stdio.h>\nint main(void){puts("built");}\n')
    out = podman("run", "--rm", "-v", f"{tmp_path}:/src:Z", ensure_builder(), "sh", "-c",
                 "gcc -static -o /src/hello /src/hello.c && /src/hello")  # fmt: skip
    assert out == "built"


def test_standin_host_runs_the_worker_with_its_environment(host_url: str) -> None:
    status = status_when(host_url, {"Running", "Error"})
    assert status["state"] == "Running", status
    worker = status["worker"]
    assert isinstance(worker, dict) and worker["functions"] == ["probe"] and worker["uid"] == 0
    code, facts = fetch(f"{host_url}/api/probe?name=Ada", data=b"posted")
    assert code == 200
    assert facts == {"uid": 0, "canary_seen": True, "name": "Ada", "body": "posted"}


def test_standin_host_answers_errors_without_hanging(host_url: str) -> None:
    status_when(host_url, {"Running"})
    assert fetch(f"{host_url}/api/probe/raise") == (500, {"error": "LookupError"})
    assert fetch(f"{host_url}/api/nothing-here")[0] == 404
    code, answer = fetch(f"{host_url}/api/probe/exit")  # the worker dies mid-request
    assert code == 503 and ("exited" in str(answer) or "closed" in str(answer)), answer
    # The closed connection can be noticed before the exit is reaped: wait for both.
    status = status_when(
        host_url, {"Error"}, deadline_seconds=15,
        also=lambda status: status["worker"]["exit_code"] is not None,
    )  # fmt: skip
    assert status["worker"]["exit_code"] == 3, status
    assert fetch(f"{host_url}/api/probe")[0] == 503
