"""Exploited code in the worker tries to outlive it, and to reach another launch's processes.

Each attack runs inside a worker the launcher starts as root (the shipped policy, Landlock off
by policy: what `best-effort` gives on a kernel or engine without it), and its control runs the
same code as the same account without the launcher, where the attack works.
"""

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import (
    PYTHON,
    Account,
    Launcher,
    LaunchUids,
    become,
    children,
    default_policy,
    security_events,
)

DEADLINE_SECONDS = 10

# Double-forks a grandchild that tries to leave the worker's group, then lives on; prints its pid
# and what leaving answered. The worker then ends as the test says (argv[1]).
LEAVE_BEHIND = """
import errno, os, signal, sys, time
read_end, write_end = os.pipe()
if os.fork() == 0:
    if os.fork() == 0:
        answers = []
        for leave in (os.setsid, lambda: os.setpgid(0, 0)):
            try:
                leave()
                answers.append('ok')
            except OSError as error:
                answers.append(errno.errorcode[error.errno])
        os.write(write_end, (str(os.getpid()) + ' ' + ' '.join(answers) + '\\n').encode())
        while True:
            time.sleep(1)
    os._exit(0)
os.wait()
print(os.read(read_end, 100).decode().strip(), flush=True)
how = sys.argv[1]
if how == 'exit':
    sys.exit(0)
if how == 'signal':
    os.kill(os.getpid(), signal.SIGKILL)
sys.stdin.read()  # the host ends it: the test signals the launcher
"""


def alive(pid: int) -> bool:
    """Whether pid is a process at all, a zombie included (a zombie is a leftover too)."""
    return Path(f"/proc/{pid}").exists()


def gone_within_deadline(pid: int) -> bool:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)  # polling the process table, bounded by the deadline
    return not alive(pid)


def start(argv: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # noqa: S603 (the test's own commands)
        argv, env={}, cwd="/", stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        **kwargs,  # type: ignore[arg-type]
    )  # fmt: skip


def first_line(process: subprocess.Popen[bytes]) -> list[str]:
    assert process.stdout
    line = process.stdout.readline().decode().split()
    assert line, process.stderr.read().decode() if process.stderr else ""
    return line


@pytest.fixture
def lifetime_launcher(launcher: Launcher, worker: Account, launch_uids: LaunchUids) -> Launcher:
    launcher.write_policy(
        default_policy(worker, uids=launch_uids).replace("landlock best-effort", "landlock off")
    )
    return launcher


def end(process: subprocess.Popen[bytes], how: str) -> None:
    if how == "host SIGTERM":
        process.send_signal(signal.SIGTERM)
    if how == "host SIGKILL":  # what the Functions host's WorkerProcess.Dispose does: Process.Kill()
        process.kill()
    process.communicate(timeout=DEADLINE_SECONDS)


WAYS_TO_END = ("exit", "signal", "host SIGTERM", "host SIGKILL")


@pytest.mark.parametrize("how", WAYS_TO_END)
def test_nothing_the_worker_started_outlives_it(lifetime_launcher: Launcher, how: str) -> None:
    process = start([str(lifetime_launcher.binary), "-c", LEAVE_BEHIND, how.split()[0]])
    grandchild, *leaving = first_line(process)
    end(process, how)
    if how != "host SIGKILL":
        # Gone before the launcher reported the exit: no polling.
        assert not alive(int(grandchild)), f"grandchild {grandchild} outlived the launch"
    else:
        # The host reaped the launcher at once; the supervisor ends the rest right after.
        assert gone_within_deadline(int(grandchild)), f"grandchild {grandchild} outlived the launch"
    assert leaving == ["EPERM", "EPERM"]


def test_without_the_launcher_the_grandchild_survives(worker: Account) -> None:
    """The control: the same code as the same account, with nothing around it."""
    process = start([PYTHON, "-c", LEAVE_BEHIND, "exit"], preexec_fn=become(worker))
    grandchild, *leaving = first_line(process)
    assert process.wait(timeout=DEADLINE_SECONDS) == 0  # its pipes stay open: the grandchild holds them
    try:
        assert alive(int(grandchild))
        assert leaving == ["ok", "EPERM"]  # setsid worked; then it already led its group
    finally:
        os.kill(int(grandchild), signal.SIGKILL)


