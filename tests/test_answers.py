"""Every class of bad answer is refused with a sentence naming it, and nothing is left behind."""

import json
import subprocess
from pathlib import Path

import pytest

from conftest import TEMPLATE

BAD_ANSWERS = [
    ("app_name", "-bad-", "app_name '-bad-' is invalid"),
    ("app_name", "a", "2 to 60 letters"),
    ("app_name", "x" * 61, "2 to 60 letters"),
    ("app_name", "has_underscore", "app_name 'has_underscore' is invalid"),
    ("acr_name", "abcd", "5 to 50 letters and digits"),
    ("acr_name", "with-hyphen", "acr_name 'with-hyphen' is invalid"),
    ("acr_name", "a" * 51, "5 to 50 letters and digits"),
    ("key_vault_name", "1vault", "starting with a letter"),
    ("key_vault_name", "kv--double", "without consecutive hyphens"),
    ("key_vault_name", "kv", "3 to 24"),
    ("key_vault_name", "k" * 25, "3 to 24"),
    ("key_vault_name", "vault-", "ending with a letter"),
    ("resource_group", "ends.", "not ending with a period"),
    ("resource_group", "", "resource_group '' is invalid"),
    ("azure_region", "mars", "azure_region 'mars' is not a known region"),
    ("worker_user", "root", "worker_user 'root' is invalid"),
    ("worker_user", "Upper", "lowercase letter"),
    ("project_name", 'say "hi"', "without quotes"),
    ("project_name", "", "1 to 80 printable"),
]


# Valid values for the answers whose defaults derive from app_name, so that one bad answer
# yields exactly one error.
VALID = {"app_name": "demo-app", "acr_name": "demoacr01", "key_vault_name": "kv-demo",
         "resource_group": "rg-demo"}


def bake_cli(tmp_path: Path, *answers: str) -> subprocess.CompletedProcess[str]:
    out = tmp_path / "out"
    out.mkdir()
    given = {answer.split("=", 1)[0] for answer in answers}
    defaults = [f"{key}={value}" for key, value in VALID.items() if key not in given]
    return subprocess.run(
        ["cookiecutter", "--no-input", str(TEMPLATE), "-o", str(out), *defaults, *answers],
        capture_output=True, text=True, check=False,
    )


@pytest.mark.parametrize(("field", "value", "message"), BAD_ANSWERS)
def test_bad_answer_is_refused_by_name_and_leaves_nothing(
    tmp_path: Path, field: str, value: str, message: str
) -> None:
    result = bake_cli(tmp_path, f"{field}={value}")
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith(f"error: {field} "), errors[0]
    assert message in errors[0]
    assert list((tmp_path / "out").iterdir()) == []


def test_every_bad_answer_gets_its_own_sentence(tmp_path: Path) -> None:
    result = bake_cli(tmp_path, "app_name=-x-", "acr_name=a", "azure_region=moon")
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert [e.split()[1] for e in errors] == ["app_name", "acr_name", "azure_region"]
    assert list((tmp_path / "out").iterdir()) == []
    # Cookiecutter's traceback follows any failed hook; the line before it says what to do.
    after = result.stderr.split(errors[-1], 1)[1]
    assert after.lstrip().startswith("Nothing was written"), after[:300]
    assert "cookiecutter --replay" in after and "cruft create --extra-context-file" in after


def test_python_version_is_a_menu_of_the_supported_versions_newest_first() -> None:
    answers = json.loads((TEMPLATE / "cookiecutter.json").read_text())
    offered = answers["python_version"]
    assert offered[0] == "3.13", "the default is Microsoft's recommendation for new apps"
    assert sorted(offered) == sorted(answers["_supported_python_versions"])
    assert offered == sorted(offered, key=lambda v: tuple(map(int, v.split("."))), reverse=True)


@pytest.mark.parametrize("version", ["3.14", "3.9"])
def test_an_unlisted_python_version_is_refused_before_anything_is_written(
    tmp_path: Path, version: str
) -> None:
    """Cookiecutter checks a choice answer itself, before any hook, with one sentence of its own
    (after its traceback: a hook never sees the value)."""
    result = bake_cli(tmp_path, f"python_version={version}")
    assert result.returncode != 0
    assert result.stderr.rstrip().endswith(
        f"{version} provided for choice variable python_version, but the choices are "
        "['3.13', '3.12', '3.11']."
    ), result.stderr[-500:]
    assert list((tmp_path / "out").iterdir()) == []


def test_replay_answers_again_without_retyping(tmp_path: Path) -> None:
    """The README's advice after a refused bake: fix the one value in the replay file, replay."""
    replay_dir = tmp_path / "replay"
    config = tmp_path / "config.yaml"
    config.write_text(f"replay_dir: {replay_dir}\n")
    refused = bake_cli(tmp_path, "--config-file", str(config), "app_name=orders-api",
                       "azure_region=moon")  # fmt: skip
    assert refused.returncode != 0
    (replay_file,) = replay_dir.glob("*.json")
    saved = json.loads(replay_file.read_text())
    saved["cookiecutter"]["azure_region"] = "swedencentral"
    replay_file.write_text(json.dumps(saved))
    replayed = subprocess.run(
        ["cookiecutter", "--replay", "--config-file", str(config), str(TEMPLATE),
         "-o", str(tmp_path / "out")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert replayed.returncode == 0, replayed.stderr[-2000:]
    readme = (tmp_path / "out" / "orders-api" / "README.md").read_text()
    assert "swedencentral" in readme


def test_private_networking_without_infra_is_refused(tmp_path: Path) -> None:
    result = bake_cli(tmp_path, "include_infra=no", "private_networking=yes")
    assert result.returncode != 0
    assert "private_networking 'yes' needs include_infra 'yes'" in result.stderr
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize("switch", ["include_infra", "private_networking", "workshop"])
def test_a_switch_that_is_not_yes_or_no_is_refused(tmp_path: Path, switch: str) -> None:
    result = bake_cli(tmp_path, f"{switch}=maybe")
    assert result.returncode != 0
    assert f"maybe provided for variable {switch}" in result.stdout + result.stderr
    assert list((tmp_path / "out").iterdir()) == []


def test_an_answer_cannot_inject_code_into_the_hook(tmp_path: Path) -> None:
    marker = tmp_path / "injected"
    payload = f'x"""; open("{marker}", "w"); """'
    result = bake_cli(tmp_path, f"project_name={payload}")
    assert result.returncode != 0
    assert not marker.exists()
