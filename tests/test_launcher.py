"""The baked project's launcher: its own test suite (plain and ASan+UBSan), the hardening readelf
proves, bounded fuzz runs of the policy parser and the identity broker's parsing, and the overhead
benchmark."""

import os
import re
import sys
from pathlib import Path

import pytest
from conftest import IN_CI, SUPPORTED_PYTHON_VERSIONS, require_tool, run, show_in_log

FUZZ_SECONDS = 60
# The broker's parsing is a few hundred lines of Python, fuzzed at about 8,000 inputs a second:
# half a minute is some 200,000 inputs (the policy parser's minute, in C, is millions).
BROKER_FUZZ_SECONDS = 30
# The target is 1.02; this bound only catches a launcher gone badly wrong, so noise on a shared
# CI machine cannot fail the build. The measured figures are printed either way.
RATIO_BOUND = 1.5
# The launcher's start-up cost over python's (spawn to the interpreter's first line), as a share
# of setpriv's (which only drops root and execs): at most a third. It reads about 0.2 on an idle
# machine (the launcher README, Cost); noise only adds, so the best of up to BENCH_ATTEMPTS runs is
# held to it, and every run's figure is printed. The whole run (start-up and the worker's end,
# where the supervisor ends and reaps everything before it reports) reads 0.34 to 0.41: printed, and
# held only to setpriv's own cost, which catches a launcher gone wrong.
SETPRIV_SHARE_BOUND = 1 / 3
WHOLE_RUN_SHARE_BOUND = 1.0
BENCH_ATTEMPTS = 5
CHECKS = 7  # lines check_binary.py prints
# What the seccomp and Landlock code includes: Debian's kernel headers must compile with musl.
KERNEL_HEADERS_C = r"""
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/landlock.h>
#include <linux/seccomp.h>
int main(void)
{
    struct sock_filter allow = BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    struct landlock_ruleset_attr ruleset = {.handled_access_fs = LANDLOCK_ACCESS_FS_WRITE_FILE};
    return allow.k == SECCOMP_RET_ALLOW && ruleset.handled_access_fs != 0
        && AUDIT_ARCH_X86_64 != 0 ? 0 : 1;
}
"""


