"""Settings benchmark (`make bench-settings`), against the local TEST FIXTURE Key Vault.

Prints two figures and exits non-zero when one misses its target:
1. time to load 20 secrets with 100 ms injected latency on every Key Vault answer: the
   concurrent first use (median of 5 cold loads, each a new client and vault; target < 3 x
   latency) and, measured in the same run, a sequential baseline (about 20 x latency);
2. Key Vault requests made by 1,000 warm invocations of `hello` (target 0 within the TTL).
Each measurement uses its own vault on a new port, so no client reuses another's challenge;
the SDK modules are imported before either load is timed.
"""

import dataclasses
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import cast

import azure.functions as func

import settings
from blueprints.greeting import hello
from settings.declared import Environment, Secrets, key_vault
from settings.sources import KeyVaultSource, RetryBounds
from tests.azure_fakes.key_vault import FakeKeyVault
from tests.azure_fakes.managed_identity import ManagedIdentityEndpoint
from tests.azure_fakes.tls import TestCA, make_test_ca

LATENCY_SECONDS = 0.100
SECRET_COUNT = 20
WARM_INVOCATIONS = 1000
COLD_LOADS = 5
CLIENT_ID = "bench-client-id"

VAULT_NAMES = ["greeting-signing-key"] + [f"bench-{i:02d}" for i in range(1, SECRET_COUNT)]
# The app's own secret plus 19 more: 20 declared secrets, as an app with many would have.
TwentySecrets = cast(
    type[Secrets],
    dataclasses.make_dataclass(
        "TwentySecrets",
        [
            (f"bench_{i:02d}", settings.Secret, dataclasses.field(metadata=key_vault(name)))
            for i, name in enumerate(VAULT_NAMES[1:], 1)
        ],
        bases=(Secrets,),
        frozen=True,
    ),
)


def serve_fakes(connection: Connection, ca: TestCA, vault_count: int, latency: float) -> None:
    """In a child process, as Azure is another machine: the fakes' TLS work and threads must
    not compete with the measured client for this process's interpreter lock."""
    identity = ManagedIdentityEndpoint(ca, CLIENT_ID)
    identity.start()
    vaults = [FakeKeyVault(ca, identity) for _ in range(vault_count)]
    for vault in vaults:
        for name in VAULT_NAMES:
            vault.set_secret(name, f"bench-value-{name}")
        vault.latency = latency
        vault.start()
    connection.send((identity.endpoint, identity.identity_header, [v.url for v in vaults]))
    while connection.recv() == "count":
        connection.send([vault.requests for vault in vaults])
    for server in [*vaults, identity]:
        server.stop()


def store_for(vault_url: str, secrets_type: type[Secrets]) -> settings.SecretStore:
    environment = Environment(vault_url, CLIENT_ID, refresh_seconds=600)
    source = KeyVaultSource(vault_url, CLIENT_ID, RetryBounds())
    return settings.SecretStore(source, environment, secrets_type=secrets_type)


def concurrent_load_seconds(vault_url: str) -> float:
    store = store_for(vault_url, TwentySecrets)
    started = time.perf_counter()
    store.get()
    return time.perf_counter() - started


def sequential_load_seconds(vault_url: str) -> float:
    source = KeyVaultSource(vault_url, CLIENT_ID, RetryBounds())
    started = time.perf_counter()
    for name in VAULT_NAMES:
        source.fetch(name)
    return time.perf_counter() - started


def warm_invocation_requests(vault_url: str, requests_made: Callable[[], int]) -> int:
    settings.install(store_for(vault_url, Secrets))
    request = func.HttpRequest(method="GET", url="/api/hello", params={"name": "bench"}, body=b"")
    user_function = hello.build().get_user_function()
    assert user_function(request).status_code == 200  # the cold call loads the secrets
    before = requests_made()
    for _ in range(WARM_INVOCATIONS):
        assert user_function(request).status_code == 200
    return requests_made() - before


def main() -> int:
    # The SDK is imported on first use; import it now so that both loads pay the same.
    import azure.identity
    import azure.keyvault.secrets  # noqa: F401

    ca = make_test_ca(Path(tempfile.mkdtemp(prefix="bench-ca-")))
    connection, child_end = multiprocessing.Pipe()
    fakes = multiprocessing.get_context("spawn").Process(
        target=serve_fakes, args=(child_end, ca, COLD_LOADS + 2, LATENCY_SECONDS), daemon=True
    )
    fakes.start()
    endpoint, identity_header, vault_urls = connection.recv()
    # What App Service gives the worker; this process plays the platform here.
    os.environ.update(
        IDENTITY_ENDPOINT=endpoint,
        IDENTITY_HEADER=identity_header,
        REQUESTS_CA_BUNDLE=str(ca.ca_file),
    )

    def requests_to_last_vault() -> int:
        connection.send("count")
        return int(connection.recv()[-1])

    cold_loads = sorted(concurrent_load_seconds(url) for url in vault_urls[:COLD_LOADS])
    concurrent = statistics.median(cold_loads)
    sequential = sequential_load_seconds(vault_urls[-2])
    warm_requests = warm_invocation_requests(vault_urls[-1], requests_to_last_vault)
    connection.send("stop")
    fakes.join(timeout=10)

    limit = 3 * LATENCY_SECONDS
    print("settings benchmark (local TEST FIXTURE Key Vault + managed identity, real SDK clients)")
    print(
        f"load {SECRET_COUNT} secrets, {LATENCY_SECONDS * 1000:.0f} ms injected latency: "
        f"concurrent {concurrent * 1000:.0f} ms (target < {limit * 1000:.0f} ms; median of "
        f"{COLD_LOADS}, {cold_loads[0] * 1000:.0f} to {cold_loads[-1] * 1000:.0f} ms), "
        f"sequential baseline {sequential * 1000:.0f} ms"
    )
    print(
        f"Key Vault requests by {WARM_INVOCATIONS} warm invocations: {warm_requests} "
        "(target 0 within the TTL)"
    )
    missed = [
        text
        for text, ok in [
            ("concurrent load over 3 x latency", concurrent < limit),
            ("warm invocations reached Key Vault", warm_requests == 0),
        ]
        if not ok
    ]
    for text in missed:
        print(f"TARGET MISSED: {text}", file=sys.stderr)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
