{% if cookiecutter.hosting == 'containerapps' -%}
// Everything {{ cookiecutter.app_name }} runs on, with no stored credential and three user-assigned
// managed identities: the pull identity (the platform pulls the image with it; the container never holds
// it), the host's (the Functions host runs its storage and sends telemetry with it) and the app's
// (function code reads the vault with it, nothing else). The app runs on Azure Container Apps.
{%- else -%}
// Everything {{ cookiecutter.app_name }} runs on, with no stored credential and two user-assigned
// managed identities: the host's (the platform pulls the image with it; the Functions host runs its
// storage and sends telemetry with it) and the app's (function code reads the vault with it, nothing else).
{%- endif %}
// Deploy: az deployment group create -g {{ cookiecutter.resource_group }} -f infra/main.bicep
// (the parameters' defaults are the bake's answers; infra/main.parameters.json is azd's, see azure.yaml).

@description('Azure region for every resource.')
param location string = '{{ cookiecutter.azure_region }}'

@description('azd environment name (AZURE_ENV_NAME), tagged on every resource as azd-env-name; empty outside azd.')
param environmentName string = ''

@description('Function app name (globally unique); also starts the names inside the resource group.')
param appName string = '{{ cookiecutter.__function_app_name }}'

@description('Container registry name (globally unique, letters and digits).')
param acrName string = '{{ cookiecutter.acr_name }}'

@description('Key Vault name (globally unique).')
param keyVaultName string = '{{ cookiecutter.key_vault_name }}'

@description('Storage account for the Functions host (3-24 lower-case letters and digits).')
param storageAccountName string = '{{ cookiecutter.__storage_account_name }}'

@description('Image inside the registry, `repository:tag` or `repository@sha256:...`; the pipeline deploys by digest.')
param image string = '{{ cookiecutter.app_name }}:initial'

var tags = empty(environmentName) ? {} : { 'azd-env-name': environmentName }

// Built-in role definition IDs (the same in every tenant).
var roles = {
  acrPull: '7f951dda-4ed3-4680-a7ca-43fe172d538d'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}

// Two identities: function code gets tokens for the app's (AZURE_CLIENT_ID), so it may only read the
// vault's secrets; the host's runs storage, the image pull and telemetry. The platform's endpoint mints
// a token for any identity assigned to the site to whoever holds IDENTITY_HEADER, so the worker must
// never hold that header (launcher/README.md). learn.microsoft.com/azure/app-service/overview-managed-identity
// ("REST endpoint reference": client_id picks one of the user-assigned identities assigned to the app).
resource hostIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-${appName}-host'
  location: location
  tags: tags
}

resource appIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-${appName}-app'
  location: location
  tags: tags
}

{%- if cookiecutter.hosting == 'containerapps' %}

// Container Apps pull with an identity of their own, which the running container never holds
// (infra/containerapps.bicep: its lifecycle is None), so AcrPull is the pull identity's, not the host's.
resource pullIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-${appName}-pull'
  location: location
  tags: tags
}
{%- endif %}

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: 'log-${appName}'
  location: location
  tags: tags
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: 30
  }
}

// Local (instrumentation key) authentication is off, so the connection string in the app settings
// is an address, not a credential: telemetry is accepted only with an Entra token of the host's identity.
resource insights 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-${appName}'
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    DisableLocalAuth: true
  }
}

