"""What detection costs (`make bench-detection`).

Start-up: the launcher, and the same launcher whose filter has no listener (--unwatched, from
bench_unwatched.c: the same refusals, answered by the kernel, unreported), start `-c pass` in
pairs, the order alternating, so that each pair shares the machine's state; the figure is the
median of the pairs' differences with its quartiles. A flood: a worker making FLOOD refused
calls as fast as it can, watched and not: the time each refused call costs and how many event
lines the whole flood printed. Run as root, as the host does.
"""

import argparse
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench import interpreter, require_root, timed, write_sandbox_policy

FLOOD = 20000
UNSHARE = {"x86_64": 272, "aarch64": 97}[platform.machine()]
FLOOD_CODE = f"""
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
for _ in range({FLOOD}):
    if libc.syscall({UNSHARE}, 0x10000000) == 0:
        raise SystemExit('unshare was allowed')
"""


def flood(argv: list[str]) -> tuple[float, int]:
    """(seconds, event lines printed) for one flood of refused calls."""
    start = time.perf_counter()
    result = subprocess.run([*argv, "-c", FLOOD_CODE], capture_output=True, text=True, check=False)  # noqa: S603
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        sys.exit(f"bench: the flood exited {result.returncode}: {result.stderr.strip()[-300:]}")
    return elapsed, sum(line.startswith("launcher-security-event:") for line in result.stderr.splitlines())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--launcher", required=True, help="a launcher built to read --policy")
    parser.add_argument("--policy", required=True, help="the policy file both launchers read")
    parser.add_argument("--unwatched", required=True, help="the launcher whose filter has no listener")
    parser.add_argument("--user", default="nobody", help="the account the launcher drops to")
    parser.add_argument("--pairs", type=int, default=100)
    args = parser.parse_args()
    require_root()

    python = interpreter()
    write_sandbox_policy(Path(args.policy), python, args.user)
    watched, unwatched = [args.launcher, "-c", "pass"], [args.unwatched, "-c", "pass"]

    for _ in range(5):  # warm the page cache for both
        timed(watched)
        timed(unwatched)
    differences, starts, unwatched_starts = [], [], []
    for pair in range(args.pairs):
        if pair % 2 == 0:
            with_watch, without = timed(watched)[0], timed(unwatched)[0]
        else:
            without, with_watch = timed(unwatched)[0], timed(watched)[0]
        differences.append(with_watch - without)
        starts.append(with_watch)
        unwatched_starts.append(without)
    low, median, high = (q * 1000 for q in statistics.quantiles(differences, n=4))
    print(f"start-up, watched: median {statistics.median(starts) * 1000:.2f} ms ({python} -c pass)")
    # The fastest runs are the ones other processes disturbed least.
    print(f"start-up, fastest: {min(starts) * 1000:.2f} ms watched, "
          f"{min(unwatched_starts) * 1000:.2f} ms unwatched")  # fmt: skip
    print(f"start-up, watched minus unwatched, {args.pairs} pairs: median {median:+.3f} ms "
          f"(quartiles {low:+.3f} to {high:+.3f} ms)")  # fmt: skip

    (watched_time, watched_lines), (unwatched_time, _) = flood([args.launcher]), flood([args.unwatched])
    per_call = (watched_time - unwatched_time) / FLOOD * 1e6
    print(f"flood of {FLOOD} refused calls: {watched_time:.2f} s watched ({FLOOD / watched_time:,.0f} a second), "
          f"{unwatched_time:.2f} s unwatched; the watch adds {per_call:.1f} us a refused call")  # fmt: skip
    print(f"flood event lines printed: {watched_lines} for {FLOOD} refusals")


if __name__ == "__main__":
    main()
