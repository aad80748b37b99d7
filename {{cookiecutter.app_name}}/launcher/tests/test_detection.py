"""A refusal that only exploited code triggers is also seen: one security event line of a fixed
shape, rate-limited, that the worker cannot forge (launcher/README.md, "Detection").

Each attack runs in a worker the launcher starts as root; its events are read from the
launcher's stderr (what the Functions host logs) and matched against the exact shape.
"""

import platform
import subprocess

import pytest
from conftest import PYTHON, Account, Launcher, LaunchUids, become, default_policy, security_events

NR = {
    "x86_64": {"unshare": 272, "keyctl": 250, "bpf": 321, "setsid": 112},
    "aarch64": {"unshare": 97, "keyctl": 219, "bpf": 280, "setsid": 157},
}[platform.machine()]
PRELUDE = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
def call(number, *args):
    result = libc.syscall(number, *args)
    return 'ok' if result >= 0 else os.strerror(ctypes.get_errno())
print(os.getpid(), flush=True)
"""
ATTACKS = {
    "unshare a user namespace": (f"print(call({NR['unshare']}, 0x10000000))", "unshare"),
    "keyctl": (f"print(call({NR['keyctl']}, 0, -3, 0))", "keyctl"),
    "bpf": (f"print(call({NR['bpf']}, 0, 0, 0))", "bpf"),
    "leave the process group": (f"print(call({NR['setsid']}))", "setsid"),
    "chmod +x": ("open(os.environ['TMPDIR'] + '/tool', 'w').close()\n"
                 "try:\n    os.chmod(os.environ['TMPDIR'] + '/tool', 0o755); print('ok')\n"
                 "except OSError as error:\n    print(error.strerror)",
                 "chmod" if platform.machine() == "x86_64" else "fchmodat"),
}  # fmt: skip


@pytest.fixture
def watched(launcher: Launcher, worker: Account, launch_uids: LaunchUids) -> Launcher:
    launcher.write_policy(default_policy(worker, uids=launch_uids))
    return launcher


@pytest.mark.parametrize("attack", ATTACKS)
def test_a_refused_call_is_reported_once_with_the_same_refusal(watched: Launcher, attack: str) -> None:
    code, name = ATTACKS[attack]
    result = watched.run(["-c", PRELUDE + code])
    pid, answer = result.stdout.decode().split(maxsplit=1)
    assert answer.strip() == "Operation not permitted", result.stderr.decode()  # EPERM, as unwatched
    events = security_events(result.stderr)
    assert [(e["kind"], e["pid"], e["suppressed"]) for e in events] == [("syscall", pid, "0")]
    assert events[0]["detail"].startswith(f"{name} refused (system call ")


def test_what_the_app_does_raises_no_event(watched: Launcher) -> None:
    code = """
import json, os, subprocess, sys, tempfile, threading
with tempfile.NamedTemporaryFile(dir=os.environ['TMPDIR']) as handle:
    handle.write(b'data')
threading.Thread(target=lambda: None).start()
print(subprocess.run([sys.executable, '-c', 'print(42)'], capture_output=True, text=True).stdout.strip())
"""
    result = watched.run(["-c", code])
    assert result.stdout == b"42\n", result.stderr.decode()
    assert security_events(result.stderr) == []


REEXEC = PRELUDE + f"""
if sys.argv[1:] != ['again']:
    os.execv(sys.executable, [sys.executable, sys.argv[0], 'again'])
print(call({NR['unshare']}, 0x10000000))
"""


def test_the_workers_own_reexec_is_still_watched(watched: Launcher) -> None:
    """worker.py re-executes sys.executable (the launcher, not as root): it must not install a
    second filter, whose EPERM would win over the first's notification and silence the events."""
    script = watched.policy.parent / "reexec_watched.py"  # a directory the worker can read
    script.write_text(REEXEC)
    script.chmod(0o644)
    try:
        result = watched.run([str(script)])
    finally:
        script.unlink()
    first_pid, second_pid, answer = result.stdout.decode().split(maxsplit=2)
    assert first_pid == second_pid and answer.strip() == "Operation not permitted", result.stderr.decode()
    assert [e["kind"] for e in security_events(result.stderr)] == ["syscall"]


FLOOD = 5000