@pytest.fixture(scope="module")
def launcher_dir(baked_default: Path) -> Path:
    for tool, why in [
        ("make", "build the launcher"),
        ("cc", "compile the launcher"),
        ("musl-gcc", "build the launcher with musl (tests/machine/setup.sh installs musl-tools)"),
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
    policy = (baked_default / "launcher" / "src" / "policy.conf").read_text()
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
    assert result.stdout.count("ok   ") == CHECKS


def test_glibc_option_passes_the_suite_and_check_binary(launcher_dir: Path) -> None:
    tests = run(
        ["make", "-C", str(launcher_dir), "test-real", "LIBC=glibc", f"PYTHON={sys.executable}"]
    )
    assert re.search(r"^\d+ passed", tests.stdout, re.M), tests.stdout
    binary = run(
        [
            "make",
            "-C",
            str(launcher_dir),
            "check-binary",
            "LIBC=glibc",
            "OUT=launcher-glibc",
            f"PYTHON={sys.executable}",
        ]
    )
    assert binary.stdout.count("ok   ") == CHECKS and "FAIL" not in binary.stdout


@pytest.mark.parametrize("libc", ["musl", "glibc"])
def test_kernel_headers_for_the_sandbox_compile_with_each_libc(
    launcher_dir: Path, libc: str, tmp_path: Path
) -> None:
    source, binary = tmp_path / "kernel_headers.c", tmp_path / "kernel_headers"
    source.write_text(KERNEL_HEADERS_C)
    run(["make", "-s", "-C", str(launcher_dir), "single", f"LIBC={libc}",
         f"SOURCE={source}", f"OUT={binary}"])  # fmt: skip
    assert run([str(binary)]).returncode == 0


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


def test_fuzzing_the_brokers_parsing_finds_no_crash(
    launcher_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """atheris (requirements-dev.txt) runs libFuzzer on the broker's request and answer parsing."""
    result = run(
        ["make", "-C", str(launcher_dir), "fuzz-broker", f"FUZZ_SECONDS={BROKER_FUZZ_SECONDS}",
         f"PYTHON={sys.executable}"],
        timeout=BROKER_FUZZ_SECONDS + 300,
    )  # fmt: skip
    match = re.search(r"^fuzz-broker: (\d+) executions in (\d+) s, no crash$", result.stdout, re.M)
    assert match, result.stdout
    show_in_log(capsys, f"launcher {match.group(0)}")
    assert int(match.group(1)) > 1000


def test_launcher_start_up_is_within_a_third_of_setpriv(
    launcher_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Both libc builds and the tools that do the same (setpriv, gosu, runuser, sudo; su-exec is
    not packaged for Debian 12), one run: the figures the launcher's README quotes."""
    for tool in ("setpriv", "gosu", "runuser", "sudo"):
        require_tool(tool, "measure it beside the launcher (tests/machine/setup.sh installs it)")
    shares, whole_shares = [], []
    for attempt in range(1, BENCH_ATTEMPTS + 1):
        result = run(
            ["make", "-s", "-C", str(launcher_dir), "bench", f"PYTHON={sys.executable}"], timeout=600
        )
        show_in_log(capsys, f"launcher bench (make bench, run {attempt}):\n{result.stdout}")
        for tool in ("setpriv", "gosu", "runuser", "sudo"):
            assert re.search(rf"^  {tool} nobody python +start-up +[\d.]+ ms", result.stdout, re.M)
        default = r"^ratio launcher/direct: (\d+\.\d+) \(whole run, default build musl"
        match = re.search(default, result.stdout, re.M)
        assert match, result.stdout
        assert float(match.group(1)) <= RATIO_BOUND
        # The supervisor's share, against the same launcher without it, interleaved in the same run.
        out = result.stdout
        supervisor = r"^the supervisor adds [-+][\d.]+ ms to start-up, [-+][\d.]+ ms to the whole"
        assert re.search(supervisor, out, re.M)
        of_setpriv = r"as a share of setpriv's: (-?\d+\.\d+)"
        share = re.search(rf"^launcher's start-up cost over direct, {of_setpriv}", out, re.M)
        whole_run = r"^launcher's whole-run cost over direct \(start-up and end\), "
        whole = re.search(whole_run + of_setpriv, out, re.M)
        assert share and whole, result.stdout
        shares.append(float(share.group(1)))
        whole_shares.append(float(whole.group(1)))
        if shares[-1] <= SETPRIV_SHARE_BOUND and whole_shares[-1] <= WHOLE_RUN_SHARE_BOUND:
            break
    show_in_log(
        capsys,
        f"launcher bench: share of setpriv's cost per run, start-up {shares} (best {min(shares)}), "
        f"whole run {whole_shares} (best {min(whole_shares)})",
    )
    assert min(shares) <= SETPRIV_SHARE_BOUND, shares
    assert min(whole_shares) <= WHOLE_RUN_SHARE_BOUND, whole_shares


def bench_output(launcher_dir: Path, target: str, capsys: pytest.CaptureFixture[str]) -> str:
    """`make <target>` in the launcher, printed into CI's log."""
    result = run(
        ["make", "-s", "-C", str(launcher_dir), target, f"PYTHON={sys.executable}"], timeout=600
    )
    show_in_log(capsys, f"launcher make {target}:\n{result.stdout}")
    return result.stdout


def test_identity_broker_figures(launcher_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Printed into CI's log; the bounds only catch a broker gone badly wrong, not noise."""
    out = bench_output(launcher_dir, "bench-broker", capsys)
    added = re.search(r"^ratio [\d.]+; the broker adds ([\d.]+) ms", out, re.M)
    token = re.search(r"^the broker adds ([+-][\d.]+) ms a token", out, re.M)
    crowded = re.search(r"^token, through the broker with \d+ slow connections open: median "
                        r"[\d.]+ ms, slowest ([\d.]+) ms", out, re.M)  # fmt: skip
    memory = re.search(r"^broker resident memory: ([\d.]+) MiB", out, re.M)
    assert added and token and crowded and memory, out
    assert float(added[1]) < 1000 and float(token[1]) < 100 and float(memory[1]) < 64
    assert float(crowded[1]) < 1000, "slow clients held the broker: the app waited a second"


def test_sandbox_figures(launcher_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The sandbox's share of start-up and the filter's cost per system call, into CI's log."""
    out = bench_output(launcher_dir, "bench-sandbox", capsys)
    sandbox = re.search(r"^ratio sandbox \(filter \+ Landlock\)/without: (\d+\.\d+)", out, re.M)
    per_call = re.search(r"^filter cost per system call, getpid: (-?\d+\.\d+) ns$", out, re.M)
    assert sandbox and per_call, out
    assert float(sandbox.group(1)) <= RATIO_BOUND


def test_detection_figures(launcher_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Watching refused calls against the same filter unwatched, into CI's log: start-up in pairs,
    and a flood summarised. The bounds only catch a watch gone badly wrong, not noise."""
    out = bench_output(launcher_dir, "bench-detection", capsys)
    whole = re.search(r"^start-up, watched: median (\d+\.\d+) ms", out, re.M)
    start = re.search(r"^start-up, watched minus unwatched, \d+ pairs: median ([-+]\d+\.\d+) ms", out, re.M)
    per_call = re.search(r"the watch adds (-?\d+\.\d+) us a refused call$", out, re.M)
    lines = re.search(r"^flood event lines printed: (\d+) for (\d+) refusals$", out, re.M)
    assert whole and start and per_call and lines, out
    assert float(start[1]) < (RATIO_BOUND - 1) * float(whole[1]), "watching refused calls slows every start"
    assert int(lines[1]) <= 12 and int(lines[2]) >= 10000, "a flood was not summarised"
