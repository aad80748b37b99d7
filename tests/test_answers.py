"""Every class of bad answer is refused with a sentence naming it, and nothing is left behind;
names derived from any free text are valid, and the globally unique ones carry the unique part."""

import re
import json
import subprocess
from pathlib import Path

import pytest

from conftest import TEMPLATE

BAD_ANSWERS = [
    ("app_name", "-bad-", "app_name '-bad-' is invalid"),
    ("app_name", "a", "2 to 51 lowercase letters"),
    ("app_name", "x" * 52, "2 to 51 lowercase letters"),
    ("app_name", "has_underscore", "app_name 'has_underscore' is invalid"),
    ("app_name", "Orders-API", "repository must be lowercase, and the function app, <app_name>-"
                               "<unique_suffix>, which Azure allows 60 characters); use 'orders-api'."),
    ("app_name", "orders--api", "without two in a row"),
    ("unique_suffix", "AB12", "0 to 8 lowercase letters and digits (empty for none); use 'ab12'."),
    ("unique_suffix", "a-b", "unique_suffix 'a-b' is invalid"),
    ("unique_suffix", "x" * 9, "0 to 8 lowercase letters and digits"),
    ("__function_app_name", "-x-", "2 to 60 letters, digits and hyphens"),
    ("__storage_account_name", "has-hyphen", "3 to 24 lowercase letters and digits"),
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
    ("security_alert_email", "team@localhost", "one e-mail address such as security@contoso.com"),
    ("security_alert_email", "a@contoso.com, b@contoso.com", "security_alert_email 'a@contoso.com, b@"),
    ("security_alert_email", "x'@contoso.com", "no quotes, spaces or lists"),
    ("hosting", "aks", "hosting 'aks' is not offered: choose one of premium, containerapps"),
]


# Valid values for the answers whose defaults derive from app_name, so that one bad answer
# yields exactly one error.
VALID = {"app_name": "demo-app", "acr_name": "demoacr01", "key_vault_name": "kv-demo",
         "resource_group": "rg-demo"}


