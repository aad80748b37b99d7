"""Exploited code in the worker tries what container escapes and persistence start from.

Each attack is Python run inside the worker the launcher starts (as root, with the shipped
policy), and asserts the exact errno. Its control runs the same code directly as the same
unprivileged account, without the launcher, and shows that the attack works there: the refusal
is the launcher's doing, not this machine's.
"""

import os
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import PYTHON, Account, Launcher, SandboxDirs, become, default_policy

# System-call numbers the attacks use, per architecture (the filter knows these two).
NUMBERS = {
    "x86_64": {
        "unshare": 272, "clone": 56, "keyctl": 250, "add_key": 248, "ptrace": 101,
        "process_vm_readv": 310, "bpf": 321, "io_uring_setup": 425, "userfaultfd": 323,
        "perf_event_open": 298, "mount": 165, "open_tree": 428, "getpid": 39,
    },
    "aarch64": {
        "unshare": 97, "clone": 220, "keyctl": 219, "add_key": 217, "ptrace": 117,
        "process_vm_readv": 270, "bpf": 280, "io_uring_setup": 425, "userfaultfd": 282,
        "perf_event_open": 241, "mount": 40, "open_tree": 428, "getpid": 172,
    },
}  # fmt: skip
NR = NUMBERS[platform.machine()]
ROOT_KEY = "launcher-test-root-key"

# Defines call(name, *args) -> "ok" or the errno's name, for the attacks below.
PRELUDE = f"""
import ctypes, errno, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
NR = {NR!r}
def raw(name, *args):
    pointers = (bytes, ctypes.Array, type(None))
    converted = [a if isinstance(a, pointers) else ctypes.c_long(a) for a in args]
    return libc.syscall(ctypes.c_long(NR[name]), *converted), ctypes.get_errno()
def name_of(result):
    value, error = result
    return "ok" if value >= 0 else errno.errorcode[error]
def call(name, *args):
    return name_of(raw(name, *args))
"""

CLONE_NEWUSER, CLONE_NEWNS, SIGCHLD = 0x10000000, 0x00020000, 17
ATTACKS: dict[str, str] = {
    # A user namespace: a full capability set over the kernel's namespaced surface.
    "unshare a user namespace": f"print(call('unshare', {CLONE_NEWUSER}))",
    # The same through clone (what glibc falls back to when clone3 answers ENOSYS).
    "clone into new user and mount namespaces": f"""
value, error = raw('clone', {CLONE_NEWUSER | CLONE_NEWNS | SIGCHLD}, 0, 0, 0, 0)
if value == 0:
    os._exit(0)
if value > 0:
    os.waitpid(value, 0)
print(name_of((value, error)))
""",
    # Mount inside a namespace of one's own: the step after unshare.
    "mount a tmpfs": f"""
call('unshare', {CLONE_NEWUSER | CLONE_NEWNS})
print(call('mount', b'none', b'/tmp', b'tmpfs', 0, None))
""",
    "open_tree of /": "print(call('open_tree', -100, b'/', 0))",
    "bpf": """
attr = ctypes.create_string_buffer(b'/sys/fs/bpf/launcher-test-none\\0')
buffer = (ctypes.c_uint64 * 8)(ctypes.addressof(attr))
print(call('bpf', 7, buffer, 64))  # BPF_OBJ_GET: reaches bpf's code without a capability
""",
    "io_uring_setup": "print(call('io_uring_setup', 8, ctypes.create_string_buffer(120)))",
    "userfaultfd": "print(call('userfaultfd', 1))  # UFFD_USER_MODE_ONLY: no privilege needed",
    "perf_event_open": """
attr = (ctypes.c_uint32 * 32)()
attr[0], attr[1], attr[2] = 1, 128, 1  # PERF_TYPE_SOFTWARE, size, PERF_COUNT_SW_TASK_CLOCK
attr[10] = 1 | 1 << 5 | 1 << 6  # disabled, exclude_kernel, exclude_hv
print(call('perf_event_open', attr, 0, -1, -1, 0))
""",
    # A sibling process of the same account: the worker's own child stands in for one.
    "ptrace attach": """
import signal
reader, writer = os.pipe()
child = os.fork()
if child == 0:
    os.read(reader, 1)
    os._exit(0)
print(call('ptrace', 16, child, 0, 0))  # PTRACE_ATTACH
os.kill(child, signal.SIGKILL)
os.waitpid(child, 0)
""",
    "process_vm_readv": """
class IoVec(ctypes.Structure):
    _fields_ = [('base', ctypes.c_void_p), ('length', ctypes.c_size_t)]
source, target = ctypes.create_string_buffer(b'secret'), ctypes.create_string_buffer(6)
local, remote = IoVec(ctypes.addressof(target), 6), IoVec(ctypes.addressof(source), 6)
local_at, remote_at = ctypes.addressof(local), ctypes.addressof(remote)
print(call('process_vm_readv', os.getpid(), local_at, 1, remote_at, 1, 0))
""",
    # Root's key, added to root's session keyring by the parent (see add_root_key).
    "keyctl read of root's key": f"""
key = raw('keyctl', 10, -3, b'user', b'{ROOT_KEY}', 0)  # KEYCTL_SEARCH the session keyring
if key[0] < 0:
    print(name_of(key))
else:
    buffer = ctypes.create_string_buffer(64)
    print(call('keyctl', 11, key[0], buffer, 64))  # KEYCTL_READ
""",
}
# Where the control's errno differs from success, and why that is still the attack reaching the
# kernel: this machine's kernel.unprivileged_bpf_disabled refuses unprivileged programs, so the
# control shows bpf's own answer (the object does not exist) instead of the filter's EPERM.
CONTROL_RESULT = {"bpf": "ENOENT"}


