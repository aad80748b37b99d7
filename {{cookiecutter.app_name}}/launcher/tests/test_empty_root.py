"""The production (static) build in a root holding nothing but itself, a probe and the account
files: no shell, no libc, no NSS modules, as in the hardened image."""

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import EXIT_POLICY, LAUNCHER_DIR

PROBE_C = r"""
#include <stdio.h>
#include <unistd.h>
extern char **environ;
int main(void)
{
    printf("%u %u\n", (unsigned)getuid(), (unsigned)getgid());
    for (char **e = environ; *e; e++)
        printf("%s\n", *e);
    return 0;
}
"""
PASSWD = "root:x:0:0::/:/nonexistent\nfuncworker:x:4242:4243::/:/x\n"
GROUP = "root:x:0:\nfuncworker:x:4243:\nreaders:x:5000:\n"


@pytest.fixture(scope="module")
def binaries() -> Iterator[Path]:
    """The launcher as `make` builds it for the image (whatever this suite's mode), and a probe."""
    with tempfile.TemporaryDirectory() as directory:
        out = Path(directory)
        subprocess.run(
            ["make", "-s", "-C", LAUNCHER_DIR, f"OUT={out / 'launcher'}"],
            check=True,
            env={**os.environ, "MAKEFLAGS": ""},
        )
        (out / "probe.c").write_text(PROBE_C)
        subprocess.run(["cc", "-static", "-o", out / "probe", out / "probe.c"], check=True)
        yield out


@dataclass(frozen=True)
class Outcome:
    status: int
    stdout: str
    stderr: str


def run_in_empty_root(binaries: Path, passwd: str, group: str, user: str) -> Outcome:
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        root.chmod(0o755)
        (root / "etc/launcher").mkdir(parents=True)
        (root / "etc/passwd").write_text(passwd)
        (root / "etc/group").write_text(group)
        policy = root / "etc/launcher/policy.conf"
        policy.write_text(f"exec /probe\nuser {user}\nallow KEEP\n")
        policy.chmod(0o644)
        for name in ("launcher", "probe"):
            shutil.copy2(binaries / name, root / name)
        result = subprocess.run(
            ["/launcher"],
            env={"KEEP": "1", "MSI_SECRET": "canary"},
            preexec_fn=lambda: (os.chroot(root), os.chdir("/")),
            capture_output=True,
            check=False,
        )
    return Outcome(result.returncode, result.stdout.decode(), result.stderr.decode())


def test_user_name_resolves_without_nss(binaries: Path) -> None:
    outcome = run_in_empty_root(binaries, PASSWD, GROUP, "funcworker")
    assert outcome.status == 0, outcome.stderr
    assert outcome.stdout.split() == ["4242", "4243", "KEEP=1"]


def test_named_group_overrides_the_primary_group(binaries: Path) -> None:
    outcome = run_in_empty_root(binaries, PASSWD, GROUP, "funcworker:readers")
    assert outcome.status == 0, outcome.stderr
    assert outcome.stdout.split()[:2] == ["4242", "5000"]


def test_a_name_never_matches_a_longer_one(binaries: Path) -> None:
    outcome = run_in_empty_root(binaries, PASSWD, GROUP, "func")
    assert outcome.status == EXIT_POLICY
    assert outcome.stderr.endswith(":2: user func: not in /etc/passwd\n")
    assert outcome.stdout == ""


@pytest.mark.parametrize(
    "entry",
    ["funcworker:x:42x:4243::/:/x", "funcworker:x:4242", "funcworker:x::4243::/:/x"],
    ids=["letters in uid", "no gid field", "empty uid"],
)
def test_malformed_account_entry_is_rejected(binaries: Path, entry: str) -> None:
    outcome = run_in_empty_root(binaries, f"root:x:0:0::/:/x\n{entry}\n", GROUP, "funcworker")
    assert outcome.status == EXIT_POLICY
    assert outcome.stderr == "launcher: /etc/passwd: malformed entry for funcworker\n"
    assert outcome.stdout == ""
