"""A project baked from an older template commit takes a template change through `cruft update`,
as a reviewable diff, keeping its own answers and its own edits; the app team's own files
(`[tool.cruft] skip` in the generated pyproject.toml) are never touched."""

import json
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from conftest import TEMPLATE, run

ANSWERS = {"app_name": "orders-api", "python_version": "3.12", "workshop": True}


def git(cwd: Path, *args: str) -> str:
    return run(["git", "-c", "user.name=t", "-c", "user.email=t@t.invalid", *args], cwd=cwd).stdout


def snapshot_of_template(destination: Path) -> Path:
    """This repository's current files, committed into a fresh repository: the 'older commit'."""
    files = git(TEMPLATE, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    for relative in filter(None, files.split("\0")):
        source = TEMPLATE / relative
        if source.is_file():
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    git(destination, "init", "-q", "-b", "main")
    git(destination, "add", "-A")
    git(destination, "commit", "-qm", "template as released")
    return destination


@pytest.fixture
def linked_project(tmp_path: Path) -> tuple[Path, Path]:
    cruft = shutil.which("cruft")
    assert cruft, "cruft must be installed in the test environment (requirements-dev.txt)"
    template = snapshot_of_template(tmp_path / "template")
    run([cruft, "create", str(template), "--no-input", "--output-dir", str(tmp_path / "out"),
         "--extra-context", json.dumps(ANSWERS)])
    project = tmp_path / "out" / ANSWERS["app_name"]
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "baked")
    return template, project


def change_template(template: Path) -> str:
    host_json = template / "{{cookiecutter.app_name}}" / "host.json"
    text = host_json.read_text()
    assert '"functionTimeout": "00:05:00"' in text
    host_json.write_text(text.replace('"00:05:00"', '"00:04:00"'))
    git(template, "commit", "-qam", "shorter function timeout")
    return git(template, "rev-parse", "HEAD").strip()


def test_project_records_its_answers_and_template_commit(linked_project) -> None:
    template, project = linked_project
    record = json.loads((project / ".cruft.json").read_text())
    assert record["commit"] == git(template, "rev-parse", "HEAD").strip()
    for key, value in ANSWERS.items():
        assert record["context"]["cookiecutter"][key] == value


def test_template_change_applies_cleanly_as_a_reviewable_diff(linked_project) -> None:
    template, project = linked_project
    new_commit = change_template(template)
    out_of_date = subprocess.run(["cruft", "check"], cwd=project, capture_output=True, text=True)
    assert out_of_date.returncode != 0

    compared = run(["cruft", "diff"], cwd=project)
    updated = run(["cruft", "update", "--skip-apply-ask"], cwd=project)
    # Both bake into a temporary directory only to compare: no "Next steps" for a path that is gone.
    assert "Next steps" not in compared.stdout + updated.stdout + updated.stderr

    diff = git(project, "diff", "HEAD", "--", "host.json")
    assert '-  "functionTimeout": "00:05:00"' in diff
    assert '+  "functionTimeout": "00:04:00"' in diff
    changed = set(git(project, "diff", "HEAD", "--name-only").split())
    assert changed == {"host.json", ".cruft.json"}, changed
    assert json.loads((project / ".cruft.json").read_text())["commit"] == new_commit
    assert not list(project.rglob("*.rej")), "the update left rejected hunks"
    run(["cruft", "check"], cwd=project)


def test_update_merges_around_a_line_the_team_added_to_a_template_file(linked_project) -> None:
    """A template file the team adds a line to (a code directory in .dockerignore) takes the
    template's change as a merge, the team's line kept."""
    template, project = linked_project
    dockerignore = project / ".dockerignore"
    dockerignore.write_text(dockerignore.read_text().replace(
        "!settings/**/*.py\n", "!settings/**/*.py\n!payments/**/*.py\n"))  # fmt: skip
    git(project, "commit", "-qam", "local edit")
    change_template(template)

    run(["cruft", "update", "--skip-apply-ask"], cwd=project)

    assert "!payments/**/*.py\n" in dockerignore.read_text()
    assert '"functionTimeout": "00:04:00"' in (project / "host.json").read_text()


def team_files(project: Path) -> list[Path]:
    """Every file of the project that cruft's skip list names, directories expanded."""
    skip = tomllib.loads((project / "pyproject.toml").read_text())["tool"]["cruft"]["skip"]
    named = [project / entry for entry in skip]
    assert all(path.exists() for path in named), "the skip list names a path the bake lacks"
    return sorted(f for path in named for f in ([path] if path.is_file() else path.rglob("*.py")))


def test_update_never_touches_the_teams_own_files(linked_project) -> None:
    """Every team file edited in the project, and changed in the template too: the update applies
    cleanly, leaves each of the team's files exactly as the team wrote it, and still brings the
    template's change to a template file."""
    template, project = linked_project
    team = team_files(project)
    assert {"function_app.py", "settings/declared.py", "requirements.in"} <= {
        str(f.relative_to(project)) for f in team}  # fmt: skip
    for path in team:
        path.write_text(path.read_text() + "\n# Edited by the payments team.\n")
    git(project, "commit", "-qam", "the team's own work")
    edited = {path: path.read_text() for path in team}

    inner = template / "{{cookiecutter.app_name}}"
    for path in team:
        source = inner / path.relative_to(project)
        source.write_text(source.read_text() + "\n# A template change to a team's file.\n")
    change_template(template)

    updated = run(["cruft", "update", "--skip-apply-ask"], cwd=project)

    assert "conflict" not in (updated.stdout + updated.stderr).lower()
    assert not list(project.rglob("*.rej")), "the update left rejected hunks"
    assert {path: path.read_text() for path in team} == edited
    changed = set(git(project, "diff", "HEAD", "--name-only").split())
    assert changed == {"host.json", ".cruft.json"}, changed
    run(["cruft", "check"], cwd=project)
