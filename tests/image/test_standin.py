"""The stand-in base images (test fixtures) imitate the official one where the product relies on it.

If a stand-in drifted from the official layout, the image tests built on it would prove nothing:
these check the layout the hardening relies on and that the stand-in host really runs a worker.
"""

import json
import secrets
import subprocess
import time
from fnmatch import fnmatch
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from image.engine import TEST_IMAGES
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

KEYED_APP = """
import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


@app.route(route="keyed")
def keyed(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("opened")


@app.route(route="admin", auth_level=func.AuthLevel.ADMIN)
def admin(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("opened")
"""
# The host's files key store: the master key, a host function key, and keyed's own key.
KEYS = {
    "host.json": {"masterKey": {"name": "master", "value": "master-key", "encrypted": False},
                  "functionKeys": [{"name": "default", "value": "host-key", "encrypted": False}]},
    "keyed.json": {"keys": [{"name": "default", "value": "keyed-key", "encrypted": False}]},
}  # fmt: skip

# Collected inside the stand-in by its own `python`, as facts, so the test can assert on each.
LAYOUT_PROBE = r"""
import json, os, shutil, stat, subprocess, sys, sysconfig
python = shutil.which("python")
config_path = "/azure-functions-host/workers/python/worker.config.json"
config = json.load(open(config_path))["description"]
version = os.environ["FUNCTIONS_WORKER_RUNTIME_VERSION"]
worker_dir = f"/azure-functions-host/workers/python/{version}/LINUX/X64"
setuid = [os.path.join(d, f) for d, _, files in os.walk("/usr") for f in files
          if not os.path.islink(os.path.join(d, f))
          and os.stat(os.path.join(d, f)).st_mode & (stat.S_ISUID | stat.S_ISGID)]
root_hash = next(l.split(":")[1] for l in open("/etc/shadow") if l.startswith("root:"))
real = os.path.realpath(python)
ldd = subprocess.run(["ldd", real], capture_output=True, text=True).stdout
libpython = next((l.split("=>")[1].split()[0] for l in ldd.splitlines() if "libpython" in l), None)
bare = subprocess.run([real, "-c", "pass"], env={"PATH": os.environ["PATH"]},
                      capture_output=True, text=True)
def head(path):
    with open(path, "rb") as file:
        return file.read(4).decode("latin-1")
print(json.dumps({
    "python": python, "python_is_link": os.path.islink(python), "python_real": real,
    "prefix": sys.prefix, "purelib": sysconfig.get_paths()["purelib"],
    "libpython": libpython and os.path.realpath(libpython), "libpython_found_at": libpython,
    "ld_library_path": os.environ.get("LD_LIBRARY_PATH"),
    "starts_without_ld_library_path": bare.returncode == 0,
    "opt_python": sorted(os.listdir("/opt/python")) if os.path.isdir("/opt/python") else None,
    "executable_path": config["defaultExecutablePath"], "arguments": config.get("arguments"),
    "worker_dir": sorted(os.listdir(worker_dir)),
    "host": head("/azure-functions-host/Microsoft.Azure.WebJobs.Script.WebHost"),
    "off_path": {p: head(p) for p in ("/opt/mssql-tools18/bin/sqlcmd", "/opt/mssql-tools18/bin/bcp",
                                      "/usr/share/dotnet/dotnet") if os.path.exists(p)},
    "tools": {t: shutil.which(t) for t in ("sshd", "curl", "wget", "perl", "bash", "apt", "dpkg")},
    "setuid": setuid, "root_password_set": root_hash not in ("", "*", "!") and root_hash[0] != "!",
}))
"""
# Per version, where the official image has its interpreter (README.md cites each Dockerfile).
LAYOUTS = {
    "3.11": {"python": "/usr/local/bin/python", "real": "/usr/local/bin/python3.11",
             "prefix": "/usr/local", "libpython": "/usr/local/lib/libpython3.11.so.1.0",
             "ld_library_path": None, "starts_without_ld_library_path": True,
             "opt_python": None, "module": "azure_functions_worker"},
    "3.12": {"python": "/usr/bin/python", "real": "/opt/python/3.12.*/bin/python3.12",
             "prefix": "/opt/python/3.12",
             "libpython": "/opt/python/3.12.*/lib/libpython3.*.so.1.0",
             "ld_library_path": "/opt/python/3.12/lib:", "starts_without_ld_library_path": False,
             "opt_python": ["3.12", "3.12.*"], "module": "azure_functions_worker"},
    "3.13": {"python": "/usr/bin/python", "real": "/opt/python/3.13.*/bin/python3.13",
             "prefix": "/opt/python/3.13.*",
             "libpython": "/opt/python/3.13.*/lib/libpython3.13.so.1.0",
             "ld_library_path": None, "starts_without_ld_library_path": True,
             "opt_python": ["3.13", "3.13.*"], "module": "proxy_worker"},
}  # fmt: skip


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
    image = f"{TEST_IMAGES}/standin-app:{version}"
    podman("build", "--quiet", "-t", image, str(context), timeout=600)
    return image


