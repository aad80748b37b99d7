// Azure Container Apps hosting: an environment whose logs go to the workspace through Azure Monitor
// (no workspace key is handed to it), and the function app as a container app of kind functionapp.
// learn.microsoft.com/azure/container-apps/functions-overview; the API version is the first that has
// both `kind` and `identitySettings` (learn.microsoft.com/azure/templates/microsoft.app/containerapps).

param location string
param tags object
param appName string
param image string
param registryLoginServer string
param workspaceId string
param pullIdentityId string
param hostIdentityId string
param hostIdentityClientId string
param appIdentityId string
param appIdentityClientId string
param hostStorageName string
param keyVaultUrl string
param insightsConnectionString string
{%- if cookiecutter.private_networking %}
param infrastructureSubnetId string
{%- endif %}

@description('Replicas that are always running: 1 keeps the launcher\'s start-up off the first request; 0 lets the app scale to zero.')
@minValue(0)
param minReplicas int = 1

@description('Most replicas the platform may run; the Functions host\'s triggers decide within the range.')
@minValue(1)
@maxValue(300)
param maxReplicas int = 10

resource managedEnvironment 'Microsoft.App/managedEnvironments@2024-10-02-preview' = {
  name: 'cae-${appName}'
  location: location
  tags: tags
  properties: {
    appLogsConfiguration: { destination: 'azure-monitor' }
    workloadProfiles: [{ name: 'Consumption', workloadProfileType: 'Consumption' }]
{%- if cookiecutter.private_networking %}
    // The app's outbound traffic (image pull, vault, storage) enters the virtual network and reaches
    // the private endpoints; the front door stays public, as on the Premium plan.
    vnetConfiguration: { infrastructureSubnetId: infrastructureSubnetId, internal: false }
{%- endif %}
    zoneRedundant: false
  }
}

resource environmentLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'logs-to-workspace'
  scope: managedEnvironment
  properties: {
    workspaceId: workspaceId
    logs: [{ categoryGroup: 'allLogs', enabled: true }]
  }
}

resource app 'Microsoft.App/containerApps@2024-10-02-preview' = {
  name: appName
  location: location
  tags: tags
  kind: 'functionapp'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${pullIdentityId}': {}, '${hostIdentityId}': {}, '${appIdentityId}': {} }
  }
  properties: {
    managedEnvironmentId: managedEnvironment.id
    workloadProfileName: 'Consumption'
    configuration: {
      activeRevisionsMode: 'Single'
      ingress: { external: true, targetPort: 80, transport: 'auto', allowInsecure: false }
      registries: [{ server: registryLoginServer, identity: pullIdentityId }]
      // The container's identity endpoint mints a token of any identity available to it for whoever holds
      // IDENTITY_HEADER. The pull identity is the platform's alone (None: image pulls only); the host's and
      // the app's are the running container's (learn.microsoft.com/azure/container-apps/managed-identity,
      // "Control managed identity availability", API version 2024-02-02-preview and later).
      identitySettings: [
        { identity: pullIdentityId, lifecycle: 'None' }
        { identity: hostIdentityId, lifecycle: 'Main' }
        { identity: appIdentityId, lifecycle: 'Main' }
      ]
    }
    template: {
      containers: [
        {
          name: 'functions'
          image: '${registryLoginServer}/${image}'
          resources: { cpu: json('1.0'), memory: '2Gi' }
          probes: [
            { type: 'Liveness', httpGet: { path: '/api/health', port: 80 }, periodSeconds: 30 }
            { type: 'Readiness', httpGet: { path: '/api/health', port: 80 }, periodSeconds: 10 }
          ]
          // The same settings as on the Premium plan, as environment variables; no secret among them.
          env: [
            { name: 'FUNCTIONS_EXTENSION_VERSION', value: '~4' }
            { name: 'FUNCTIONS_WORKER_RUNTIME', value: 'python' }
            { name: 'AzureWebJobsStorage__accountName', value: hostStorageName }
            { name: 'AzureWebJobsStorage__credential', value: 'managedidentity' }
            { name: 'AzureWebJobsStorage__clientId', value: hostIdentityClientId }
            { name: 'AZURE_CLIENT_ID', value: appIdentityClientId }
            { name: 'KEY_VAULT_URL', value: keyVaultUrl }
            { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: insightsConnectionString }
            { name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING', value: 'Authorization=AAD;ClientId=${hostIdentityClientId}' }
          ]
        }
      ]
      // Functions on Container Apps derives the scale rules from the app's triggers itself and refuses
      // rules of ours (learn.microsoft.com/azure/container-apps/functions-scale-rule-override); the
      // replica range is ours.
      scale: { minReplicas: minReplicas, maxReplicas: maxReplicas }
    }
  }
}

output appName string = app.name
output fqdn string = app.properties.configuration.ingress.fqdn
