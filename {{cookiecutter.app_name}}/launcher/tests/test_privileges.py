"""Who the worker runs as, and what it can no longer reach: root, the host's environ, its fds."""

import ctypes
import json
import os
import subprocess
import sys

from conftest import (
    EXIT_PRIVILEGE,
    PYTHON,
    Account,
    Launcher,
    become,
    default_policy,
    minimal_policy,
    refuse_before_exec,
    security_events,
)

REPORT_IDENTITY = """
import json, os
try:
    os.setuid(0)
    regained = True
except PermissionError:
    regained = False
status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
print(json.dumps({
    "resuid": os.getresuid(), "resgid": os.getresgid(), "groups": os.getgroups(),
    "regained_root": regained, "no_new_privs": status["NoNewPrivs"].strip(),
}))
"""


def test_root_drops_to_the_worker_for_good(launcher: Launcher, worker: Account) -> None:
    launcher.write_policy(default_policy(worker))
    result = launcher.run(["-c", REPORT_IDENTITY])
    assert result.returncode == 0, result.stderr.decode()
    report = json.loads(result.stdout)
    assert report["resuid"] == [worker.uid] * 3
    assert report["resgid"] == [worker.gid] * 3
    assert report["groups"] == []
    assert report["regained_root"] is False
    assert report["no_new_privs"] == "1"


def test_numeric_user_and_named_group(launcher: Launcher, worker: Account) -> None:
    launcher.write_policy(f"exec {PYTHON}\nuser {worker.uid}:nogroup\n")
    result = launcher.run(["-c", REPORT_IDENTITY])
    assert result.returncode == 0, result.stderr.decode()
    report = json.loads(result.stdout)
    assert report["resuid"] == [worker.uid] * 3
    assert report["resgid"] == [65534] * 3


def test_non_root_is_refused_by_default(launcher: Launcher, worker: Account) -> None:
    launcher.write_policy(minimal_policy(worker))
    result = launcher.run(["-c", "pass"], as_user=worker)
    assert result.returncode == EXIT_PRIVILEGE
    event, refusal = result.stderr.decode().splitlines()
    assert refusal == f"launcher: running as uid {worker.uid}, not root: the policy says nonroot refuse"
    assert [(e["kind"], e["detail"]) for e in security_events(event)] == [
        ("launcher", refusal.removeprefix("launcher: "))
    ]


def test_non_root_with_filter_only_filters(launcher: Launcher, worker: Account) -> None:
    launcher.write_policy(minimal_policy(worker, "nonroot filter", "allow LANG"))
    code = (
        "import os; status = open('/proc/self/status').read(); "
        "print(os.getuid(), sorted(os.environ), status.count('NoNewPrivs:\\t1'))"
    )
    result = launcher.run(
        ["-c", code], env={"LANG": "C.UTF-8", "MSI_SECRET": "canary"}, as_user=worker
    )
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().split() == [str(worker.uid), "['LANG']", "1"]


def test_worker_reexec_through_the_launcher_keeps_working(
    launcher: Launcher, worker: Account
) -> None:
    """worker.py re-executes sys.executable (the launcher, found on PATH) as the worker user."""
    launcher.write_policy(default_policy(worker))
    code = (
        "import os, sys; "
        "os.environ['PYTHONPATH'] = '/worker/packages'; "
        "os.execv(sys.argv[1], ['python', '-c', "
        "'import os, sys; print(os.getuid(), os.environ[\"PYTHONPATH\"], sys.path[1])'])"
    )
    result = launcher.run(["-c", code, launcher.binary.as_posix()])
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().split() == [
        str(worker.uid),
        "/worker/packages",
        "/worker/packages",
    ]


def test_worker_cannot_read_the_root_hosts_environ(launcher: Launcher, worker: Account) -> None:
    launcher.write_policy(default_policy(worker))
    host = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"],
        env={"AzureWebJobsStorage": "canary-host-storage", "MSI_SECRET": "canary-host-msi"},
        stdin=subprocess.PIPE,
    )
    try:
        code = (
            "import sys\n"
            "try:\n"
            f"    open('/proc/{host.pid}/environ', 'rb').read()\n"
            "    print('readable')\n"
            "except PermissionError:\n"
            "    print('denied')\n"
        )
        result = launcher.run(["-c", code])
    finally:
        host.communicate(b"", timeout=30)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b"denied\n"


# Run in the child: the descriptors above 2 that are open in it, as `open_fds`.
LIST_OPEN_FDS = (
    "import fcntl\n"
    "open_fds = []\n"
    "for fd in range(3, 1024):\n"
    "    try:\n"
    "        fcntl.fcntl(fd, fcntl.F_GETFD)\n"
    "        open_fds.append(fd)\n"
    "    except OSError:\n"
    "        pass\n"
)


def test_descriptors_above_two_are_closed(launcher: Launcher, worker: Account) -> None:
    launcher.write_policy(minimal_policy(worker))
    inherited = [os.open("/etc/hostname", os.O_RDONLY) for _ in range(3)]
    high = os.dup2(inherited[0], 200, inheritable=True)
    for fd in inherited:
        os.set_inheritable(fd, True)
    code = LIST_OPEN_FDS + "print(open_fds)\n"
    try:
        result = launcher.run(["-c", code], pass_fds=[*inherited, high])
    finally:
        for fd in [*inherited, high]:
            os.close(fd)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b"[]\n"


def drop_capability(number: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    pr_capbset_drop = 24
    if libc.prctl(pr_capbset_drop, number, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_root_without_the_power_to_switch_users_is_refused(
    launcher: Launcher, worker: Account
) -> None:
    launcher.write_policy(minimal_policy(worker))
    cap_setgid = 6
    result = launcher.run(["-c", "print('ran')"], preexec_fn=lambda: drop_capability(cap_setgid))
    assert result.returncode == EXIT_PRIVILEGE
    assert result.stdout == b""
    assert result.stderr.decode() == "launcher: setgroups(0): Operation not permitted\n"


def test_worker_account_is_usable_directly(worker: Account) -> None:
    """Guards the fixtures: the worker account can run the interpreter on its own."""
    result = subprocess.run(
        [PYTHON, "-c", "import os; print(os.getuid())"],
        capture_output=True,
        preexec_fn=become(worker),
        cwd="/",
        check=False,
    )
    assert result.stdout.decode().strip() == str(worker.uid)


def refuse_close_range() -> None:
    """close_range answered with ENOSYS, as a kernel before 5.9 would (the same number, 436, on
    every architecture)."""
    refuse_before_exec(436, 38)


def test_descriptors_are_closed_without_close_range(launcher: Launcher, worker: Account) -> None:
    launcher.write_policy(minimal_policy(worker))
    inherited = os.open("/etc/hostname", os.O_RDONLY)
    high = os.dup2(inherited, 300, inheritable=True)
    os.set_inheritable(inherited, True)
    code = (
        "import ctypes, errno\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "refused = libc.syscall(436, 1000, 1000, 0) == -1 and ctypes.get_errno() == errno.ENOSYS\n"
        + LIST_OPEN_FDS
        + "print(refused, open_fds)\n"
    )
    try:
        result = launcher.run(
            ["-c", code], pass_fds=[inherited, high], preexec_fn=refuse_close_range
        )
    finally:
        os.close(inherited)
        os.close(high)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b"True []\n"  # close_range was refused, and still nothing leaked
