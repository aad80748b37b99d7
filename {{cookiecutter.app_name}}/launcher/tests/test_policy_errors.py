"""Fail closed: every malformed or unsafe policy is rejected with its line, and nothing runs."""

import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import EXIT_POLICY, PYTHON, Account, Launcher, security_events

# The valid policy each case starts from: exec on line 1, user on line 2, allow LANG on line 3.
BASE = ["exec {python}", "user {user}", "allow LANG"]

# (case id, lines after BASE or a whole replacement, line number reported, words the message holds)
APPENDED: list[tuple[str, list[str], int, str]] = [
    ("unknown directive", ["permit LANG"], 4, "unknown directive 'permit'"),
    ("directive in capitals", ["ALLOW LANG"], 4, "unknown directive 'ALLOW'"),
    ("duplicate exec", ["exec {python}"], 4, "duplicate exec (first on line 1)"),
    ("duplicate user", ["user {user}"], 4, "duplicate user (first on line 2)"),
    ("empty allow", ["allow"], 4, "allow needs an argument"),
    ("allow everything", ["allow *"], 4, "would match every variable"),
    ("allow with two names", ["allow A B"], 4, "allow takes one argument"),
    ("allow starting with a digit", ["allow 1ABC"], 4, "allow takes NAME or PREFIX*"),
    ("allow with a dash", ["allow MY-NAME"], 4, "allow takes NAME or PREFIX*"),
    ("allow by suffix", ["allow *_URL"], 4, "allow takes NAME or PREFIX*"),
    ("allow with a glued comment", ["allow LANG#why"], 4, "allow takes NAME or PREFIX*"),
    ("duplicate allow", ["allow LANG"], 4, "duplicate allow LANG (first on line 3)"),
    ("allow of a denied name", ["deny LANG"], 3, "allow LANG is denied by line 4"),
    ("empty deny", ["deny"], 4, "deny needs an argument"),
    ("deny everything", ["deny *"], 4, "would match every variable"),
    ("deny with an inner star", ["deny A*B"], 4, "deny takes NAME, PREFIX*, *SUFFIX or *PART*"),
    ("set without =", ["set FOO"], 4, "'=' is missing"),
    ("set without a name", ["set =value"], 4, "set needs a variable name"),
    ("set with a bad name", ["set 1X=value"], 4, "set needs a variable name"),
    ("set with nothing", ["set"], 4, "'=' is missing"),
    (
        "duplicate set",
        ["set HOME=/tmp", "set HOME=/var/tmp"],
        5,
        "duplicate set HOME (first on line 4)",
    ),
    (
        "set of a denied name",
        ["set TOKEN=x", "deny TOKEN"],
        4,
        "set TOKEN contradicts deny on line 5",
    ),
    ("nonroot with a bad mode", ["nonroot maybe"], 4, "nonroot takes refuse or filter"),
    (
        "duplicate nonroot",
        ["nonroot filter", "nonroot refuse"],
        5,
        "duplicate nonroot (first on line 4)",
    ),
    ("audit with an argument", ["audit yes"], 4, "audit takes no argument"),
    (
        "allow of the identity header",
        ["allow IDENTITY_HEADER"],
        4,
        "allow IDENTITY_HEADER: the identity variables are the broker's to set",
    ),
    (
        "allow of the identity endpoint",
        ["allow IDENTITY_ENDPOINT"],
        4,
        "allow IDENTITY_ENDPOINT: the identity variables are the broker's to set",
    ),
    (
        "set of the identity header",
        ["set IDENTITY_HEADER=x"],
        4,
        "set IDENTITY_HEADER: the identity variables are the broker's to set",
    ),
    ("broker without an account", ["broker"], 4, "broker needs an argument"),
    ("broker as root", ["broker root"], 4, "broker takes NAME, NAME:GROUP or UID:GID, never root"),
    ("broker as uid 0", ["broker 0:0"], 4, "broker takes NAME, NAME:GROUP or UID:GID, never root"),
    ("duplicate broker", ["broker a", "broker b"], 5, "duplicate broker (first on line 4)"),
    ("audience without broker", ["audience https://vault.azure.net"], 4, "audience without broker"),
    (
        "audience over http",
        ["broker a", "audience http://vault.azure.net"],
        5,
        "audience takes an https:// URL",
    ),
    (
        "audience with a query",
        ["broker a", "audience https://vault.azure.net?x=1"],
        5,
        "audience takes an https:// URL",
    ),
    (
        "audience with .default",
        ["broker a", "audience https://vault.azure.net/.default"],
        5,
        "write it without a trailing / or /.default",
    ),
    (
        "audience with a trailing slash",
        ["broker a", "audience https://vault.azure.net/"],
        5,
        "write it without a trailing / or /.default",
    ),
    (
        "duplicate audience",
        ["broker a", "audience https://a.net", "audience https://A.net"],
        6,
        "duplicate audience https://A.net",
    ),
    ("duplicate audit", ["audit", "audit"], 5, "duplicate audit (first on line 4)"),
    ("oversize line", ["# " + "x" * 1100], 4, "line longer than 1024 bytes"),
    ("NUL byte", ["allow LA\0NG"], 4, "NUL byte in line"),
    ("carriage return", ["allow PATH\r"], 4, "carriage return"),
    ("control character", ["allow \x1bLANG"], 4, "control character 0x1b"),
    (
        "allow prefix without a separator",
        ["allow FUNCTIONS_WORKER_RUNTIME*"],
        4,
        "allow FUNCTIONS_WORKER_RUNTIME*: a prefix must end in '_'",
    ),
    ("landlock without an argument", ["landlock"], 4, "landlock needs an argument"),
    (
        "landlock with a bad mode",
        ["landlock maybe"],
        4,
        "landlock takes required, best-effort or off",
    ),
    (
        "landlock in capitals",
        ["landlock REQUIRED"],
        4,
        "landlock takes required, best-effort or off",
    ),
    (
        "duplicate landlock",
        ["landlock off", "landlock off"],
        5,
        "duplicate landlock (first on line 4)",
    ),
    (
        "landlock without TMPDIR",
        ["landlock required"],
        4,
        "landlock needs set TMPDIR=/absolute/path",
    ),
    (
        "landlock with a relative TMPDIR",
        ["set TMPDIR=tmp", "landlock best-effort"],
        5,
        "landlock needs set TMPDIR=/absolute/path",
    ),
    (
        "too many allows",
        [f"allow NAME_{i}" for i in range(513)],
        515,
        "more than 512 allow directives",
    ),
    ("connect without a port", ["connect"], 4, "connect needs an argument"),
    ("connect to port 0", ["connect 0"], 4, "connect takes a TCP port, 1 to 65535"),
    ("connect past 65535", ["connect 65536"], 4, "connect takes a TCP port, 1 to 65535"),
    ("connect to a named port", ["connect https"], 4, "connect takes a TCP port, 1 to 65535"),
    ("connect with a leading zero", ["connect 0443"], 4, "connect takes a TCP port, 1 to 65535"),
    ("connect to two ports on one line", ["connect 443 80"], 4, "connect takes one argument"),
    ("duplicate connect", ["connect 443", "connect 443"], 5, "duplicate connect 443"),
    (
        "too many connects",
        [f"connect {port}" for port in range(1000, 1017)],
        20,
        "more than 16 connect directives",
    ),
]
REPLACED: list[tuple[str, list[str], int, str]] = [
    ("missing exec", ["user {user}", "allow LANG"], 2, "no exec directive"),
    ("missing user", ["exec {python}", "# no user"], 2, "no user directive"),
    ("empty policy", [], 1, "no exec directive"),
    ("only comments", ["# one", "  # two", ""], 3, "no exec directive"),
    ("relative exec", ["exec python3", "user {user}"], 1, "exec needs an absolute path"),
    ("exec with arguments", ["exec {python} -S", "user {user}"], 1, "exec takes one argument"),
    (
        "exec that does not exist",
        ["exec /nonexistent/python", "user {user}"],
        1,
        "No such file or directory",
    ),
    ("exec of a directory", ["exec /usr/bin", "user {user}"], 1, "not an executable file"),
    ("exec not executable", ["exec /etc/passwd", "user {user}"], 1, "not an executable file"),
    ("exec group-writable", ["exec {writable}", "user {user}"], 1, "writable by group or others"),
    ("exec not root-owned", ["exec {foreign}", "user {user}"], 1, "owned by uid 65534, not root"),
    (
        "unknown user",
        ["exec {python}", "user nosuchuser"],
        2,
        "user nosuchuser: not in /etc/passwd",
    ),
    (
        "unknown group",
        ["exec {python}", "user {user}:nosuchgroup"],
        2,
        "group nosuchgroup: not in /etc/group",
    ),
    ("user root", ["exec {python}", "user root"], 2, "user is root"),
    ("user 0:0", ["exec {python}", "user 0:0"], 2, "user is root"),
    (
        "user resolving to gid 0",
        ["exec {python}", "user {user}:root"],
        2,
        "the worker must not be root",
    ),
    ("uid without gid", ["exec {python}", "user 1234"], 2, "write UID:GID"),
    (
        "user with a path",
        ["exec {python}", "user ../etc"],
        2,
        "user takes NAME, NAME:GROUP or UID:GID",
    ),
    ("user with two words", ["exec {python}", "user a b"], 2, "user takes one argument"),
]


