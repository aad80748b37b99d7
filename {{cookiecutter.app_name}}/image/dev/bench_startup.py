"""Where a container's start-up goes (`make bench-startup`): the hardened image against another.

Both images are started --runs times each, interleaved and alternating which goes first, so
that machine noise hits both alike; each start is timed from `run` to the first HTTP 200 of
--path, polled from outside every few milliseconds on a published loopback port. The container
log's timestamps split that time: the engine (`run` until the container's process started),
the host's own start (until its first log line), then every --mark (until the first log line
that matches it), then the first answer. Prints the median of each part for both images and
their ratio; nothing is adjusted. The container gets no secret: its health answer is enough.
"""

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime

POLL_SECONDS = 0.005


def engine_run(engine: str, *args: str) -> str:
    result = subprocess.run([engine, *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"bench-startup: {engine} {args[0]} failed: {result.stderr.strip()[-500:]}")
    return result.stdout


def timestamp(text: str) -> float:
    """Seconds since the epoch from an RFC 3339 time with nanoseconds, as engines print them."""
    match = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", text)
    if match is None:
        sys.exit(f"bench-startup: unexpected time {text!r}")
    whole, fraction, zone = match.groups()
    seconds = datetime.fromisoformat(whole + ("+00:00" if zone == "Z" else zone)).timestamp()
    return seconds + float(f"0.{fraction or 0}")


def first_answer(port: int, path: str, deadline: float) -> float:
    """time.time() of the first 200 from http://127.0.0.1:<port><path>."""
    url = f"http://127.0.0.1:{port}{path}"
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return time.time()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(POLL_SECONDS)  # polling a server that is starting, bounded by the deadline
    sys.exit(f"bench-startup: {url} gave no 200 before the deadline")


def one_start(engine: str, image: str, path: str, marks: dict[str, str]) -> dict[str, float]:
    """Seconds of each part of one start, in order; the parts add up to the total."""
    started = time.time()
    container = engine_run(engine, "run", "--detach", "--publish", "127.0.0.1::80", image).strip()
    try:
        port = int(engine_run(engine, "port", container, "80/tcp").split(":")[-1])
        answered = first_answer(port, path, started + 120)
        state = json.loads(engine_run(engine, "inspect", container))[0]["State"]
        process_started = timestamp(state["StartedAt"])
        log = engine_run(engine, "logs", "--timestamps", container).splitlines()
    finally:
        engine_run(engine, "rm", "--force", container)
    lines = [(timestamp(line), line.partition(" ")[2]) for line in log if line.strip()]
    if not lines:
        sys.exit(f"bench-startup: {image} logged nothing")
    points = [("engine", process_started), ("host's own start", lines[0][0])]
    for label, pattern in marks.items():
        at = next((t for t, text in lines if re.search(pattern, text)), None)
        if at is None:
            sys.exit(f"bench-startup: no log line of {image} matches --mark {label}={pattern}")
        points.append((label, at))
    points.append(("first answer", answered))
    parts, previous = {}, started
    for label, at in points:
        parts[label], previous = max(at, previous) - previous, max(at, previous)
    parts["total"] = answered - started
    return parts


def total(parts: dict[str, float]) -> float:
    return parts["total"]


def after_engine(parts: dict[str, float]) -> float:
    return parts["total"] - parts["engine"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--engine", default="docker")
    parser.add_argument("--image", required=True, help="the hardened image")
    parser.add_argument("--baseline", required=True, help="the image to compare with")
    parser.add_argument("--path", default="/api/health")
    # Twenty pairs: one start's noise (mostly the engine's share) is a few percent, and the
    # quartiles of the pairs' ratios say how far the median can be trusted.
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument(
        "--mark",
        action="append",
        default=[],
        metavar="LABEL=REGEX",
        help="split at the first log line matching REGEX (in order)",
    )
    args = parser.parse_args()
    marks = dict(mark.partition("=")[::2] for mark in args.mark)

    images = {"hardened": args.image, "baseline": args.baseline}
    for image in images.values():  # the first start of an image pays for its storage layers
        one_start(args.engine, image, args.path, marks)
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in images}
    for run in range(args.runs):
        order = list(images) if run % 2 == 0 else list(images)[::-1]
        for name in order:
            runs[name].append(one_start(args.engine, images[name], args.path, marks))

    print(
        f"container start to first 200 of {args.path}: medians of {args.runs} interleaved "
        f"starts each ({args.engine})"
    )
    print(f"  {'part':<28} {'hardened':>10} {'baseline':>10} {'ratio':>7}")
    for part in runs["hardened"][0]:
        hardened, baseline = (statistics.median(r[part] for r in runs[n]) for n in images)
        ratio = f"{hardened / baseline:7.3f}" if baseline > 0 else f"{'-':>7}"
        print(f"  {part:<28} {hardened * 1000:8.0f} ms {baseline * 1000:7.0f} ms {ratio}")
    # Each run started both images one after the other: the ratio within a pair shares its
    # moment's load, so the median of those ratios is steadier than the ratio of medians.
    # Without the engine's share (the same program for both images, and most of the noise):
    # from the container's process start to the first answer, what the image itself decides.
    for label, seconds in (("total", total), ("after the engine", after_engine)):
        pairs = [
            seconds(h) / seconds(b) for h, b in zip(runs["hardened"], runs["baseline"], strict=True)
        ]
        low, _, high = statistics.quantiles(pairs, n=4)
        print(
            f"{label}, median of the {args.runs} pairs' ratios: {statistics.median(pairs):.3f} "
            f"(quartiles {low:.3f} to {high:.3f})"
        )
    print(f"hardened: {args.image}\nbaseline: {args.baseline}")


if __name__ == "__main__":
    main()
