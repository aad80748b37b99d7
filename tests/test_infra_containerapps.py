"""The Container Apps variant of the Bicep (hosting=containerapps), parsed with pycep like the Premium
plan's in test_infra.py: the same identity-based settings and roles, a third identity that only pulls
and is never available to the running container, ingress, scale range, logs and private networking."""

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import TEMPLATE
from test_infra import (
    REQUIRED_SETTINGS, SUFFIX, accessor, grants_of, parameter_defaults, parse, resources_of,
    secret_settings, the,
)  # fmt: skip

APP = "Microsoft.App/containerApps"
# The Premium plan's settings less the one that only App Service reads.
CONTAINER_SETTINGS = {k: v for k, v in REQUIRED_SETTINGS.items() if k != "WEBSITES_ENABLE_APP_SERVICE_STORAGE"}


@pytest.fixture(scope="module", params=[False, True], ids=["private=off", "private=on"])
def baked(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bool]:
    from cookiecutter.main import cookiecutter

    out = tmp_path_factory.mktemp(f"containerapps-private-{request.param}")
    project = cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(out), extra_context={
        "hosting": "containerapps", "private_networking": request.param, "unique_suffix": SUFFIX})
    return Path(project), request.param


def container_app(project: Path) -> dict[str, Any]:
    return the(parse(project / "infra" / "containerapps.bicep"), APP)


def env_settings(app: dict[str, Any]) -> dict[str, Any]:
    (container,) = app["properties"]["template"]["containers"]
    return {s["name"]: s["value"] for s in container["env"]}


def module_params(project: Path) -> dict[str, Any]:
    return parse(project / "infra" / "main.bicep")["modules"]["containerApp"]["config"]["params"]


def identities_in_the_container(app: dict[str, Any]) -> set[str]:
    """Assigned identities the running container may get tokens of: an identity that identitySettings
    does not name is available in every lifecycle stage (learn.microsoft.com/azure/container-apps/
    managed-identity, "Control managed identity availability")."""
    lifecycle = {s["identity"]: s["lifecycle"] for s in app["properties"]["configuration"]["identitySettings"]}
    assigned = {name.strip("'${}") for name in app["identity"]["userAssignedIdentities"]}
    return {identity for identity in assigned if lifecycle.get(identity, "All") in ("Main", "All")}


def test_the_premium_plan_is_not_baked(baked: tuple[Path, bool]) -> None:
    project, _ = baked
    bicep = parse(project / "infra" / "main.bicep")
    types = {r["type"] for r in bicep["resources"].values()}
    assert not {"Microsoft.Web/sites", "Microsoft.Web/serverfarms"} & types
    assert "linuxFxVersion" not in (project / "infra" / "main.bicep").read_text()


def test_the_app_is_a_function_app_pulling_by_its_pull_identity(baked: tuple[Path, bool]) -> None:
    project, _ = baked
    app = container_app(project)
    config = app["properties"]["configuration"]
    assert app["kind"] == "functionapp"
    assert app["identity"]["type"] == "UserAssigned"
    assert config["registries"] == [{"server": "registryLoginServer", "identity": "pullIdentityId"}]
    (container,) = app["properties"]["template"]["containers"]
    assert container["image"] == "${registryLoginServer}/${image}"
    assert "secrets" not in config  # no registry password, no secret of any kind
    params = module_params(project)
    assert accessor(params["pullIdentityId"]) == ["pullIdentity", "id"]
    assert accessor(params["registryLoginServer"]) == ["registry", "properties", "loginServer"]


def test_only_the_host_and_app_identities_reach_the_running_container(baked: tuple[Path, bool]) -> None:
    project, _ = baked
    app = container_app(project)
    assert identities_in_the_container(app) == {"hostIdentityId", "appIdentityId"}
    settings = app["properties"]["configuration"]["identitySettings"]
    assert {"identity": "pullIdentityId", "lifecycle": "None"} in settings


def test_the_lifecycle_check_catches_a_pull_identity_left_to_the_container(
    baked: tuple[Path, bool], tmp_path: Path
) -> None:
    project, _ = baked
    text = (project / "infra" / "containerapps.bicep").read_text()
    (tmp_path / "containerapps.bicep").write_text(
        text.replace("        { identity: pullIdentityId, lifecycle: 'None' }\n", ""))
    app = the(parse(tmp_path / "containerapps.bicep"), APP)
    assert "pullIdentityId" in identities_in_the_container(app)


def test_settings_are_identity_based_and_hold_no_secret(baked: tuple[Path, bool]) -> None:
    project, _ = baked
    settings = env_settings(container_app(project))
    assert secret_settings(settings) == []
    for name, expected in CONTAINER_SETTINGS.items():
        assert name in settings, name
        if expected is not None:
            assert settings[name] == expected, name
    assert settings["AzureWebJobsStorage__clientId"] == "hostIdentityClientId"
    assert settings["AZURE_CLIENT_ID"] == "appIdentityClientId"
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == (
        "Authorization=AAD;ClientId=${hostIdentityClientId}")
    params = module_params(project)
    assert accessor(params["hostIdentityClientId"]) == ["hostIdentity", "properties", "clientId"]
    assert accessor(params["appIdentityClientId"]) == ["appIdentity", "properties", "clientId"]


