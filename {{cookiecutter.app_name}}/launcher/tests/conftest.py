"""Fixtures: a launcher built for a policy in a temporary directory, a worker account, and a runner.

The launcher reads a root-owned policy and switches users, so these tests run as root (CI is root).
LAUNCHER_SANITIZE=1 builds it with ASan+UBSan instead (what `make test-sanitized` does).
"""

import ctypes
import fcntl
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

LAUNCHER_DIR = Path(__file__).resolve().parents[1]
SOURCE_DIR = LAUNCHER_DIR / "src"  # what ships: the sources, the policy, the broker's program
SANITIZE = os.environ.get("LAUNCHER_SANITIZE") == "1"
IN_CI = os.environ.get("CI", "").lower() == "true"
WORKER = "launchertest"
BROKER = "launcherbroker"


def reachable_by_anyone(path: str) -> bool:
    """Whether an unprivileged account can execute path (every directory searchable, file o+x)."""
    parts = Path(path).parents
    return all(os.stat(p).st_mode & 0o001 for p in [*parts, Path(path)])


def worker_python() -> str:
    """The interpreter the launcher runs: the one running the tests if the worker can reach it."""
    candidates = [os.path.realpath(sys.executable)]
    system = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin")
    if system:
        candidates.append(os.path.realpath(system))
    for candidate in candidates:
        if reachable_by_anyone(candidate):
            return candidate
    raise RuntimeError(f"no python the worker account can execute among {candidates}")


# By its real path: the launcher checks that file's mode, not a symlink's.
PYTHON = worker_python()

EXIT_BROKER, EXIT_SYSTEM, EXIT_PRIVILEGE, EXIT_POLICY, EXIT_EXEC = 69, 71, 77, 78, 126

# A security event, as events.c prints it (launcher/README.md, "Detection"): the exact shape.
EVENT = re.compile(
    r"^launcher-security-event: warning v1 kind=(?P<kind>syscall|launcher|forged|identity) "
    r"pid=(?P<pid>\d+) time=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ suppressed=(?P<suppressed>\d+) "
    r"detail=(?P<detail>[ -~]*)$"
)


def children(pid: int) -> list[int]:
    """The pids whose parent is pid (the launcher's supervisor, the supervisor's worker)."""
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def security_events(output: bytes | str) -> list[dict[str, str]]:
    """Every line of output that is a security event, as its fields; fails on a near miss."""
    text = output.decode() if isinstance(output, bytes) else output
    # The template's alert test collects every line about security (events, forgeries, near
    # misses) here, to run the alert's query over the lines exactly as printed.
    if record := os.environ.get("LAUNCHER_EVENT_LINES"):
        with open(record, "a", encoding="utf-8") as lines:
            lines.writelines(line + "\n" for line in text.splitlines() if "security" in line.lower())
    events = []
    for line in text.splitlines():
        if line.startswith("launcher-security-event:"):
            match = EVENT.match(line)
            assert match, f"a security event of the wrong shape: {line!r}"
            events.append(match.groupdict())
    return events


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.geteuid() != 0:
        message = "the launcher tests need root (root-owned policies, switching users)"
        if IN_CI:
            raise pytest.UsageError(message)
        for item in items:
            item.add_marker(pytest.mark.skip(reason=message))


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    gid: int


@dataclass(frozen=True)
class Launcher:
    binary: Path
    policy: Path

    def write_policy(self, text: str | bytes, mode: int = 0o644, owner: int = 0) -> None:
        """Writes the policy the binary reads, root-owned and 0644 unless told otherwise."""
        if self.policy.is_symlink() or self.policy.is_file():
            self.policy.unlink()
        elif self.policy.is_dir():
            self.policy.rmdir()
        self.policy.write_bytes(text.encode() if isinstance(text, str) else text)
        os.chown(self.policy, owner, owner)
        os.chmod(self.policy, mode)

    def run(
        self,
        args: list[str | bytes],
        env: dict[str, str] | None = None,
        as_user: Account | None = None,
        **kwargs: object,
    ) -> subprocess.CompletedProcess[bytes]:
        """Runs the launcher with argv [launcher, *args], optionally as an unprivileged user."""
        if as_user:
            kwargs["preexec_fn"] = become(as_user)
        return subprocess.run(  # callers assert on returncode
            [self.binary, *args],
            env={} if env is None else env,
            cwd="/",
            capture_output=True,
            timeout=60,
            check=False,
            **kwargs,  # type: ignore[call-overload]
        )


