"""Remove what the answers switched off, then print the next steps."""

import shutil
from pathlib import Path

SWITCHED_OFF = {
    "infra": not {{ cookiecutter.include_infra }},
    "azure.yaml": not {{ cookiecutter.include_infra }},
    "infra/network.bicep": not {{ cookiecutter.private_networking }},
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

print(
    """
Baked {{ cookiecutter.app_name }} in {}.
Next steps:
  cd {{ cookiecutter.app_name }} && git init && make test   # ruff, mypy and the unit tests
  make help                                                  # every other target
  README.md explains the security model and the one-time Azure setup.""".format(Path.cwd())
)
