"""A project baked from an older template commit takes a template change through `cruft update`,
as a reviewable diff, keeping its own answers and its own edits."""

import json
import shutil
import subprocess
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


def test_update_keeps_the_projects_own_edits(linked_project) -> None:
    template, project = linked_project
    health = project / "blueprints" / "health.py"
    health.write_text(health.read_text() + "\n# Owned by the payments team.\n")
    git(project, "commit", "-qam", "local edit")
    change_template(template)

    run(["cruft", "update", "--skip-apply-ask"], cwd=project)

    assert health.read_text().endswith("# Owned by the payments team.\n")
    assert '"functionTimeout": "00:04:00"' in (project / "host.json").read_text()
