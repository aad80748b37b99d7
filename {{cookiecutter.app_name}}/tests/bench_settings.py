"""Settings benchmark (`make bench-settings`), against the local TEST FIXTURE Key Vault.

Prints two figures:
1. time and Key Vault requests to load 20 secrets with 100 ms injected latency on every Key
   Vault answer: the first use (median of 5 cold loads, each a new client and vault), against
   the limit of two round trips (the challenge, then every fetch at once: 200 ms, target
   <= 1.1 x that) and 21 requests; measured in the same run, interleaved, the SDK alone (every
   concurrent first fetch draws its own challenge) and a sequential loop;
2. Key Vault requests made by 1,000 warm invocations of `hello` (target 0 within the TTL).
Each load uses its own vault on a new port, so no client reuses another's challenge; the SDK
modules are imported before any load is timed. It exits non-zero only on what noise cannot
cause: a request count off its target, or a first use over 5 x latency (the fetches no longer
concurrent; a sequential loop takes 20 x).
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
ROUND_TRIP_LIMIT = 2 * LATENCY_SECONDS
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


class EveryFetchAlone(KeyVaultSource):
    """The SDK without the store's first-fetch-alone: the baseline every first fetch at once."""

    def fetch(self, name: str) -> str:
        return self._fetch(name)


@dataclasses.dataclass
class Load:
    seconds: float
    requests: int


def concurrent_load(
    vault_url: str, source_type: type[KeyVaultSource], requests_made: Callable[[], int]
) -> Load:
    environment = Environment(vault_url, CLIENT_ID, refresh_seconds=600)
    source = source_type(vault_url, CLIENT_ID, RetryBounds())
    store = settings.SecretStore(source, environment, secrets_type=TwentySecrets)
    started = time.perf_counter()
    store.get()
    return Load(time.perf_counter() - started, requests_made())


def describe(loads: list[Load]) -> str:
    times = sorted(load.seconds * 1000 for load in loads)
    counts = sorted({load.requests for load in loads})
    return (
        f"{statistics.median(times):.0f} ms (median of {len(loads)}, {times[0]:.0f} to "
        f"{times[-1]:.0f}), {'/'.join(map(str, counts))} Key Vault requests"
    )


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
    # The SDK is imported on first use; import it now so that every load pays the same.
    import azure.identity
    import azure.keyvault.secrets  # noqa: F401

    ca = make_test_ca(Path(tempfile.mkdtemp(prefix="bench-ca-")))
    connection, child_end = multiprocessing.Pipe()
    vault_count = 2 * COLD_LOADS + 2
    fakes = multiprocessing.get_context("spawn").Process(
        target=serve_fakes, args=(child_end, ca, vault_count, LATENCY_SECONDS), daemon=True
    )
    fakes.start()
    endpoint, identity_header, vault_urls = connection.recv()
    # What App Service gives the worker; this process plays the platform here.
    os.environ.update(
        IDENTITY_ENDPOINT=endpoint,
        IDENTITY_HEADER=identity_header,
        REQUESTS_CA_BUNDLE=str(ca.ca_file),
    )

    def requests_to(index: int) -> Callable[[], int]:
        def count() -> int:
            connection.send("count")
            return int(connection.recv()[index])

        return count

    store_loads: list[Load] = []
    sdk_loads: list[Load] = []
    for run in range(COLD_LOADS):  # interleaved, alternating which goes first
        pair = [(store_loads, KeyVaultSource), (sdk_loads, EveryFetchAlone)]
        for offset, (loads, source_type) in enumerate(pair if run % 2 == 0 else pair[::-1]):
            index = 2 * run + offset
            loads.append(concurrent_load(vault_urls[index], source_type, requests_to(index)))
    sequential = sequential_load_seconds(vault_urls[-2])
    warm_requests = warm_invocation_requests(vault_urls[-1], requests_to(vault_count - 1))
    connection.send("stop")
    fakes.join(timeout=10)

    first_use = statistics.median(load.seconds for load in store_loads)
    limit, target = ROUND_TRIP_LIMIT * 1000, 1.1 * ROUND_TRIP_LIMIT * 1000
    print("settings benchmark (local TEST FIXTURE Key Vault + managed identity, real SDK clients)")
    print(f"load {SECRET_COUNT} secrets, {LATENCY_SECONDS * 1000:.0f} ms injected latency:")
    print(
        f"  first use (store):     {describe(store_loads)}; "
        f"{first_use * 1000 / limit:.2f} x the two-round-trip limit of {limit:.0f} ms "
        f"(target <= {target:.0f} ms, {SECRET_COUNT + 1} requests)"
    )
    print(f"  every fetch at once:   {describe(sdk_loads)} (the SDK alone, same run)")
    print(f"  sequential loop:       {sequential * 1000:.0f} ms")
    print(
        f"Key Vault requests by {WARM_INVOCATIONS} warm invocations: {warm_requests} "
        "(target 0 within the TTL)"
    )
    missed = [
        text
        for text, ok in [
            (
                f"first use made other than {SECRET_COUNT + 1} Key Vault requests",
                all(load.requests == SECRET_COUNT + 1 for load in store_loads),
            ),
            ("first use over 5 x latency (not concurrent)", first_use < 5 * LATENCY_SECONDS),
            ("warm invocations reached Key Vault", warm_requests == 0),
        ]
        if not ok
    ]
    for text in missed:
        print(f"TARGET MISSED: {text}", file=sys.stderr)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