@contextmanager
def started(image: str, *extra: str) -> Iterator[tuple[str, str]]:
    """(base URL, container name) of a started container of the image (its CMD: the host)."""
    name = f"standin-test-{secrets.token_hex(4)}"
    podman("run", "--detach", "--name", name, "-p", "127.0.0.1::80",
           "-e", f"{CANARY_NAME}=canary-{secrets.token_hex(8)}", *extra, image)  # fmt: skip
    try:
        yield f"http://{podman('port', name, '80')}", name
    finally:
        logs = subprocess.run(["podman", "logs", name], capture_output=True, text=True, check=False)
        assert "canary-" not in logs.stdout + logs.stderr, "the stand-in logged a variable's value"
        subprocess.run(["podman", "rm", "--force", name], capture_output=True, check=False)


@pytest.fixture
def host_url(app_image: str) -> Iterator[str]:
    with started(app_image) as (url, _):
        yield url


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
    image = ensure_standin(version)
    facts = json.loads(podman("run", "--rm", image, "python", "-c", LAYOUT_PROBE))
    layout = LAYOUTS[version]
    assert facts["python"] == layout["python"] and facts["python_is_link"]
    assert fnmatch(facts["python_real"], layout["real"]), facts["python_real"]
    assert fnmatch(facts["prefix"], layout["prefix"]), facts["prefix"]
    assert facts["purelib"].startswith(f"{facts['prefix']}/lib/python3.")
    assert facts["purelib"].endswith("/site-packages")
    # The interpreter needs a shared libpython, found the way the official image finds it.
    assert fnmatch(facts["libpython"] or "", layout["libpython"]), facts["libpython"]
    if version == "3.13":
        assert facts["libpython_found_at"].startswith(("/usr/lib/", "/lib/")), facts
    assert facts["ld_library_path"] == layout["ld_library_path"]
    assert facts["starts_without_ld_library_path"] is layout["starts_without_ld_library_path"]
    expected_opt = layout["opt_python"]
    assert (facts["opt_python"] is None) if expected_opt is None else (
        len(facts["opt_python"]) == 2 and all(map(fnmatch, facts["opt_python"], expected_opt))
    ), facts["opt_python"]  # fmt: skip
    assert facts["executable_path"] == "python" and facts["arguments"] == ["-X no_debug_ranges"]
    # The worker's module (its gRPC front end), the real runtime, gRPC and the generated stubs.
    other = {"proxy_worker", "azure_functions_worker"} - {layout["module"]}
    assert {"worker.py", layout["module"], "azure_functions_runtime", "grpc", "google",
            "standin_rpc"} <= set(facts["worker_dir"]), facts["worker_dir"]  # fmt: skip
    assert not other & set(facts["worker_dir"]), facts["worker_dir"]
    assert facts["host"] == "\x7fELF"  # an ELF, as the real .NET host: no `#!` through any python
    off_path = {"/opt/mssql-tools18/bin/sqlcmd", "/opt/mssql-tools18/bin/bcp"}
    off_path |= set() if version == "3.11" else {"/usr/share/dotnet/dotnet"}
    assert facts["off_path"] == dict.fromkeys(off_path, "\x7fELF")
    assert all(facts["tools"].values()), facts["tools"]
    assert "/usr/bin/su" in facts["setuid"]
    assert facts["root_password_set"]
    config = json.loads(podman("image", "inspect", image))[0]["Config"]
    assert config["Cmd"] == ["/opt/startup/start_nonappservice.sh"]
    assert f"FUNCTIONS_WORKER_RUNTIME_VERSION={version}" in config["Env"]
    assert "AzureWebJobsScriptRoot=/home/site/wwwroot" in config["Env"]


