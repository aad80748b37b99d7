"""The workshop's lab guide is a test: every step of docs/workshop.md, run as written against the
stand-in images, leaks on the unhardened build and is stopped on the hardened one.

The commands come from the baked guide itself (tests/workshop_guide.py parses it); only the values
the guide declares as settings are replaced: the engine, the offline stand-in base images and a
free port. Canary values are never printed: output is masked and checks report names only.
"""

import re
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import TEMPLATE, require_tool
from workshop_guide import TARGETS, Guide, Outcome, mask, parse_guide, summary, unmet

PYTHON_VERSION = "3.11"
# Secrets every Functions container holds that the worker must never see (DESIGN.md).
REQUIRED_CANARIES = {"AzureWebJobsStorage", "CONTAINER_ENCRYPTION_KEY", "WEBSITE_AUTH_ENCRYPTION_KEY",
                     "MSI_SECRET", "DOCKER_REGISTRY_SERVER_PASSWORD", "IDENTITY_HEADER"}
LAYERS = {"environment allow-list", "identity broker", "different user", "no shell",
          "read-only code", "private TMPDIR", "system-call filter", "supervisor",
          "unconfined worker serves nothing"}
TEMPLATE_GUIDE = TEMPLATE / "{{cookiecutter.app_name}}" / "docs" / "workshop.md"
CONTAINER = "workshop-lab"  # the name the guide's start block gives the container
STEP_NAMES = [step.name for step in parse_guide(TEMPLATE_GUIDE).steps]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def shell(script: str, cwd: Path, timeout: float) -> Outcome:
    """One block of the guide in bash, as a user would paste it (no extra shell options)."""
    try:
        result = subprocess.run(["bash", "-c", script], cwd=cwd, capture_output=True,
                                timeout=timeout, check=False)
    except subprocess.TimeoutExpired:  # its message would quote the script, canaries and all
        return Outcome(-1, f"timed out after {timeout:.0f} s")
    output = (result.stdout + result.stderr).decode(errors="replace")
    return Outcome(result.returncode, output)


def must_succeed(what: str, outcome: Outcome) -> None:
    if outcome.exit_code != 0:
        pytest.fail(f"the guide's {what} block exited {outcome.exit_code}:\n"
                    f"{mask(outcome.output)[-6000:]}")


@pytest.fixture(scope="module")
def workshop_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from cookiecutter.main import cookiecutter

    out = tmp_path_factory.mktemp("workshop-bake")
    return Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(out),
                             extra_context={"workshop": True, "python_version": PYTHON_VERSION}))


@pytest.fixture(scope="module")
def guide(workshop_project: Path) -> Guide:
    return parse_guide(workshop_project / "docs" / "workshop.md")


@pytest.fixture(scope="module")
def lab(workshop_project: Path, guide: Guide) -> Iterator[dict[tuple[str, str], Outcome]]:
    """Build both images once, then run every step against each: {(target, step): outcome}."""
    engine = require_tool("podman", "build and run the lab's images")
    require_tool("curl", "call the lab's endpoint from the host, as the guide does")
    from image.standins import ensure_builder, ensure_standin

    settings = guide.with_settings({
        "ENGINE": engine,
        "BASE_IMAGE": ensure_standin(PYTHON_VERSION),
        "BUILDER_IMAGE": ensure_builder(),
        "PORT": str(free_port()),
    })
    project = workshop_project

    def block(script: str, timeout: float = 120) -> Outcome:
        return shell(f"{settings}\n{script}", project, timeout)

    started = time.monotonic()
    must_succeed("build", block(guide.build, timeout=1800))
    print(f"built both lab images in {time.monotonic() - started:.0f} s")
    outcomes: dict[tuple[str, str], Outcome] = {}
    try:
        for target in TARGETS:
            block(guide.stop)  # a container left over from an interrupted run
            start = block(guide.start_for(target), timeout=180)
            if start.exit_code != 0:
                logs = block(f"$ENGINE logs {CONTAINER}")
                pytest.fail(f"the guide's start block ({target}) exited {start.exit_code}:\n"
                            f"{mask(start.output)[-3000:]}\n--- container log (masked)\n"
                            f"{mask(logs.output)[-6000:]}")
            for step in guide.steps:
                outcomes[target, step.name] = block(step.script)
            must_succeed(f"stop ({target})", block(guide.stop))
        yield outcomes
    finally:
        block(guide.stop)


def test_guide_defaults_are_the_dockerfiles_defaults(workshop_project: Path, guide: Guide) -> None:
    """The test replaces the guide's image settings, so they are checked here against the source."""
    dockerfile = (workshop_project / "Dockerfile").read_text()
    for name in ("BASE_IMAGE", "BUILDER_IMAGE"):
        default = re.search(rf"^ARG {name}=(.+)$", dockerfile, re.M)
        assert default, f"the Dockerfile declares no default {name}"
        assert guide.settings_declared[name] == default[1], name


def test_guide_shows_every_defence_layer_with_a_step_that_differs(guide: Guide) -> None:
    assert [step.name for step in guide.steps] == STEP_NAMES
    assert {step.stops for step in guide.steps} - {""} == LAYERS
    assert REQUIRED_CANARIES <= set(guide.canary_names), guide.canary_names
    assert any(name.startswith("APPSETTING_") for name in guide.canary_names)
    assert f"--name {CONTAINER}" in guide.start
    for step in guide.steps:
        if step.stops:
            assert step.expect["unhardened"] != step.expect["hardened"], step.name
    scripts = "\n".join(step.script for step in guide.steps)
    assert "file=/proc/self/environ" in scripts and "file=/proc/1/environ" in scripts


@pytest.mark.parametrize("step_name", STEP_NAMES)
def test_lab_step_leaks_unhardened_and_is_stopped_hardened(
    lab: dict[tuple[str, str], Outcome], guide: Guide, step_name: str
) -> None:
    step = next(step for step in guide.steps if step.name == step_name)
    problems = [
        f"{target}: {reason}\n--- output (masked)\n{mask(lab[target, step.name].output)[-3000:]}"
        for target in TARGETS
        for token in step.expect[target]
        if (reason := unmet(token, lab[target, step.name], guide.canary_names))
    ]
    assert not problems, f"step {step.name}:\n" + "\n".join(problems)


def test_lab_before_after_table(
    lab: dict[tuple[str, str], Outcome], guide: Guide, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = ["| step | stops | unhardened | hardened |", "| --- | --- | --- | --- |"]
    for step in guide.steps:
        cells = [summary(lab[target, step.name], step, target, guide.canary_names)
                 for target in TARGETS]
        rows.append(f"| {step.name} | {step.stops or '(check)'} | {cells[0]} | {cells[1]} |")
    table = "\n".join(rows)
    with capsys.disabled():
        print(f"\n\nWorkshop lab, before and after hardening "
              f"(canaries: {', '.join(guide.canary_names)}):\n{table}\n")
    assert "CANARY" not in table
    assert len(rows) == 2 + len(guide.steps)