def bake_cli(tmp_path: Path, *answers: str, valid: dict[str, str] = VALID,
             options: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    given = {answer.split("=", 1)[0] for answer in answers}
    defaults = [f"{key}={value}" for key, value in valid.items() if key not in given]
    return subprocess.run(
        ["cookiecutter", "--no-input", *options, str(TEMPLATE), "-o", str(out), *defaults, *answers],
        capture_output=True, text=True, check=False,
    )


def baked_names(project: Path) -> dict[str, str]:
    """The Azure names a bake wrote: the Bicep's parameter defaults and the pipeline's app name."""
    bicep = (project / "infra/main.bicep").read_text()
    names = dict(re.findall(r"(?m)^param (\w+) string = '([^']*)'$", bicep))
    pipeline = (project / ".github/workflows/pipeline.yml").read_text()
    names["pipeline"] = re.search(r"(?m)^  APP_NAME: (\S+)$", pipeline).group(1)
    names["directory"] = project.name
    return {key: value for key, value in names.items() if key not in ("location", "environmentName")}


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


def test_license_is_a_menu_and_an_unlisted_one_is_refused(tmp_path: Path) -> None:
    answers = json.loads((TEMPLATE / "cookiecutter.json").read_text())
    assert answers["license"] == answers["_licenses"] == ["proprietary", "MIT", "Apache-2.0"]
    result = bake_cli(tmp_path, "license=GPL-3.0")
    assert result.returncode != 0
    assert result.stderr.rstrip().endswith(
        "GPL-3.0 provided for choice variable license, but the choices are "
        "['proprietary', 'MIT', 'Apache-2.0']."
    ), result.stderr[-500:]


def test_a_bad_app_name_marks_the_names_made_from_it_as_consequences(tmp_path: Path) -> None:
    result = bake_cli(tmp_path, "app_name=Orders_API", "unique_suffix=abc", valid={})
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert [e.split()[1] for e in errors] == ["app_name", "acr_name", "key_vault_name"]
    assert "(It follows from app_name" not in errors[0]
    assert all(e.endswith("(It follows from app_name above: fix that, and this default follows.)")
               for e in errors[1:])  # fmt: skip
    assert "bake again with the corrected app_name instead" in result.stderr


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


@pytest.mark.parametrize("app_name", ["a-name-too-long-for-a-container-app", "9lives"])
def test_a_container_app_name_outside_azures_rule_is_refused(tmp_path: Path, app_name: str) -> None:
    """Container apps allow 32 characters starting with a letter; the Premium plan's sites allow 60."""
    (tmp_path / "premium").mkdir()
    assert bake_cli(tmp_path / "premium", f"app_name={app_name}").returncode == 0
    result = bake_cli(tmp_path, "hosting=containerapps", f"app_name={app_name}", "unique_suffix=x1")
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [
        f"error: __function_app_name '{app_name}-x1' is invalid: it must be 2 to 32 lowercase letters,"
        " digits and hyphens, starting with a letter, not ending with a hyphen, without two in a row"
        " (Azure's rule for container apps); change app_name or unique_suffix."
    ]
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


# The examples and other free text: each bakes, with names that follow Azure's rules.
FREE_TEXT = {
    "Payments & Refunds (EU)": {
        "directory": "payments-refunds-eu", "appName": "payments-refunds-eu-u1",
        "pipeline": "payments-refunds-eu-u1", "acrName": "paymentsrefundseuu1acr",
        "keyVaultName": "kv-payments-refunds-e-u1", "storageAccountName": "paymentsrefundseuu1st",
        "image": "payments-refunds-eu:initial",
    },
    "Orders  API": {
        "directory": "orders-api", "appName": "orders-api-u1", "pipeline": "orders-api-u1",
        "acrName": "ordersapiu1acr", "keyVaultName": "kv-orders-api-u1",
        "storageAccountName": "ordersapiu1st", "image": "orders-api:initial",
    },
    "!!!": {
        "directory": "functions-app", "appName": "functions-app-u1", "pipeline": "functions-app-u1",
        "acrName": "functionsappu1acr", "keyVaultName": "kv-functions-app-u1",
        "storageAccountName": "functionsappu1st", "image": "functions-app:initial",
    },
    "Über Café 2025 édition: ticketing & billing back-end for all regions": {
        "directory": "uber-cafe-2025-edition-ticketing-billing",
        "appName": "uber-cafe-2025-edition-ticketing-billing-u1",
        "pipeline": "uber-cafe-2025-edition-ticketing-billing-u1",
        "acrName": "ubercafe2025editionticketingbillingu1acr", "keyVaultName": "kv-uber-cafe-2025-edi-u1",
        "storageAccountName": "ubercafe2025editiontu1st",
        "image": "uber-cafe-2025-edition-ticketing-billing:initial",
    },
}


@pytest.mark.parametrize("project_name", FREE_TEXT)
def test_names_derived_from_free_text_are_valid(tmp_path: Path, project_name: str) -> None:
    result = bake_cli(tmp_path, f"project_name={project_name}", "unique_suffix=u1", valid={})
    assert result.returncode == 0, result.stderr
    (project,) = (tmp_path / "out").iterdir()
    assert baked_names(project) == FREE_TEXT[project_name]


GLOBALLY_UNIQUE = ("appName", "acrName", "keyVaultName", "storageAccountName")


def test_two_bakes_with_default_answers_do_not_collide(tmp_path: Path) -> None:
    first, second = (tmp_path / "first", tmp_path / "second")
    for place in (first, second):
        place.mkdir()
        assert bake_cli(place, valid={}).returncode == 0
    names = [baked_names(place / "out" / "hardened-functions-app") for place in (first, second)]
    for name in GLOBALLY_UNIQUE:
        assert names[0][name] != names[1][name], name
    assert names[0]["image"] == names[1]["image"] == "hardened-functions-app:initial"


def test_the_replayed_answers_give_the_same_names(tmp_path: Path) -> None:
    """The unique part is drawn once, then kept with the answers (cookiecutter's replay file,
    cruft's .cruft.json), so re-rendering the project never renames its resources."""
    config = tmp_path / "config.yaml"
    config.write_text(f"replay_dir: {tmp_path / 'replay'}\ncookiecutters_dir: {tmp_path / 'cache'}\n")
    (tmp_path / "first").mkdir()
    assert bake_cli(tmp_path / "first", valid={}, options=("--config-file", str(config))).returncode == 0
    (replay,) = (tmp_path / "replay").iterdir()
    (tmp_path / "again").mkdir()
    again = subprocess.run(
        ["cookiecutter", "--replay-file", str(replay), str(TEMPLATE), "-o", str(tmp_path / "again" / "out")],
        capture_output=True, text=True, check=False,
    )
    assert again.returncode == 0, again.stderr
    first, second = (baked_names(tmp_path / place / "out" / "hardened-functions-app")
                     for place in ("first", "again"))
    assert first == second
    assert first["appName"] != "hardened-functions-app"


def test_an_empty_unique_suffix_gives_the_names_without_one(tmp_path: Path) -> None:
    assert bake_cli(tmp_path, "unique_suffix=", valid={}).returncode == 0
    names = baked_names(tmp_path / "out" / "hardened-functions-app")
    assert {name: names[name] for name in GLOBALLY_UNIQUE} == {
        "appName": "hardened-functions-app", "acrName": "hardenedfunctionsappacr",
        "keyVaultName": "kv-hardened-functions-a", "storageAccountName": "hardenedfunctionsappst",
    }
