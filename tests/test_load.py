"""Requests per second through the real runtime under a bounded local load, hardened image against
its unhardened app stage, pairwise in one run: the cost of the launcher's sandbox (its filter,
Landlock, the supervisor) under load, not only at start-up (test_startup.py).

The load: CLIENTS keep-alive connections that each send GET /api/health one after the other for
SECONDS, against each image in turn, ROUNDS times, alternating which goes first. The figures go
into CI's log; only a bound that noise cannot reach is asserted. The host is the stand-in (a
Python HTTP server before the gRPC worker), so the absolute rate is not Azure's; the worker, the
runtime and the sandbox around it are the ones that ship.
"""

import http.client
import secrets
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from image.engine import podman
from test_image import build, unhardened

from conftest import show_in_log

VERSION = "3.13"  # the version whose worker loads azure-functions-runtime on Azure too
CLIENTS, SECONDS, ROUNDS = 8, 4.0, 3
RATIO_BOUND = 0.5  # hardened below half the unhardened rate means something broke


@contextmanager
def serving(image: str) -> Iterator[tuple[int, str]]:
    """The published port and name of a started container of the image, once /api/health
    answers."""
    name = f"test-load-{secrets.token_hex(4)}"
    podman("run", "--detach", "--name", name, "-p", "127.0.0.1::80", image)
    try:
        port = int(podman("port", name, "80").stdout.strip().rsplit(":", 1)[1])
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                connection.request("GET", "/api/health")
                if connection.getresponse().status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.2)  # polling the container's start, bounded by the deadline
        else:
            pytest.fail(f"{image} never answered /api/health")
        yield port, name
    finally:
        podman("rm", "--force", name, check=False)


def rate(port: int) -> tuple[float, int]:
    """Requests per second over SECONDS from CLIENTS keep-alive clients, and the failures."""
    counts, failures = [0] * CLIENTS, [0] * CLIENTS
    stop = time.monotonic() + SECONDS

    def client(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while time.monotonic() < stop:
            try:
                connection.request("GET", "/api/health")
                answer = connection.getresponse()
                answer.read()
                if answer.status == 200:
                    counts[index] += 1
                else:
                    failures[index] += 1
            except OSError:
                failures[index] += 1
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.monotonic() - started), sum(failures)


def test_requests_per_second_hardened_against_unhardened(
    tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    built = build(VERSION, tmp_path_factory)
    images = {"hardened": built.image, "unhardened": unhardened(built)}
    rates: dict[str, list[float]] = {name: [] for name in images}
    failed = dict.fromkeys(images, 0)
    with serving(images["hardened"]) as hardened, serving(images["unhardened"]) as baseline:
        ports = {"hardened": hardened[0], "unhardened": baseline[0]}
        for round_ in range(ROUNDS):
            order = list(images) if round_ % 2 == 0 else list(reversed(images))
            for name in order:
                per_second, failures = rate(ports[name])
                rates[name].append(per_second)
                failed[name] += failures
        # What the hosts said about their workers (exits, restarts), for a failure's message.
        told = {name: [line for line in podman("logs", container[1]).stdout.splitlines()
                       if "worker exited" in line or "restarting" in line]
                for name, container in (("hardened", hardened), ("unhardened", baseline))}
    ratios = [h / u for h, u in zip(rates["hardened"], rates["unhardened"], strict=True)]
    lines = [f"{name:<11} {statistics.median(values):7.0f} req/s  (rounds: "
             f"{', '.join(f'{v:.0f}' for v in values)})" for name, values in rates.items()]  # fmt: skip
    show_in_log(capsys, f"load, Python {VERSION}, {CLIENTS} clients x {SECONDS:.0f} s x "
                        f"{ROUNDS} rounds, GET /api/health through the stand-in host and "
                        f"azure-functions-runtime\n" + "\n".join(lines)
                        + f"\nratio hardened/unhardened {statistics.median(ratios):.3f} "
                        f"(rounds: {', '.join(f'{r:.3f}' for r in ratios)})")  # fmt: skip
    assert failed == {"hardened": 0, "unhardened": 0}, (failed, told)
    assert statistics.median(ratios) >= RATIO_BOUND, rates
