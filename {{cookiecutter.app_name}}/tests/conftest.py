"""Shared fixtures: a development-file value for every declared secret in every test, and (TEST
FIXTURES) a local HTTPS Key Vault with App Service's managed-identity endpoint, holding every
declared secret, for the settings tests. Both follow `settings/declared.py`: a secret declared
there needs nothing here."""

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import settings
from settings.declared import Environment, Secrets, declared_vault_names, key_vault
from settings.sources import DevelopmentFileSource
from tests.azure_fakes.key_vault import FakeKeyVault
from tests.azure_fakes.managed_identity import ManagedIdentityEndpoint
from tests.azure_fakes.tls import TestCA, make_test_ca

DECLARED = sorted(declared_vault_names(Secrets).values())


# Test values only. Tests check that these never show up where they must not.
def development_value(vault_name: str) -> str:
    return f"dev-{vault_name}-for-unit-tests"


def vault_value(vault_name: str) -> str:
    return f"vault-{vault_name}-7f3a9c"


DEVELOPMENT_SIGNING_KEY = development_value("greeting-signing-key")
VAULT_SIGNING_KEY = vault_value("greeting-signing-key")
CLIENT_ID = "3c5b2a9e-0000-4000-8000-00000000c1d0"


def with_new_secret(field: str, vault_name: str) -> type[Secrets]:
    """The declared secrets and one more, as when a new function's secret is declared."""
    new = (field, settings.Secret, dataclasses.field(metadata=key_vault(vault_name)))
    return dataclasses.make_dataclass("WithNewSecret", [new], bases=(Secrets,), frozen=True)


@pytest.fixture(autouse=True)
def development_secrets(tmp_path: Path) -> Iterator[Path]:
    """Every test starts on the local development source with a value for each declared secret."""
    secrets_file = tmp_path / "local.secrets.json"
    secrets_file.write_text(json.dumps({name: development_value(name) for name in DECLARED}))
    environment = Environment(key_vault_url=None, azure_client_id=None, refresh_seconds=600)
    settings.install(settings.SecretStore(DevelopmentFileSource(secrets_file), environment))
    yield secrets_file
    settings.install(None)


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return make_test_ca(tmp_path_factory.mktemp("test-ca"))


@dataclass
class Azure:
    identity: ManagedIdentityEndpoint
    vault: FakeKeyVault


@pytest.fixture
def azure(test_ca: TestCA, monkeypatch: pytest.MonkeyPatch) -> Iterator[Azure]:
    """Both fakes running, and the variables App Service and the launcher would give the
    worker: KEY_VAULT_URL, AZURE_CLIENT_ID, IDENTITY_ENDPOINT, IDENTITY_HEADER, plus the
    test CA for `requests`."""
    identity = ManagedIdentityEndpoint(test_ca, CLIENT_ID)
    vault = FakeKeyVault(test_ca, identity)
    for name in DECLARED:
        vault.set_secret(name, vault_value(name))
    identity.start()
    vault.start()
    monkeypatch.setenv("KEY_VAULT_URL", vault.url)
    monkeypatch.setenv("AZURE_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("IDENTITY_ENDPOINT", identity.endpoint)
    monkeypatch.setenv("IDENTITY_HEADER", identity.identity_header)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(test_ca.ca_file))
    monkeypatch.delenv("SECRETS_REFRESH_SECONDS", raising=False)
    yield Azure(identity, vault)
    vault.stop()
    identity.stop()
