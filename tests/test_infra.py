"""The generated Bicep, parsed with pycep (the parser checkov uses): every security property the
design promises, no secret in any app setting, and two identities, the app's holding nothing but
Key Vault Secrets User on its vault, with private networking on and off."""

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pycep import BicepParser

from conftest import TEMPLATE

# Fragments that only a credential puts in a setting value: key listings, connection strings with
# keys, SAS tokens, passwords. Matched against the parsed value (function names included).
SECRET_MARKERS = re.compile(
    r"(?i)list_?keys|listsecrets|listcredentials|accountkey|sharedaccess|sig=|password|"
    r"primarykey|secondarykey|instrumentationkey|\.secret|connectionstrings"
)
# Settings that, present at all, mean a key or password is stored in the app.
FORBIDDEN_SETTINGS = {
    "AzureWebJobsStorage", "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING", "DOCKER_REGISTRY_SERVER_PASSWORD",
    "DOCKER_REGISTRY_SERVER_USERNAME", "APPINSIGHTS_INSTRUMENTATIONKEY", "AZURE_CLIENT_SECRET",
}  # fmt: skip
REQUIRED_SETTINGS = {
    "FUNCTIONS_EXTENSION_VERSION": "~4",
    "WEBSITES_ENABLE_APP_SERVICE_STORAGE": "false",
    "AzureWebJobsStorage__credential": "managedidentity",
    "AzureWebJobsStorage__accountName": None,
    "AzureWebJobsStorage__clientId": None,
    "AZURE_CLIENT_ID": None,
    "KEY_VAULT_URL": None,
    "APPLICATIONINSIGHTS_CONNECTION_STRING": None,
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": None,
}
SUFFIX = "t3st01"
ROLE_IDS = {
    "acrPull": "7f951dda-4ed3-4680-a7ca-43fe172d538d",
    "keyVaultSecretsUser": "4633458b-17de-408a-b874-0445c86b69e6",
    "storageBlobDataOwner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "storageQueueDataContributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "storageTableDataContributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "monitoringMetricsPublisher": "3913510d-42f4-4e42-8a64-420c390055eb",
}


@pytest.fixture(scope="module", params=[False, True], ids=["private=off", "private=on"])
def baked(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bool]:
    from cookiecutter.main import cookiecutter

    private = request.param
    out = tmp_path_factory.mktemp(f"infra-private-{private}")
    project = cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(out),
                           extra_context={"private_networking": private, "unique_suffix": SUFFIX})
    return Path(project), private


def parse(path: Path) -> dict[str, Any]:
    return BicepParser().parse(text=path.read_text())


def resources_of(bicep: dict[str, Any], type_: str) -> list[dict[str, Any]]:
    found = [r["config"] for r in bicep["resources"].values() if r["type"] == type_]
    assert found, f"no {type_} resource"
    return found


def the(bicep: dict[str, Any], type_: str) -> dict[str, Any]:
    (found,) = resources_of(bicep, type_)
    return found


def app_settings(bicep: dict[str, Any]) -> dict[str, Any]:
    site = the(bicep, "Microsoft.Web/sites")
    return {s["name"]: s["value"] for s in site["properties"]["siteConfig"]["appSettings"]}


def accessor(expression: Any) -> list[str]:
    """A property access as names: appIdentity.properties.clientId -> [appIdentity, properties, clientId]."""
    if isinstance(expression, str):
        return [expression]
    operands = expression["operator"]["operands"]
    return [*accessor(operands["operand_1"]), *accessor(operands["operand_2"])]


