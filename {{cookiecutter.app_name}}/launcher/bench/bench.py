"""The launcher's cost: median wall time of `launcher -c pass` against `python -c pass`.

Every build given (`--launcher NAME=PATH`, the first is the default) and every tool that does the
same thing (setpriv, su-exec, gosu, runuser, sudo: drop root to --user, exec `python -c pass`;
those not installed are named and skipped) starts the same interpreter, --runs times each,
interleaved in one process and in a rotating order so that machine noise hits all alike.
`--empty NAME=PATH` adds an empty program built with a build's libc and flags: its start-up is
the libc's share of that build's cost. Run as root (`make bench`), as the host does. Prints one
line per command: median, ratio to direct; nothing is adjusted.
"""

import argparse
import os
import pwd
import shutil
import statistics
import sys
import time
from pathlib import Path

# The same environment for all: the launcher's policy passes it through unchanged (HOME included,
# so that all look for user site-packages in the same place).
ENVIRONMENT = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/tmp"}
TARGET = 1.02
DIRECT = "python -c pass (direct)"
# Uids no account has on these machines (the launcher refuses none; it only needs them free).
LAUNCH_UIDS = "61900-61915"
# The launcher's cost over starting python directly, against setpriv's: at most this share.
SETPRIV_SHARE = 1 / 3


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
            found[tool] = [path, *arguments, python, "-c", "pass"]
    return found, missing


def timed(argv: list[str]) -> tuple[float, float]:
    """(wall, CPU) seconds from spawn to exit, output discarded; fails on a non-zero exit.

    CPU time (user + system, of the process and the children it waited for) is what the
    command itself spent: unlike wall time, it does not grow while other processes hold the CPUs.
    """
    devnull = [(os.POSIX_SPAWN_OPEN, fd, "/dev/null", os.O_WRONLY, 0) for fd in (1, 2)]
    start = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, ENVIRONMENT, file_actions=devnull)
    _, status, usage = os.wait4(pid, 0)
    elapsed = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"bench: {' '.join(argv)} exited {code}; run it by hand to see why")
    return elapsed, usage.ru_utime + usage.ru_stime


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
    if os.geteuid() != 0:
        sys.exit("bench: run as root: the launcher's policy must be root-owned and it drops root")

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
    commands: dict[str, list[str]] = {DIRECT: [python, "-c", "pass"]}
    commands |= {f"launcher [{name}]": [path, "-c", "pass"] for name, path in launchers.items()}
    commands |= {f"{tool} {args.user} python -c pass": argv for tool, argv in tools.items()}
    commands |= {
        f"empty program [{name}]": [path]
        for name, path in named_paths(args.empty, "--empty").items()
    }

    for _ in range(5):  # warm the page cache for each
        for argv in commands.values():
            timed(argv)
    wall: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    order = list(commands)
    for run in range(args.runs):  # interleaved, each run starting one further along
        shift = run % len(order)
        for name in order[shift:] + order[:shift]:
            elapsed, used = timed(commands[name])
            wall[name].append(elapsed)
            cpu[name].append(used)

    medians = {name: statistics.median(values) for name, values in wall.items()}
    cpu_medians = {name: statistics.median(values) for name, values in cpu.items()}
    direct, direct_cpu = medians[DIRECT], cpu_medians[DIRECT]
    print(f"medians of {args.runs} interleaved runs, {python} as {args.user}: wall, CPU time")
    for name, median in medians.items():
        cost = (
            ""
            if name.startswith("empty")
            else f"  ratio {median / direct:.3f} ({(median - direct) * 1000:+.2f} ms)"
            f"  CPU {cpu_medians[name] * 1000:5.2f} ms, ratio {cpu_medians[name] / direct_cpu:.3f}"
        )
        print(f"  {name:<32} {median * 1000:6.2f} ms{cost}")
    if missing:
        print(f"  not installed here: {', '.join(missing)}")
    for name in launchers:
        if (empty := medians.get(f"empty program [{name}]")) is not None:
            # What a build adds, less a whole empty program's spawn and start-up with its libc:
            # what is left is the launcher's own work (slightly under: the empty program also
            # pays a fork that the launcher does not).
            own = medians[f"launcher [{name}]"] - direct - empty
            print(f"launcher's own work [{name}] (launcher - direct - empty): {own * 1000:.2f} ms")
    if "without supervisor" in launchers:
        supervisor = medians[f"launcher [{default}]"] - medians["launcher [without supervisor]"]
        print(f"the supervisor adds {supervisor * 1000:+.3f} ms a start (launcher [{default}] against "
              f"the same without it, interleaved)")  # fmt: skip
    if (setpriv := medians.get(f"setpriv {args.user} python -c pass")) is not None:
        share = (medians[f"launcher [{default}]"] - direct) / (setpriv - direct)
        print(f"launcher's cost over direct, as a share of setpriv's: {share:.3f} "
              f"(bound {SETPRIV_SHARE:.3f})")  # fmt: skip
    launched, launched_cpu = medians[f"launcher [{default}]"], cpu_medians[f"launcher [{default}]"]
    print(
        f"ratio launcher/direct: {launched / direct:.3f} (default build {default}; target <= "
        f"{TARGET}); CPU time {launched_cpu / direct_cpu:.3f}"
    )


if __name__ == "__main__":
    main()