def test_builder_compiles_a_static_binary(tmp_path: Path) -> None:
    (tmp_path / "hello.c").write_text('#include <stdio.h>\nint main(void){puts("built");}\n')
    out = podman("run", "--rm", "-v", f"{tmp_path}:/src:Z", ensure_builder(), "sh", "-c",
                 "gcc -static -o /src/hello /src/hello.c && /src/hello")  # fmt: skip
    assert out == "built"


def test_standin_host_runs_the_worker_with_its_environment(host_url: str, version: str) -> None:
    status = status_when(host_url, {"Running", "Error"})
    assert status["state"] == "Running", status
    worker = status["worker"]
    assert isinstance(worker, dict) and worker["functions"] == ["probe"] and worker["uid"] == 0
    # As Process.Start runs a bare file name: argv[0] stays `python`; then the config's
    # arguments, the worker, and the host's arguments with their --functions-* copies.
    argv = worker["reported"]["argv"]
    worker_py = f"/azure-functions-host/workers/python/{version}/LINUX/X64/worker.py"
    assert argv[:4] == ["python", "-X", "no_debug_ranges", worker_py], argv
    assert {"--host", "--port", "--workerId", "--requestId", "--grpcMaxMessageLength",
            "--functions-uri", "--functions-worker-id", "--functions-request-id",
            "--functions-grpc-max-message-length"} <= set(argv)  # fmt: skip
    code, facts = fetch(f"{host_url}/api/probe?name=Ada", data=b"posted")
    assert code == 200
    assert facts == {"uid": 0, "canary_seen": True, "name": "Ada", "body": "posted"}


@pytest.mark.parametrize("marker", ["CONTAINER_NAME", "WEBSITE_INSTANCE_ID"])
def test_standin_worker_restarts_itself_on_azure(app_image: str, version: str, marker: str) -> None:
    """worker.py sets PYTHONPATH and execs `sys.executable -m <module>` with the same arguments."""
    with started(app_image, "-e", f"{marker}=standin-test") as (url, _):
        status = status_when(url, {"Running", "Error"})
    assert status["state"] == "Running", status
    reported = status["worker"]["reported"]
    module = LAYOUTS[version]["module"]
    worker_dir = f"/azure-functions-host/workers/python/{version}/LINUX/X64"
    assert reported["module"] == module
    assert reported["argv"][:3] == [reported["executable"], "-m", module], reported["argv"]
    assert reported["argv"][3:5] == ["--host", "127.0.0.1"], reported["argv"]
    assert reported["executable"] == LAYOUTS[version]["python"]  # from the bare argv[0], on PATH
    assert reported["pythonpath"] == (
        f"/home/site/wwwroot/.python_packages/lib/site-packages:{worker_dir}"
    )
    assert reported["pid"] == status["worker"]["pid"]  # the same process: execve, not a child


def test_standin_host_starts_a_python_beside_it_before_path(
    app_image: str, version: str, tmp_path: Path
) -> None:
    """The host's own directory comes first, as in .NET's ResolvePath: no mode bit needed."""
    planted = tmp_path / "python"
    planted.write_text("not a program\n")
    planted.chmod(0o644)
    mount = f"{planted}:/azure-functions-host/python:ro,Z"
    with started(app_image, "-v", mount) as (url, name):
        status = status_when(url, {"Error"})
        logs = podman("logs", name)
    assert "starting worker: /azure-functions-host/python as python -X no_debug_ranges" in logs
    assert "starting the worker failed: PermissionError" in status["error"], status


