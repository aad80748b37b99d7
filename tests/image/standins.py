"""The offline stand-in base images for the image tests (fixtures: tests/image/standin/README.md).

`make standin` builds them once and finds them cached afterwards (well under a second), so every
test may call these freely; the first call of a session on a fresh machine pays about a minute
a version.
"""

import functools
import subprocess
import warnings

import pytest

from conftest import TEMPLATE, require_tool

# Each with the layout of its official image: 3.11 Docker-python style in /usr/local (bookworm's
# libpython 3.11), 3.12 in /opt/python with libpython found through LD_LIBRARY_PATH, 3.13 in
# /opt/python with a /usr/lib link (both this machine's real CPython when it has one, else
# Debian's libpython behind a front end: README.md).
STANDIN_VERSIONS = ("3.11", "3.12", "3.13")
BUILDER_IMAGE = "localhost/standin/builder"


@functools.cache
def _make_standin(version: str) -> str:
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
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines or not lines[-1].startswith("localhost/standin/"):
        pytest.fail(
            f"make standin PYTHON_VERSION={version} failed:\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    for line in lines:  # a stand-in without a real interpreter says so in the test output
        if line.startswith("standin: no CPython"):
            warnings.warn(line, stacklevel=1)
    return lines[-1]  # build.sh's last line: the image, named after its sources' hash


def ensure_standin(version: str) -> str:
    """The stand-in Functions Python base image for the version, built if missing or stale."""
    return _make_standin(version)


def ensure_builder() -> str:
    """The stand-in C builder image (Debian bookworm with gcc, make and libc6-dev)."""
    _make_standin(STANDIN_VERSIONS[0])  # `make standin` builds the builder along with any version
    return BUILDER_IMAGE
