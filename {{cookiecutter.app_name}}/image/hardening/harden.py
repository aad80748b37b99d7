"""Harden the image in place: run once, as root, by the Dockerfile's `hardened` stage.

The steps run in the order they must: everything that still needs the base image's tools first
(creating the worker account), the removals last. It uses only the standard library of the
base image's own interpreter, because by the end there is no shell to run anything else.
Every step fails the build with one sentence instead of leaving a half-hardened image.
"""

import argparse
import importlib.metadata
import importlib.util
import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import NoReturn

APP_DIR = Path("/home/site/wwwroot")
POLICY = Path("/etc/launcher/policy.conf")
# Where the launcher looks for the identity broker's program: beside the policy (BROKER_PATH).
BROKER_PROGRAM = POLICY.with_name("identity_broker.py")
# The Functions host and everything it ships (Azure/azure-functions-docker copies it whole into
# every image). Its executables are the host's own; a `python` here would win over PATH.
HOST_DIR = Path("/azure-functions-host")
# Shared libraries are loaded, not run: they stay whatever their mode (libc.so.6, ld-linux-*.so.2,
# Python's extension modules).
SHARED_LIBRARY = re.compile(r"\.so(\.[0-9]+)*$")
# The directories a file-system walk must not enter: kernel views and the build's own mounts.
PSEUDO_FILESYSTEMS = ("/proc", "/sys", "/dev")
# Anything an attacker with code execution would reach for: shells, downloaders, interpreters
# other than Python, package managers, privilege tools, remote access. Removed wherever found.
FORBIDDEN = {
    "sh", "bash", "dash", "rbash", "zsh", "ksh", "mksh", "csh", "tcsh", "fish", "busybox",
    "toybox", "curl", "wget", "perl", "nc", "ncat", "netcat", "socat", "telnet", "ftp",
    "apt", "apt-get", "apt-cache", "apt-key", "dpkg", "dpkg-deb", "dpkg-divert",
    "su", "sudo", "doas", "runuser", "setpriv", "chroot", "nsenter", "unshare", "capsh",
    "ssh", "sshd", "scp", "sftp", "sftp-server", "passwd", "chsh", "chfn", "newgrp",
    "gpasswd", "mount", "umount", "pip", "gcc", "cc", "make", "gdb", "strace",
}  # fmt: skip
# Names on PATH that survive besides `python`: add one only if the app runs it at run time, and
# say why here; each is a tool for an attacker too (a FORBIDDEN name goes regardless). The
# Functions host starts its worker through `python`; nothing else on PATH is known to be needed.
KEPT_ON_PATH: set[str] = set()
# Directories removed whole: sshd's host keys (private keys baked into a public image) and the
# base's bash entry scripts, which cannot run without bash and are replaced by ENTRYPOINT.
REMOVED_DIRS = ("/etc/ssh", "/opt/startup")
# Package installers, removed as modules (pip's script goes with everything else on PATH).
INSTALLERS = ("pip", "setuptools", "wheel")


def fail(message: str) -> NoReturn:
    print(f"harden: {message}", file=sys.stderr)
    raise SystemExit(1)


def walk(top: str) -> list[Path]:
    """Every path under top, not following symbolic links or entering pseudo file systems."""
    found: list[Path] = []
    for root, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if os.path.join(root, d) not in PSEUDO_FILESYSTEMS]
        found.extend(Path(root, name) for name in dirs + files)
    return found


def ensure_account(user: str) -> None:
    """Create an account (the worker's, the broker's) unless the base has it; it owns nothing."""
    if any(line.split(":")[0] == user for line in Path("/etc/passwd").read_text().splitlines()):
        return
    useradd = shutil.which("useradd")
    if useradd is None:
        fail(f"the base image has no account {user!r} and no useradd to create it.")
    # --system: no aging, no mail spool; no home, no login shell: the worker only runs Python.
    subprocess.run(
        [useradd, "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
         "--shell", "/usr/sbin/nologin", user],
        check=True,
    )  # fmt: skip


