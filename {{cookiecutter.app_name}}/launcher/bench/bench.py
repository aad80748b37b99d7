"""The launcher's cost: how much later Python starts, and ends, through it than directly.

Every build given (`--launcher NAME=PATH`, the first is the default) and every tool that does the
same thing (setpriv, su-exec, gosu, runuser, sudo: drop root to --user, exec the interpreter;
those not installed are named and skipped) starts the same interpreter on the same one line of
code (MARK: it writes the clock's reading as it runs), --runs times each, interleaved in one
process and in a rotating order so that machine noise hits all alike. Two figures per command:
start-up, from the spawn to that first line of Python (what the host waits for before its
worker can connect back), and the whole run, to the process reaped (start-up, the line, the
interpreter's exit, and the launcher's own end: the supervisor ends and reaps everything the
worker started before it reports the exit). `--empty NAME=PATH` adds an empty program built with
a build's libc and flags: its start-up is the libc's share of that build's cost. Run as root
(`make bench`), as the host does. Prints medians and ratios to direct; nothing is adjusted.
"""

import argparse
import atexit
import os
import pwd
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

# The same environment for all: the launcher's policy passes it through unchanged (HOME included,
# so that all look for user site-packages in the same place).
ENVIRONMENT = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/tmp"}
TARGET = 1.02
DIRECT = "python (direct)"
# The one line every interpreter runs: the monotonic clock's reading, in nanoseconds, on stdout.
MARK = "import os, time; os.write(1, b'%d' % time.monotonic_ns())"
# Uids no account has on these machines (the launcher refuses none; it only needs them free).
LAUNCH_UIDS = "61900-61915"
# The launcher's start-up cost over starting python directly, against setpriv's: at most this share.
SETPRIV_SHARE = 1 / 3
Timings = dict[str, list[float]]


def reachable_by_anyone(path: str) -> bool:
    return all(os.stat(p).st_mode & 0o001 for p in [*Path(path).parents, Path(path)])


def interpreter() -> str:
    """This interpreter if the unprivileged user can run it, else the system's python3."""
    for candidate in (os.path.realpath(sys.executable), os.path.realpath("/usr/bin/python3")):
        if os.path.exists(candidate) and reachable_by_anyone(candidate):
            return candidate
    sys.exit("bench: no python that an unprivileged user can execute")


def anchors(user: str, python: str) -> tuple[dict[str, list[str]], list[str]]:
    """Other tools dropping root to `user` and exec'ing python: (installed argv, missing names)."""
    account = pwd.getpwnam(user)
    wanted = {
        "setpriv": [
            "--reuid",
            str(account.pw_uid),
            "--regid",
            str(account.pw_gid),
            "--clear-groups",
        ],
        "su-exec": [user],
        "gosu": [user],
        "runuser": ["-u", user, "--"],
        "sudo": ["-u", user, "--"],
    }
    found: dict[str, list[str]] = {}
    missing: list[str] = []
    for tool, arguments in wanted.items():
        path = shutil.which(
            tool, path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        )
        if path is None:
            missing.append(tool)
        else:
            found[tool] = [path, *arguments, python, "-c", MARK]
    return found, missing


def require_root() -> None:
    if os.geteuid() != 0:
        sys.exit("bench: run as root: the launcher's policy must be root-owned and it drops root")


def write_sandbox_policy(policy: Path, python: str, user: str) -> None:
    """The shipped policy's sandbox: Landlock where the kernel has it, with a TMPDIR of the user's
    (opened after the drop, so somewhere the user can reach: not under a checkout in root's 0700),
    removed when the bench ends."""
    tmpdir = Path(tempfile.mkdtemp(prefix="launcher-bench-", dir="/var/tmp"))
    atexit.register(shutil.rmtree, tmpdir, ignore_errors=True)
    account = pwd.getpwnam(user)
    os.chown(tmpdir, account.pw_uid, account.pw_gid)
    policy.write_text(f"exec {python}\nuser {user}\nallow PATH\nallow LANG\nallow HOME\n"
                      f"landlock best-effort\nset TMPDIR={tmpdir}\n")  # fmt: skip
    policy.chmod(0o644)


def as_python(launcher: str, python: str) -> list[str]:
    """A launcher's command line as the host starts it: the image installs it as `python`, so
    argv[0] is an interpreter's path, which the launcher hands on unchanged. The interpreter
    finds its standard library from argv[0] (getpath): given a build directory's path it would
    look in every directory above it first, a cost that no start in the image pays."""
    return [f"{launcher}={python}", "-c", MARK]


def timed(argv: list[str]) -> tuple[float, float, float | None]:
    """(whole run, CPU, start-up) seconds; fails on a non-zero exit. The whole run is from the
    spawn to the process reaped; start-up, from the spawn to the time MARK wrote (None for a
    command that writes none). argv[0] may be FILE=ARGV0: run FILE with argv[0] ARGV0 (as_python).

    CPU time (user + system, of the process and the children it waited for) is what the
    command itself spent: unlike wall time, it does not grow while other processes hold the CPUs.
    """
    read_end, write_end = os.pipe()
    actions = [
        (os.POSIX_SPAWN_DUP2, write_end, 1),
        (os.POSIX_SPAWN_OPEN, 2, "/dev/null", os.O_WRONLY, 0),
    ]
    executable, _, argv0 = argv[0].partition("=")
    start = time.monotonic_ns()
    pid = os.posix_spawn(executable, [argv0 or executable, *argv[1:]], ENVIRONMENT, file_actions=actions)
    os.close(write_end)
    _, status, usage = os.wait4(pid, 0)
    whole = time.monotonic_ns() - start
    with os.fdopen(read_end, "rb") as output:
        mark = output.read()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"bench: {' '.join(argv)} exited {code}; run it by hand to see why")
    started = (int(mark) - start) / 1e9 if mark else None
    return whole / 1e9, usage.ru_utime + usage.ru_stime, started


