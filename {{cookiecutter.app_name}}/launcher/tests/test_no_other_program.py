"""Exploited code in the worker brings a program of its own and tries to run it.

The image ships no shell and no tools, but an attacker can write one: a static ELF in TMPDIR or
/dev/shm, a copy of a system binary, a memfd. Each attack runs in a worker the launcher starts
as root, with Landlock off by policy (the system-call filter alone: what a kernel without Landlock
gives) and on; its control runs the same code as the same account without the launcher.
"""

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import PYTHON, Account, Launcher, LaunchUids, SandboxDirs, become, default_policy

# A program to bring: a copy of a system binary (what a downloaded static ELF would be, to the kernel).
PROGRAM = shutil.which("true", path="/usr/bin:/bin") or "/bin/true"

# Each attack prints one word per step: 'ok' or the errno's name.
PRELUDE = """
import ctypes, errno, os, sys
def attempt(action):
    try:
        result = action()
        return result if isinstance(result, str) else 'ok'
    except OSError as error:
        return errno.errorcode[error.errno]
def run(path):
    child = os.fork()
    if child == 0:
        try:
            os.execv(path, [path])
        except OSError as error:
            os._exit(100 + error.errno)  # the errno, back to the parent
    _, status = os.waitpid(child, 0)
    code = os.waitstatus_to_exitcode(status)
    return 'ran' if code == 0 else errno.errorcode[code - 100] if code > 100 else 'failed'
program = open(sys.argv[1], 'rb').read()
where = sys.argv[2]
"""
ATTACKS = {
    # Written with its execute bits at once, then run.
    "create executable": """
path = os.path.join(where, 'tool-a')
def create():
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o755)
    os.write(fd, program)
    os.close(fd)
created = attempt(create)
print(created, attempt(lambda: run(path)) if created == 'ok' else '-')
""",
    # Written plainly, then chmod +x, then run.
    "chmod after writing": """
path = os.path.join(where, 'tool-b')
with open(path, 'wb') as out:
    out.write(program)
changed = attempt(lambda: os.chmod(path, 0o755))
print(changed, attempt(lambda: run(path)))
""",
    # An execute bit through an access ACL (its owner entry is the mode's owner bits).
    "acl after writing": """
import struct
path = os.path.join(where, 'tool-c')
with open(path, 'wb') as out:
    out.write(program)
acl = struct.pack('<I', 2) + b''.join(struct.pack('<HHI', tag, perm, 0xffffffff)
                                      for tag, perm in ((1, 7), (4, 4), (0x20, 4)))
print(attempt(lambda: os.setxattr(path, 'system.posix_acl_access', acl)), attempt(lambda: run(path)))
""",
    # A memfd: no file at all; memfd files are created 0777.
    "memfd": """
fd = attempt(lambda: str(os.memfd_create('tool', 0)))
if fd.isdigit():
    os.write(int(fd), program)
print('ok' if fd.isdigit() else fd, attempt(lambda: run(f'/proc/self/fd/{fd}')) if fd.isdigit() else '-')
""",
    # A memfd as the kernel since 6.3 allows to seal against execution: made, never runnable.
    "sealed memfd": """
fd = attempt(lambda: str(os.memfd_create('tool', 8)))  # MFD_NOEXEC_SEAL
if fd.isdigit():
    os.write(int(fd), program)
    print('ok', attempt(lambda: os.chmod(f'/proc/self/fd/{fd}', 0o755)), attempt(lambda: run(f'/proc/self/fd/{fd}')))
else:
    print(fd)  # EINVAL: a kernel before 6.3 knows no such flag
""",
}
# What the worker gets, with the filter alone (Landlock off): creating or making anything
# executable is refused, and what it wrote cannot be run.
REFUSED = {
    "create executable": "EPERM -",
    "chmod after writing": "EPERM EACCES",
    "acl after writing": "ENOTSUP EACCES",  # EOPNOTSUPP, which Python names ENOTSUP
    "memfd": "EPERM -",
    "sealed memfd": ("ok EPERM EACCES", "EINVAL"),
}
CONTROL = {
    "create executable": "ok ran",
    "chmod after writing": "ok ran",
    "acl after writing": "ok ran",
    "memfd": "ok ran",
    "sealed memfd": ("ok EPERM EACCES", "EINVAL"),  # the kernel's own seal: refused everywhere
}


