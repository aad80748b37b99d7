"""Every class of bad answer is refused with a sentence naming it, and nothing is left behind."""

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
    ("python_version", "3.9", "python_version '3.9' is not supported"),
    ("python_version", "3.14", "choose one of 3.11, 3.12, 3.13"),
    ("worker_user", "root", "worker_user 'root' is invalid"),
    ("worker_user", "Upper", "lowercase letter"),
    ("project_name", 'say "hi"', "without quotes"),
    ("project_name", "", "1 to 80 printable"),
    ("license", "GPL-3.0", "license 'GPL-3.0' is not offered: choose one of proprietary, MIT, Apache-2.0"),
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