def resolve_host_python() -> tuple[Path, Path]:
    """(`python` as the host finds it on PATH, the real interpreter behind it).

    The host starts `python` as .NET's Process.Start does (dotnet/runtime, Process.Unix.cs,
    ResolvePath): from its own directory first, then its working directory, then PATH. Nothing
    named python may exist in the first two, or the launcher on PATH would never be reached.
    """
    for directory in (HOST_DIR, Path.cwd()):
        ahead = directory / "python"
        if ahead.exists() or ahead.is_symlink():
            fail(f"{ahead} exists: the host would start it instead of the launcher; remove it.")
    found = shutil.which("python")
    if found is None:
        fail("no `python` on the image's PATH: is BASE_IMAGE a Functions Python image?")
    python = Path(found)
    real = python.resolve()
    if real == python:
        fail(f"{python} is the interpreter itself, not a link; the launcher cannot take its place.")
    return python, real


def path_dirs() -> list[Path]:
    return list(dict.fromkeys(Path(d).resolve() for d in os.environ["PATH"].split(":") if d))


def install_launcher(launcher: Path, python: Path, real: Path) -> tuple[list[Path], Path]:
    """Point `python` and each sibling link to the same interpreter at the launcher instead.

    The launcher sits beside the interpreter, in its bin directory: Python finds its standard
    library from where the `python` it was started as leads (/opt/python/<version>/bin in the
    3.12+ images, /usr/local/bin in the 3.11 one), so the links must keep leading there. Where
    that directory is itself on PATH (3.11: /usr/local/bin/python3.11 is the interpreter), the
    interpreter moves to <prefix>/libexec and its old name leads to the launcher too: no name on
    PATH runs Python around the launcher. Returns the installed launcher and every link now
    naming it, and the interpreter's final path.
    """
    installed = real.parent / "python-launcher"
    shutil.copyfile(launcher, installed)
    os.chown(installed, 0, 0)
    installed.chmod(0o755)
    names = {python.name, "python3", real.name}  # python, python3, python3.X
    links = [
        directory / name
        for directory in path_dirs()
        for name in names
        if (directory / name).is_symlink() and (directory / name).resolve() == real
    ]
    if real.parent in path_dirs():
        moved = real.parent.parent / "libexec" / real.name
        moved.parent.mkdir(mode=0o755, exist_ok=True)
        real.rename(moved)
        links.append(real)
        real = moved
    for link in links:
        link.unlink(missing_ok=True)
        link.symlink_to(installed)
    if python not in links:
        fail(f"could not point {python} at the launcher.")
    return [installed, *links], real


def repoint_interpreter_links(real: Path, launcher: Path) -> list[Path]:
    """Every symbolic link anywhere in the image that leads to the real interpreter now leads to
    the launcher: Oryx's /opt/python/<X.Y.Z>/bin/python and python3 are off PATH, but an app
    setting (`languageWorkers__python__defaultExecutablePath`, read by the host's
    RpcWorkerConfigFactory) may name any path. Copies are programs and go in
    remove_unlisted_programs; the interpreter's own path stays (README.md, "Roads to the
    interpreter")."""
    moved = []
    for path in walk("/"):
        if path.is_symlink() and path.resolve() == real:
            path.unlink()
            path.symlink_to(launcher)
            moved.append(path)
    return moved


def policy_arguments(policy: Path, directive: str) -> list[str]:
    """The argument of each `directive` line, read as the launcher reads it: a `#` at the start of
    a line or after a blank begins a comment."""
    found = []
    for line in policy.read_text().splitlines():
        words = re.split(r"[ \t]+", re.sub(r"(^|[ \t])#.*", "", line).strip(), maxsplit=1)
        if words[0] == directive:
            found.append(words[1] if len(words) > 1 else "")
    return found


def broker_account(policy: Path) -> str | None:
    """The policy's `broker` account, if it names one."""
    return next(iter(policy_arguments(policy, "broker")), None)


def install_broker(source: Path) -> None:
    """The identity broker's program, root-owned and read-only, where the launcher checks it."""
    shutil.copyfile(source, BROKER_PROGRAM)
    os.chown(BROKER_PROGRAM, 0, 0)
    BROKER_PROGRAM.chmod(0o644)