def test_each_identity_holds_exactly_its_roles(baked: tuple[Path, bool]) -> None:
    project, _ = baked
    bicep = parse(project / "infra" / "main.bicep")
    identities = {name for name, r in bicep["resources"].items()
                  if r["type"] == "Microsoft.ManagedIdentity/userAssignedIdentities"}
    assert identities == {"pullIdentity", "hostIdentity", "appIdentity"}
    assert grants_of(bicep, "pullIdentity") == [("acrPull", "registry")]
    assert grants_of(bicep, "appIdentity") == [("keyVaultSecretsUser", "vault")]
    assert grants_of(bicep, "hostIdentity") == sorted([
        ("monitoringMetricsPublisher", "insights"), ("storageBlobDataOwner", "storage"),
        ("storageQueueDataContributor", "storage"), ("storageTableDataContributor", "storage"),
    ])


def test_ingress_is_https_only_and_replicas_stay_in_range(baked: tuple[Path, bool]) -> None:
    project, _ = baked
    bicep = parse(project / "infra" / "containerapps.bicep")
    app = the(bicep, APP)
    ingress = app["properties"]["configuration"]["ingress"]
    assert ingress["allowInsecure"] is False and ingress["targetPort"] == 80
    assert app["properties"]["template"]["scale"] == {"minReplicas": "minReplicas", "maxReplicas": "maxReplicas"}
    defaults = parameter_defaults(bicep)
    assert (defaults["minReplicas"], defaults["maxReplicas"]) == (1, 10)
    (container,) = app["properties"]["template"]["containers"]
    assert {p["type"]: p["httpGet"]["path"] for p in container["probes"]} == {
        "Liveness": "/api/health", "Readiness": "/api/health"}


def test_logs_reach_the_workspace_without_its_key(baked: tuple[Path, bool]) -> None:
    project, private = baked
    bicep = parse(project / "infra" / "containerapps.bicep")
    environment = the(bicep, "Microsoft.App/managedEnvironments")
    assert environment["properties"]["appLogsConfiguration"] == {"destination": "azure-monitor"}
    diagnostics = the(bicep, "Microsoft.Insights/diagnosticSettings")
    assert diagnostics["properties"]["workspaceId"] == "workspaceId"
    assert accessor(module_params(project)["workspaceId"]) == ["workspace", "id"]
    assert "sharedKey" not in (project / "infra" / "containerapps.bicep").read_text()
    vnet = environment["properties"].get("vnetConfiguration")
    if private:
        assert vnet == {"infrastructureSubnetId": "infrastructureSubnetId", "internal": False}
        network = parse(project / "infra" / "network.bicep")
        subnets = the(network, "Microsoft.Network/virtualNetworks")["properties"]["subnets"]
        assert "Microsoft.App/environments" in json.dumps(subnets[0]["properties"]["delegations"])
        assert "Microsoft.Web" not in json.dumps(subnets)
        assert accessor(module_params(project)["infrastructureSubnetId"]) == [
            "network", "outputs", "appSubnetId"]
    else:
        assert vnet is None


def test_parameters_azd_and_the_pipeline_name_the_container_app(baked: tuple[Path, bool]) -> None:
    project, _ = baked
    defaults = parameter_defaults(parse(project / "infra" / "main.bicep"))
    assert defaults["appName"] == f"hardened-functions-app-{SUFFIX}"
    manifest = yaml.safe_load((project / "azure.yaml").read_text())
    (service,) = manifest["services"].values()
    assert service["host"] == "containerapp" and service["resourceName"] == defaults["appName"]
    pipeline = yaml.safe_load((project / ".github" / "workflows" / "pipeline.yml").read_text())
    assert pipeline["env"]["APP_NAME"] == defaults["appName"]
    assert resources_of(parse(project / "infra" / "containerapps.bicep"), APP)


def test_the_readme_tells_the_container_apps_story(baked: tuple[Path, bool], baked_default: Path) -> None:
    project, _ = baked
    readme = (project / "README.md").read_text()
    for told in ("on Azure Container Apps", "az containerapp update --image IMAGE@DIGEST",
                 "### Hosting: Azure Container Apps", '--role "Container Apps Contributor"',
                 f"`id-hardened-functions-app-{SUFFIX}-pull`", "lifecycle: None"):  # fmt: skip
        assert told in readme, told
    for premium_only in ("Elastic Premium Linux plan", "azurewebsites.net", "az functionapp", "EP1"):
        assert premium_only not in readme, premium_only
    default = (baked_default / "README.md").read_text()
    assert "containerapp" not in default.lower() and "on an Elastic Premium Linux plan" in default
