"""Shared fixtures: baking with answers, running commands, and tools that must exist in CI."""

import itertools
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

TEMPLATE = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() == "true"
SUPPORTED_PYTHON_VERSIONS = ("3.11", "3.12", "3.13")
SWITCH_COMBINATIONS = [
    {"include_infra": infra, "private_networking": private, "workshop": workshop}
    for infra, private, workshop in itertools.product((True, False), repeat=3)
    if infra or not private
]


def require_tool(name: str, why: str) -> str:
    """The tool's path; a skip with a reason locally, a failure in CI (no skips in CI)."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed; it is needed to {why}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


def show_in_log(capsys: pytest.CaptureFixture[str], text: str) -> None:
    """Print a figure or table into CI's log under `--- `: pytest otherwise keeps a test's output
    for failures only."""
    with capsys.disabled():
        print(f"\n--- {text.strip()}")


def control_text(title: str, output: str) -> str:
    """A negative control's output (a check that must fail), so that a passing run's log holds
    no bare FAIL or make error: each failed row reads `FAIL (expected)`, make's own `*** Error`
    line is replaced by a sentence saying so."""
    lines = [f"negative control, {title}: every failure below is expected"]
    for line in output.splitlines():
        if re.match(r"make(\[\d+\])?: \*\*\* ", line):
            line = "make stopped with an error, as this negative control expects"
        lines.append(re.sub(r"\bFAIL\b", "FAIL (expected)", line))
    return "\n".join(lines)


def show_control_in_log(capsys: pytest.CaptureFixture[str], title: str, output: str) -> None:
    show_in_log(capsys, control_text(title, output))


def run(
    args: list[str], cwd: Path | None = None, timeout: float = 600, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """Run a command and fail the test with its output if it exits non-zero."""
    result = subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False, **kwargs
    )
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, args))} exited {result.returncode}\n"
            f"--- stdout\n{result.stdout[-6000:]}\n--- stderr\n{result.stderr[-6000:]}"
        )
    return result


@pytest.fixture
def bake(cookies: Any) -> Callable[..., Path]:
    """Bake with the given answers and return the project directory; fail on any error."""

    def _bake(**answers: Any) -> Path:
        result = cookies.bake(extra_context=answers)
        assert result.exception is None, f"bake {answers} failed: {result.exception!r}"
        assert result.exit_code == 0
        return Path(result.project_path)

    return _bake


@pytest.fixture(scope="session")
def baked_default(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One default bake shared by the slow tests (launcher, image) of a session."""
    from cookiecutter.main import cookiecutter

    out = tmp_path_factory.mktemp("default-bake")
    yield Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(out)))
