"""The sandbox's share of the launcher's start-up (`make bench-sandbox`), beside its overhead
against `python -c pass`.

Both start the same interpreter, 100 times each, interleaved in one process so that machine noise
hits both alike. Run as root (`make bench`), as the host does: the launcher then reads its policy,
drops to --user and execs the interpreter. Prints the medians and their ratio; nothing is adjusted.
With --unconfined (the same launcher built without Landlock and the system-call filter), the
sandbox's share of the start-up is printed too, as a ratio of the two launchers in the same run.
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

# The same environment and interpreter as `make bench` (bench.py, beside this file).
from bench import ENVIRONMENT, interpreter

# Per program: the CPU time (user + system) of each run. Unlike wall time, a busy machine does
# not add the time spent waiting for a core, so it shows small differences that wall time hides.
CPU_SECONDS: dict[str, list[float]] = {}


def wall_time(argv: list[str]) -> float:
    """Seconds from spawn to exit, with stdout and stderr discarded; fails on a non-zero exit."""
    devnull = [(os.POSIX_SPAWN_OPEN, fd, "/dev/null", os.O_WRONLY, 0) for fd in (1, 2)]
    start = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, ENVIRONMENT, file_actions=devnull)
    _, status, usage = os.wait4(pid, 0)
    CPU_SECONDS[argv[0]] = [*CPU_SECONDS.get(argv[0], []), usage.ru_utime + usage.ru_stime]
    elapsed = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.exit(f"bench: {argv[0]} exited {code}; run it by hand to see why")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--launcher", required=True, help="a launcher built to read --policy")
    parser.add_argument("--policy", required=True, help="the policy file that launcher reads")
    parser.add_argument("--user", default="nobody", help="the account the launcher drops to")
    parser.add_argument("--empty", help="an empty program built with the launcher's libc and flags")
    parser.add_argument("--unconfined", help="the launcher built without its sandbox, same policy")
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: run as root: the launcher's policy must be root-owned and it drops root")

    python = interpreter()
    policy = Path(args.policy)
    # The shipped policy's sandbox: Landlock where the kernel has it, with a TMPDIR of the user's
    # (opened after the drop, so somewhere the user can reach: not under a checkout in root's 0700).
    tmpdir = Path(tempfile.mkdtemp(prefix="launcher-bench-", dir="/var/tmp"))
    atexit.register(shutil.rmtree, tmpdir, ignore_errors=True)
    account = pwd.getpwnam(args.user)
    os.chown(tmpdir, account.pw_uid, account.pw_gid)
    policy.write_text(f"exec {python}\nuser {args.user}\nallow PATH\nallow LANG\nallow HOME\n"
                      f"landlock best-effort\nset TMPDIR={tmpdir}\n")  # fmt: skip
    policy.chmod(0o644)
    direct_argv, launcher_argv = [python, "-c", "pass"], [args.launcher, "-c", "pass"]
    empty_argv = [args.empty] if args.empty else None
    unconfined_argv = [args.unconfined, "-c", "pass"] if args.unconfined else None
    extras = [argv for argv in (empty_argv, unconfined_argv) if argv]

    for _ in range(5):  # warm the page cache for each
        for argv in [direct_argv, launcher_argv, *extras]:
            wall_time(argv)
    direct: list[float] = []
    launched: list[float] = []
    empty: list[float] = []
    unconfined: list[float] = []
    for run in range(args.runs):  # interleaved, alternating which goes first
        group = [(direct, direct_argv), (launched, launcher_argv)]
        group += [(unconfined, unconfined_argv)] if unconfined_argv else []
        for times, argv in group if run % 2 == 0 else reversed(group):
            times.append(wall_time(argv))
        if empty_argv:
            empty.append(wall_time(empty_argv))

    direct_median, launched_median = statistics.median(direct), statistics.median(launched)
    runs = f"over {args.runs} runs"
    print(f"python -c pass (direct):  median {direct_median * 1000:.2f} ms {runs} ({python})")
    print(f"launcher -c pass:         median {launched_median * 1000:.2f} ms {runs}")
    print(f"ratio launcher/direct: {launched_median / direct_median:.3f} (see make bench)")
    if empty:
        # What the launcher adds, less a whole empty program's spawn and start-up with the same
        # libc and flags: what is left is the launcher's own work (slightly under, since the
        # empty program also pays a fork the launcher does not).
        empty_median = statistics.median(empty)
        own = launched_median - direct_median - empty_median
        print(f"empty program, same libc and flags: median {empty_median * 1000:.2f} ms {runs}")
        print(f"launcher's own work (launcher - direct - empty): {own * 1000:.2f} ms")
    if unconfined:
        unconfined_median = statistics.median(unconfined)
        print(f"launcher without its sandbox: median {unconfined_median * 1000:.2f} ms {runs}")
        ratio = launched_median / unconfined_median
        print(f"ratio sandbox (filter + Landlock)/without: {ratio:.4f} "
              f"(goal <= 1.01)")  # fmt: skip
        # The fastest runs are the ones other processes disturbed least: on a busy machine their
        # ratio moves less than the medians'.
        print(f"ratio of the fastest runs, sandbox/without: {min(launched) / min(unconfined):.4f}")
        cpu_launched = statistics.median(CPU_SECONDS[args.launcher][5:])  # after the warm-up
        cpu_unconfined = statistics.median(CPU_SECONDS[args.unconfined][5:])
        print(
            f"CPU time (user + system), median: {cpu_launched * 1000:.2f} ms with the sandbox, "
            f"{cpu_unconfined * 1000:.2f} ms without; ratio {cpu_launched / cpu_unconfined:.4f}"
        )


if __name__ == "__main__":
    main()
