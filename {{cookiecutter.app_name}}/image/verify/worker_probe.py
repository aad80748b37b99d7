"""What function code could do, run inside the container exactly as the host runs the worker.

verify_image.py passes this file's text to `python -c` through `ENGINE exec` as root, so it runs
through whatever `python` the image has on PATH (the launcher, in a hardened image). Arguments:
the canary marker and the worker's expected account. It prints one JSON object, check name to
[passed, detail]; no detail ever contains a variable's value.
"""

import json
import os
import pwd
import stat
import sys
import sysconfig
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

Result = tuple[bool, str]


def launch_uids() -> range:
    """The policy's launch-uids: each launch runs as one of these, in the worker's group."""
    try:
        policy = Path("/etc/launcher/policy.conf").read_text().splitlines()
    except OSError:
        return range(0)
    for line in policy:
        words = line.split()
        if words[:1] == ["launch-uids"] and len(words) > 1:
            first, _, last = words[1].partition("-")
            return range(int(first), int(last) + 1)
    return range(0)


def runs_as_worker(user: str) -> Result:
    uids, gids, groups = os.getresuid(), os.getresgid(), os.getgroups()
    actual = f"uid {uids[0]} gid {gids[0]} groups {groups}"
    try:
        expected = pwd.getpwnam(user)
    except KeyError:
        return False, f"{actual}; the image has no account {user}"
    allowed = {expected.pw_uid, *launch_uids()}
    ok = len(set(uids)) == 1 and uids[0] in allowed and set(gids) == {expected.pw_gid}
    ok = ok and 0 not in groups and uids[0] != 0
    own = " (a launch uid of its own)" if uids[0] in launch_uids() else ""
    return ok, f"{actual}{own} (expected {user}={expected.pw_uid} or its launch uids)"


def environ_is_clean(marker: str) -> Result:
    leaked = sorted(name for name, value in os.environ.items() if marker in value)
    return not leaked, f"leaked: {', '.join(leaked)}" if leaked else f"{len(os.environ)} names"


def proc_environ_is_clean(marker: str) -> Result:
    raw = Path("/proc/self/environ").read_bytes()
    leaked = sorted(
        entry.split(b"=", 1)[0].decode(errors="replace")
        for entry in raw.split(b"\0")
        if marker.encode() in entry
    )
    return not leaked, f"leaked: {', '.join(leaked)}" if leaked else "no canary"


def host_environ_unreadable() -> Result:
    argv = Path("/proc/1/cmdline").read_bytes().split(b"\0")
    command = " ".join(arg.decode(errors="replace").rsplit("/", 1)[-1] for arg in argv[:2])
    try:
        Path("/proc/1/environ").read_bytes()
    except PermissionError:
        return True, f"PermissionError reading PID 1's environ ({command})"
    return False, f"PID 1's environ ({command}) is readable"


def cannot_write(label: str, top: Path) -> Result:
    probe = top / ".verify-image-write-probe"
    try:
        probe.write_bytes(b"")
    except OSError as error:
        writable = [p for p in [top, *top.rglob("*")] if os.access(p, os.W_OK)]
        if writable:
            return False, f"{len(writable)} writable paths in {label}, e.g. {writable[0]}"
        return True, f"{type(error).__name__} writing {top}; nothing in it writable"
    probe.unlink()
    return False, f"wrote {probe}"


def cannot_regain_root() -> Result:
    for name, call in (("setuid", os.setuid), ("setgid", os.setgid)):
        try:
            call(0)
        except PermissionError:
            continue
        return False, f"{name}(0) succeeded"
    return True, "setuid(0) and setgid(0) refused"


def no_new_privs() -> Result:
    status = Path("/proc/self/status").read_text().splitlines()
    value = next((line.split()[1] for line in status if line.startswith("NoNewPrivs:")), "?")
    return value == "1", f"NoNewPrivs: {value}"


def identity_endpoint_is_the_brokers(marker: str) -> Result:
    endpoint = os.environ.get("IDENTITY_ENDPOINT", "")
    header = os.environ.get("IDENTITY_HEADER", "")
    if marker in header:
        return False, "the worker holds the platform's IDENTITY_HEADER"
    brokered = endpoint.startswith("http://127.0.0.1:") and len(header) == 64
    return brokered, f"IDENTITY_ENDPOINT {endpoint or '(none)'}, a {len(header)}-character header"


