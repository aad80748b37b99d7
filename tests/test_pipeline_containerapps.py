"""The release job of a hosting=containerapps bake: the same build, verification, scan, signature and
provenance checks as test_pipeline.py proves for the Premium plan, then a new revision by digest.
(Its `make lint` runs in test_pipeline.py, which installs the lint tools once.)"""

from pathlib import Path

import pytest

from conftest import TEMPLATE, require_tool
from test_pipeline import FAKE_DIGEST, checks_before_deploy, run_release, workflow


@pytest.fixture(scope="module", params=[False, True], ids=["private=off", "private=on"])
def project(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from cookiecutter.main import cookiecutter

    out = tmp_path_factory.mktemp(f"pipeline-containerapps-private-{request.param}")
    return Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(out), extra_context={
        "hosting": "containerapps", "private_networking": request.param}))


def deploy_calls(project: Path) -> list[list[str]]:
    env = workflow(project)["env"]
    return [
        ["az", "extension", "add", "--name", "containerapp", "--upgrade", "--only-show-errors"],
        ["az", "containerapp", "update", "--name", env["APP_NAME"], "--resource-group",
         env["RESOURCE_GROUP"], "--image", f"{env['IMAGE']}@{FAKE_DIGEST}", "--output", "none"],
    ]


def test_release_deploys_the_checked_digest_as_a_new_revision(project: Path, tmp_path: Path) -> None:
    require_tool("jq", "run the release job's steps, which read and write JSON with jq")
    release = run_release(project, tmp_path)
    assert release.stopped_at is None
    pinned = f"{workflow(project)['env']['IMAGE']}@{FAKE_DIGEST}"
    assert release.calls == [*checks_before_deploy(pinned), *deploy_calls(project)]
    assert release.inputs["anchore/scan-action"]["image"] == pinned
    assert "functionapp" not in (project / ".github/workflows/pipeline.yml").read_text()


@pytest.mark.parametrize("refusal", ["make verify-image", "cosign sign", "cosign verify",
                                     "cosign verify-attestation"])
def test_release_never_deploys_a_digest_that_fails_a_check(project: Path, tmp_path: Path, refusal: str) -> None:
    require_tool("jq", "run the release job's steps, which read and write JSON with jq")
    release = run_release(project, tmp_path, refuses=refusal)
    assert release.stopped_at is not None
    assert [call for call in release.calls if call[0] == "az"] == []