# Waits for another process's pid on stdin, then tries what a survivor did to later workers.
REACH = """
import errno, os, sys
print(os.getpid(), os.getuid(), flush=True)
other = int(sys.stdin.readline())
def attempt(action):
    try:
        action()
        return 'ok'
    except OSError as error:
        return errno.errorcode[error.errno]
results = [attempt(lambda: os.kill(other, 0))]
for name in ('environ', 'maps', 'mem'):
    results.append(attempt(lambda: open(f'/proc/{other}/{name}', 'rb').close()))
print(' '.join(results), flush=True)
sys.stdin.read()
"""
HOLD = "import os, sys; print(os.getpid(), os.getuid(), flush=True); sys.stdin.read()"


@pytest.fixture
def two_processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        process.kill()
        process.communicate(timeout=DEADLINE_SECONDS)


def test_one_launch_cannot_signal_or_read_another(
    lifetime_launcher: Launcher, two_processes: list[subprocess.Popen[bytes]], launch_uids: LaunchUids
) -> None:
    """Two workers at once (FUNCTIONS_WORKER_PROCESS_COUNT above 1), Landlock off: each runs as a
    launch uid of its own, so neither may signal the other or open its /proc files."""
    two_processes.append(start([str(lifetime_launcher.binary), "-c", HOLD]))
    target_pid, target_uid = first_line(two_processes[0])
    two_processes.append(start([str(lifetime_launcher.binary), "-c", REACH]))
    _, attacker_uid = first_line(two_processes[1])
    assert two_processes[1].stdin
    two_processes[1].stdin.write(f"{target_pid}\n".encode())
    two_processes[1].stdin.flush()
    assert first_line(two_processes[1]) == ["EPERM", "EACCES", "EACCES", "EACCES"]
    assert target_uid != attacker_uid
    assert {int(target_uid), int(attacker_uid)} <= set(range(launch_uids.first, launch_uids.last + 1))


def test_without_the_launcher_one_worker_reads_another(
    worker: Account, two_processes: list[subprocess.Popen[bytes]]
) -> None:
    """The control: two workers of the same account reach each other's environ, maps and mem."""
    two_processes.append(start([PYTHON, "-c", HOLD], preexec_fn=become(worker)))
    target_pid, _ = first_line(two_processes[0])
    two_processes.append(start([PYTHON, "-c", REACH], preexec_fn=become(worker)))
    first_line(two_processes[1])
    assert two_processes[1].stdin
    two_processes[1].stdin.write(f"{target_pid}\n".encode())
    two_processes[1].stdin.flush()
    assert first_line(two_processes[1]) == ["ok", "ok", "ok", "ok"]