@pytest.fixture(scope="module")
def writable_interpreter() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "python"
        path.write_bytes(b"")
        path.chmod(0o775)
        yield path


@pytest.fixture(scope="module")
def foreign_interpreter() -> Iterator[Path]:
    """An executable that only mode-checks would pass, but which nobody (65534) owns, not root."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "python"
        path.write_bytes(b"")
        path.chmod(0o755)
        os.chown(path, 65534, 65534)
        yield path


@pytest.fixture
def marker() -> Iterator[Path]:
    """Where the policy's program would leave a file if it ran: writable by the worker account."""
    with tempfile.TemporaryDirectory() as directory:
        os.chmod(directory, 0o777)
        yield Path(directory) / "ran"


def render(lines: list[str], worker: Account, writable: Path, foreign: Path = Path()) -> bytes:
    text = "\n".join(lines).format(
        python=PYTHON, user=worker.name, writable=writable, foreign=foreign
    )
    return text.encode("latin-1") + (b"\n" if lines else b"")


def leave_marker(launcher: Launcher, marker: Path) -> "subprocess.CompletedProcess[bytes]":
    return launcher.run(["-c", f"open({str(marker)!r}, 'w')"])


def test_valid_base_policy_does_leave_the_marker(
    launcher: Launcher, worker: Account, marker: Path
) -> None:
    """The control for every case below: with a valid policy, the marker appears."""
    launcher.write_policy(render(BASE, worker, Path()))
    result = leave_marker(launcher, marker)
    assert result.returncode == 0, result.stderr.decode()
    assert marker.exists()