def storage_token_refused() -> Result:
    """What exploited code would try first: a token for the host's storage."""
    endpoint = os.environ.get("IDENTITY_ENDPOINT", "")
    header = os.environ.get("IDENTITY_HEADER", "")
    if not endpoint.startswith("http://"):
        return False, f"no http IDENTITY_ENDPOINT in the worker: {endpoint or '(none)'}"
    url = f"{endpoint}?api-version=2019-08-01&resource=https://storage.azure.com"
    request = urllib.request.Request(url, headers={"X-IDENTITY-HEADER": header})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - http only
            return False, f"storage token request answered {answer.status}"
    except urllib.error.HTTPError as error:
        message = json.loads(error.read() or b"{}").get("message", "")
        refused = error.code == 403 and "refused by the launcher's policy" in message
        return refused, f"HTTP {error.code}: {message[:90]}"
    except OSError as error:
        return False, f"not answered by a broker: {type(error).__name__}"


def reachable(pid: str) -> list[str]:
    """What of another process the worker can reach: its environ, its memory, a signal."""
    found = []
    for what, path in (("environ", f"/proc/{pid}/environ"), ("mem", f"/proc/{pid}/mem")):
        try:
            with open(path, "rb"):
                found.append(f"{what} of {pid}")
        except PermissionError:
            pass
    try:
        os.kill(int(pid), 0)
        found.append(f"signal to {pid}")
    except PermissionError:
        pass
    return found


def broker_is_out_of_reach() -> Result:
    """The broker holds the platform's header: its account is not the worker's, its /proc closed."""
    try:
        policy = Path("/etc/launcher/policy.conf").read_text().splitlines()
    except OSError:
        return False, "no launcher policy"
    accounts = [line.split()[1] for line in policy if line.split()[:1] == ["broker"]]
    if not accounts:
        return False, "the policy names no broker"
    uid = pwd.getpwnam(accounts[0]).pw_uid
    pids = [p for p in os.listdir("/proc") if p.isdigit() and os.stat(f"/proc/{p}").st_uid == uid]
    detail = f"broker {accounts[0]} uid {uid}, pid {', '.join(pids) or '(none)'}"
    if not pids or uid in (0, os.getuid()):
        return False, detail
    found = [what for pid in pids for what in reachable(pid)]
    return (
        not found,
        f"{detail}: reached {', '.join(found)}" if found else f"{detail}: out of reach",
    )


def no_installer_modules() -> Result:
    """No way to install code from Python itself: `python -m pip install --target /tmp/x`."""
    import importlib.util

    found = [name for name in ("pip", "setuptools", "wheel", "ensurepip")
             if importlib.util.find_spec(name) is not None]  # fmt: skip
    return not found, f"importable: {', '.join(found)}" if found else "none importable"


def syscall_errno(number: int, *args: object) -> str:
    """'ok' or the errno's name for a raw system call."""
    import ctypes
    import errno

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    result = libc.syscall(ctypes.c_long(number), *args)
    return "ok" if result >= 0 else errno.errorcode[ctypes.get_errno()]


# x86_64 and aarch64 numbers: the launcher's filter knows these two architectures.
UNSHARE = {"x86_64": 272, "aarch64": 97}
KEYCTL = {"x86_64": 250, "aarch64": 219}


def cannot_unshare_user_namespace() -> Result:
    import platform

    clone_newuser = 0x10000000
    result = syscall_errno(UNSHARE[platform.machine()], clone_newuser)
    return result == "EPERM", f"unshare(CLONE_NEWUSER): {result}"


def keyctl_refused() -> Result:
    import ctypes
    import platform

    status = Path("/proc/self/status").read_text()
    mode = next(
        (line.split()[1] for line in status.splitlines() if line.startswith("Seccomp:")), "?"
    )
    get_keyring_id, session = 0, -3  # KEYCTL_GET_KEYRING_ID of the session keyring
    result = syscall_errno(KEYCTL[platform.machine()], get_keyring_id, ctypes.c_long(session), 0)
    return result == "EPERM" and mode == "2", f"keyctl: {result}; Seccomp: {mode}"


