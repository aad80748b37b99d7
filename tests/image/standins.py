"""The offline stand-in base images for the image tests (fixtures: tests/image/standin/README.md).

`make standin` builds them once and finds them cached afterwards (well under a second), so every
test may call these freely; the first call of a session on a fresh machine pays about a minute.
"""

import functools
import subprocess

import pytest

from conftest import TEMPLATE, require_tool

STANDIN_VERSIONS = ("3.11", "3.13")  # Debian bookworm ships 3.11, trixie 3.13; 3.12 has no stand-in
BUILDER_IMAGE = "localhost/standin/builder"


def standin_image(version: str) -> str:
    return f"localhost/standin/functions-python:{version}"


@functools.cache
def _make_standin(version: str) -> None:
    require_tool("podman", "build and run the stand-in images")
    require_tool("debootstrap", "build the Debian root file systems of the stand-in images")
    if version not in STANDIN_VERSIONS:
        pytest.fail(
            f"no stand-in for Python {version}; there are for {', '.join(STANDIN_VERSIONS)}"
        )
    result = subprocess.run(
        ["make", "-C", str(TEMPLATE), "-s", "standin", f"PYTHON_VERSION={version}"],
        capture_output=True, text=True, timeout=1200, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        pytest.fail(
            f"make standin PYTHON_VERSION={version} failed:\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )


def ensure_standin(version: str) -> str:
    """The stand-in Functions Python base image for the version, built if missing or stale."""
    _make_standin(version)
    return standin_image(version)


def ensure_builder() -> str:
    """The stand-in C builder image (Debian bookworm with gcc, make and libc6-dev)."""
    _make_standin(STANDIN_VERSIONS[0])  # `make standin` builds the builder along with any version
    return BUILDER_IMAGE