# What only tampering explains (a policy or interpreter others could rewrite): also a security event.
TAMPERING = ("writable by group or others", ", not root", "owned by uid")


def assert_rejected(launcher: Launcher, marker: Path, expected_start: str, words: str) -> None:
    result = leave_marker(launcher, marker)
    stderr = result.stderr.decode()
    *before, last = stderr.splitlines() or [""]
    assert result.returncode == EXIT_POLICY, stderr
    assert stderr.endswith("\n") and last.startswith(expected_start), stderr
    assert words in last
    assert not marker.exists(), "the launcher ran something despite a bad policy"
    events = security_events("\n".join(before))
    if any(sign in last for sign in TAMPERING):
        assert len(before) == 1 and len(events) == 1, stderr
        assert events[0]["kind"] == "launcher" and events[0]["detail"] == last.removeprefix("launcher: ")
    else:
        assert before == [], stderr


@pytest.mark.parametrize(
    ("lines", "line", "words"),
    [pytest.param([*BASE, *extra], line, words, id=name) for name, extra, line, words in APPENDED]
    + [pytest.param(lines, line, words, id=name) for name, lines, line, words in REPLACED],
)
def test_malformed_policy_is_rejected_with_its_line(
    launcher: Launcher,
    worker: Account,
    writable_interpreter: Path,
    foreign_interpreter: Path,
    marker: Path,
    lines: list[str],
    line: int,
    words: str,
) -> None:
    launcher.write_policy(render(lines, worker, writable_interpreter, foreign_interpreter))
    assert_rejected(launcher, marker, f"launcher: {launcher.policy}:{line}: ", words)


