"""Every supported answer combination bakes into a clean project whose own checks pass."""

import glob
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from conftest import SUPPORTED_PYTHON_VERSIONS, SWITCH_COMBINATIONS, TEMPLATE, run

# A leftover Jinja tag; GitHub's own `${{ expr }}` is allowed and skipped by the lookbehind.
LEFTOVER_JINJA = re.compile(r"(?<!\$)\{\{|\{%|\{#|cookiecutter\.")
MATRIX = [
    pytest.param(version, switches, id=f"py{version}-" + "-".join(
        f"{key}={'on' if value else 'off'}" for key, value in switches.items()))
    for version in SUPPORTED_PYTHON_VERSIONS
    for switches in SWITCH_COMBINATIONS
]


def text_files(project: Path) -> list[Path]:
    return [p for p in project.rglob("*") if p.is_file() and b"\0" not in p.read_bytes()[:4096]]


def test_default_bake_needs_no_answers(bake) -> None:
    project = bake()
    assert project.name == "hardened-functions-app"
    for required in ("function_app.py", "host.json", "requirements.txt", "Makefile",
                     "README.md", ".funcignore", ".gitignore", "local.settings.json.example"):
        assert (project / required).is_file(), required
    assert "local.settings.json" in (project / ".gitignore").read_text().splitlines()


@pytest.mark.parametrize(("python_version", "switches"), MATRIX)
def test_every_combination_bakes_without_leftover_template_syntax(
    bake, python_version: str, switches: dict[str, bool]
) -> None:
    project = bake(python_version=python_version, **switches)
    for path in text_files(project):
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            assert not LEFTOVER_JINJA.search(line), f"{path}:{number}: {line}"
    assert (project / "infra").exists() == switches["include_infra"]
    pyproject = (project / "pyproject.toml").read_text()
    assert f'python_version = "{python_version}"' in pyproject


@pytest.mark.parametrize("switches", [s for s in SWITCH_COMBINATIONS if not s["workshop"]],
                         ids=lambda s: f"infra={s['include_infra']}-private={s['private_networking']}")
def test_container_apps_bakes_without_leftover_template_syntax(bake, switches: dict[str, bool]) -> None:
    project = bake(hosting="containerapps", **switches)
    for path in text_files(project):
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            assert not LEFTOVER_JINJA.search(line), f"{path}:{number}: {line}"
    assert (project / "infra" / "containerapps.bicep").exists() == switches["include_infra"]
    assert "az containerapp update" in (project / ".github/workflows/pipeline.yml").read_text()


def test_premium_bakes_no_container_apps_file(baked_default: Path) -> None:
    assert not (baked_default / "infra" / "containerapps.bicep").exists()


def test_local_settings_example_holds_no_secret(baked_default: Path) -> None:
    values = json.loads((baked_default / "local.settings.json.example").read_text())["Values"]
    for name, value in values.items():
        assert not re.search(r"(?i)accountkey=|sharedaccesskey=|password=|secret", value), name


def test_cli_bake_takes_under_two_seconds(tmp_path: Path) -> None:
    cookiecutter = shutil.which("cookiecutter")
    assert cookiecutter, "cookiecutter must be installed in the test environment"
    started = time.perf_counter()
    run([cookiecutter, "--no-input", str(TEMPLATE), "-o", str(tmp_path)])
    elapsed = time.perf_counter() - started
    assert elapsed < 2.0, f"baking took {elapsed:.2f} s"


def test_next_steps_name_the_project_and_only_a_person_sees_them(tmp_path: Path) -> None:
    """A person's bake prints where the project is; `make demo` (which moves the project on)
    sets TEMPLATE_BAKE_QUIET; cruft's comparison bakes are checked in test_update.py."""
    cookiecutter = shutil.which("cookiecutter")
    assert cookiecutter
    person = run([cookiecutter, "--no-input", str(TEMPLATE), "-o", str(tmp_path / "person")])
    project = tmp_path / "person" / "hardened-functions-app"
    assert f"  cd {project}\n" in person.stdout
    assert "make run" in person.stdout
    demo = run([cookiecutter, "--no-input", str(TEMPLATE), "-o", str(tmp_path / "demo")],
               env={**os.environ, "TEMPLATE_BAKE_QUIET": "1"})  # fmt: skip
    assert "Next steps" not in demo.stdout + demo.stderr
    assert (tmp_path / "demo" / "hardened-functions-app" / "Makefile").is_file()


