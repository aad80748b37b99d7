"""What one launch of the worker can do to the next, run in a container as the host runs workers.

verify_image.py calls these after worker_probe.py. Each starts `python` (the launcher, in a
hardened image) through `ENGINE exec` as root, as the host starts a worker; an attack needs two
launches, so it cannot live in worker_probe.py, which is one.
"""

import subprocess

Row = tuple[str, bool, str]
TIMEOUT_SECONDS = 60

# Exploited code leaves a grandchild behind (double fork, so that it is nobody's child), then the
# worker exits as a crashed one would.
LEAVE_BEHIND = """
import os, time
read_end, write_end = os.pipe()
if os.fork() == 0:
    if os.fork() == 0:
        os.write(write_end, str(os.getpid()).encode())
        quiet = os.open('/dev/null', os.O_RDWR)  # holds none of the launch's output open
        for fd in (0, 1, 2):
            os.dup2(quiet, fd)
        while True:
            time.sleep(1)
    os._exit(0)
os.wait()
print(os.read(read_end, 32).decode(), flush=True)
"""
# The next launch: whether the grandchild is still a process (a zombie counts), then the app.
NEXT_LAUNCH = """
import os, sys
pid = sys.argv[1]
left = os.path.exists(f'/proc/{pid}')
os.chdir('/home/site/wwwroot'); sys.path.insert(0, '/home/site/wwwroot')
from function_app import app
import azure.functions as func
health = {str(f.get_function_name()): f for f in app.get_functions()}['health']
request = func.HttpRequest(method='GET', url='/api/health', body=b'')
status = health.get_user_function()(request).status_code
print('left' if left else 'gone', status, os.getuid(), flush=True)
"""
HOLD = "import os, sys; print(os.getpid(), os.getuid(), flush=True); sys.stdin.read()"
REACH = """
import errno, os, sys
other = int(sys.argv[1])
def attempt(action):
    try:
        action()
        return 'reached'
    except OSError as error:
        return errno.errorcode[error.errno]
answers = [attempt(lambda: os.kill(other, 0))]
for name in ('environ', 'mem'):
    answers.append(attempt(lambda: open(f'/proc/{other}/{name}', 'rb').close()))
print(os.getuid(), *answers, flush=True)
"""


def in_container(
    engine: str, container: str, code: str, *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [engine, "exec", "--user", "0:0", container, "python", "-c", code, *args],
        capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False,
    )  # fmt: skip


def why(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}: {(result.stderr.strip() or result.stdout.strip())[-200:]}"


def left_behind_rows(engine: str, container: str) -> list[Row]:
    first = in_container(engine, container, LEAVE_BEHIND)
    pid = first.stdout.strip()
    if first.returncode != 0 or not pid.isdigit():
        failed = why(first)
        return [("a process left behind ends with the worker", False, failed),
                ("the next worker starts and answers", False, failed)]  # fmt: skip
    following = in_container(engine, container, NEXT_LAUNCH, pid)
    words = following.stdout.split()
    if following.returncode != 0 or len(words) != 3:
        failed = why(following)
        return [("a process left behind ends with the worker", False, f"pid {pid}; next: {failed}"),
                ("the next worker starts and answers", False, failed)]  # fmt: skip
    left, status, uid = words
    return [
        ("a process left behind ends with the worker", left == "gone",
         f"grandchild {pid}: {'gone' if left == 'gone' else 'still there'} when the worker exited"),
        ("the next worker starts and answers", status == "200", f"uid {uid}: health -> {status}"),
    ]  # fmt: skip


def other_launch_row(engine: str, container: str) -> Row:
    """Two launches at once (FUNCTIONS_WORKER_PROCESS_COUNT above 1, or a survivor and the next)."""
    name = "another launch's /proc/<pid>/mem out of reach"
    holder = subprocess.Popen(
        [engine, "exec", "--interactive", "--user", "0:0", container, "python", "-c", HOLD],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None  # noqa: S101 - Popen with stdout=PIPE always has it
        line = holder.stdout.readline().split()
        if len(line) != 2:
            return name, False, f"the first launch did not start: {line}"
        pid, holder_uid = line
        result = in_container(engine, container, REACH, pid)
        words = result.stdout.split()
        if result.returncode != 0 or len(words) != 4:
            return name, False, why(result)
        uid, *answers = words
        ok = "reached" not in answers
        reached = ", ".join(answers)
        told = f"uid {uid} -> pid {pid} (uid {holder_uid}): signal, environ, mem: {reached}"
        return name, ok, told
    finally:
        try:
            holder.communicate(input="", timeout=TIMEOUT_SECONDS)  # stdin closed: the launch ends
        except subprocess.TimeoutExpired:
            holder.kill()
            holder.communicate()


def launch_rows(engine: str, container: str) -> list[Row]:
    return [*left_behind_rows(engine, container), other_launch_row(engine, container)]