def test_there_are_at_least_thirty_malformed_cases() -> None:
    assert len(APPENDED) + len(REPLACED) >= 30


@pytest.mark.parametrize(
    ("mode", "owner", "words"),
    [
        pytest.param(0o664, 0, "writable by group or others", id="group-writable"),
        pytest.param(0o646, 0, "writable by group or others", id="other-writable"),
        pytest.param(0o644, 65534, "owned by uid 65534, not root", id="not root-owned"),
    ],
)
def test_unsafe_policy_file_is_rejected(
    launcher: Launcher, worker: Account, marker: Path, mode: int, owner: int, words: str
) -> None:
    launcher.write_policy(render(BASE, worker, Path()), mode=mode, owner=owner)
    assert_rejected(launcher, marker, f"launcher: {launcher.policy}: ", words)


def test_missing_policy_is_rejected(launcher: Launcher, marker: Path) -> None:
    launcher.write_policy("")
    launcher.policy.unlink()
    assert_rejected(launcher, marker, f"launcher: open({launcher.policy}): ", "No such file")


def test_symlinked_policy_is_rejected(
    launcher: Launcher, worker: Account, marker: Path, tmp_path: Path
) -> None:
    real = tmp_path / "real.conf"
    real.write_bytes(render(BASE, worker, Path()))
    launcher.write_policy("")
    launcher.policy.unlink()
    os.symlink(real, launcher.policy)
    assert_rejected(
        launcher, marker, f"launcher: open({launcher.policy}): ", "ymbolic link"
    )  # glibc and musl word it apart


def test_directory_as_policy_is_rejected(launcher: Launcher, marker: Path) -> None:
    launcher.write_policy("")
    launcher.policy.unlink()
    launcher.policy.mkdir()
    assert_rejected(launcher, marker, f"launcher: {launcher.policy}: ", "not a regular file")


def test_oversize_policy_is_rejected(launcher: Launcher, worker: Account, marker: Path) -> None:
    padding = [f"# {'x' * 900}"] * 80
    launcher.write_policy(render([*BASE, *padding], worker, Path()))
    assert_rejected(launcher, marker, f"launcher: {launcher.policy}: ", "larger than 65536 bytes")


@pytest.mark.parametrize(
    ("mode", "owner", "words"),
    [
        pytest.param(0o775, 0, "writable by group or others", id="group-writable"),
        pytest.param(0o757, 0, "writable by group or others", id="other-writable"),
        pytest.param(0o1777, 0, "writable by group or others", id="sticky and world-writable"),
        pytest.param(0o755, 65534, "owned by uid 65534, not root", id="not root-owned"),
    ],
)
def test_unsafe_policy_directory_is_rejected(
    launcher: Launcher, worker: Account, marker: Path, mode: int, owner: int, words: str
) -> None:
    """Whoever may write the directory may swap the policy file, however safe the file itself."""
    directory = launcher.policy.parent
    launcher.write_policy(render(BASE, worker, Path()))
    saved = directory.stat()
    os.chown(directory, owner, owner)
    directory.chmod(mode)
    try:
        assert_rejected(launcher, marker, f"launcher: {directory}: ", words)
    finally:
        os.chown(directory, saved.st_uid, saved.st_gid)
        directory.chmod(saved.st_mode & 0o7777)