def test_a_missing_python_is_named_in_one_sentence_and_nothing_is_made(bake) -> None:
    project = bake(python_version="3.12")
    result = subprocess.run(["make", "test", "PYTHON=python3.12-absent"], cwd=project,
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert result.returncode != 0
    # make's own "***" line reads "make[1]: ***" when this test itself runs under make.
    sentences = [line for line in result.stderr.splitlines()
                 if not re.match(r"make(\[\d+\])?: \*\*\*", line)]  # fmt: skip
    assert sentences == [
        "make: python3.12-absent is not installed (or does not run): this project targets Python"
        " 3.12; install it (for example `uv python install 3.12` or `pyenv install 3.12`), or name"
        " another interpreter with PYTHON=/path/to/python."
    ], result.stderr
    assert not (project / ".venv").exists()
    default = (project / "Makefile").read_text()
    assert "PYTHON ?= python3.12\n" in default


@pytest.mark.parametrize("makefile", ["Makefile", "{{cookiecutter.app_name}}/Makefile"])
def test_every_install_step_says_what_it_installs_and_how_long(makefile: str) -> None:
    """No silent minute: each pip or npm install is announced on the line before it, with a
    rough duration, and nothing hides its progress behind --quiet."""
    lines = [line.strip() for line in (TEMPLATE / makefile).read_text().splitlines()]
    installs = [n for n, line in enumerate(lines) if re.search(r"pip install|npm ci", line)]
    assert installs, makefile
    for n in installs:
        assert "--quiet" not in lines[n], lines[n]
        announced = lines[n - 1]
        duration = r"\(.*(\d+ s|minute|seconds).* first time\)"
        assert re.match(rf'@echo "make: installing .+ {duration}"', announced), (
            f"{makefile}: {lines[n]!r} is not announced: {announced!r}"
        )


def python_for(version: str) -> str:
    """The matching interpreter when the machine has one, so that pip and mypy see that
    version; otherwise python3 (mypy still checks against the baked version)."""
    candidates = [shutil.which(f"python{version}") or ""]
    candidates += sorted(glob.glob(os.path.expanduser(f"~/.pyenv/versions/{version}*/bin/python{version}")))
    for candidate in filter(None, candidates):
        probe = subprocess.run([candidate, "--version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return candidate
    return "python3"


@pytest.mark.parametrize(
    "answers",
    [
        pytest.param({}, id="default"),
        pytest.param(
            {"python_version": "3.13", "include_infra": False, "workshop": True},
            id="py3.13-no-infra-workshop",
        ),
    ],
)
def test_generated_project_make_test_passes(bake, answers: dict) -> None:
    project = bake(**answers)
    version = answers.get("python_version", "3.13")
    result = run(["make", "test", f"PYTHON={python_for(version)}"], cwd=project, timeout=900)
    assert re.search(r"\d+ passed", result.stdout), result.stdout[-2000:]
    assert "failed" not in result.stdout.splitlines()[-1]


def test_generated_makefile_lists_only_working_targets(baked_default: Path) -> None:
    help_text = subprocess.run(
        ["make", "--no-print-directory", "-s", "help"],  # no "Entering directory" under make
        cwd=baked_default, capture_output=True, text=True, check=True,
    ).stdout
    targets = {line.split()[0] for line in help_text.splitlines() if line.strip()}
    assert {"test", "launcher", "image", "verify-image", "clean"} <= targets
    readme = (baked_default / "README.md").read_text()
    undocumented = [t for t in sorted(targets - {"help"}) if f"make {t}`" not in readme]
    assert not undocumented, f"targets missing from the generated README: {undocumented}"