def test_standin_host_answers_the_runtimes_failure_reply_and_restarts_a_dead_worker(
    host_url: str,
) -> None:
    """A function that raises: the runtime's InvocationResponse says Failure, the host answers 500
    with the exception's class. A worker that dies mid-invocation: the request answers 503 and
    the host starts a new worker, as the real host does, until the third exit within 30 minutes."""
    first = status_when(host_url, {"Running"})
    assert fetch(f"{host_url}/api/probe/raise") == (500, {"error": "LookupError"})
    assert fetch(f"{host_url}/api/nothing-here")[0] == 404
    pids = [first["worker"]["pid"]]
    for restarts in (1, 2):
        code, answer = fetch(f"{host_url}/api/probe/exit")  # the worker dies mid-request
        assert code == 503 and ("exited" in str(answer) or "closed" in str(answer)), answer
        status = status_when(host_url, {"Running"}, deadline_seconds=60,
                             also=lambda status: status["restarts"] == restarts)  # fmt: skip
        assert status["exits"] == [3] * restarts and status["worker"]["pid"] not in pids, status
        pids.append(status["worker"]["pid"])
        assert fetch(f"{host_url}/api/probe?name=again")[0] == 200
    fetch(f"{host_url}/api/probe/exit")
    status = status_when(host_url, {"Error"}, deadline_seconds=15,
                         also=lambda status: status["restarts"] == 3)  # fmt: skip
    assert "exited 3 times within 30 minutes: not restarted" in status["error"], status
    assert status["exits"] == [3, 3, 3]
    assert fetch(f"{host_url}/api/probe")[0] == 503


def test_standin_host_reports_the_runtimes_init_failure(
    app_image: str, tmp_path: Path
) -> None:
    """An app that raises on import: the runtime answers WorkerInitRequest with a Failure; the
    host reports Error with the exception's class (never its message) and serves nothing."""
    broken = tmp_path / "function_app.py"
    broken.write_text("raise LookupError('secret-looking message')\n")
    mount = f"{broken}:/home/site/wwwroot/function_app.py:ro,Z"
    with started(app_image, "-v", mount) as (url, name):
        status = status_when(url, {"Error", "Running"})
        logs = podman("logs", name)
    assert status["state"] == "Error", status
    assert status["error"] == "the worker could not load the function app: LookupError", status
    assert "secret-looking message" not in json.dumps(status) + logs


def test_standin_host_checks_function_keys_as_the_real_host(app_image: str, tmp_path: Path) -> None:
    """x-functions-key, else `code`; function level opens to its own, a host or the master key,
    admin level to the master key only; anything else 401 (README.md, the host's key check)."""
    app = tmp_path / "function_app.py"
    app.write_text(KEYED_APP)
    keys = tmp_path / "keys"
    keys.mkdir()
    for name, content in KEYS.items():
        (keys / name).write_text(json.dumps(content))
    with started(app_image, "-v", f"{app}:/home/site/wwwroot/function_app.py:ro,Z",
                 "-v", f"{keys}:/run/keys:ro,Z", "-e", "AzureWebJobsSecretStorageType=files",
                 "-e", "FUNCTIONS_SECRETS_PATH=/run/keys") as (url, _):  # fmt: skip
        status_when(url, {"Running"})

        def status(path: str, key: str | None = None) -> int:
            headers = {"x-functions-key": key} if key else {}
            request = urllib.request.Request(f"{url}{path}", headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=10) as answer:
                    return int(answer.status)
            except urllib.error.HTTPError as error:
                return error.code

        answers = {
            "no key": status("/api/keyed"),
            "its own key": status("/api/keyed", "keyed-key"),
            "a host key as code": status("/api/keyed?code=host-key"),
            "the master key as code": status("/api/keyed?code=master-key"),
            "a wrong header before a good code": status("/api/keyed?code=host-key", "wrong"),
            "admin, a host key": status("/api/admin?code=host-key"),
            "admin, the master key": status("/api/admin", "master-key"),
        }
    assert answers == {
        "no key": 401, "its own key": 200, "a host key as code": 200,
        "the master key as code": 200, "a wrong header before a good code": 401,
        "admin, a host key": 401, "admin, the master key": 200,
    }  # fmt: skip