def grants(bicep: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Every role assignment as (identity resource, role in `roles`, scope resource)."""
    found = []
    for config in resources_of(bicep, "Microsoft.Authorization/roleAssignments"):
        if "loop_type" in config:  # one assignment per role of the loop's array
            body = config["config"]
            roles = [accessor(item)[-1] for item in config["loop_type"]["detail"]["array_name"]]
        else:
            body = config
            role_id = body["properties"]["roleDefinitionId"]["function"]["parameters"]
            roles = [accessor(role_id["resource_name_1"])[-1]]
        principal = accessor(body["properties"]["principalId"])
        assert principal[1:] == ["properties", "principalId"], principal
        found += [(principal[0], role, body["scope"]) for role in roles]
    return found


def grants_of(bicep: dict[str, Any], identity: str) -> list[tuple[str, str]]:
    return sorted((role, scope) for principal, role, scope in grants(bicep) if principal == identity)


def parameter_defaults(bicep: dict[str, Any]) -> dict[str, Any]:
    return {name: parameter.get("default") for name, parameter in bicep["parameters"].items()}


def secret_settings(settings: dict[str, Any]) -> list[str]:
    """Names (never values) of settings that hold or derive a credential."""
    bad = [name for name in settings if name in FORBIDDEN_SETTINGS]
    bad += [name for name, value in settings.items() if SECRET_MARKERS.search(json.dumps(value))]
    return sorted(set(bad))


def test_no_app_setting_holds_a_key_password_or_connection_string(baked: tuple[Path, bool]) -> None:
    project, _ = baked
    bicep = parse(project / "infra" / "main.bicep")
    settings = app_settings(bicep)
    assert secret_settings(settings) == []
    # The one connection string left is Application Insights': an address, not a credential, because
    # local (instrumentation key) authentication is off and telemetry needs the identity's token.
    assert the(bicep, "Microsoft.Insights/components")["properties"]["DisableLocalAuth"] is True
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"].startswith("Authorization=AAD;ClientId=")


def test_the_secret_check_catches_a_storage_key(baked: tuple[Path, bool], tmp_path: Path) -> None:
    project, _ = baked
    leaky = (project / "infra" / "main.bicep").read_text().replace(
        "{ name: 'KEY_VAULT_URL', value: vault.properties.vaultUri }",
        "{ name: 'KEY_VAULT_URL', value: vault.properties.vaultUri }\n"
        "        { name: 'STORE', value: 'AccountKey=${storage.listKeys().keys[0].value}' }\n"
        "        { name: 'AzureWebJobsStorage', value: 'UseDevelopmentStorage=true' }",
    )
    (tmp_path / "main.bicep").write_text(leaky)
    assert secret_settings(app_settings(parse(tmp_path / "main.bicep"))) == ["AzureWebJobsStorage", "STORE"]


def test_app_settings_are_identity_based(baked: tuple[Path, bool]) -> None:
    project, _ = baked
    settings = app_settings(parse(project / "infra" / "main.bicep"))
    for name, expected in REQUIRED_SETTINGS.items():
        assert name in settings, name
        if expected is not None:
            assert settings[name] == expected, name


def test_function_app_is_hardened_and_pulls_by_identity(baked: tuple[Path, bool]) -> None:
    project, private = baked
    bicep = parse(project / "infra" / "main.bicep")
    site = the(bicep, "Microsoft.Web/sites")
    props, config = site["properties"], site["properties"]["siteConfig"]
    assert site["kind"] == "functionapp,linux,container"
    assert site["identity"]["type"] == "UserAssigned"
    assert props["httpsOnly"] is True
    # Key Vault references would resolve secrets into the host's environment (README, security model).
    assert "keyVaultReferenceIdentity" not in props
    assert config["linuxFxVersion"].startswith("DOCKER|${registry.properties.loginServer}/")
    assert config["acrUseManagedIdentityCreds"] is True
    assert "clientId" in json.dumps(config["acrUserManagedIdentityID"])
    assert config["ftpsState"] == "Disabled"
    assert config["minTlsVersion"] == "1.2"
    assert config["remoteDebuggingEnabled"] is False
    publishing = resources_of(bicep, "Microsoft.Web/sites/basicPublishingCredentialsPolicies")
    assert sorted(p["name"] for p in publishing) == ["ftp", "scm"]
    assert all(p["properties"]["allow"] is False for p in publishing)
    if private:
        assert props["vnetRouteAllEnabled"] is True and config["vnetRouteAllEnabled"] is True
        assert props["vnetImagePullEnabled"] is True
        assert "appSubnetId" in json.dumps(props["virtualNetworkSubnetId"])
    else:
        assert "virtualNetworkSubnetId" not in props


def test_plan_is_elastic_premium_ep1_on_linux(baked: tuple[Path, bool]) -> None:
    project, _ = baked
    plan = the(parse(project / "infra" / "main.bicep"), "Microsoft.Web/serverfarms")
    assert plan["sku"] == {"name": "EP1", "tier": "ElasticPremium"}
    assert plan["kind"] == "elastic"
    assert plan["properties"]["reserved"] is True


def test_registry_vault_and_storage_take_no_key(baked: tuple[Path, bool]) -> None:
    project, private = baked
    bicep = parse(project / "infra" / "main.bicep")
    registry = the(bicep, "Microsoft.ContainerRegistry/registries")
    assert registry["properties"]["adminUserEnabled"] is False
    assert registry["properties"]["anonymousPullEnabled"] is False
    vault = the(bicep, "Microsoft.KeyVault/vaults")["properties"]
    assert vault["enableRbacAuthorization"] is True
    assert vault["enableSoftDelete"] is True
    assert vault["enablePurgeProtection"] is True
    storage = the(bicep, "Microsoft.Storage/storageAccounts")["properties"]
    assert storage["allowSharedKeyAccess"] is False
    assert storage["minimumTlsVersion"] == "TLS1_2"
    assert storage["allowBlobPublicAccess"] is False
    assert storage["supportsHttpsTrafficOnly"] is True
    expected_access = "Disabled" if private else "Enabled"
    for props in (registry["properties"], vault, storage):
        assert props["publicNetworkAccess"] == expected_access
    assert registry["sku"]["name"] == ("Premium" if private else "Basic")
    if private:
        assert vault["networkAcls"]["defaultAction"] == "Deny"
        assert storage["networkAcls"]["defaultAction"] == "Deny"


def test_identity_gets_exactly_the_roles_it_needs(baked: tuple[Path, bool]) -> None:
    project, _ = baked
    bicep = parse(project / "infra" / "main.bicep")
    assert bicep["variables"]["roles"]["value"] == ROLE_IDS
    assignments = json.dumps(resources_of(bicep, "Microsoft.Authorization/roleAssignments"))
    for role in ROLE_IDS:
        assert f'"operand_2": "{role}"' in assignments, role
    # No broad role sneaks in by literal ID (Owner, Contributor, User Access Administrator).
    for broad in ("8e3af657-a8ff-443c-a75c-2fe8c4bcb635", "b24988ac-6180-42a0-ab88-20f7382dd24c",
                  "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"):
        assert broad not in (project / "infra" / "main.bicep").read_text()


def test_the_app_identity_may_read_its_vault_and_nothing_else(baked: tuple[Path, bool]) -> None:
    project, _ = baked
    bicep = parse(project / "infra" / "main.bicep")
    identities = {name for name, r in bicep["resources"].items()
                  if r["type"] == "Microsoft.ManagedIdentity/userAssignedIdentities"}
    assert identities == {"hostIdentity", "appIdentity"}
    assert {principal for principal, _, _ in grants(bicep)} == identities
    assert grants_of(bicep, "appIdentity") == [("keyVaultSecretsUser", "vault")]
    assert grants_of(bicep, "hostIdentity") == sorted([
        ("acrPull", "registry"), ("monitoringMetricsPublisher", "insights"),
        ("storageBlobDataOwner", "storage"), ("storageQueueDataContributor", "storage"),
        ("storageTableDataContributor", "storage"),
    ])


def test_the_host_identity_pulls_runs_storage_and_sends_telemetry(baked: tuple[Path, bool]) -> None:
    project, _ = baked
    bicep = parse(project / "infra" / "main.bicep")
    site = the(bicep, "Microsoft.Web/sites")
    settings = app_settings(bicep)
    host_client_id = ["hostIdentity", "properties", "clientId"]
    assert accessor(settings["AzureWebJobsStorage__clientId"]) == host_client_id
    assert accessor(site["properties"]["siteConfig"]["acrUserManagedIdentityID"]) == host_client_id
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == (
        "Authorization=AAD;ClientId=${hostIdentity.properties.clientId}")
    assert accessor(settings["AZURE_CLIENT_ID"]) == ["appIdentity", "properties", "clientId"]
    # Both assigned to the site: the platform's endpoint mints tokens only for assigned identities.
    assert set(site["identity"]["userAssignedIdentities"]) == {
        "'${hostIdentity.id}'", "'${appIdentity.id}'"}


def test_the_identity_checks_catch_one_identity_for_both(baked: tuple[Path, bool], tmp_path: Path) -> None:
    """The template as it was before the split: the worker's identity ran storage and the registry."""
    project, _ = baked
    shared = (project / "infra" / "main.bicep").read_text().replace("appIdentity.", "hostIdentity.")
    (tmp_path / "main.bicep").write_text(shared)
    bicep = parse(tmp_path / "main.bicep")
    assert grants_of(bicep, "appIdentity") == []
    assert ("keyVaultSecretsUser", "vault") in grants_of(bicep, "hostIdentity")
    assert accessor(app_settings(bicep)["AZURE_CLIENT_ID"])[0] == "hostIdentity"


def test_private_networking_adds_endpoints_zones_and_links(baked: tuple[Path, bool]) -> None:
    project, private = baked
    network = project / "infra" / "network.bicep"
    assert network.exists() == private
    assert ("module network 'network.bicep'" in (project / "infra" / "main.bicep").read_text()) == private
    if not private:
        return
    bicep = parse(network)
    endpoints = bicep["variables"]["endpoints"]["value"]
    assert sorted(e["group"] for e in endpoints) == ["blob", "queue", "registry", "table", "vault"]
    loops = {r["type"]: r["config"]["loop_type"]["detail"]["array_name"]
             for r in bicep["resources"].values() if "loop_type" in r["config"]}
    for type_ in ("Microsoft.Network/privateEndpoints", "Microsoft.Network/privateDnsZones",
                  "Microsoft.Network/privateDnsZones/virtualNetworkLinks",
                  "Microsoft.Network/privateEndpoints/privateDnsZoneGroups"):
        assert loops.get(type_) == "endpoints", type_
    subnets = the(bicep, "Microsoft.Network/virtualNetworks")["properties"]["subnets"]
    delegations = json.dumps(subnets[0]["properties"]["delegations"])
    assert "Microsoft.Web/serverFarms" in delegations


def test_every_parameter_defaults_to_the_answers(baked: tuple[Path, bool]) -> None:
    """`az deployment group create -f infra/main.bicep` needs no parameters file."""
    project, _ = baked
    defaults = parameter_defaults(parse(project / "infra" / "main.bicep"))
    assert defaults == {
        "location": "westeurope", "environmentName": "", "appName": f"hardened-functions-app-{SUFFIX}",
        "acrName": f"hardenedfunctionsapp{SUFFIX}acr", "keyVaultName": f"kv-hardened-funct-{SUFFIX}",
        "storageAccountName": f"hardenedfunction{SUFFIX}st", "image": "hardened-functions-app:initial",
    }


def test_azd_takes_its_environment_and_deploys_the_image_to_the_app(baked: tuple[Path, bool]) -> None:
    project, _ = baked
    bicep = parse(project / "infra" / "main.bicep")
    parameters = json.loads((project / "infra" / "main.parameters.json").read_text())["parameters"]
    assert parameters == {"environmentName": {"value": "${AZURE_ENV_NAME}"},
                          "location": {"value": "${AZURE_LOCATION}"}}
    assert set(parameters) <= set(bicep["parameters"])
    manifest = yaml.safe_load((project / "azure.yaml").read_text())
    assert manifest["name"] == "hardened-functions-app"
    assert manifest["infra"] == {"provider": "bicep", "path": "infra", "module": "main"}
    (service,) = manifest["services"].values()
    defaults = parameter_defaults(bicep)
    assert service["host"] == "function" and service["language"] == "docker"
    assert service["resourceName"] == defaults["appName"]
    assert service["docker"] == {"path": "./Dockerfile", "registry": f"{defaults['acrName']}.azurecr.io",
                                 "image": defaults["image"].split(":")[0]}
    assert service["hooks"]["prepackage"]["run"] == "make image verify-image"
    # azd builds the Dockerfile's last stage (its docker options take no target).
    stages = re.findall(r"(?m)^FROM \S+ AS (\S+)$", (project / "Dockerfile").read_text())
    assert stages[-1] == "hardened"


def test_pipeline_readme_and_bicep_name_the_same_resources(baked: tuple[Path, bool]) -> None:
    project, _ = baked
    defaults = parameter_defaults(parse(project / "infra" / "main.bicep"))
    pipeline = yaml.safe_load((project / ".github" / "workflows" / "pipeline.yml").read_text())["env"]
    assert pipeline["APP_NAME"] == defaults["appName"]
    assert pipeline["IMAGE"] == f"{defaults['acrName']}.azurecr.io/{defaults['image'].split(':')[0]}"
    readme = (project / "README.md").read_text()
    for name in ("appName", "acrName", "keyVaultName", "storageAccountName"):
        assert f"`{defaults[name]}`" in readme, name


def test_no_infra_bake_has_no_azd_manifest(bake) -> None:
    project = bake(include_infra=False)
    assert not (project / "infra").exists()
    assert not (project / "azure.yaml").exists()