def worker_library_path() -> str | None:
    """The base image's LD_LIBRARY_PATH as a fixed value for the worker, or None.

    Some base images find libpython only through `ENV LD_LIBRARY_PATH` (python 3.12 from August to
    October 2024: /opt/python/3.12/lib). The launcher passes no LD_* variable from the host, so the
    policy sets the value root wrote at build time instead: absolute, root-owned directories only
    (the trailing `:` that upstream's `...lib:$LD_LIBRARY_PATH` leaves means the working directory).
    """
    kept = []
    for entry in os.environ.get("LD_LIBRARY_PATH", "").split(":"):
        path = Path(entry)
        if entry and path.is_absolute() and path.is_dir():
            info = path.stat()
            if info.st_uid != 0 or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
                fail(f"LD_LIBRARY_PATH names {path}, writable by others than root.")
            kept.append(entry)
    return ":".join(dict.fromkeys(kept)) or None


def check_interpreter_starts(real: Path, library_path: str | None) -> None:
    """The interpreter runs with what the launcher will give it; else the build stops here."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin"}
    if library_path:
        env["LD_LIBRARY_PATH"] = library_path
    result = subprocess.run(
        [str(real), "-I", "-c", "import ssl, sqlite3"], env=env, capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    if result.returncode != 0:
        fail(f"{real} does not start with the worker's environment: {result.stderr.strip()[-300:]}")


def install_policy(source: Path, real: Path, library_path: str | None) -> None:
    """The policy, root-owned and read-only, pointing at the interpreter the launcher replaced."""
    lines = source.read_text().splitlines()
    execs = [i for i, line in enumerate(lines) if line.split()[:1] == ["exec"]]
    if len(execs) != 1:
        fail(f"{source} must have exactly one `exec` line, it has {len(execs)}.")
    lines[execs[0]] = f"exec {real}"
    if library_path:
        lines.insert(execs[0] + 1, f"set LD_LIBRARY_PATH={library_path}")
    POLICY.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    POLICY.write_text("\n".join(lines) + "\n")
    for path in (POLICY.parent, POLICY):
        os.chown(path, 0, 0)
    POLICY.parent.chmod(0o755)
    POLICY.chmod(0o644)


def policy_setting(policy: Path, name: str) -> Path:
    """The absolute path a `set NAME=...` line of the policy gives."""
    values = [setting.split("=", 1)[1] for setting in policy_arguments(policy, "set")
              if setting.startswith(f"{name}=")]  # fmt: skip
    if len(values) != 1 or not values[0].startswith("/"):
        fail(f"{policy} must set {name} to an absolute path exactly once.")
    return Path(values[0])


def launch_uids(policy: Path) -> range:
    """The policy's `launch-uids FIRST-LAST`, or an empty range."""
    found = policy_arguments(policy, "launch-uids")
    if not found:
        return range(0)
    first, _, last = found[0].partition("-")
    return range(int(first), int(last) + 1)


def name_launch_uids(policy: Path, user: str) -> None:
    """Each launch runs as a uid of its own (launcher/README.md, "Lifetime"): none may belong to
    an account of the base (the broker's above all), and each is named in /etc/passwd, in the
    worker's group, without a password or a shell, so that tools show a name for it."""
    uids = launch_uids(policy)
    passwd = Path("/etc/passwd")
    lines = passwd.read_text().splitlines()
    rows = [line.split(":") for line in lines]
    taken = {int(fields[2]): fields[0] for fields in rows if len(fields) > 2}
    clashes = sorted(f"{uid} ({taken[uid]})" for uid in uids if uid in taken)
    if clashes:
        fail(
            f"the policy's launch-uids {uids.start}-{uids.stop - 1} include accounts of the base: "
            f"{', '.join(clashes)}; choose another range."
        )
    entry = pwd.getpwnam(user)
    shape = "{user}-{uid}:x:{uid}:{gid}:launch uid:/nonexistent:/usr/sbin/nologin"
    lines += [shape.format(user=user, uid=uid, gid=entry.pw_gid) for uid in uids]
    passwd.write_text("\n".join(lines) + "\n")