def become(account: Account) -> Callable[[], None]:
    def switch() -> None:
        os.setgroups([])
        os.setgid(account.gid)
        os.setuid(account.uid)

    return switch


def system_account(name: str) -> Account:
    """A system account, created if absent (CI machines are fresh)."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--user-group", "--no-create-home", "--shell",
             "/usr/sbin/nologin", name],
            check=True,
        )  # fmt: skip
        entry = pwd.getpwnam(name)
    return Account(name, entry.pw_uid, entry.pw_gid)


@pytest.fixture(scope="session")
def worker() -> Account:
    """The account the launcher drops to."""
    return system_account(WORKER)


@pytest.fixture(scope="session")
def broker() -> Account:
    """The identity broker's account: neither root nor the worker's."""
    return system_account(BROKER)


@pytest.fixture(scope="session")
def launcher() -> Iterator[Launcher]:
    """The real launcher (or its sanitized build) reading <tmp>/policy.conf."""
    # Root-owned and 0755: the worker account runs this binary in the non-root tests.
    workdir = Path(tempfile.mkdtemp(prefix="launcher-test-", dir="/tmp"))
    workdir.chmod(0o755)
    binary, policy = workdir / "launcher", workdir / "policy.conf"
    # The broker's program beside the policy, where the launcher looks for it (BROKER_PATH).
    shutil.copyfile(SOURCE_DIR / "identity_broker.py", workdir / "identity_broker.py")
    (workdir / "identity_broker.py").chmod(0o644)
    target = ["sanitized"] if SANITIZE else []
    subprocess.run(
        ["make", "-s", "-C", LAUNCHER_DIR, *target, f"OUT={binary}", f"POLICY_PATH={policy}"],
        check=True,
    )
    # The sanitized run must really run the sanitized code, not a stale static build.
    assert (b"__asan_init" in binary.read_bytes()) == SANITIZE
    yield Launcher(binary, policy)
    shutil.rmtree(workdir, ignore_errors=True)


@dataclass(frozen=True)
class SandboxDirs:
    home: Path  # root-owned, 0755, empty: the worker's HOME
    tmpdir: Path  # the worker's own, 0700: its TMPDIR


@pytest.fixture(scope="session")
def sandbox_dirs(worker: Account) -> Iterator[SandboxDirs]:
    """HOME and TMPDIR as image/hardening/harden.py makes them, under a root-owned directory."""
    top = Path(tempfile.mkdtemp(prefix="launcher-sandbox-", dir="/var/tmp"))
    top.chmod(0o755)
    dirs = SandboxDirs(top / "home", top / "tmp")
    dirs.home.mkdir(mode=0o755)
    dirs.tmpdir.mkdir(mode=0o700)
    os.chown(dirs.tmpdir, worker.uid, worker.gid)
    yield dirs
    shutil.rmtree(top, ignore_errors=True)


@dataclass(frozen=True)
class LaunchUids:
    first: int
    last: int
    dirs: SandboxDirs  # HOME, and TMPDIR: root's, 0711, each launch's own directory made in it

    def directive(self) -> str:
        return f"launch-uids {self.first}-{self.last}"


# Two runs of this suite at once on one machine (CI jobs, two checkouts) must not share launch
# uids: each run's launches lock their uids in that run's own directory, so both would hand out
# the same uid, and a worker's first act (kill(-1) as its uid, lifetime.c) would kill the other
# run's worker of that uid. A lock per range of eight, held for the session, keeps them apart.
UID_RANGE_LOCKS = Path("/var/tmp/launcher-test-uid-ranges")


def claim_uid_range() -> tuple[int, int]:
    """The first of eight uids no account of this machine has and no other run holds, and the
    open lock file that holds them (the kernel releases it when this process ends)."""
    taken = {entry.pw_uid for entry in pwd.getpwall()}
    UID_RANGE_LOCKS.mkdir(mode=0o700, exist_ok=True)
    for first in range(61000, 65000, 8):
        if taken & set(range(first, first + 8)):
            continue
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        lock = os.open(UID_RANGE_LOCKS / f"{first}.lock", flags, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock)
            continue
        return first, lock
    raise RuntimeError("no range of eight free uids in 61000-64999 (other runs hold them all)")


@pytest.fixture(scope="session")
def launch_uids() -> Iterator[LaunchUids]:
    """Eight uids no account of this machine has and no other run of the suite uses, and the
    root-owned directory their TMPDIRs and locks go in, as image/hardening/harden.py makes them."""
    first, lock = claim_uid_range()
    top = Path(tempfile.mkdtemp(prefix="launcher-launches-", dir="/var/tmp"))
    top.chmod(0o755)
    dirs = SandboxDirs(top / "home", top / "tmp")
    dirs.home.mkdir(mode=0o755)
    dirs.tmpdir.mkdir(mode=0o711)
    yield LaunchUids(first, first + 7, dirs)
    shutil.rmtree(top, ignore_errors=True)
    os.close(lock)


def default_policy(
    worker: Account, extra: str = "", dirs: SandboxDirs | None = None, uids: LaunchUids | None = None
) -> str:
    """The shipped policy.conf with this machine's interpreter, the test account and, when given,
    the test's HOME and TMPDIR (without them, Landlock is switched off: the image's paths do not
    exist on the test machine). launch-uids only with uids (their directories then), so that the
    other tests see the worker run as the account itself."""
    text = (SOURCE_DIR / "policy.conf").read_text()
    assert re.search(r"(?m)^launch-uids ", text), "the shipped policy gives each launch its own uid"
    text = re.sub(r"(?m)^launch-uids .*$", uids.directive() if uids else "", text)
    dirs = uids.dirs if uids else dirs
    text = re.sub(r"(?m)^exec .*$", f"exec {PYTHON}", text)
    text = re.sub(r"(?m)^user .*$", f"user {worker.name}", text)
    text = re.sub(r"(?m)^broker .*$", f"broker {BROKER}", text)
    if dirs:
        text = re.sub(r"(?m)^set HOME=.*$", f"set HOME={dirs.home}", text)
        text = re.sub(r"(?m)^set TMPDIR=.*$", f"set TMPDIR={dirs.tmpdir}", text)
    else:
        text = re.sub(r"(?m)^landlock .*$", "landlock off", text)
    return text + extra


def minimal_policy(worker: Account, *lines: str) -> str:
    return "\n".join([f"exec {PYTHON}", f"user {worker.name}", *lines]) + "\n"


class SockFilter(ctypes.Structure):
    _fields_ = [
        ("code", ctypes.c_ushort),
        ("jt", ctypes.c_ubyte),
        ("jf", ctypes.c_ubyte),
        ("k", ctypes.c_uint),
    ]


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]


def refuse_before_exec(number: int, errno_value: int, first_argument: int | None = None) -> None:
    """A seccomp filter of the test's own, in the child before exec: it answers one call (with
    one first argument) with an errno, as a kernel without it or a container engine would."""
    load_nr, load_arg0 = SockFilter(0x20, 0, 0, 0), SockFilter(0x20, 0, 0, 16)
    allow, refuse = (
        SockFilter(0x06, 0, 0, 0x7FFF0000),
        SockFilter(0x06, 0, 0, 0x00050000 | errno_value),
    )
    if first_argument is None:
        insns = [load_nr, SockFilter(0x15, 0, 1, number), refuse, allow]
    else:
        insns = [load_nr, SockFilter(0x15, 0, 3, number), load_arg0,
                 SockFilter(0x15, 0, 1, first_argument), refuse, allow]  # fmt: skip
    program = (SockFilter * len(insns))(*insns)
    fprog = SockFprog(len(insns), program)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(38, 1, 0, 0, 0) != 0 or libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP)")