def mark_lock_unclean(launch_uids: LaunchUids, uid: int) -> None:
    """As a supervisor that died leaves its uid's lock: not marked clean (lifetime.c)."""
    lock = os.open(launch_uids.dirs.tmpdir / f"{uid}.lock", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.pwrite(lock, b"U", 0)
    finally:
        os.close(lock)


def test_a_leftover_of_an_earlier_launch_of_the_uid_is_ended(
    lifetime_launcher: Launcher, launch_uids: LaunchUids, worker: Account
) -> None:
    """What only a supervisor killed itself (the OOM killer) could leave: a process of a launch
    uid no live launch holds. The next launch of that uid ends it before the worker runs."""
    mark_lock_unclean(launch_uids, launch_uids.first)
    leftover = subprocess.Popen(  # noqa: S603
        [PYTHON, "-c", "import time; time.sleep(60)"],
        preexec_fn=become(Account("leftover", launch_uids.first, worker.gid)),
    )
    try:
        result = lifetime_launcher.run(["-c", "import os; print(os.getuid())"])
        assert result.stdout.decode().split() == [str(launch_uids.first)], result.stderr.decode()
        assert leftover.wait(timeout=DEADLINE_SECONDS) == -signal.SIGKILL
    finally:
        leftover.kill()
        leftover.wait()


def test_what_a_killed_supervisor_left_ends_with_the_next_launch(
    lifetime_launcher: Launcher, launch_uids: LaunchUids
) -> None:
    """The whole way, as the OOM killer would do it: the supervisor killed, it neither ends the
    worker's group nor marks its uid's lock clean; the worker dies with it (PR_SET_PDEATHSIG), its
    grandchild lives on (the control). The next launch of the uid ends the grandchild first."""
    lifetime_launcher.run(["-c", "pass"])  # the uid's last launch ended clean: its lock says so
    process = start([str(lifetime_launcher.binary), "-c", LEAVE_BEHIND, "host"])
    grandchild = int(first_line(process)[0])
    try:
        (supervisor,) = children(process.pid)
        os.kill(supervisor, signal.SIGKILL)
        process.communicate(timeout=DEADLINE_SECONDS)
        assert process.returncode == -signal.SIGKILL
        assert alive(grandchild), "with its supervisor killed, the grandchild should have lived on"
        result = lifetime_launcher.run(["-c", "import os; print(os.getuid())"])
        assert result.stdout.decode().split() == [str(launch_uids.first)], result.stderr.decode()
        assert gone_within_deadline(grandchild), f"grandchild {grandchild} outlived the next launch"
    finally:
        if alive(grandchild):
            os.kill(grandchild, signal.SIGKILL)


def test_each_launch_has_its_own_tmpdir(
    lifetime_launcher: Launcher, launch_uids: LaunchUids, two_processes: list[subprocess.Popen[bytes]]
) -> None:
    show = "import os, sys; print(os.getuid(), os.environ['TMPDIR'], flush=True); sys.stdin.read()"
    for _ in range(2):
        two_processes.append(start([str(lifetime_launcher.binary), "-c", show]))
    seen = [first_line(process) for process in two_processes]
    for uid, tmpdir in seen:
        assert tmpdir == f"{launch_uids.dirs.tmpdir}/{uid}"
        status = os.stat(tmpdir)
        assert (status.st_uid, status.st_mode & 0o777) == (int(uid), 0o700)
    assert seen[0][0] != seen[1][0]


def test_a_tmpdir_others_may_write_is_refused(
    lifetime_launcher: Launcher, launch_uids: LaunchUids
) -> None:
    """A worker that could write there could plant a lock, or a link in place of a launch's
    directory: the launcher refuses to start rather than make one."""
    launch_uids.dirs.tmpdir.chmod(0o1777)
    try:
        result = lifetime_launcher.run(["-c", "pass"])
    finally:
        launch_uids.dirs.tmpdir.chmod(0o711)
    assert result.returncode == 78
    assert result.stderr.decode().splitlines()[-1] == (
        f"launcher: {launch_uids.dirs.tmpdir}: must be owned by root and writable by nobody else "
        "(launch-uids keeps its locks there)"
    )
    assert [e["kind"] for e in security_events(result.stderr)] == ["launcher"]


def test_concurrent_launches_never_share_a_uid(
    lifetime_launcher: Launcher, two_processes: list[subprocess.Popen[bytes]]
) -> None:
    """A long-lived launch (the host's worker) and rounds of short ones started at once: each
    gets a uid no live launch holds, and none is killed by another's start."""
    two_processes.append(start([str(lifetime_launcher.binary), "-c", HOLD]))
    holder_pid, holder_uid = first_line(two_processes[0])
    short = "import os, time; print(os.getuid(), flush=True); time.sleep(0.3)"
    for _ in range(6):
        round_ = [start([str(lifetime_launcher.binary), "-c", short]) for _ in range(3)]
        uids = []
        for process in round_:
            out, err = process.communicate(timeout=DEADLINE_SECONDS)
            assert process.returncode == 0, err.decode()
            uids.append(out.decode().strip())
        assert holder_uid not in uids and len(set(uids)) == 3, (holder_uid, uids)
    assert two_processes[0].poll() is None, "the long-lived launch was killed"