// The security alert on the launcher's events, and who it mails (alerts.bicep).
module alerts 'alerts.bicep' = {
  name: 'alerts'
  params: {
    location: location
    tags: tags
    appName: appName
    insightsId: insights.id
  }
}

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' = {
  name: acrName
  location: location
  tags: tags
{%- if cookiecutter.private_networking %}
  //checkov:skip=CKV_AZURE_164: ACR's Docker Content Trust is deprecated; the pipeline deploys by digest and pushes provenance and SBOM attestations (sign with Notation if you need signatures)
  //checkov:skip=CKV_AZURE_233: zone redundancy fails in regions without availability zones; set zoneRedundancy: 'Enabled' where the region has them
  sku: { name: 'Premium' }
{%- else %}
  //checkov:skip=CKV_AZURE_139: public network access stays on without the private_networking switch (the plan and the pipeline reach the registry over the internet); bake with private_networking=true to close it
  //checkov:skip=CKV_AZURE_163: Defender's registry scanning comes with Standard or Premium (Premium with the private_networking switch); the pipeline scans every image before it pushes
  sku: { name: 'Basic' }
{%- endif %}
  properties: {
    adminUserEnabled: false
    anonymousPullEnabled: false
{%- if cookiecutter.private_networking %}
    publicNetworkAccess: 'Disabled'
    networkRuleBypassOptions: 'None'
    dataEndpointEnabled: true
    policies: {
      retentionPolicy: { status: 'enabled', days: 30 }
    }
{%- else %}
    publicNetworkAccess: 'Enabled'
{%- endif %}
  }
  //checkov:skip=CKV_AZURE_166: a quarantined image cannot be pulled until a scanner marks it verified through ACR's quarantine API; the pipeline verifies and scans before it pushes and deploys by digest
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: keyVaultName
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
{%- if cookiecutter.private_networking %}
    publicNetworkAccess: 'Disabled'
    networkAcls: { defaultAction: 'Deny', bypass: 'None' }
{%- else %}
    publicNetworkAccess: 'Enabled'
    networkAcls: { defaultAction: 'Allow', bypass: 'AzureServices' }
{%- endif %}
  }
{%- if not cookiecutter.private_networking %}
  //checkov:skip=CKV_AZURE_109: without the private_networking switch the app reaches the vault over the internet (with the app's identity and RBAC); bake with private_networking=true for a private endpoint and a deny-all firewall
  //checkov:skip=CKV_AZURE_189: public network access stays on without the private_networking switch; bake with private_networking=true to close it
{%- endif %}
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: storageAccountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: { name: 'Standard_LRS' }
  properties: {
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
{%- if cookiecutter.private_networking %}
    publicNetworkAccess: 'Disabled'
    networkAcls: { defaultAction: 'Deny', bypass: 'AzureServices' }
{%- else %}
    publicNetworkAccess: 'Enabled'
    networkAcls: { defaultAction: 'Allow', bypass: 'AzureServices' }
{%- endif %}
  }
  //checkov:skip=CKV_AZURE_206: the host keeps only leases, queues and timer state here; locally redundant storage suffices and is offered in every region; use Standard_GZRS where the region has zones and a failover design needs it
{%- if not cookiecutter.private_networking %}
  //checkov:skip=CKV_AZURE_35: an EP plan without the private_networking switch reaches storage from shared outbound addresses, so the firewall must allow them (access still needs the host's identity; shared keys are off); bake with private_networking=true for deny-all
  //checkov:skip=CKV_AZURE_59: public network access stays on without the private_networking switch; bake with private_networking=true to close it
{%- endif %}
}

// What the host's identity may do, and nothing else: pull images (AcrPull), run the host's storage
// (Blob Data Owner: leases, containers, its key store; Table Data Contributor: diagnostic events;
// Queue Data Contributor: queue triggers and the blob trigger's queue; learn.microsoft.com/azure/
// azure-functions/functions-reference, "Connecting to host storage with an identity") and publish
// telemetry (Monitoring Metrics Publisher, which APPLICATIONINSIGHTS_AUTHENTICATION_STRING needs).
resource acrPull 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(registry.id, {{ 'pullIdentity' if cookiecutter.hosting == 'containerapps' else 'hostIdentity' }}.id, roles.acrPull)
  scope: registry
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.acrPull)
    principalId: {{ 'pullIdentity' if cookiecutter.hosting == 'containerapps' else 'hostIdentity' }}.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource storageRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for role in [roles.storageBlobDataOwner, roles.storageQueueDataContributor, roles.storageTableDataContributor]: {
    name: guid(storage.id, hostIdentity.id, role)
    scope: storage
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role)
      principalId: hostIdentity.properties.principalId
      principalType: 'ServicePrincipal'
    }
  }
]

resource metricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(insights.id, hostIdentity.id, roles.monitoringMetricsPublisher)
  scope: insights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: hostIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// What the app's identity may do: read this vault's secret values, and nothing else.
resource secretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, appIdentity.id, roles.keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: appIdentity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}
{%- if cookiecutter.private_networking %}

module network 'network.bicep' = {
  name: 'network'
  params: {
    location: location
    tags: tags
    appName: appName
    registryId: registry.id
    vaultId: vault.id
    storageAccountId: storage.id
  }
}
{%- endif %}
{%- if cookiecutter.hosting == 'containerapps' %}

module containerApp 'containerapps.bicep' = {
  name: 'containerapps'
  params: {
    location: location
    tags: tags
    appName: appName
    image: image
    registryLoginServer: registry.properties.loginServer
    workspaceId: workspace.id
    pullIdentityId: pullIdentity.id
    hostIdentityId: hostIdentity.id
    hostIdentityClientId: hostIdentity.properties.clientId
    appIdentityId: appIdentity.id
    appIdentityClientId: appIdentity.properties.clientId
    hostStorageName: storage.name
    keyVaultUrl: vault.properties.vaultUri
    insightsConnectionString: insights.properties.ConnectionString
{%- if cookiecutter.private_networking %}
    infrastructureSubnetId: network.outputs.appSubnetId
{%- endif %}
  }
  dependsOn: [acrPull, secretsUser, storageRoles, metricsPublisher]
}

