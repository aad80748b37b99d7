"""The generated project's locks are complete: every package each one installs is pinned and
hashed, so a fresh install in hash-checking mode succeeds offline from a wheel cache on every
supported Python, and fails when one hash or one pin is altered."""

import glob
import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import IN_CI, SUPPORTED_PYTHON_VERSIONS, TEMPLATE, run

LOCKS = ("requirements.txt", "requirements-dev.txt", "lint/requirements-lint.txt")


def interpreter(version: str) -> str:
    """A python<version> that runs: from PATH, else from pyenv; a skip locally, a failure in CI."""
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    found = [shutil.which(f"python{version}"), *glob.glob(f"{root}/versions/{version}.*/bin/python3")]
    candidates = [path for path in found if path]
    for candidate in candidates:
        # pyenv's shim for a version it does not activate exists but exits non-zero.
        probe = subprocess.run([candidate, "-c", "import venv"], capture_output=True, check=False)
        if probe.returncode == 0:
            return candidate
    message = f"no Python {version} interpreter; it is needed to prove the locks install on it"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


def pip_env() -> dict[str, str]:
    """pip with no machine-wide configuration: no extra index or local wheel directory may
    feed an install that must come from the test's own wheel cache."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") or k == "PIP_CERT"}
    return env | {"PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from cookiecutter.main import cookiecutter

    out = tmp_path_factory.mktemp("locks")
    return Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(out)))


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One wheel cache for every lock and Python version (pure-Python wheels are shared)."""
    return tmp_path_factory.mktemp("wheels")


def download(python: str, lock: Path, wheels: Path) -> None:
    """Every wheel of the lock for this Python, hash-checked; wheels only: nothing is built."""
    run([python, "-m", "pip", "download", "--quiet", "--require-hashes", "--only-binary", ":all:",
         "--dest", str(wheels), "-r", str(lock)], env=pip_env(), timeout=900)  # fmt: skip


def install_offline(python: str, lock: Path, wheels: Path, venv: Path) -> subprocess.CompletedProcess[str]:
    if not venv.exists():
        run([python, "-m", "venv", str(venv)])
    return subprocess.run(
        [str(venv / "bin/python"), "-m", "pip", "install", "--no-index", "--find-links", str(wheels),
         "--require-hashes", "-r", str(lock)],
        capture_output=True, text=True, timeout=900, check=False, env=pip_env(),
    )  # fmt: skip


@pytest.mark.parametrize("version", SUPPORTED_PYTHON_VERSIONS)
@pytest.mark.parametrize("lock", LOCKS)
def test_lock_is_complete_and_hashed_on_every_python(
    project: Path, wheels: Path, lock: str, version: str
) -> None:
    """pip resolves each lock with that interpreter's own markers in hash-checking mode: a
    dependency the lock lacks, or a release with no wheel for that Python, fails here."""
    download(interpreter(version), project / lock, wheels)


# A fresh venv from the wheel cache alone: the runtime lock on every Python the image may run,
# the tools' locks on the default one (their completeness on the others is proven above).
OFFLINE_INSTALLS = [
    *(("requirements.txt", version) for version in SUPPORTED_PYTHON_VERSIONS),
    ("requirements-dev.txt", "3.11"),
    ("lint/requirements-lint.txt", "3.11"),
]


@pytest.mark.parametrize(("lock", "version"), OFFLINE_INSTALLS)
def test_lock_installs_offline_in_hash_checking_mode(
    project: Path, wheels: Path, tmp_path: Path, lock: str, version: str
) -> None:
    python = interpreter(version)
    download(python, project / lock, wheels)
    result = install_offline(python, project / lock, wheels, tmp_path / "venv")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    run([str(tmp_path / "venv/bin/python"), "-m", "pip", "check"], env=pip_env())


def test_runtime_lock_with_one_altered_hash_is_refused(project: Path, wheels: Path, tmp_path: Path) -> None:
    python = interpreter("3.11")
    lock = project / "requirements.txt"
    download(python, lock, wheels)
    (wheel,) = wheels.glob("azure_functions-*.whl")
    real = hashlib.sha256(wheel.read_bytes()).hexdigest()
    text = lock.read_text()
    assert f"--hash=sha256:{real}" in text, "the lock does not hash the wheel pip downloaded"
    tampered = tmp_path / "requirements.txt"
    tampered.write_text(text.replace(real, hashlib.sha256(b"tampered").hexdigest()))
    result = install_offline(python, tampered, wheels, tmp_path / "venv")
    assert result.returncode != 0
    assert "THESE PACKAGES DO NOT MATCH THE HASHES" in result.stderr
    refused = result.stderr.split("azure-functions==", 1)[-1]
    assert hashlib.sha256(b"tampered").hexdigest() in refused, result.stderr[-2000:]
    assert re.search(rf"Got\s+{real}", refused), result.stderr[-2000:]


def test_runtime_lock_missing_one_pin_is_refused(project: Path, wheels: Path, tmp_path: Path) -> None:
    """Completeness is checked, not assumed: drop a transitive pin and the install must stop."""
    python = interpreter("3.11")
    lock = project / "requirements.txt"
    download(python, lock, wheels)
    text = lock.read_text()
    without = re.sub(r"^isodate==.*?(?=^\S)", "", text, count=1, flags=re.MULTILINE | re.DOTALL)
    assert "isodate==" in text and "isodate==" not in without
    incomplete = tmp_path / "requirements.txt"
    incomplete.write_text(without)
    result = install_offline(python, incomplete, wheels, tmp_path / "venv")
    assert result.returncode != 0
    assert "In --require-hashes mode, all requirements must have their versions pinned" in result.stderr
    assert "isodate" in result.stderr


def test_make_lock_reproduces_the_shipped_locks(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The locks are `make lock`'s own output (pip-compile keeps the pins it finds): what
    Dependabot reruns and what a developer reruns give the same files."""
    from cookiecutter.main import cookiecutter

    project = Path(cookiecutter(str(TEMPLATE), no_input=True,
                                output_dir=str(tmp_path_factory.mktemp("make-lock"))))  # fmt: skip
    shipped = {lock: (project / lock).read_text() for lock in LOCKS}
    run(["make", "lock", f"PYTHON={interpreter('3.11')}"], cwd=project, env=pip_env(), timeout=900)
    changed = [lock for lock in LOCKS if (project / lock).read_text() != shipped[lock]]
    assert changed == [], f"make lock changed {changed}: recompile them and commit the result"
