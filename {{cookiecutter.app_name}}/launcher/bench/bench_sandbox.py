"""The sandbox's share of the launcher's start-up (`make bench-sandbox`).

The launcher and the same launcher built without Landlock and the system-call filter
(--unconfined, from bench_unconfined.c) start the same interpreter on bench.py's one line, with
the interpreter started directly beside them, 100 times each, interleaved in one process so that
machine noise hits all alike; each figure is the whole run, spawn to reaped. Run as root, as the host does: the launcher reads its policy, drops to --user and execs the
interpreter. Prints the medians (wall and CPU time) and the ratio sandbox/without; nothing is
adjusted. `make bench` (bench.py, whose helpers this uses) compares the launcher with the tools
that do the same.
"""

import argparse
import statistics
from pathlib import Path

from bench import MARK, as_python, interleaved, interpreter, require_root, write_sandbox_policy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--launcher", required=True, help="a launcher built to read --policy")
    parser.add_argument("--policy", required=True, help="the policy file that launcher reads")
    parser.add_argument(
        "--unconfined", required=True, help="the launcher built without its sandbox"
    )
    parser.add_argument("--user", default="nobody", help="the account the launcher drops to")
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    require_root()

    python = interpreter()
    write_sandbox_policy(Path(args.policy), python, args.user)
    commands = {
        "direct": [python, "-c", MARK],
        "launcher": as_python(args.launcher, python),
        "unconfined": as_python(args.unconfined, python),
    }

    wall, cpu, _ = interleaved(commands, args.runs)
    median = {name: statistics.median(values) for name, values in wall.items()}
    runs = f"over {args.runs} runs"
    print(f"python (direct):          median {median['direct'] * 1000:.2f} ms {runs} ({python}, whole run)")
    print(f"launcher:                 median {median['launcher'] * 1000:.2f} ms {runs}")
    print(f"ratio launcher/direct: {median['launcher'] / median['direct']:.3f} (see make bench)")
    print(f"launcher without its sandbox: median {median['unconfined'] * 1000:.2f} ms {runs}")
    ratio = median["launcher"] / median["unconfined"]
    print(f"ratio sandbox (filter + Landlock)/without: {ratio:.4f} (goal <= 1.01)")
    # The fastest runs are the ones other processes disturbed least: on a busy machine their
    # ratio moves less than the medians'.
    fastest = min(wall["launcher"]) / min(wall["unconfined"])
    print(f"ratio of the fastest runs, sandbox/without: {fastest:.4f}")
    cpu_launched, cpu_unconfined = (statistics.median(cpu[n]) for n in ("launcher", "unconfined"))
    print(
        f"CPU time (user + system), median: {cpu_launched * 1000:.2f} ms with the sandbox, "
        f"{cpu_unconfined * 1000:.2f} ms without; ratio {cpu_launched / cpu_unconfined:.4f}"
    )


if __name__ == "__main__":
    main()
