"""harden.py's removal of the package installers, on an interpreter that has all of them.

The stand-in base has pip only; the official base images also carry setuptools (with its
`distutils-precedence.pth`, run by every interpreter start) and wheel. So the removal runs here in
a throwaway container of the stand-in, after installing both: every installer must be gone, and
a fresh interpreter must start without a word on stderr (a `.pth` left behind would complain at
every start of the worker). Debian's interpreter has no ensurepip, so the test gives it an empty
one where python.org's keeps it."""

import json
import re

from image.engine import ENGINE, podman
from image.standins import ensure_standin

from conftest import TEMPLATE, require_tool

IMAGE_DIR = TEMPLATE / "{{cookiecutter.app_name}}" / "image" / "hardening"
INSTALLERS = ("pip", "setuptools", "wheel", "ensurepip", "_distutils_hack")
SCRIPT = f"""
import importlib.util, json, pathlib, subprocess, sys, sysconfig
# Debian's Python (the stand-in's) leaves ensurepip out; python.org's (the official base's) has it.
ensurepip = pathlib.Path(sysconfig.get_paths()["stdlib"], "ensurepip")
ensurepip.mkdir(exist_ok=True)
(ensurepip / "__init__.py").touch()
subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                "--root-user-action=ignore", "setuptools==84.2.1", "wheel==0.48.0"], check=True)
before = [m for m in {INSTALLERS!r} if importlib.util.find_spec(m)]
sys.path.insert(0, "/harden")
import harden
removed = harden.remove_installer_modules()
fresh = subprocess.run([sys.executable, "-c", "import importlib.util, json; print(json.dumps("
                        "[m for m in {INSTALLERS!r} if importlib.util.find_spec(m)]))"],
                       capture_output=True, text=True)
print(json.dumps({{"before": before, "removed": removed, "after": json.loads(fresh.stdout),
                  "stderr": fresh.stderr}}))
"""


def test_harden_removes_pip_setuptools_wheel_and_ensurepip_and_python_still_starts() -> None:
    require_tool(ENGINE, "run harden.py in a container of the stand-in base")
    base = ensure_standin("3.11")
    result = podman("run", "--rm", "--volume", f"{IMAGE_DIR}:/harden:ro", base,
                    "python", "-c", SCRIPT, timeout=300)  # fmt: skip
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(report["before"]) == set(INSTALLERS), report["before"]
    assert sorted(name.split()[0] for name in report["removed"]) == ["pip", "setuptools", "wheel"]
    # Each with its version, read before its metadata went with it (it printed `pip None`).
    assert all(re.fullmatch(r"[a-z]+ \d+(\.\d+)+", name) for name in report["removed"]), report
    assert report["after"] == []
    assert report["stderr"] == ""
