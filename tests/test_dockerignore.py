"""The generated .dockerignore is an allow-list: local secret files in a checkout never reach the
image's code directory, whatever their name or folder, and the app's own files all do.

The real Dockerfile's app stage is built on the stand-in base (its layers are shared with the
image tests' build) from a bake with planted secrets, and the code directory is listed inside it.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TEMPLATE, require_tool
from image.engine import ENGINE, TEST_IMAGES, make_image
from image.standins import ensure_builder, ensure_standin

CODE_DIRECTORY = "/home/site/wwwroot"
# What a developer's checkout may hold next to the code: none of it may reach the image.
PLANTED = [
    ".env",
    ".env.production",
    ".azure/dev/.env",
    ".azure/config.json",
    "key.pem",
    "client.pfx",
    "tls.key",
    "blueprints/.env",
    "blueprints/signing.pem",
    "settings/service.key",
    # Secret files of every kind in the folders the app's code comes from, dotfiles included.
    *(f"{folder}/{name}" for folder in ("settings", "blueprints") for name in (
        ".netrc", ".git-credentials", ".npmrc", "keystore.jks", "deploy.ppk", "client.crt",
        "secrets.yaml", "service-principal.json", "terraform.tfstate", ".hidden.py",
    )),
    "downloads/.netrc",
    "downloads/secrets.yaml",
    "local.settings.json",
    "tests/fixtures/secret.json",
    ".venv/lib/leak.py",
    "notes/credentials.txt",
]
LIST_FILES = f"""
import json, os
found = []
for root, dirs, files in os.walk({CODE_DIRECTORY!r}):
    found += [os.path.relpath(os.path.join(root, name), {CODE_DIRECTORY!r}) for name in files]
print(json.dumps(sorted(found)))
"""


APP_FILES = ("function_app.py", "confinement.py", "host.json", "requirements.txt")
# The app's folders and the one kind of file each admits (the generated .dockerignore says why).
APP_DIRECTORIES = {"blueprints": "*.py", "settings": "*.py", "downloads": "*.txt"}


def app_files(project: Path) -> set[str]:
    """The app's own files in a fresh bake: what the code directory must hold, and nothing else."""
    found = {name for name in APP_FILES if (project / name).is_file()}
    for directory, kind in APP_DIRECTORIES.items():
        found |= {
            str(p.relative_to(project)) for p in (project / directory).rglob(kind) if p.is_file()
        }
    return found


def test_planted_secret_files_never_reach_the_code_directory(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    from cookiecutter.main import cookiecutter

    require_tool(ENGINE, "build the generated image")
    version = "3.11"
    out = tmp_path_factory.mktemp("dockerignore")
    project = Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(out),
                                extra_context={"python_version": version,
                                               "workshop": True}))  # fmt: skip
    expected = app_files(project)
    for relative in PLANTED:
        (project / relative).parent.mkdir(parents=True, exist_ok=True)
        (project / relative).write_text("CANARY-planted-secret\n")
    image = f"{TEST_IMAGES}/dockerignore:{version}"
    make_image(project, image, ensure_standin(version), ensure_builder(), target="app")
    listing = subprocess.run(
        [ENGINE, "run", "--rm", "--network", "none", "--entrypoint", "python", image,
         "-c", LIST_FILES],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    shipped = {path for path in json.loads(listing.stdout) if "__pycache__" not in path}
    assert sorted(shipped & set(PLANTED)) == []
    assert "function_app.py" in expected and "blueprints/health.py" in expected
    assert shipped == expected, (
        f"missing: {sorted(expected - shipped)}; extra: {sorted(shipped - expected)}"
    )


NINE_SECRET_FILES = (".netrc", ".git-credentials", ".npmrc", "keystore.jks", "deploy.ppk",
                     "client.crt", "secrets.yaml", "service-principal.json",
                     "terraform.tfstate")  # fmt: skip


@pytest.mark.parametrize("name", [*NINE_SECRET_FILES, ".hidden.py", "id_ed25519"])
def test_verify_image_fails_on_a_secret_file_in_the_code_directory(name: str) -> None:
    """verify-image's own check, on a file system as the export reads it: the app's files pass
    (settings/secret.py and its bytecode are code), each secret file fails and is named."""
    sys.path.insert(0, str(TEMPLATE / "{{cookiecutter.app_name}}" / "image" / "verify"))
    from code_directory import secret_files_row
    from rootfs import Entry, RootFS

    app = ["function_app.py", "settings/secret.py", "settings/__pycache__/secret.cpython-311.pyc",
           "blueprints/greeting.py", "downloads/readme.txt", "host.json"]  # fmt: skip

    def image_with(*files: str) -> RootFS:
        fs = RootFS()
        for relative in files:
            path = f"{CODE_DIRECTORY}/{relative}"
            fs.entries[path] = Entry(path, 0o644, "file", "", 0)
        return fs

    assert secret_files_row(image_with(*app))[1]
    _, ok, detail = secret_files_row(image_with(*app, f"settings/{name}"))
    assert not ok and detail == f"{CODE_DIRECTORY}/settings/{name}"