def make_worker_directories(policy: Path, user: str) -> None:
    """HOME root-owned and empty: nothing there for a later interpreter to read (~/.local user
    site, dotfiles). TMPDIR the worker's alone (0700), since it may not write the shared /tmp and
    /var/tmp: those become root's (0755). Under launch-uids, TMPDIR is root's (0711) and holds
    each launch's own directory, which the launcher makes. The host runs as root and still writes
    /tmp and /var/tmp; nothing the worker runs needs them (Python's tempfile follows TMPDIR)."""
    entry = pwd.getpwnam(user)
    home, tmpdir = policy_setting(policy, "HOME"), policy_setting(policy, "TMPDIR")
    for shared in (Path("/tmp"), Path("/var/tmp")):  # noqa: S108 (made root's, not used)
        shared.mkdir(exist_ok=True)
        os.chown(shared, 0, 0)
        shared.chmod(0o755)
    home.mkdir(parents=True, exist_ok=True)
    os.chown(home, 0, 0)
    home.chmod(0o755)
    leftovers = sorted(path.name for path in home.iterdir())
    if leftovers:
        fail(f"{home} (the worker's HOME) must be empty; it holds {leftovers}.")
    tmpdir.mkdir(parents=True, exist_ok=True)
    if launch_uids(policy):
        os.chown(tmpdir, 0, 0)
        tmpdir.chmod(0o711)
    else:
        os.chown(tmpdir, entry.pw_uid, entry.pw_gid)
        tmpdir.chmod(0o700)


def make_read_only(tops: list[Path]) -> None:
    """Code and packages owned by root and writable by nobody else: no persistence by rewrite."""
    writable = stat.S_IWGRP | stat.S_IWOTH
    for top in filter(Path.exists, tops):
        for path in [top, *walk(str(top))]:
            info = path.lstat()
            # Only what needs it: touching a file copies it whole into this layer.
            if info.st_uid or info.st_gid:
                os.chown(path, 0, 0, follow_symlinks=False)
            if not stat.S_ISLNK(info.st_mode) and info.st_mode & writable:
                path.chmod(stat.S_IMODE(info.st_mode) & ~writable)


def remove_installer_modules() -> list[str]:
    """pip, setuptools and wheel, wherever the interpreter finds them, and ensurepip, which would
    bring pip back: with any of them importable, code that gets to run Python installs whatever
    it likes (`python -m pip install --target /tmp/x ...`), executables or not. Each
    distribution's RECORD names its top-level packages (pkg_resources, _distutils_hack and its
    .pth file come with setuptools); everything under those names goes."""
    removed: list[str] = []
    for dist in importlib.metadata.distributions():
        name = (dist.metadata["Name"] or "").lower()
        if name not in INSTALLERS:
            continue
        version = dist.version  # read now: the metadata goes with the files below
        site = Path(str(dist.locate_file(""))).resolve()
        for file in dist.files or []:
            path = Path(str(dist.locate_file(file))).resolve()
            top = site / path.relative_to(site).parts[0] if path.is_relative_to(site) else path
            if top.is_dir() and not top.is_symlink():
                shutil.rmtree(top)
            elif top.exists() or top.is_symlink():
                top.unlink()
        removed.append(f"{name} {version}")
    shutil.rmtree(Path(sysconfig.get_paths()["stdlib"]) / "ensurepip", ignore_errors=True)
    importlib.invalidate_caches()
    for module in (*INSTALLERS, "ensurepip"):
        sys.modules.pop(module, None)
        if importlib.util.find_spec(module) is not None:
            fail(f"the module {module} is still importable after its removal.")
    return removed


def lock_passwords() -> None:
    """Root (and every account) gets `!`: no password login, and no known hash left to crack."""
    shadow = Path("/etc/shadow")
    lines = []
    for line in shadow.read_text().splitlines():
        fields = line.split(":")
        if len(fields) > 1 and not fields[1].startswith(("!", "*")):
            fields[1] = "!"
        lines.append(":".join(fields))
    shadow.write_text("\n".join(lines) + "\n")


def remove_privilege_bits() -> int:
    cleared = 0
    for path in walk("/"):
        mode = path.lstat().st_mode
        if stat.S_ISREG(mode) and mode & (stat.S_ISUID | stat.S_ISGID):
            path.chmod(stat.S_IMODE(mode) & ~(stat.S_ISUID | stat.S_ISGID))
            cleared += 1
    return cleared