def cannot_plant_user_site() -> Result:
    """The next interpreter must not find a usercustomize.py of the attacker's."""
    import site

    user_site = Path(site.getusersitepackages())
    planted = user_site / "usercustomize.py"
    try:
        user_site.mkdir(parents=True, exist_ok=True)
        planted.write_text("# written by verify-image's probe, removed at once\n")
    except OSError as error:
        enabled = "on" if site.ENABLE_USER_SITE else "off"
        return (
            not site.ENABLE_USER_SITE,
            f"{type(error).__name__} writing {user_site}; user site {enabled}",
        )
    planted.unlink()
    return False, f"wrote {planted}"


def home_not_writable() -> Result:
    home = Path(os.environ.get("HOME", "/"))
    info = home.stat()
    writable = os.access(home, os.W_OK)
    return (
        not writable and info.st_uid == 0,
        f"HOME={home}, owner uid {info.st_uid}, writable: {writable}",
    )


def tmpdir_private() -> Result:
    tmpdir = os.environ.get("TMPDIR")
    if not tmpdir:
        return False, "TMPDIR is not set: the worker writes the shared /tmp"
    info = Path(tmpdir).stat()
    mode = stat.S_IMODE(info.st_mode)
    private = info.st_uid == os.getuid() and mode == 0o700
    return private, f"TMPDIR={tmpdir}, owner uid {info.st_uid}, mode {mode:o}"


def cannot_write_shared_tmp() -> Result:
    """Files left in /tmp outlive the worker and are read by root's host and later workers."""
    refusals = []
    for top in (Path("/tmp"), Path("/var/tmp")):  # noqa: S108 (probed, not used)
        probe = top / f".verify-image-{os.getpid()}"
        try:
            probe.write_bytes(b"")
        except OSError as error:
            refusals.append(f"{top}: {type(error).__name__}")
            continue
        probe.unlink()
        return False, f"wrote {probe}"
    return True, ", ".join(refusals)


def no_writable_sys_path() -> Result:
    """An entry the worker can write (or create) is code the next import runs."""
    writable = []
    for entry in sys.path:
        path = Path(entry or os.getcwd())  # '' is the working directory
        while not path.exists():
            path = path.parent
        if os.access(path, os.W_OK):
            writable.append(entry)
    return (
        not writable,
        f"writable: {', '.join(writable)}" if writable else f"{len(sys.path)} entries",
    )


def written_program_refused() -> Result:
    """A program the worker brings (a copy of one, written to TMPDIR; a memfd) must not run:
    nothing it creates may carry an execute bit, whatever the kernel (the launcher's filter)."""
    import errno
    import shutil

    def attempt(action: Callable[[], object]) -> str:
        try:
            action()
            return "ok"
        except OSError as error:
            return errno.errorcode.get(error.errno or 0, str(error))

    def run(path: str) -> str:
        child = os.fork()
        if child == 0:
            try:
                os.execv(path, [path, "--version"])  # noqa: S606 - the attack under test
            except OSError as error:
                os._exit(100 + (error.errno or 0))
        code = os.waitstatus_to_exitcode(os.waitpid(child, 0)[1])
        return errno.errorcode[code - 100] if code > 100 else "ran"

    where = Path(os.environ.get("TMPDIR") or "/tmp")  # noqa: S108 (the unhardened image's)
    copy = where / f"verify-image-program-{os.getpid()}"
    shutil.copyfile(os.path.realpath(sys.executable), copy)
    try:
        made = attempt(lambda: copy.chmod(0o755))
        ran = run(str(copy))
        created = attempt(lambda: os.close(os.open(f"{copy}-x", os.O_CREAT | os.O_WRONLY, 0o755)))
        memfd = attempt(lambda: os.close(os.memfd_create("program", 0)))
    finally:
        for leftover in (copy, Path(f"{copy}-x")):
            leftover.unlink(missing_ok=True)
    ok = (made, ran, created, memfd) == ("EPERM", "EACCES", "EPERM", "EPERM")
    return ok, (f"copy in {where}: chmod +x {made}, run {ran}; create with +x {created}; "
                f"memfd {memfd}; {landlock_execution()}")  # fmt: skip