def interleaved(commands: dict[str, list[str]], runs: int) -> tuple[Timings, Timings, Timings]:
    """Each command timed `runs` times (after five to warm the page cache), interleaved, each run
    starting one further along, so that machine noise hits all alike: (whole run, CPU, start-up)
    seconds by name; start-up only for the commands that write MARK."""
    for _ in range(5):
        for argv in commands.values():
            timed(argv)
    wall: Timings = {name: [] for name in commands}
    cpu: Timings = {name: [] for name in commands}
    starts: Timings = {name: [] for name in commands}
    order = list(commands)
    for run in range(runs):
        shift = run % len(order)
        for name in order[shift:] + order[:shift]:
            elapsed, used, started = timed(commands[name])
            wall[name].append(elapsed)
            cpu[name].append(used)
            if started is not None:
                starts[name].append(started)
    return wall, cpu, starts


def named_paths(values: list[str], option: str) -> dict[str, str]:
    pairs = dict(value.partition("=")[::2] for value in values)
    if not all(pairs.values()):
        sys.exit(f"bench: {option} takes NAME=PATH")
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--launcher",
        action="append",
        required=True,
        metavar="NAME=PATH",
        help="a launcher build reading --policy; the first is the default",
    )
    parser.add_argument("--policy", required=True, help="the policy file the launchers read")
    parser.add_argument("--user", default="nobody", help="the account every command drops to")
    parser.add_argument(
        "--empty",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="an empty program built with that build's libc and flags",
    )
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    require_root()

    python = interpreter()
    policy = Path(args.policy)
    # As shipped: each launch a uid of its own, its TMPDIR made beneath a root-owned directory.
    launches = policy.parent / "launches"
    launches.mkdir(mode=0o711, exist_ok=True)
    policy.write_text(
        f"exec {python}\nuser {args.user}\nallow PATH\nallow LANG\nallow HOME\n"
        f"set TMPDIR={launches}\nlaunch-uids {LAUNCH_UIDS}\n"
    )
    policy.chmod(0o644)
    launchers = named_paths(args.launcher, "--launcher")
    default = next(iter(launchers))
    tools, missing = anchors(args.user, python)
    commands: dict[str, list[str]] = {DIRECT: [python, "-c", MARK]}
    commands |= {f"launcher [{name}]": as_python(path, python) for name, path in launchers.items()}
    commands |= {f"{tool} {args.user} python": argv for tool, argv in tools.items()}
    commands |= {
        f"empty program [{name}]": [path]
        for name, path in named_paths(args.empty, "--empty").items()
    }

    wall, cpu, starts = interleaved(commands, args.runs)
    medians = {name: statistics.median(values) for name, values in wall.items()}
    cpu_medians = {name: statistics.median(values) for name, values in cpu.items()}
    start_medians = {name: statistics.median(values) for name, values in starts.items() if values}
    direct, direct_cpu, direct_start = medians[DIRECT], cpu_medians[DIRECT], start_medians[DIRECT]
    print(f"medians of {args.runs} interleaved runs, {python} as {args.user}, each running one line "
          f"(MARK): start-up (spawn to that line), whole run (spawn to reaped), CPU time")  # fmt: skip
    for name, median in medians.items():
        if name.startswith("empty"):
            print(f"  {name:<28} whole {median * 1000:6.2f} ms")
            continue
        began = start_medians[name]
        print(
            f"  {name:<28} start-up {began * 1000:5.2f} ms ({(began - direct_start) * 1000:+.2f})"
            f"  whole {median * 1000:6.2f} ms  ratio {median / direct:.3f} ({(median - direct) * 1000:+.2f} ms)"
            f"  CPU {cpu_medians[name] * 1000:5.2f} ms, ratio {cpu_medians[name] / direct_cpu:.3f}"
        )
    if missing:
        print(f"  not installed here: {', '.join(missing)}")
    for name in launchers:
        if (empty := medians.get(f"empty program [{name}]")) is not None:
            # What a build adds, less a whole empty program's spawn and start-up with its libc:
            # what is left is the launcher's own work (slightly under: the empty program also
            # pays a fork that the launcher does not).
            own = medians[f"launcher [{name}]"] - direct - empty
            print(f"launcher's own work [{name}] (launcher - direct - empty): {own * 1000:.2f} ms")
    launched = f"launcher [{default}]"
    if "without supervisor" in launchers:
        unsupervised = "launcher [without supervisor]"
        at_start = start_medians[launched] - start_medians[unsupervised]
        whole = medians[launched] - medians[unsupervised]
        print(f"the supervisor adds {at_start * 1000:+.3f} ms to start-up, {whole * 1000:+.3f} ms to the "
              f"whole run ({launched} against the same without it, interleaved)")  # fmt: skip
    if (setpriv := f"setpriv {args.user} python") in medians:
        share = (start_medians[launched] - direct_start) / (start_medians[setpriv] - direct_start)
        whole_share = (medians[launched] - direct) / (medians[setpriv] - direct)
        print(f"launcher's start-up cost over direct, as a share of setpriv's: {share:.3f} "
              f"(bound {SETPRIV_SHARE:.3f})")  # fmt: skip
        print(f"launcher's whole-run cost over direct (start-up and end), as a share of setpriv's: "
              f"{whole_share:.3f}")  # fmt: skip
    print(
        f"ratio launcher/direct: {medians[launched] / direct:.3f} (whole run, default build {default}; "
        f"target <= {TARGET}); start-up {start_medians[launched] / direct_start:.3f}; "
        f"CPU time {cpu_medians[launched] / direct_cpu:.3f}"
    )

if __name__ == "__main__":
    main()
