"""How long the local test servers take to stop: ours against the standard library's loop.

`make test` starts and stops a fake Key Vault and identity endpoint for many tests. The standard
library's `serve_forever()` notices `shutdown()` only at its next poll, every 0.5 s; the fakes'
own loop (tests/azure_fakes/https_server.py) wakes at once. Both are started and stopped --runs
times, interleaved, in this process, each stopped as soon as it runs (as a short test stops
its fakes within the first poll); prints the medians and their ratio.
"""

import argparse
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import ThreadingHTTPServer
from pathlib import Path

from tests.azure_fakes.https_server import CountingHTTPSServer, QuietHandler
from tests.azure_fakes.tls import TestCA, make_test_ca


def ours(ca: TestCA) -> Callable[[], None]:
    server = CountingHTTPSServer(QuietHandler, ca)
    server.start()
    return server.stop


def standard_library() -> Callable[[], None]:
    """What the fakes did before: serve_forever in a thread, shutdown() to stop."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join()

    return stop


def stop_seconds(start: Callable[[], Callable[[], None]]) -> float:
    stop = start()
    began = time.perf_counter()
    stop()
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        report(args.runs, make_test_ca(Path(directory)))


def report(runs: int, ca: TestCA) -> None:
    timings: dict[str, list[float]] = {"ours": [], "serve_forever": []}
    pair = [("ours", lambda: ours(ca)), ("serve_forever", standard_library)]
    for run in range(runs):  # interleaved, alternating which goes first
        for name, start in pair if run % 2 == 0 else pair[::-1]:
            timings[name].append(stop_seconds(start))
    mine, theirs = (statistics.median(timings[name]) for name in ("ours", "serve_forever"))
    print(
        f"test server stop: {mine * 1000:.2f} ms (serve_forever + shutdown: "
        f"{theirs * 1000:.0f} ms), median of {runs} each; ratio {mine / theirs:.4f}"
    )


if __name__ == "__main__":
    main()
