"""The generated .dockerignore is an allow-list: local secret files in a checkout never reach the
image's code directory, whatever their name or folder, and the app's own files all do.

The real Dockerfile's app stage is built on the stand-in base (its layers are shared with the
image tests' build) from a bake with planted secrets, and the code directory is listed inside it.
"""

import json
import subprocess
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
APP_DIRECTORIES = ("blueprints", "settings", "downloads")


def app_files(project: Path) -> set[str]:
    """The app's own files in a fresh bake: what the code directory must hold, and nothing else."""
    found = {name for name in APP_FILES if (project / name).is_file()}
    for directory in APP_DIRECTORIES:
        found |= {
            str(p.relative_to(project)) for p in (project / directory).rglob("*") if p.is_file()
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
