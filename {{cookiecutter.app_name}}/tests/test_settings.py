"""Settings and secrets against the real azure-identity and azure-keyvault-secrets clients,
talking to the local Key Vault and managed-identity fakes (tests/azure_fakes) over TLS."""

import dataclasses
import logging
import os
import pickle
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import settings
from settings.declared import Environment, Secrets, SettingsError, key_vault
from settings.sources import KeyVaultSource, RetryBounds
from tests.azure_fakes.key_vault import FakeKeyVault
from tests.azure_fakes.tls import TestCA
from tests.conftest import CLIENT_ID, VAULT_SIGNING_KEY, Azure, with_new_secret

PROJECT = Path(__file__).resolve().parents[1]
FAST_BOUNDS = RetryBounds(retry_total=10, timeout=2.0, connection_timeout=2.0, read_timeout=2.0)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def vault_store(
    azure: Azure, bounds: RetryBounds | None = None, clock: Callable[[], float] = time.monotonic
) -> settings.SecretStore:
    environment = Environment(azure.vault.url, CLIENT_ID, refresh_seconds=60)
    source = KeyVaultSource(azure.vault.url, CLIENT_ID, bounds or RetryBounds())
    return settings.SecretStore(source, environment, clock=clock)


def many_secrets(vault: FakeKeyVault, count: int) -> type[Secrets]:
    """A Secrets type declaring `count` secrets, each stored in `vault`."""
    names = [f"many-{i:02d}" for i in range(count)]
    for name in names:
        vault.set_secret(name, f"value-of-{name}")
    fields = [
        (n.replace("-", "_"), settings.Secret, dataclasses.field(metadata=key_vault(n)))
        for n in names
    ]
    return dataclasses.make_dataclass("ManySecrets", fields, frozen=True)


class EveryFetchAlone(KeyVaultSource):
    """The SDK on its own: every concurrent first fetch goes at once (no first fetch alone)."""

    def fetch(self, name: str) -> str:
        return self._fetch(name)


def load_many(vault: FakeKeyVault, secrets_type: type[Secrets], source: KeyVaultSource) -> None:
    """Load, then ask for every value (a secret that did not load raises only when used)."""
    environment = Environment(vault.url, CLIENT_ID, refresh_seconds=60)
    loaded = settings.SecretStore(source, environment, secrets_type=secrets_type).get().secrets
    for field in dataclasses.fields(loaded):
        getattr(loaded, field.name).get_secret_value()


def load_error(store: settings.SecretStore) -> str:
    with pytest.raises(settings.SecretsUnavailableError) as caught:
        store.get().secrets.greeting_signing_key.get_secret_value()
    return str(caught.value)


def poll(condition: Callable[[], bool], deadline_seconds: float = 10.0) -> None:
    deadline = time.monotonic() + deadline_seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met before the deadline"
        time.sleep(0.02)


def test_value_arrives_from_key_vault_through_the_managed_identity(azure: Azure) -> None:
    settings.install(settings.store_from_environment())
    key = settings.get().secrets.greeting_signing_key
    assert key.get_secret_value() == VAULT_SIGNING_KEY
    assert azure.identity.requests >= 1, "the token came from the managed-identity endpoint"
    assert azure.identity.rejected == 0


def test_first_use_fetches_once_and_warm_calls_make_no_request(azure: Azure) -> None:
    store = vault_store(azure)
    store.get()
    after_first_use = azure.vault.requests
    for _ in range(100):
        store.get()
    assert azure.vault.requests == after_first_use


def test_n_secrets_cost_one_challenge_then_one_request_each(azure: Azure, test_ca: TestCA) -> None:
    count = 8
    azure.vault.latency = 0.05  # every first fetch is in flight before any answer comes back
    load_many(
        azure.vault,
        many_secrets(azure.vault, count),
        KeyVaultSource(azure.vault.url, CLIENT_ID, RetryBounds()),
    )
    assert azure.vault.requests == count + 1
    assert azure.identity.requests == 1
    # Without the first fetch going alone, concurrent first fetches draw challenges of their own.
    other_vault = FakeKeyVault(test_ca, azure.identity)
    other_vault.latency = 0.05
    other_vault.start()
    try:
        load_many(
            other_vault,
            many_secrets(other_vault, count),
            EveryFetchAlone(other_vault.url, CLIENT_ID, RetryBounds()),
        )
        assert other_vault.requests > count + 1
    finally:
        other_vault.stop()


def test_other_fetches_connect_while_the_challenge_is_in_flight(azure: Azure) -> None:
    count = 8
    # Long enough for seven TLS handshakes one after another on a loaded machine.
    azure.vault.latency = 0.3
    load_many(
        azure.vault,
        many_secrets(azure.vault, count),
        KeyVaultSource(azure.vault.url, CLIENT_ID, RetryBounds()),
    )
    assert azure.vault.requests == count + 1
    [challenge_answered] = azure.vault.challenged_at
    # One connection a fetch, all open before the challenge's answer: none was opened after the
    # token, none was discarded and reopened (TLS 1.3 session tickets make an idle socket look
    # closed to urllib3 until they are read).
    assert len(azure.vault.connected_at) == count
    assert max(azure.vault.connected_at) < challenge_answered


