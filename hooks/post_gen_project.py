"""Remove what the answers switched off, then print the next steps to a person who baked."""

import os
import shutil
import tempfile
from pathlib import Path

SWITCHED_OFF = {
    "infra": not {{ cookiecutter.include_infra }},
    "azure.yaml": not {{ cookiecutter.include_infra }},
    "infra/network.bicep": not {{ cookiecutter.private_networking }},
    "infra/containerapps.bicep": "{{ cookiecutter.hosting }}" != "containerapps",
    "docs/workshop.md": not {{ cookiecutter.workshop }},
    "docs/lab_identity_endpoint.py": not {{ cookiecutter.workshop }},
    "blueprints/workshop_download.py": not {{ cookiecutter.workshop }},
    "downloads": not {{ cookiecutter.workshop }},
    "tests/test_workshop_download.py": not {{ cookiecutter.workshop }},
}

for relative, remove in SWITCHED_OFF.items():
    path = Path(relative)
    if remove and path.is_dir():
        shutil.rmtree(path)
    elif remove and path.exists():
        path.unlink()
if Path("docs").is_dir() and not any(Path("docs").iterdir()):
    Path("docs").rmdir()


def baked_by_a_tool() -> bool:
    """True inside `make demo` (which moves the project on at once and prints its own next step)
    and inside `cruft diff`/`cruft update`, which bake into a fresh temporary directory (Python's
    TemporaryDirectory, named tmp*) only to compare: no person reads these steps there."""
    if os.environ.get("TEMPLATE_BAKE_QUIET"):
        return True
    output_dir = Path.cwd().parent
    return output_dir.parent == Path(tempfile.gettempdir()) and output_dir.name.startswith("tmp")


if not baked_by_a_tool():
    print(
        f"""
Baked {{ cookiecutter.app_name }} into {Path.cwd()}
Next steps:
  cd {Path.cwd()}
  git init && make test    # ruff, mypy and the unit tests
  make run                 # the app in its hardened image on http://localhost:7071 (make stop ends it)
  make new-function ...    # your own function and its test: NAME=orders TRIGGER=http|timer
  make help                # every other target; README.md has the security model and Azure setup"""
    )
