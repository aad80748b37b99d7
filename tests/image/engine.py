"""Podman helpers for the template's image tests: build a baked project's image, run a container."""

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ENGINE = "podman"
# Image names the tests build: several checkouts on one machine each set their own namespace
# (TEMPLATE_TEST_IMAGES), so that concurrent runs never tag over each other's images.
TEST_IMAGES = "localhost/" + os.environ.get("TEMPLATE_TEST_IMAGES", "template-test")


def podman(
    *args: str, timeout: float = 120, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [ENGINE, *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"podman {' '.join(args[:2])} exited {result.returncode}: {result.stderr[-2000:]}"
        )
    return result


def make_image(
    project: Path, image: str, base: str, builder: str, target: str = "hardened"
) -> float:
    """`make image` in a baked project on the stand-ins; the seconds it took."""
    started = time.monotonic()
    result = subprocess.run(
        ["make", "-C", str(project), "image", f"ENGINE={ENGINE}", f"IMAGE={image}",
         f"BASE_IMAGE={base}", f"BUILDER_IMAGE={builder}", f"TARGET={target}"],
        capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        pytest.fail(
            f"make image ({target}) failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
    return time.monotonic() - started


@contextmanager
def running(image: str, env: dict[str, str] | None = None, options: tuple[str, ...] = ()) -> Iterator[str]:
    """A detached container of the image, started by its own entrypoint (with the engine's
    `options`); always removed."""
    name = f"test-image-{secrets.token_hex(4)}"
    env_args = [arg for key, value in (env or {}).items() for arg in ("--env", f"{key}={value}")]
    try:
        podman("run", "--detach", "--network", "none", "--name", name, *env_args, *options, image)
        yield name
    finally:
        podman("rm", "--force", name, check=False)


def exec_python(container: str, code: str) -> subprocess.CompletedProcess[str]:
    """Run code with the container's `python` from PATH as root, as the host runs the worker."""
    return podman("exec", "--user", "0:0", container, "python", "-c", code, check=False)


def in_network_command(container: str, code: str, *args: str) -> list[str]:
    """The test's own interpreter running code in the container's network namespace: a client
    from outside the image. Inside it every `python` is the launcher, whose worker may connect
    only to its policy's ports (the host's port 80 is not one of them)."""
    pid = podman("inspect", "--format", "{{.State.Pid}}", container).stdout.strip()
    return ["nsenter", f"--net=/proc/{pid}/ns/net", sys.executable, "-I", "-c", code, *args]


def in_network_of(container: str, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        in_network_command(container, code), capture_output=True, text=True, timeout=60, check=False
    )


def http_get_json(
    container: str,
    path: str,
    ready: Callable[[object], bool] = lambda _: True,
    deadline_seconds: float = 60,
) -> object:
    """GET http://127.0.0.1:80<path> from the container's network, polled until a 200 answer
    is ready."""
    code = (
        "import urllib.request, sys\n"
        f"print(urllib.request.urlopen('http://127.0.0.1:80{path}', timeout=5).read().decode())"
    )
    deadline = time.monotonic() + deadline_seconds
    last = ""
    while time.monotonic() < deadline:
        result = in_network_of(container, code)
        if result.returncode == 0:
            answer = json.loads(result.stdout)
            if ready(answer):
                return answer
        last = (result.stderr.strip() or result.stdout.strip())[-300:]
        time.sleep(0.5)  # polling the server, bounded by the deadline
    pytest.fail(f"GET {path} in {container} never answered: {last}")
