"""Validate every answer before cookiecutter writes a file.

Each bad answer gets one sentence naming the field, the value and the rule; any bad answer
exits non-zero, and cookiecutter then removes the half-made project directory.
"""

import json
import re
import sys

# tojson escapes quotes and angle brackets, so no answer can break out of this literal.
ANSWERS = json.loads(r"""{{ cookiecutter | tojson }}""")

# Azure's rules: learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules
NAME_RULES = {
    "project_name": (
        r"[^\x00-\x1f\x7f\"\\]{1,80}",
        "1 to 80 printable characters, without quotes or backslashes",
    ),
    "app_name": (
        r"(?!.*--)[a-z0-9][a-z0-9-]{0,49}[a-z0-9]",
        "2 to 51 lowercase letters, digits and hyphens, not starting or ending with a hyphen,"
        " without two in a row (it names the image, whose repository must be lowercase, and the"
        " function app, <app_name>-<unique_suffix>, which Azure allows 60 characters)",
    ),
    "unique_suffix": (
        r"[a-z0-9]{0,8}",
        "0 to 8 lowercase letters and digits (empty for none)",
    ),
    "resource_group": (
        r"[A-Za-z0-9_().-]{0,89}[A-Za-z0-9_()-]",
        "1 to 90 letters, digits, underscores, hyphens, periods and parentheses,"
        " not ending with a period (Azure's rule for resource groups)",
    ),
    "acr_name": (
        r"[A-Za-z0-9]{5,50}",
        "5 to 50 letters and digits (Azure's rule for container registries)",
    ),
    "key_vault_name": (
        r"(?!.*--)[A-Za-z][A-Za-z0-9-]{1,22}[A-Za-z0-9]",
        "3 to 24 letters, digits and hyphens, starting with a letter, ending with a letter"
        " or digit, without consecutive hyphens (Azure's rule for key vaults)",
    ),
    "security_alert_email": (
        r"(?=.{0,254}$)(?:[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})+)?",
        "empty (the alert then mails the subscription's Owners) or one e-mail address such as"
        " security@contoso.com (it lands in a Bicep string: no quotes, spaces or lists)",
    ),
    "worker_user": (
        r"(?!root$)[a-z_][a-z0-9_-]{0,31}",
        "a Linux account name other than root: a lowercase letter or underscore, then up"
        " to 31 lowercase letters, digits, underscores or hyphens",
    ),
}
# Not asked: derived from app_name and unique_suffix (always valid when those are), but an answer
# given with --extra-context or kept in .cruft.json may replace them.
DERIVED_NAME_RULES = {
    "__function_app_name": (
        r"[A-Za-z0-9][A-Za-z0-9-]{0,58}[A-Za-z0-9]",
        "2 to 60 letters, digits and hyphens, not starting or ending with a hyphen"
        " (Azure's rule for function app names)",
    ),
    "__storage_account_name": (
        r"[a-z0-9]{3,24}",
        "3 to 24 lowercase letters and digits (Azure's rule for storage accounts)",
    ),
}
# learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules (Microsoft.App).
CONTAINER_APP_NAME_RULE = (
    r"(?!.*--)[a-z][a-z0-9-]{0,30}[a-z0-9]",
    "2 to 32 lowercase letters, digits and hyphens, starting with a letter, not ending with a"
    " hyphen, without two in a row (Azure's rule for container apps); change app_name or"
    " unique_suffix",
)
SWITCHES = ("include_infra", "private_networking", "workshop")


def name_problem(field: str, value: object, pattern: str, rule: str) -> str | None:
    if isinstance(value, str) and re.fullmatch(pattern, value):
        return None
    hint = ""
    if isinstance(value, str) and re.fullmatch(pattern, value.lower()):
        hint = f"; use {value.lower()!r}"
    return f"{field} {value!r} is invalid: it must be {rule}{hint}."


# Asked, but their defaults are made from app_name: a bad app_name makes them bad too.
FROM_APP_NAME = ("resource_group", "acr_name", "key_vault_name")


def follows_from_app_name(field: str, value: object, app_name: object) -> bool:
    """Whether a bad default derived from a bad app_name explains this field's problem."""
    stem = re.sub(r"[^a-z0-9]", "", str(app_name).lower())[:6]
    return field in FROM_APP_NAME and bool(stem) and stem in re.sub(r"[^a-z0-9]", "", str(value).lower())