def remove_tools(keep: set[Path]) -> int:
    """Every forbidden tool anywhere, and everything else on PATH except the launcher's names."""
    path_dirs = {Path(d).resolve() for d in os.environ["PATH"].split(":") if d}
    keep = {p.parent.resolve() / p.name for p in keep}  # /bin/python is /usr/bin/python
    removed = 0
    for path in walk("/"):
        if path in keep or not (path.is_symlink() or path.is_file()):
            continue
        on_path = path.parent.resolve() in path_dirs and path.name not in KEPT_ON_PATH
        executable = path.is_symlink() or os.access(path, os.X_OK)
        if on_path or (path.name in FORBIDDEN and executable):
            path.unlink()
            removed += 1
    for directory in REMOVED_DIRS:
        shutil.rmtree(directory, ignore_errors=True)
    return removed


def is_program(path: Path) -> bool:
    """An ELF executable (not a shared library) or a `#!` script, with an executable bit."""
    info = path.lstat()
    if not stat.S_ISREG(info.st_mode) or not info.st_mode & 0o111:
        return False
    with path.open("rb") as file:
        head = file.read(4)
    elf = head == b"\x7fELF" and not SHARED_LIBRARY.search(path.name)
    return elf or head[:2] == b"#!"


def remove_unlisted_programs(allowed: set[Path], libraries: list[Path]) -> tuple[int, int]:
    """Every program left is the host's, the interpreter or the launcher; the rest goes.

    Tools off PATH (mssql-tools18's sqlcmd and bcp, the .NET runtime's dotnet, apt's methods,
    maintainer scripts) are removed. Inside Python's library directories and the app, a script
    with `#!` and an executable bit is still a module: it loses the bit instead. Returns
    (removed, made not executable).
    """
    build_dir = Path(__file__).resolve().parent  # the build's own mounts: not the image's
    keep_trees = (HOST_DIR.resolve(), build_dir)
    module_trees = (APP_DIR.resolve(), *libraries)
    removed = unset = 0
    for path in walk("/"):
        if path in allowed or any(map(path.is_relative_to, keep_trees)) or not is_program(path):
            continue
        if any(path.is_relative_to(tree) for tree in module_trees):
            path.chmod(stat.S_IMODE(path.lstat().st_mode) & ~0o111)
            unset += 1
        else:
            path.unlink()
            removed += 1
    return removed, unset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--worker-user", required=True)
    parser.add_argument("--launcher", type=Path, required=True)
    parser.add_argument("--policy", type=Path, required=True)
    parser.add_argument("--broker", type=Path, required=True, help="identity_broker.py")
    args = parser.parse_args()

    ensure_account(args.worker_user)
    broker = broker_account(args.policy)
    if broker is not None:
        if broker == args.worker_user:
            fail(f"the policy's broker {broker!r} is the worker's account: give it its own.")
        ensure_account(broker)
    python, real = resolve_host_python()
    replaced, real = install_launcher(args.launcher, python, real)
    args.launcher.unlink()  # the build's copy; the installed one is root's, beside the interpreter
    replaced += repoint_interpreter_links(real, replaced[0])
    library_path = worker_library_path()
    check_interpreter_starts(real, library_path)
    install_policy(args.policy, real, library_path)
    install_broker(args.broker)
    name_launch_uids(args.policy, args.worker_user)
    make_worker_directories(args.policy, args.worker_user)
    paths = sysconfig.get_paths()
    # Resolved: /opt/python/3.12 is a link to the full version's directory, which walks see.
    libraries = sorted({Path(paths[key]).resolve() for key in ("stdlib", "purelib", "platlib")})
    make_read_only([APP_DIR, real.parent, replaced[0].parent, *libraries])
    installers = remove_installer_modules()
    lock_passwords()
    cleared = remove_privilege_bits()
    removed = remove_tools(keep={*replaced, real})
    programs, modules = remove_unlisted_programs({replaced[0], real}, libraries)
    print(f"harden: launcher {replaced[0]} as {', '.join(map(str, replaced[1:]))}; real {real}")
    if library_path:
        print(f"harden: the worker's LD_LIBRARY_PATH is fixed to {library_path}")
    print(f"harden: cleared {cleared} setuid/setgid bits, removed {removed} executables on PATH "
          f"or by name and {programs} other programs; {modules} scripts in Python's libraries "
          "are no longer executable")  # fmt: skip
    print(f"harden: removed ensurepip and {', '.join(installers) or 'no other installer'}")


if __name__ == "__main__":
    main()
