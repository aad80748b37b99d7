"""The baked project's launcher: its own test suite (plain and ASan+UBSan), the hardening readelf
proves, a bounded fuzz run of the policy parser, and the overhead benchmark."""

import os
import re
import sys
from pathlib import Path

import pytest
from conftest import IN_CI, SUPPORTED_PYTHON_VERSIONS, require_tool, run, show_in_log

FUZZ_SECONDS = 60
# The target is 1.03; this bound only catches a launcher gone badly wrong, so noise on a shared
# CI machine cannot fail the build. The measured figure is printed either way.
RATIO_BOUND = 1.5


@pytest.fixture(scope="module")
def launcher_dir(baked_default: Path) -> Path:
    for tool, why in [
        ("make", "build the launcher"),
        ("cc", "compile the launcher"),
        ("readelf", "check the binary"),
    ]:
        require_tool(tool, why)
    if os.geteuid() != 0:
        message = "the launcher tests need root (root-owned policies, switching users)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return baked_default / "launcher"


def test_baked_policy_names_the_interpreter_and_worker(baked_default: Path) -> None:
    policy = (baked_default / "launcher" / "policy.conf").read_text()
    version = next(v for v in SUPPORTED_PYTHON_VERSIONS if f"python{v}\n" in policy)
    assert f"\nexec /opt/python/{version}/bin/python{version}\n" in policy
    assert "\nuser funcworker\n" in policy
    assert "{{" not in policy and "{%" not in policy


def test_launcher_suite_passes_plain_and_sanitized(
    launcher_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    require_tool("clang", "build the ASan+UBSan launcher")
    result = run(["make", "-C", str(launcher_dir), "test", f"PYTHON={sys.executable}"], timeout=900)
    summaries = re.findall(r"^(\d+) passed", result.stdout, re.M)
    collect = [sys.executable, "-m", "pytest", "--collect-only", "-o", "addopts=", "-q"]
    collected = run([*collect, "tests/test_policy_errors.py"], cwd=launcher_dir).stdout
    malformed = collected.count("test_malformed_policy_is_rejected_with_its_line[")
    show_in_log(capsys, f"launcher tests passed (plain, sanitized): {summaries}; "
                        f"malformed-policy cases: {malformed}")  # fmt: skip
    assert len(summaries) == 2 and summaries[0] == summaries[1]
    assert malformed >= 30


def test_binary_is_static_and_hardened(
    launcher_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run(["make", "-C", str(launcher_dir), "check-binary", f"PYTHON={sys.executable}"])
    show_in_log(capsys, f"launcher check-binary:\n{result.stdout}")
    assert "FAIL" not in result.stdout
    assert result.stdout.count("ok   ") == 6


def test_musl_option_passes_the_suite_and_check_binary(launcher_dir: Path) -> None:
    require_tool(
        "musl-gcc", "build the LIBC=musl launcher (tests/machine/setup.sh installs musl-tools)"
    )
    tests = run(
        ["make", "-C", str(launcher_dir), "test-real", "LIBC=musl", f"PYTHON={sys.executable}"]
    )
    assert re.search(r"^\d+ passed", tests.stdout, re.M), tests.stdout
    binary = run(
        [
            "make",
            "-C",
            str(launcher_dir),
            "check-binary",
            "LIBC=musl",
            "OUT=launcher-musl",
            f"PYTHON={sys.executable}",
        ]
    )
    assert binary.stdout.count("ok   ") == 6 and "FAIL" not in binary.stdout


def test_fuzzing_the_parser_finds_no_crash(
    launcher_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    require_tool("clang", "build the libFuzzer harness")
    result = run(
        ["make", "-C", str(launcher_dir), "fuzz", f"FUZZ_SECONDS={FUZZ_SECONDS}"],
        timeout=FUZZ_SECONDS + 300,
    )
    match = re.search(r"^fuzz: (\d+) executions in (\d+) s, no crash$", result.stdout, re.M)
    assert match, result.stdout
    show_in_log(capsys, f"launcher {match.group(0)}")
    assert int(match.group(1)) > 1000


@pytest.mark.parametrize("libc", ["glibc", "musl"])
def test_launcher_overhead_is_within_noise(
    launcher_dir: Path, libc: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if libc == "musl":
        require_tool(
            "musl-gcc",
            "measure the LIBC=musl launcher (tests/machine/setup.sh installs musl-tools)",
        )
    result = run(
        [
            "make",
            "-s",
            "-C",
            str(launcher_dir),
            "bench",
            f"PYTHON={sys.executable}",
            f"LIBC={libc}",
        ],
        timeout=600,
    )
    show_in_log(capsys, f"launcher bench [{libc}]:\n{result.stdout}")
    match = re.search(r"^ratio launcher/direct: (\d+\.\d+)", result.stdout, re.M)
    assert match, result.stdout
    assert float(match.group(1)) <= RATIO_BOUND
    sandbox = re.search(r"^ratio sandbox \(filter \+ Landlock\)/without: (\d+\.\d+)", result.stdout, re.M)
    per_call = re.search(r"^filter cost per system call, getpid: (-?\d+\.\d+) ns$", result.stdout, re.M)
    assert sandbox and per_call, result.stdout
    assert float(sandbox.group(1)) <= RATIO_BOUND