def problems(answers: dict) -> list[str]:
    found = [
        problem
        for field, (pattern, rule) in NAME_RULES.items()
        if (problem := name_problem(field, answers[field], pattern, rule))
    ]
    if found and found[0].startswith("app_name "):
        found = [
            f"{problem} (It follows from app_name above: fix that, and this default follows.)"
            if follows_from_app_name(problem.split()[0], answers[problem.split()[0]], answers["app_name"])
            else problem
            for problem in found
        ]
    # A bad app_name or unique_suffix already names the cause; its derived names would repeat it.
    if not any(problem.split()[0] in ("app_name", "unique_suffix") for problem in found):
        found += [
            problem
            for field, (pattern, rule) in DERIVED_NAME_RULES.items()
            if (problem := name_problem(field, answers.get(field), pattern, rule))
        ]
    versions = answers["_supported_python_versions"]
    if answers["python_version"] not in versions:
        found.append(
            f"python_version {answers['python_version']!r} is not supported: choose one of"
            f" {', '.join(versions)} (the versions of the official Functions base images)."
        )
    if answers["azure_region"] not in answers["_azure_regions"]:
        found.append(
            f"azure_region {answers['azure_region']!r} is not a known region: use a name such"
            " as westeurope or eastus2 (`az account list-locations -o table` lists them)."
        )
    if answers["license"] not in answers["_licenses"]:
        found.append(
            f"license {answers['license']!r} is not offered: choose one of"
            f" {', '.join(answers['_licenses'])} (an SPDX identifier, or proprietary)."
        )
    if answers["hosting"] not in answers["_hostings"]:
        found.append(
            f"hosting {answers['hosting']!r} is not offered: choose one of"
            f" {', '.join(answers['_hostings'])} (an Elastic Premium plan or Azure Container Apps)."
        )
    elif answers["hosting"] == "containerapps" and not found:
        found += filter(None, [name_problem("__function_app_name", answers.get("__function_app_name"),
                                            *CONTAINER_APP_NAME_RULE)])
    for switch in SWITCHES:
        if not isinstance(answers[switch], bool):
            found.append(f"{switch} {answers[switch]!r} is invalid: answer yes or no.")
    if answers["private_networking"] is True and answers["include_infra"] is False:
        found.append(
            "private_networking 'yes' needs include_infra 'yes': the network is part of infra/."
        )
    found += runner_problems(answers)
    return found


# GitHub's own runner images (docs.github.com, "GitHub-hosted runners"): outside any VNet.
GITHUB_HOSTED = re.compile(r"(ubuntu|windows|macos)-.*", re.IGNORECASE)


def runner_problems(answers: dict) -> list[str]:
    runner = answers.get("release_runner", "ubuntu-24.04")
    labels = [label.strip() for label in str(runner).split(",")]
    if not all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", label) for label in labels):
        return [
            f"release_runner {runner!r} is invalid: it must be runner labels (letters, digits,"
            " '.', '_', '-') separated by commas, such as 'self-hosted, orders-vnet'."
        ]
    if answers["private_networking"] is True and any(GITHUB_HOSTED.fullmatch(x) for x in labels):
        return [
            f"release_runner {runner!r} is a GitHub-hosted runner, outside the VNet: with"
            " private_networking 'yes' the registry answers only inside it, so the release job"
            " could not push; name a self-hosted runner's labels, such as 'self-hosted, <app_name>-vnet'."
        ]
    return []


# Cookiecutter reports any failed hook with its own "Hook script failed" traceback, whatever the
# exit status, and a hook cannot stop that; so the last line here says where the answer is.
AFTER_ERRORS = (
    "Nothing was written; cookiecutter's traceback below only reports this check. To answer again"
    " without retyping, correct the value in cookiecutter's replay file"
    " (~/.cookiecutter_replay/<template>.json) and run `cookiecutter --replay <template>`; with"
    " cruft, pass your answers as a file: `cruft create --extra-context-file answers.json <template>`."
)

# After a bad app_name the replay file holds bad derived names as well (saved before this check).
AFTER_APP_NAME_ERROR = (
    " The names made from app_name (resource_group, acr_name, key_vault_name, and the unasked"
    " __function_app_name and __storage_account_name) were saved with it, so a replay would need"
    " each corrected too: bake again with the corrected app_name instead"
    " (`cookiecutter <template> app_name=<name>`), and the names follow."
)

if __name__ == "__main__":
    errors = problems(ANSWERS)
    for error in errors:
        print(f"error: {error}", file=sys.stderr)
    if errors:
        app_name_bad = errors[0].startswith("app_name ")
        print(AFTER_ERRORS + (AFTER_APP_NAME_ERROR if app_name_bad else ""), file=sys.stderr)
    sys.exit(1 if errors else 0)