def metadata_endpoint_refused() -> Result:
    """A token from the metadata endpoint needs no secret (launcher/README.md, Egress): the worker
    must not connect to 169.254.169.254:80. Under the launcher's Landlock (ABI 4 on) that is
    EACCES before any packet leaves; an older kernel cannot refuse it, and the detail says so."""
    import errno
    import socket

    abi = landlock_abi()
    try:
        with socket.create_connection(("169.254.169.254", 80), timeout=2):
            outcome = "connected"
    except OSError as error:
        outcome = errno.errorcode.get(error.errno or 0, type(error).__name__)
    if outcome == "EACCES":
        return True, f"EACCES (Landlock ABI {abi}: TCP to the policy's ports only)"
    if abi < 4:
        where = f"Landlock ABI {abi}" if abi > 0 else "no Landlock"
        return True, (f"{outcome}: not enforced here ({where}; needs ABI 4, Linux 6.7): "
                      "the platform's network rules must (launcher/README.md, Egress)")  # fmt: skip
    return False, f"{outcome} under Landlock ABI {abi}: not refused"


def landlock_abi() -> int:
    """The kernel's Landlock ABI (0: none, or refused to this process)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    # landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION): 444 on every architecture.
    return max(int(libc.syscall(ctypes.c_long(444), None, ctypes.c_long(0), ctypes.c_long(1))), 0)


def landlock_execution() -> str:
    """Whether the kernel here also confines execution (Landlock): then even a program already in
    the image cannot be run; without it, the filter alone holds, for what the worker writes."""
    abi = landlock_abi()
    if abi > 0:
        return f"Landlock ABI {abi}: only the interpreter, the launcher and the loader may run"
    return ("no Landlock here: a program already in the image could be run (the image keeps "
            "only the host's, the interpreter and the launcher)")  # fmt: skip


def health_answers() -> Result:
    root = os.environ.get("AzureWebJobsScriptRoot", "/home/site/wwwroot")  # noqa: SIM112
    os.chdir(root)
    sys.path.insert(0, root)
    # Imported here, after the code directory is on sys.path, from the image's own packages.
    import azure.functions as func

    from function_app import app

    names = {str(f.get_function_name()): f for f in app.get_functions()}
    if "health" not in names:
        return False, f"no function named health among {sorted(names)}"
    request = func.HttpRequest(method="GET", url="/api/health", body=b"")
    response = names["health"].get_user_function()(request)
    return response.status_code == 200, f"{len(names)} functions; health -> {response.status_code}"


# What exploited code would write to pass for the launcher (launcher/README.md, "Detection");
# verify_image.py checks that it reached the host defanged and was reported.
FORGED_EVENT = (
    "launcher-security-event: warning v1 kind=forged pid=1 time=2026-01-01T00:00:00Z "
    "suppressed=0 detail=written by the worker probe"
)


def main() -> None:
    marker, user = sys.argv[1], sys.argv[2]
    print(FORGED_EVENT, file=sys.stderr, flush=True)
    purelib = Path(sysconfig.get_paths()["purelib"])
    checks: dict[str, Callable[[], Result]] = {
        f"worker runs as {user}, not root": lambda: runs_as_worker(user),
        "no canary in os.environ": lambda: environ_is_clean(marker),
        "no canary in /proc/self/environ": lambda: proc_environ_is_clean(marker),
        "cannot read the host's /proc/1/environ": host_environ_unreadable,
        "cannot write the code directory": lambda: cannot_write("code", Path("/home/site/wwwroot")),
        "cannot write site-packages": lambda: cannot_write("site-packages", purelib),
        "cannot regain root": cannot_regain_root,
        "no_new_privs is set": no_new_privs,
        "worker's identity endpoint is the broker": lambda: identity_endpoint_is_the_brokers(
            marker
        ),
        "storage token refused by the broker": storage_token_refused,
        "broker's account and /proc out of reach": broker_is_out_of_reach,
        "no package installer modules": no_installer_modules,
        "cannot unshare a user namespace": cannot_unshare_user_namespace,
        "no seccomp-free syscalls: keyctl refused": keyctl_refused,
        "cannot plant a user site": cannot_plant_user_site,
        "HOME not writable": home_not_writable,
        "TMPDIR private": tmpdir_private,
        "cannot write /tmp or /var/tmp": cannot_write_shared_tmp,
        "no sys.path entry writable": no_writable_sys_path,
        "a program the worker writes does not run": written_program_refused,
        "no token from the metadata endpoint (169.254.169.254:80)": metadata_endpoint_refused,
        "function app imports, health answers": health_answers,
    }
    results: dict[str, Result] = {}
    for name, check in checks.items():
        try:
            results[name] = check()
        except Exception as error:  # a failing probe is a FAIL row, not a crash
            results[name] = (False, f"{type(error).__name__}: {error}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
