"""TEST FIXTURES ONLY: local stand-ins for Azure's REST endpoints. Never used by the app itself.

They speak the wire protocols that the real, unmodified `azure-identity` and
`azure-keyvault-secrets` clients speak, over TLS with a CA generated at test time:
- `managed_identity.ManagedIdentityEndpoint`: App Service's managed-identity endpoint
  (`IDENTITY_ENDPOINT`, `X-IDENTITY-HEADER`, api-version 2019-08-01);
- `key_vault.FakeKeyVault`: Key Vault's secrets API (`GET /secrets/{name}[/{version}]`, the
  401 bearer challenge, 403, 404 SecretNotFound, 429 with Retry-After, injected latency).
"""