def test_proxy_variables_still_count_though_the_session_reads_them_once(
    azure: Azure, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_retries = RetryBounds(retry_total=0)
    # The identity endpoint by name, so that NO_PROXY can keep it alone away from the proxy.
    identity_by_name = azure.identity.endpoint.replace("127.0.0.1", "localhost")
    monkeypatch.setenv("IDENTITY_ENDPOINT", identity_by_name)
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    key = vault_store(azure, no_retries).get().secrets.greeting_signing_key
    assert key.get_secret_value() == VAULT_SIGNING_KEY
    monkeypatch.setenv("NO_PROXY", "localhost")
    assert "unreachable" in load_error(vault_store(azure, no_retries))


def test_many_secrets_fail_at_once_when_the_first_fetch_gets_no_token(
    azure: Azure, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IDENTITY_HEADER", "wrong")
    secrets_type = many_secrets(azure.vault, 8)
    source = KeyVaultSource(azure.vault.url, CLIENT_ID, RetryBounds(timeout=20.0))
    started = time.monotonic()
    with pytest.raises(settings.SecretsUnavailableError, match="no managed-identity token"):
        load_many(azure.vault, secrets_type, source)
    # The others stop waiting when the first fetch ends: far inside the 20 s they would wait.
    assert time.monotonic() - started < 10.0


def test_wrong_identity_header_fails_clearly_without_a_value(
    azure: Azure, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IDENTITY_HEADER", "not-the-header-app-service-gave")
    message = load_error(vault_store(azure))
    assert azure.identity.rejected >= 1
    assert "'greeting-signing-key'" in message and azure.vault.url in message
    assert "managed-identity token" in message and "IDENTITY_HEADER" in message
    assert VAULT_SIGNING_KEY not in message


def test_missing_secret_error_names_the_secret_and_the_vault(azure: Azure) -> None:
    azure.vault._secrets.clear()
    message = load_error(vault_store(azure))
    assert message.startswith("required secret 'greeting-signing-key' from Key Vault ")
    assert azure.vault.url in message and "not found (404)" in message


def test_forbidden_secret_fails_first_use_naming_the_role_to_grant(azure: Azure) -> None:
    azure.vault.forbidden.add("greeting-signing-key")
    message = load_error(vault_store(azure))
    assert "'greeting-signing-key'" in message and azure.vault.url in message
    assert "forbidden (403)" in message and "Key Vault Secrets User" in message


def test_throttled_secret_is_retried_after_retry_after_then_arrives(azure: Azure) -> None:
    azure.vault.throttle["greeting-signing-key"] = 2
    started = time.monotonic()
    key = vault_store(azure).get().secrets.greeting_signing_key
    assert key.get_secret_value() == VAULT_SIGNING_KEY
    assert time.monotonic() - started >= 2 * azure.vault.retry_after, "Retry-After was honoured"
    assert azure.vault.throttle["greeting-signing-key"] == 0


def test_persistent_throttling_fails_within_the_retry_bound(azure: Azure) -> None:
    azure.vault.throttle["greeting-signing-key"] = 10_000
    started = time.monotonic()
    message = load_error(vault_store(azure, FAST_BOUNDS))
    elapsed = time.monotonic() - started
    assert "gave up at the retry bound" in message and "'greeting-signing-key'" in message
    # The SDK stops after `timeout` of tries; one Retry-After wait may run past it.
    assert elapsed < FAST_BOUNDS.timeout + azure.vault.retry_after + 1.0, f"{elapsed:.1f} s"


def test_no_secret_value_in_any_log_or_error(
    azure: Azure, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("azure", "msal", "urllib3", "settings"):
        caplog.set_level(logging.DEBUG, logger=name)
    clock = FakeClock()
    store = vault_store(azure, clock=clock)
    shown = [repr(store.get()), str(store.get().secrets.greeting_signing_key)]
    azure.vault.forbidden.add("greeting-signing-key")
    clock.now += 61
    store.get()
    poll(lambda: "refresh failed for secret 'greeting-signing-key'" in caplog.text)
    azure.vault.forbidden.clear()
    azure.vault._secrets.clear()
    shown.append(load_error(vault_store(azure)))
    monkeypatch.setenv("IDENTITY_HEADER", "wrong")
    shown.append(load_error(vault_store(azure)))
    captured = {record.name.split(".")[0] for record in caplog.records}
    assert {"azure", "settings"} <= captured, captured
    for text in [caplog.text, *shown]:
        assert VAULT_SIGNING_KEY not in text
        assert azure.identity.identity_header not in text


def test_code_shipped_before_its_secret_fails_only_where_used_until_the_secret_arrives(
    azure: Azure, caplog: pytest.LogCaptureFixture
) -> None:
    # As in Azure when a release declares `late-secret` before anyone put it in the vault.
    field = "late_secret"
    clock = FakeClock()
    environment = Environment(azure.vault.url, CLIENT_ID, refresh_seconds=600)
    source = KeyVaultSource(azure.vault.url, CLIENT_ID, RetryBounds())
    late_type = with_new_secret(field, "late-secret")
    store = settings.SecretStore(source, environment, clock=clock, secrets_type=late_type)

    def late() -> settings.Secret:
        secret: settings.Secret = getattr(store.get().secrets, field)
        return secret

    assert store.get().secrets.greeting_signing_key.get_secret_value() == VAULT_SIGNING_KEY
    with pytest.raises(settings.SecretsUnavailableError) as caught:
        late().get_secret_value()
    assert str(caught.value).startswith("required secret 'late-secret' from Key Vault ")
    assert "not found (404)" in str(caught.value)
    logged = "secret 'late-secret' is unavailable; the functions that use it answer 503"
    assert logged in caplog.text
    azure.vault.set_secret("late-secret", "arrived-later")  # `make secret-set`, later
    clock.now += 30  # MISSING_RETRY_SECONDS, not the 600 s TTL
    poll(lambda: late().available)
    assert late().get_secret_value() == "arrived-later"
    assert "arrived-later" not in caplog.text


def test_os_environ_never_holds_a_secret(azure: Azure) -> None:
    settings.install(settings.store_from_environment())
    assert settings.get().secrets.greeting_signing_key.get_secret_value() == VAULT_SIGNING_KEY
    assert not [name for name, value in os.environ.items() if VAULT_SIGNING_KEY in value]


def test_refresh_after_the_ttl_serves_the_new_value_without_blocking(azure: Azure) -> None:
    clock = FakeClock()
    store = vault_store(azure, clock=clock)
    assert store.get().secrets.greeting_signing_key.get_secret_value() == VAULT_SIGNING_KEY
    azure.vault.set_secret("greeting-signing-key", "rotated-signing-key")
    clock.now += 59
    assert store.get().secrets.greeting_signing_key.get_secret_value() == VAULT_SIGNING_KEY
    clock.now += 2
    # The caller that finds the TTL passed is answered at once, with the value it has.
    assert store.get().secrets.greeting_signing_key.get_secret_value() == VAULT_SIGNING_KEY
    poll(lambda: store.get().secrets.greeting_signing_key.get_secret_value() != VAULT_SIGNING_KEY)
    assert store.get().secrets.greeting_signing_key.get_secret_value() == "rotated-signing-key"


def test_failing_refresh_keeps_the_last_value_and_logs_the_name(
    azure: Azure, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    store = vault_store(azure, clock=clock)
    store.get()
    azure.vault.forbidden.add("greeting-signing-key")
    requests_before = azure.vault.requests
    clock.now += 61
    store.get()
    poll(lambda: "refresh failed for secret 'greeting-signing-key'" in caplog.text)
    assert azure.vault.requests > requests_before, "the refresh did ask the vault"
    assert store.get().secrets.greeting_signing_key.get_secret_value() == VAULT_SIGNING_KEY
    assert "forbidden (403)" in caplog.text


def test_importing_function_app_makes_no_network_call(azure: Azure) -> None:
    # Any connect() during the import fails the child; the fakes' counters must stay at 0.
    code = (
        "import socket\n"
        "def refuse(*args, **kwargs): raise SystemExit('network call during import')\n"
        "socket.socket.connect = refuse\n"
        "socket.create_connection = refuse\n"
        "import function_app\n"
        "assert function_app.app.get_functions()\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=PROJECT, check=True, timeout=60)  # noqa: S603
    assert azure.vault.requests == 0 and azure.identity.requests == 0


def test_local_development_source_warns_loudly_that_it_is_not_key_vault(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    settings.get()
    assert "NOT from Key Vault" in caplog.text


def test_secret_hides_its_value_and_refuses_pickling() -> None:
    secret = settings.Secret("hunter2")
    assert "hunter2" not in f"{secret} {secret!r} {secret:>20}"
    assert secret == settings.Secret("hunter2") and secret != settings.Secret("other")
    with pytest.raises(TypeError):
        pickle.dumps(secret)


@pytest.mark.parametrize(
    ("variables", "complaint"),
    [
        ({"KEY_VAULT_URL": "http://kv.example/"}, "KEY_VAULT_URL must be an https:// URL"),
        ({"SECRETS_REFRESH_SECONDS": "soon"}, "SECRETS_REFRESH_SECONDS must be"),
        ({"SECRETS_REFRESH_SECONDS": "0"}, "SECRETS_REFRESH_SECONDS must be"),
    ],
)
def test_unusable_environment_fails_with_one_clear_sentence(
    variables: dict[str, str], complaint: str
) -> None:
    with pytest.raises(SettingsError, match=complaint):
        Environment.from_environ(variables)
