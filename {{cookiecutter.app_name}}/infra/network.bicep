// Private networking: the app's outbound traffic enters a virtual network, and the registry, the vault
// and storage answer only on private endpoints in it, resolved through private DNS zones.

param location string
param tags object
param appName string
param registryId string
param vaultId string
param storageAccountId string

@description('Address space of the virtual network.')
param addressPrefix string = '10.40.0.0/16'

{%- if cookiecutter.hosting == 'containerapps' %}
@description('Subnet for the Container Apps environment (delegated to it; /27 at least).')
{%- else %}
@description('Subnet for the app\'s regional VNet integration (delegated to App Service).')
{%- endif %}
param appSubnetPrefix string = '10.40.0.0/24'

@description('Subnet for the private endpoints.')
param endpointSubnetPrefix string = '10.40.1.0/24'

// Private endpoint target, sub-resource (group) and the zone its name resolves in. Azure Files is left
// out on purpose: a function app in a custom container needs no content share.
var endpoints = [
  { name: 'registry', id: registryId, group: 'registry', zone: 'privatelink.azurecr.io' }
  { name: 'vault', id: vaultId, group: 'vault', zone: 'privatelink.vaultcore.azure.net' }
  { name: 'blob', id: storageAccountId, group: 'blob', zone: 'privatelink.blob.${environment().suffixes.storage}' }
  { name: 'queue', id: storageAccountId, group: 'queue', zone: 'privatelink.queue.${environment().suffixes.storage}' }
  { name: 'table', id: storageAccountId, group: 'table', zone: 'privatelink.table.${environment().suffixes.storage}' }
]

// No inbound rule beyond Azure's defaults; the subnets carry the app's outbound traffic and the endpoints.
resource nsg 'Microsoft.Network/networkSecurityGroups@2023-11-01' = {
  name: 'nsg-${appName}'
  location: location
  tags: tags
  properties: { securityRules: [] }
}

resource vnet 'Microsoft.Network/virtualNetworks@2023-11-01' = {
  name: 'vnet-${appName}'
  location: location
  tags: tags
  properties: {
    addressSpace: { addressPrefixes: [addressPrefix] }
    subnets: [
      {
        name: 'app'
        properties: {
          addressPrefix: appSubnetPrefix
          networkSecurityGroup: { id: nsg.id }
{%- if cookiecutter.hosting == 'containerapps' %}
          delegations: [{ name: 'app', properties: { serviceName: 'Microsoft.App/environments' } }]
{%- else %}
          delegations: [{ name: 'web', properties: { serviceName: 'Microsoft.Web/serverFarms' } }]
{%- endif %}
        }
      }
      {
        name: 'endpoints'
        properties: {
          addressPrefix: endpointSubnetPrefix
          networkSecurityGroup: { id: nsg.id }
          privateEndpointNetworkPolicies: 'Enabled'
        }
      }
    ]
  }
}

resource zones 'Microsoft.Network/privateDnsZones@2020-06-01' = [
  for endpoint in endpoints: {
    name: endpoint.zone
    location: 'global'
    tags: tags
  }
]

resource zoneLinks 'Microsoft.Network/privateDnsZones/virtualNetworkLinks@2020-06-01' = [
  for (endpoint, i) in endpoints: {
    parent: zones[i]
    name: 'vnet-${appName}'
    location: 'global'
    tags: tags
    properties: {
      virtualNetwork: { id: vnet.id }
      registrationEnabled: false
    }
  }
]

resource privateEndpoints 'Microsoft.Network/privateEndpoints@2023-11-01' = [
  for (endpoint, i) in endpoints: {
    name: 'pe-${appName}-${endpoint.name}'
    location: location
    tags: tags
    properties: {
      subnet: { id: vnet.properties.subnets[1].id }
      privateLinkServiceConnections: [
        {
          name: endpoint.name
          properties: { privateLinkServiceId: endpoint.id, groupIds: [endpoint.group] }
        }
      ]
    }
  }
]

resource zoneGroups 'Microsoft.Network/privateEndpoints/privateDnsZoneGroups@2023-11-01' = [
  for (endpoint, i) in endpoints: {
    parent: privateEndpoints[i]
    name: 'default'
    properties: {
      privateDnsZoneConfigs: [{ name: endpoint.name, properties: { privateDnsZoneId: zones[i].id } }]
    }
  }
]

output appSubnetId string = vnet.properties.subnets[0].id