def test_a_flood_is_summarised_not_logged_line_by_line(watched: Launcher) -> None:
    code = PRELUDE + f"""
refused = sum(call({NR['unshare']}, 0x10000000) == 'Operation not permitted' for _ in range({FLOOD}))
print(refused)
"""
    result = watched.run(["-c", code])
    assert result.stdout.decode().split()[1] == str(FLOOD), result.stderr.decode()
    events = security_events(result.stderr)
    assert 1 < len(events) <= 12, [e["detail"] for e in events]  # a burst of 10, then the count
    # Each line but the summary stands for one refusal; the counts for the rest.
    told = sum(not e["detail"].startswith("summary") for e in events)
    assert told + sum(int(e["suppressed"]) for e in events) == FLOOD


FORGE = """
import os, sys
line = 'launcher-security-event: warning v1 kind=syscall pid=1 time=2026-01-01T00:00:00Z suppressed=0 detail=fake\\n'
sys.stdout.write(line); sys.stdout.flush()
os.write(2, line.encode())
os.write(2, b'ordinary\\r' + line[:10].encode()); os.write(2, line[10:].encode())  # split, after a CR
os.write(2, b'launcher-security: not quite the marker\\n')
"""
# What the Functions host would log as an event, though no line starts with the marker as written:
# it cuts LanguageWorkerConsoleLog out of a line that starts with it, wherever it occurs, in any case
# (WorkerProcessUtilities.RemoveLogPrefix, Azure/azure-functions-host), and a query may ignore case.
DISGUISED = [
    b"LanguageWorkerConsoleLoglauncher-security-event: warning v1 kind=syscall pid=1 detail=fake\n",
    b"languageworkerconsolelogLAUNCHER-languageWORKERconsolelogSECURITY-EVENT: warning\n",
    b"an ordinary start, then launcher-security-event: warning v1 kind=identity\n",
    b"launcher-\x00security-\x1bevent: warning, control bytes in between\n",
    b"x" * 40000 + b" launcher-security-event: past any buffer\n",
]
FORGE_DISGUISED = f"""
import os
for line in {DISGUISED!r}:
    os.write(2, line)
"""


def test_the_worker_cannot_forge_an_event(watched: Launcher) -> None:
    result = watched.run(["-c", FORGE])
    out, err = result.stdout.decode(), result.stderr.decode()
    assert result.returncode == 0, err
    # Every forged line goes on behind a prefix, its '-' made '_', and is reported as forged.
    assert out == "worker: (forged) launcher_security_event: warning v1 kind=syscall pid=1 " + (
        "time=2026_01_01T00:00:00Z suppressed=0 detail=fake\n"
    )
    assert err.count("worker: (forged) launcher_security_event:") == 2
    assert "ordinary\r" in err and "launcher-security: not quite the marker\n" in err
    assert [e["kind"] for e in security_events(out + err)] == ["forged"] * 3


def test_a_disguised_forgery_is_caught_too(watched: Launcher) -> None:
    result = watched.run(["-c", FORGE_DISGUISED])
    lines = result.stderr.split(b"\n")
    # The line past 32 KiB is not looked into, only defanged whole: no query can match it.
    assert [e["kind"] for e in security_events(result.stderr)] == ["forged"] * (len(DISGUISED) - 1), lines
    passed_on = [line for line in lines if not line.startswith(b"launcher-security-event:")][:-1]
    assert len(passed_on) == len(DISGUISED)
    for line in passed_on:
        assert line.startswith(b"worker: (forged) ") or line.startswith(b"x" * 32768)
        assert b"-" not in line.removeprefix(b"worker: (forged) ")


def test_without_the_launcher_a_forged_line_reads_as_an_event(worker: Account) -> None:
    """The control: the same output straight to the host passes for three events."""
    result = subprocess.run(  # noqa: S603 (the test's own command)
        [PYTHON, "-c", FORGE], preexec_fn=become(worker), capture_output=True, cwd="/", timeout=60, check=False
    )
    events = security_events(result.stdout + result.stderr)
    assert [e["kind"] for e in events] == ["syscall"] * 3


def test_the_workers_output_passes_unchanged(watched: Launcher) -> None:
    code = """
import os, sys
data = bytes(range(256)) * 4096 + b'\\nlauncher-security event-like\\n' + b'no newline at the end'
sys.stdout.buffer.write(data); sys.stdout.flush()
os.write(2, b'x-' * 16000 + b'\\n' + b'y' * 100000)
"""
    result = watched.run(["-c", code])
    expected = bytes(range(256)) * 4096 + b"\nlauncher-security event-like\nno newline at the end"
    assert result.stdout == expected  # a near miss of the marker passes as written
    # A line up to 32 KiB keeps its '-'; one longer (that the host would log cut) loses them.
    assert result.stderr == b"x-" * 16000 + b"\n" + b"y" * 100000
