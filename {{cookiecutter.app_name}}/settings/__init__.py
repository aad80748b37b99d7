"""The app's settings: `settings.get()` returns one typed `Settings` object.

Secrets come from Key Vault (KEY_VAULT_URL) through the user-assigned managed identity
(AZURE_CLIENT_ID), all fetched concurrently on the first call, never at import, and refreshed
every SECRETS_REFRESH_SECONDS. Without KEY_VAULT_URL they come from the git-ignored development
file `local.secrets.json`, with a loud warning. See README.md, "Settings and secrets".
"""

import os
import threading

from settings.declared import Environment, Secrets, Settings, SettingsError
from settings.secret import Secret
from settings.sources import DevelopmentFileSource, KeyVaultSource, RetryBounds, SecretFetchError
from settings.store import SecretStore, SecretsUnavailableError

__all__ = [
    "Secret",
    "SecretFetchError",
    "SecretStore",
    "Secrets",
    "SecretsUnavailableError",
    "Settings",
    "SettingsError",
    "get",
    "install",
    "store_from_environment",
]

_store: SecretStore | None = None
_store_lock = threading.Lock()


def store_from_environment() -> SecretStore:
    """Key Vault when KEY_VAULT_URL is set, else the development file."""
    environment = Environment.from_environ(os.environ)
    bounds = RetryBounds()
    if environment.key_vault_url is None:
        return SecretStore(DevelopmentFileSource(), environment)
    source = KeyVaultSource(environment.key_vault_url, environment.azure_client_id, bounds)
    # The SDK bounds each secret at `timeout`; one Retry-After wait may come on top of that.
    return SecretStore(source, environment, load_deadline=bounds.timeout + 10)


def get() -> Settings:
    """The settings, loading them on the first call. A secret that could not be loaded raises
    SecretsUnavailableError (naming it) only when its value is asked for."""
    global _store
    with _store_lock:
        if _store is None:
            _store = store_from_environment()
        store = _store
    return store.get()


def install(store: SecretStore | None) -> None:
    """Use `store` from now on (tests, or a different source); None goes back to the default."""
    global _store
    with _store_lock:
        _store = store