@pytest.fixture
def writable(worker: Account) -> Iterator[Path]:
    """For the control: a directory the account writes (as TMPDIR is the worker's)."""
    top = Path("/var/tmp") / f"launcher-program-{os.getpid()}"
    top.mkdir(mode=0o755)
    own = top / "own"
    own.mkdir(mode=0o700)
    os.chown(own, worker.uid, worker.gid)
    yield own
    shutil.rmtree(top, ignore_errors=True)


def run_attack(launcher: Launcher, attack: str) -> str:
    code = PRELUDE + "where = os.environ['TMPDIR']\n" + ATTACKS[attack]
    result = launcher.run(["-c", code, PROGRAM, "-"], env={})
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode().strip()


def expected(table: dict[str, str | tuple[str, str]], attack: str) -> tuple[str, ...]:
    answer = table[attack]
    return answer if isinstance(answer, tuple) else (answer,)


@pytest.mark.parametrize("attack", ATTACKS)
def test_a_program_the_worker_brings_does_not_run(
    launcher: Launcher, worker: Account, launch_uids: LaunchUids, writable: Path, attack: str
) -> None:
    launcher.write_policy(
        default_policy(worker, uids=launch_uids).replace("landlock best-effort", "landlock off")
    )
    assert run_attack(launcher, attack) in expected(REFUSED, attack)
    control = launcher_free_run(worker, attack, writable)
    assert control in expected(CONTROL, attack)


def launcher_free_run(worker: Account, attack: str, writable: Path) -> str:
    code = PRELUDE + ATTACKS[attack]
    result = subprocess.run(  # noqa: S603 (the test's own command)
        [PYTHON, "-c", code, PROGRAM, str(writable)], env={}, preexec_fn=become(worker),
        capture_output=True, cwd="/", timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode().strip()


RUN_SYSTEM_PROGRAM = PRELUDE + "print(attempt(lambda: run(sys.argv[1])))\n"


def test_with_landlock_not_even_a_system_program_runs(
    launcher: Launcher, worker: Account, sandbox_dirs: SandboxDirs, launch_uids: LaunchUids
) -> None:
    """Where the kernel has Landlock, executing is handled too: only the interpreter, the
    launcher and the loader may be run, so a program already on the machine is refused as well.
    The same worker without Landlock runs it (the filter alone cannot tell files apart)."""
    policy = default_policy(worker, uids=launch_uids)
    launcher.write_policy(policy + "audit\n")
    with_landlock = launcher.run(["-c", RUN_SYSTEM_PROGRAM, PROGRAM, "-"])
    if b"landlock ABI" not in with_landlock.stderr:
        message = f"this kernel has no Landlock: {with_landlock.stderr.decode().strip()}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)  # CI's machines have it; losing it must not pass unseen
        pytest.skip(message)
    launcher.write_policy(policy.replace("landlock best-effort", "landlock off"))
    without = launcher.run(["-c", RUN_SYSTEM_PROGRAM, PROGRAM, "-"])
    assert with_landlock.stdout.decode().strip() == "EACCES", with_landlock.stderr.decode()
    assert without.stdout.decode().strip() == "ran", without.stderr.decode()


def test_the_worker_still_runs_the_interpreter_and_writes_files(
    launcher: Launcher, worker: Account, launch_uids: LaunchUids
) -> None:
    """What an app does stays possible under both: plain files, a subprocess of the interpreter
    (the launcher again), a temporary file, a sealed memfd where the kernel has one."""
    code = """
import os, subprocess, sys, tempfile
with tempfile.NamedTemporaryFile(dir=os.environ['TMPDIR']) as handle:
    handle.write(b'data'); handle.flush()
    fd = os.open(os.path.join(os.environ['TMPDIR'], 'plain'), os.O_CREAT | os.O_WRONLY, 0o644)
    os.close(fd)
child = subprocess.run([sys.executable, '-c', 'print(6 * 7)'], capture_output=True, text=True)
print(child.stdout.strip() or child.stderr)
"""
    policy = default_policy(worker, uids=launch_uids)  # nonroot filter: sys.executable is the launcher
    for text in (policy, policy.replace("landlock best-effort", "landlock off")):
        launcher.write_policy(text)
        result = launcher.run(["-c", code])
        assert result.stdout.decode().strip() == "42", result.stderr.decode()
