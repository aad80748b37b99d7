"""The launcher is invisible to the host: same pid, argv byte for byte, exit status and signals."""

import os
import select
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from conftest import EXIT_EXEC, Account, Launcher, minimal_policy

SHOW_CMDLINE = "import sys; sys.stdout.buffer.write(open('/proc/self/cmdline', 'rb').read())"
ODD_ARGUMENTS = [
    b"plain",
    b"with space",
    b"  leading and trailing  ",
    b"'single quotes'",
    b'"double quotes"',
    b"new\nline",
    b"tab\there",
    b"\xff\xfe not utf-8 \x80",
    b"",
    b"$HOME `id` $(id) ;|&",
    b"--",
    b"-c",
]


def test_argv_passes_byte_for_byte_with_argv0_kept(launcher: Launcher, worker: Account) -> None:
    launcher.write_policy(minimal_policy(worker))
    argv = [b"python-as-the-host-named-it", b"-c", SHOW_CMDLINE.encode(), *ODD_ARGUMENTS]
    result = subprocess.run(
        argv, executable=launcher.binary, env={}, cwd="/", capture_output=True, check=False
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b"\0".join(argv) + b"\0"


def test_exit_status_reaches_the_caller(launcher: Launcher, worker: Account) -> None:
    launcher.write_policy(minimal_policy(worker))
    for status in (0, 1, 3, 42, 255):
        assert launcher.run(["-c", f"raise SystemExit({status})"]).returncode == status


def test_signal_from_inside_reaches_the_caller(launcher: Launcher, worker: Account) -> None:
    launcher.write_policy(minimal_policy(worker))
    result = launcher.run(["-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"])
    assert result.returncode == -signal.SIGSEGV


def test_signal_to_the_launchers_pid_reaches_the_worker(
    launcher: Launcher, worker: Account
) -> None:
    """The host's pid for `python` is the launcher's, which stays to supervise the worker (so that
    nothing the worker starts outlives it): a signal sent there is passed down to the worker, and
    the worker's death by it comes back up."""
    launcher.write_policy(minimal_policy(worker))
    code = "import os, sys; print(os.getpid(), flush=True); sys.stdin.read()"
    with subprocess.Popen(
        [launcher.binary, "-c", code],
        env={},
        cwd="/",
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    ) as worker_process:
        assert worker_process.stdout is not None
        deadline = time.monotonic() + 30
        while not select.select([worker_process.stdout], [], [], 0.1)[0]:
            assert time.monotonic() < deadline, "the worker never started"
        assert int(worker_process.stdout.readline()) != worker_process.pid
        os.kill(worker_process.pid, signal.SIGTERM)
        assert worker_process.wait(timeout=30) == -signal.SIGTERM


def test_exec_failure_has_its_own_status(launcher: Launcher, worker: Account) -> None:
    # Passes every check (root-owned, 0755, a regular file), yet the kernel cannot run it.
    with tempfile.TemporaryDirectory() as directory:
        os.chmod(directory, 0o755)
        broken = Path(directory) / "python"
        broken.write_text("#!/nonexistent/interpreter\n")
        broken.chmod(0o755)
        launcher.write_policy(f"exec {broken}\nuser {worker.name}\n")
        result = launcher.run(["-c", "pass"])
    assert result.returncode == EXIT_EXEC
    assert result.stderr.decode() == f"launcher: execve({broken}): No such file or directory\n"
