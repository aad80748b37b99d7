"""What the app needs: its secrets, declared once with their Key Vault names, and the few
non-secret settings it reads from the environment (names the launcher's policy allows)."""

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from settings.secret import Secret

DEFAULT_REFRESH_SECONDS = 600.0
MIN_REFRESH_SECONDS = 1.0


def key_vault(name: str) -> dict[str, Any]:
    """Field metadata: the secret's name in Key Vault (letters, digits and hyphens)."""
    return {"vault_name": name}


@dataclass(frozen=True)
class Secrets:
    """One field a required secret. Declare a secret here and nowhere else."""

    greeting_signing_key: Secret = field(metadata=key_vault("greeting-signing-key"))


def declared_vault_names(secrets_type: type[Secrets]) -> dict[str, str]:
    """Field name -> Key Vault secret name, for every secret `secrets_type` declares."""
    return {f.name: f.metadata["vault_name"] for f in dataclasses.fields(secrets_type)}


class SettingsError(ValueError):
    """An environment variable has a value the app cannot use."""


@dataclass(frozen=True)
class Environment:
    """Non-secret settings: where the vault is, which identity reaches it, how long values live.

    IDENTITY_ENDPOINT and IDENTITY_HEADER are read by azure-identity itself, never here.
    """

    key_vault_url: str | None
    azure_client_id: str | None
    refresh_seconds: float

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> "Environment":
        url = environ.get("KEY_VAULT_URL") or None
        if url is not None and urlsplit(url).scheme != "https":
            raise SettingsError(f"KEY_VAULT_URL must be an https:// URL, not {url!r}")
        raw_refresh = environ.get("SECRETS_REFRESH_SECONDS") or str(DEFAULT_REFRESH_SECONDS)
        try:
            refresh = float(raw_refresh)
        except ValueError:
            refresh = -1.0
        if not refresh >= MIN_REFRESH_SECONDS:
            raise SettingsError(
                f"SECRETS_REFRESH_SECONDS must be a number of seconds >= {MIN_REFRESH_SECONDS:g}, "
                f"not {raw_refresh!r}"
            )
        return cls(url, environ.get("AZURE_CLIENT_ID") or None, refresh)


@dataclass(frozen=True)
class Settings:
    """The one settings object functions use: `settings.get().secrets.greeting_signing_key`."""

    environment: Environment
    secrets: Secrets