def add_root_key() -> None:
    """In the child, still root: a session keyring of its own with a key, as a root host's."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    if libc.syscall(ctypes.c_long(NR["keyctl"]), 1, None) < 0:  # KEYCTL_JOIN_SESSION_KEYRING
        raise OSError(ctypes.get_errno(), "keyctl(KEYCTL_JOIN_SESSION_KEYRING)")
    payload = b"canary-root-key"
    key = libc.syscall(
        ctypes.c_long(NR["add_key"]), b"user", ROOT_KEY.encode(), payload, len(payload), -3
    )
    if key < 0:
        raise OSError(ctypes.get_errno(), "add_key")


def then(*steps: Callable[[], None]) -> Callable[[], None]:
    def run_all() -> None:
        for step in steps:
            step()

    return run_all


def run_directly(code: str, worker: Account, home: Path) -> subprocess.CompletedProcess[bytes]:
    """The control: the same code as the same account without the launcher (keeping root's keys)."""
    return run_directly_args(code, [], worker, home)


def run_directly_args(
    code: str, args: list[str], worker: Account, home: Path
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [PYTHON, "-c", code, *args],
        env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
        preexec_fn=then(add_root_key, become(worker)),
        capture_output=True,
        cwd="/",
        timeout=60,
        check=False,
    )


@pytest.fixture
def worker_home(worker: Account) -> Iterator[Path]:
    """A HOME the account owns, as a worker started without the launcher had (HOME=/tmp)."""
    top = Path(tempfile.mkdtemp(prefix="launcher-home-", dir="/var/tmp"))
    top.chmod(0o755)  # pytest's tmp_path is root's 0700: the account could not reach it
    home = top / "home"
    home.mkdir()
    os.chown(home, worker.uid, worker.gid)
    yield home
    shutil.rmtree(top, ignore_errors=True)


@pytest.mark.parametrize("attack", ATTACKS)
def test_attack_is_refused_in_the_worker_and_works_without_the_launcher(
    launcher: Launcher, worker: Account, sandbox_dirs: SandboxDirs, worker_home: Path, attack: str
) -> None:
    code = PRELUDE + ATTACKS[attack]
    launcher.write_policy(default_policy(worker, dirs=sandbox_dirs))
    refused = launcher.run(["-c", code], preexec_fn=add_root_key)
    control = run_directly(code, worker, worker_home)
    assert control.returncode == 0, control.stderr.decode()
    assert control.stdout.decode().strip() == CONTROL_RESULT.get(attack, "ok")
    assert refused.returncode == 0, refused.stderr.decode()
    assert refused.stdout.decode().strip() == "EPERM"


SHOW_KEYS = "print(open('/proc/keys').read())"


def test_root_session_keyring_is_not_handed_over(
    launcher: Launcher, worker: Account, sandbox_dirs: SandboxDirs, worker_home: Path
) -> None:
    """/proc/keys lists the keys a process may view: a possessed keyring's keys included. The
    filter already refuses keyctl; this shows root's keyring is gone even without it."""
    launcher.write_policy(default_policy(worker, dirs=sandbox_dirs))
    launched = launcher.run(["-c", SHOW_KEYS], preexec_fn=add_root_key)
    control = run_directly(SHOW_KEYS, worker, worker_home)
    assert launched.returncode == 0 and control.returncode == 0, launched.stderr + control.stderr
    assert ROOT_KEY in control.stdout.decode()
    assert ROOT_KEY not in launched.stdout.decode()
    assert "_ses" in launched.stdout.decode()  # a session keyring of the worker's own


PLANT = """
import os, site, sys
payload = "print('PLANTED-CODE-RAN')\\n"
results = []
targets = [
    (site.getusersitepackages(), 'usercustomize.py', payload),
    (site.getusersitepackages(), 'planted.pth', 'import sys; ' + payload),
    (os.environ['HOME'], 'usercustomize.py', payload),
]
for directory, name, text in targets:
    try:
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, name), 'w') as planted:
            planted.write(text)
        results.append('ok')
    except OSError as error:
        results.append(errno.errorcode[error.errno])
print(' '.join(results))
"""
NEXT_INTERPRETER = "print('next interpreter')"


def test_planted_user_site_never_runs_in_the_next_interpreter(
    launcher: Launcher, worker: Account, sandbox_dirs: SandboxDirs, worker_home: Path
) -> None:
    launcher.write_policy(default_policy(worker, dirs=sandbox_dirs))
    planted = launcher.run(["-c", "import errno\n" + PLANT])
    following = launcher.run(["-c", NEXT_INTERPRETER])
    assert planted.stdout.decode().split() == ["EACCES", "EACCES", "EACCES"], planted.stderr
    assert following.stdout.decode() == "next interpreter\n"
    # Control: a worker with a HOME of its own (the old HOME=/tmp) plants, and the next
    # interpreter runs the planted code before anything else.
    control = run_directly("import errno\n" + PLANT, worker, worker_home)
    control_next = run_directly(NEXT_INTERPRETER, worker, worker_home)
    assert control.stdout.decode().split() == ["ok", "ok", "ok"], control.stderr
    assert control_next.stdout.decode().startswith("PLANTED-CODE-RAN\n")


def test_user_site_is_off_even_where_home_holds_one(
    launcher: Launcher, worker: Account, sandbox_dirs: SandboxDirs, worker_home: Path
) -> None:
    """PYTHONNOUSERSITE: a user site that exists anyway (an image mistake) is ignored."""
    site = subprocess.run(
        [PYTHON, "-c", "import site; print(site.getusersitepackages())"],
        env={"HOME": str(worker_home)}, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    Path(site).mkdir(parents=True)
    (Path(site) / "usercustomize.py").write_text("print('PLANTED-CODE-RAN')\n")
    policy = default_policy(worker, dirs=sandbox_dirs)
    launcher.write_policy(
        policy.replace(f"set HOME={sandbox_dirs.home}", f"set HOME={worker_home}")
    )
    launched = launcher.run(["-c", NEXT_INTERPRETER])
    control = run_directly(NEXT_INTERPRETER, worker, worker_home)
    assert launched.stdout.decode() == "next interpreter\n", launched.stderr
    assert control.stdout.decode() == "PLANTED-CODE-RAN\nnext interpreter\n"


WRITE_TMP = """
import errno, os
def attempt(path):
    try:
        with open(path, 'w') as handle:
            handle.write('persist')
        os.unlink(path)
        return 'ok'
    except OSError as error:
        return errno.errorcode[error.errno]
print(attempt('/tmp/launcher-test-persist-%d' % os.getpid()),
      attempt(os.environ.get('TMPDIR', '/tmp') + '/own-file'))
"""


def test_worker_writes_only_its_own_tmpdir(
    launcher: Launcher, worker: Account, sandbox_dirs: SandboxDirs, worker_home: Path
) -> None:
    """/tmp here is world-writable (1777) like a stock image's: Landlock refuses it all the same."""
    launcher.write_policy(default_policy(worker, dirs=sandbox_dirs))
    launched = launcher.run(["-c", WRITE_TMP])
    control = run_directly(WRITE_TMP, worker, worker_home)
    assert launched.stdout.decode().split() == ["EACCES", "ok"], launched.stderr
    assert control.stdout.decode().split() == ["ok", "ok"], control.stderr


TRUNCATE = """
import errno, os, sys
try:
    os.truncate(sys.argv[1], 0)
    print('ok')
except OSError as error:
    print(errno.errorcode[error.errno])
"""


def test_worker_cannot_truncate_what_it_may_write_outside_its_tmpdir(
    launcher: Launcher, worker: Account, sandbox_dirs: SandboxDirs, worker_home: Path
) -> None:
    """truncate(2) needs no open for writing: Landlock's truncate right (ABI 3) is what refuses
    it on a file the account could write by its mode, outside TMPDIR."""
    launcher.write_policy(default_policy(worker, dirs=sandbox_dirs))
    precious = worker_home.parent / "precious"
    for name, run_it in (
        ("launched", lambda path: launcher.run(["-c", TRUNCATE, str(path)])),
        ("control", lambda path: run_directly_args(TRUNCATE, [str(path)], worker, worker_home)),
    ):
        precious.write_text("the app's data")
        os.chown(precious, worker.uid, worker.gid)
        result = run_it(precious)
        expected = ("EACCES", "the app's data") if name == "launched" else ("ok", "")
        assert (result.stdout.decode().strip(), precious.read_text()) == expected, (
            name,
            result.stderr,
        )
