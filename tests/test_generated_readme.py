"""The generated README and `make help` speak of what this bake has: without `infra/`, the README
says what the team must provide instead, by name, and never points at Bicep it does not hold;
`make help` shows names, not unexpanded make variables."""

import subprocess
import tomllib
from pathlib import Path


def test_a_bake_without_infra_says_what_to_provide_instead(bake) -> None:
    project: Path = bake(include_infra=False, unique_suffix="abc123")
    assert not (project / "infra").exists()
    readme = (project / "README.md").read_text()
    assert "This project was baked without `infra/` (`include_infra=no`): the platform team" in readme
    for provided in ("container registry `hardenedfunctionsappabc123acr`",
                     "Key Vault `kv-hardened-funct-abc123`",
                     "function app `hardened-functions-app-abc123`",
                     "`AzureWebJobsStorage__credential=managedidentity`",
                     "the app's: **Key Vault Secrets User** on the vault and nothing else"):  # fmt: skip
        assert provided in readme, provided
    assert "az deployment group create" not in readme
    stray = [line for line in readme.splitlines() if "infra/" in line and "include_infra" not in line]
    assert stray == [], stray


def test_a_bake_with_infra_has_no_such_section(bake) -> None:
    readme = (bake() / "README.md").read_text()
    assert "baked without `infra/`" not in readme
    assert "az deployment group create --resource-group \"$RG\" --template-file infra/main.bicep" in readme


def test_generated_make_help_shows_no_unexpanded_make_variable(bake) -> None:
    listed = subprocess.run(["make", "--no-print-directory", "-s", "help"], cwd=bake(),
                            capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert "verify-image" in listed and "$(" not in listed, listed


def test_the_readme_names_the_teams_files_as_cruft_skips_them(bake) -> None:
    """The "yours" table of the README's Layout and cruft's skip list name the same files."""
    project: Path = bake()
    skip = tomllib.loads((project / "pyproject.toml").read_text())["tool"]["cruft"]["skip"]
    layout = (project / "README.md").read_text().split("## Layout", 1)[1]
    yours = layout.split("| the template's |", 1)[0]
    for entry in skip:
        shown = f"`{entry}/`" if (project / entry).is_dir() else f"`{entry}`"
        assert shown in yours, entry