output appName string = containerApp.outputs.appName
{%- else %}

resource plan 'Microsoft.Web/serverfarms@2023-12-01' = {
  name: 'plan-${appName}'
  location: location
  tags: tags
  kind: 'elastic'
  sku: { name: 'EP1', tier: 'ElasticPremium' }
  properties: {
    reserved: true // Linux
    maximumElasticWorkerCount: 20
    zoneRedundant: false
  }
  //checkov:skip=CKV_AZURE_225: zone redundancy needs at least three always-ready EP instances; raise capacity and set zoneRedundant when the cost is justified
}

resource app 'Microsoft.Web/sites@2023-12-01' = {
  name: appName
  location: location
  tags: tags
  kind: 'functionapp,linux,container'
  // Both assigned: the platform mints tokens only for identities assigned to the site.
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${hostIdentity.id}': {}, '${appIdentity.id}': {} }
  }
  //checkov:skip=CKV_AZURE_222: the app serves public HTTP by design (private_networking closes its dependencies, not its front door); put it behind Front Door or API Management with a private endpoint to close it
  //checkov:skip=CKV_AZURE_17: callers authenticate with function keys or Entra tokens, not client certificates; enable clientCertEnabled for mutual-TLS callers
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
{%- if cookiecutter.private_networking %}
    virtualNetworkSubnetId: network.outputs.appSubnetId
    vnetRouteAllEnabled: true
    vnetImagePullEnabled: true
{%- endif %}
    siteConfig: {
      linuxFxVersion: 'DOCKER|${registry.properties.loginServer}/${image}'
      acrUseManagedIdentityCreds: true
      // learn.microsoft.com/azure/app-service/configure-custom-container ("Use managed identity to pull
      // image from Azure Container Registry"); Azure/app-service-linux-docs,
      // HowTo/use_user-assigned_managed_identities.md.
      acrUserManagedIdentityID: hostIdentity.properties.clientId
      ftpsState: 'Disabled'
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      http20Enabled: true
      remoteDebuggingEnabled: false
      healthCheckPath: '/api/health'
      minimumElasticInstanceCount: 1
      //checkov:skip=CKV_AZURE_212: one always-ready instance keeps EP1's base cost and the plan scales out on load; raise minimumElasticInstanceCount and numberOfWorkers for failover
{%- if cookiecutter.private_networking %}
      vnetRouteAllEnabled: true
{%- endif %}
      // No @Microsoft.KeyVault(...) reference: the platform would resolve it into the host's
      // environment, the place the launcher keeps secrets away from; settings/ reads the vault in-process.
      appSettings: [
        { name: 'FUNCTIONS_EXTENSION_VERSION', value: '~4' }
        { name: 'FUNCTIONS_WORKER_RUNTIME', value: 'python' }
        { name: 'WEBSITES_ENABLE_APP_SERVICE_STORAGE', value: 'false' }
        { name: 'AzureWebJobsStorage__accountName', value: storage.name }
        { name: 'AzureWebJobsStorage__credential', value: 'managedidentity' }
        // learn.microsoft.com/azure/azure-functions/functions-reference ("Common properties for
        // identity-based connections": clientId names a user-assigned identity assigned to the app).
        { name: 'AzureWebJobsStorage__clientId', value: hostIdentity.properties.clientId }
        // The identity settings/ asks for (ManagedIdentityCredential(client_id=AZURE_CLIENT_ID)).
        { name: 'AZURE_CLIENT_ID', value: appIdentity.properties.clientId }
        { name: 'KEY_VAULT_URL', value: vault.properties.vaultUri }
        { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: insights.properties.ConnectionString }
        // learn.microsoft.com/azure/azure-functions/functions-app-settings
        // (APPLICATIONINSIGHTS_AUTHENTICATION_STRING: user-assigned, Authorization=AAD;ClientId=<client id>).
        { name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING', value: 'Authorization=AAD;ClientId=${hostIdentity.properties.clientId}' }
      ]
    }
  }
  dependsOn: [acrPull, secretsUser, storageRoles, metricsPublisher]
}

// Deployment goes through the pipeline's Entra identity; basic-auth publishing (FTP, SCM) stays off.
resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2023-12-01' = {
  parent: app
  name: 'ftp'
  properties: { allow: false }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2023-12-01' = {
  parent: app
  name: 'scm'
  properties: { allow: false }
}

output appName string = app.name
{%- endif %}
output registryLoginServer string = registry.properties.loginServer
output keyVaultUrl string = vault.properties.vaultUri
output hostIdentityClientId string = hostIdentity.properties.clientId
output appIdentityClientId string = appIdentity.properties.clientId
