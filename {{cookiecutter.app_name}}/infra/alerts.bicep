// The security alert: a launcher security event (launcher/README.md, "Detection") in Application
// Insights mails the team. The Functions host logs each event line the launcher, its supervisor or
// the identity broker prints as one trace, message the line as printed, at Warning, category
// Host.Function.Console. A healthy app prints none, so one is enough: any event in a 5-minute window
// fires the alert, once per kind of event.

param location string
param tags object
param appName string

@description('Application Insights component the Functions host sends its logs to.')
param insightsId string

@description('Who hears of an attack: an e-mail address; empty mails the subscription\'s Owners.')
param notifyEmail string = '{{ cookiecutter.security_alert_email }}'

// Owner, a built-in role: an empty notifyEmail mails the users holding it on the subscription.
var ownerRoleId = '8e3af657-a8ff-443c-a75c-2fe8c4bcb635'

// Only Host.Function.Console: the worker's own `logging` travels to the host over gRPC, not through
// the launcher, and lands under Function.<name>.User (Azure/azure-functions-host
// src/WebJobs.Script.Grpc/Channel/GrpcWorkerChannel.cs; the category is customDimensions.Category,
// Azure/azure-webjobs-sdk src/Microsoft.Azure.WebJobs.Logging.ApplicationInsights/ApplicationInsightsLogger.cs).
// In that category, a worker's line holding the marker arrives with its '-' made '_' (watch.c), so
// only the launcher, its supervisor and the broker can match.
var eventQuery = '''
traces
| where customDimensions.Category == "Host.Function.Console"
| where message matches regex @"launcher-security-event: warning v1 kind=[a-z]+ pid=[0-9]+ "
| extend kind = extract(@"kind=([a-z]+)", 1, message)
| project timestamp, kind, message, cloud_RoleInstance
'''

resource team 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: 'ag-${appName}-security'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'security'
    enabled: true
    emailReceivers: empty(notifyEmail) ? [] : [
      { name: 'team', emailAddress: notifyEmail, useCommonAlertSchema: true }
    ]
    armRoleReceivers: empty(notifyEmail) ? [
      { name: 'owners', roleId: ownerRoleId, useCommonAlertSchema: true }
    ] : []
  }
}

resource securityEvents 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'alert-${appName}-security-event'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Security event in ${appName}'
    description: 'The launcher refused something only exploited code asks for (launcher/README.md, "Detection"). Read the event lines: traces | where message startswith "launcher-security-event:".'
    severity: 1
    enabled: true
    scopes: [ insightsId ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT5M'
    criteria: {
      allOf: [
        {
          query: eventQuery
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          dimensions: [
            { name: 'kind', operator: 'Include', values: [ '*' ] }
          ]
          failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
        }
      ]
    }
    autoMitigate: false
    actions: { actionGroups: [ team.id ] }
  }
}
