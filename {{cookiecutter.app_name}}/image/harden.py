"""Harden the image in place: run once, as root, by the Dockerfile's `hardened` stage.

The steps run in the order they must: everything that still needs the base image's tools first
(creating the worker account), the removals last. It uses only the standard library of the
base image's own interpreter, because by the end there is no shell to run anything else.
Every step fails the build with one sentence instead of leaving a half-hardened image.
"""

import argparse
import os
import pwd
import shutil
import stat
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import NoReturn

APP_DIR = Path("/home/site/wwwroot")
POLICY = Path("/etc/launcher/policy.conf")
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


def ensure_worker(user: str) -> None:
    """Create the worker's account unless the base already has it; it owns nothing."""
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
    """(`python` as the host finds it on PATH, the real interpreter behind it)."""
    found = shutil.which("python")
    if found is None:
        fail("no `python` on the image's PATH: is BASE_IMAGE a Functions Python image?")
    python = Path(found)
    real = python.resolve()
    if real == python:
        fail(f"{python} is the interpreter itself, not a link; the launcher cannot take its place.")
    return python, real


def install_launcher(launcher: Path, python: Path, real: Path) -> list[Path]:
    """Point `python` and each sibling link to the same interpreter at the launcher instead.

    The launcher sits beside the interpreter, in its bin directory: Python finds its standard
    library from where the `python` it was started as leads, so the links must keep leading
    into /opt/python/<version>. Returns the installed launcher and every link now naming it.
    """
    installed = real.parent / "python-launcher"
    shutil.copyfile(launcher, installed)
    os.chown(installed, 0, 0)
    installed.chmod(0o755)
    names = {python.name, "python3", real.name}  # python, python3, python3.X
    replaced: list[Path] = []
    for directory in dict.fromkeys(Path(d) for d in os.environ["PATH"].split(":") if d):
        for name in names:
            candidate = directory / name
            if candidate.is_symlink() and candidate.resolve() == real:
                candidate.unlink()
                candidate.symlink_to(installed)
                replaced.append(candidate)
    if python not in replaced:
        fail(f"could not point {python} at the launcher.")
    return [installed, *replaced]


def install_policy(source: Path, real: Path) -> None:
    """The policy, root-owned and read-only, pointing at the interpreter the launcher replaced."""
    lines = source.read_text().splitlines()
    execs = [i for i, line in enumerate(lines) if line.split()[:1] == ["exec"]]
    if len(execs) != 1:
        fail(f"{source} must have exactly one `exec` line, it has {len(execs)}.")
    lines[execs[0]] = f"exec {real}"
    POLICY.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    POLICY.write_text("\n".join(lines) + "\n")
    for path in (POLICY.parent, POLICY):
        os.chown(path, 0, 0)
    POLICY.parent.chmod(0o755)
    POLICY.chmod(0o644)


def policy_setting(policy: Path, name: str) -> Path:
    """The absolute path a `set NAME=...` line of the policy gives."""
    values = [line.split("=", 1)[1].strip() for line in policy.read_text().splitlines()
              if line.startswith(f"set {name}=")]  # fmt: skip
    if len(values) != 1 or not values[0].startswith("/"):
        fail(f"{policy} must set {name} to an absolute path exactly once.")
    return Path(values[0])


def make_worker_directories(policy: Path, user: str) -> None:
    """HOME root-owned and empty: nothing there for a later interpreter to read (~/.local user
    site, dotfiles). TMPDIR the worker's alone (0700), since it may not write the shared /tmp and
    /var/tmp: those become root's (0755). The host runs as root and still writes both; nothing
    the worker runs needs them (Python's tempfile follows TMPDIR)."""
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--worker-user", required=True)
    parser.add_argument("--launcher", type=Path, required=True)
    parser.add_argument("--policy", type=Path, required=True)
    args = parser.parse_args()

    ensure_worker(args.worker_user)
    python, real = resolve_host_python()
    replaced = install_launcher(args.launcher, python, real)
    args.launcher.unlink()  # the build's copy; the installed one is root's, beside the interpreter
    install_policy(args.policy, real)
    make_worker_directories(args.policy, args.worker_user)
    paths = sysconfig.get_paths()
    libraries = {Path(paths[key]) for key in ("stdlib", "purelib", "platlib")}
    make_read_only([APP_DIR, real.parent, *libraries])
    lock_passwords()
    cleared = remove_privilege_bits()
    removed = remove_tools(keep={*replaced, real})
    print(f"harden: launcher {replaced[0]} as {', '.join(map(str, replaced[1:]))}; real {real}")
    print(f"harden: cleared {cleared} setuid/setgid bits, removed {removed} executables")


if __name__ == "__main__":
    main()
