"""Where secret values come from: Key Vault through the managed identity, or a local file.

Each source answers one secret by its Key Vault name or raises `SecretFetchError`, whose
message names the secret and the source and never carries a value.
"""

import ipaddress
import json
import logging
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)

MAX_CONCURRENT_FETCHES = 32
DEVELOPMENT_FILE = Path(__file__).resolve().parent.parent / "local.secrets.json"


class SecretFetchError(RuntimeError):
    """One secret could not be read; the message names it and the source, never a value."""

    def __init__(self, name: str, source: str, reason: str) -> None:
        super().__init__(f"secret {name!r} from {source}: {reason}")
        self.secret_name = name


class SecretSource(Protocol):
    description: str

    def fetch(self, name: str) -> str: ...


@dataclass(frozen=True)
class RetryBounds:
    """azure-core RetryPolicy and transport knobs, one set for every Key Vault call.

    Worst case for one secret: `timeout` seconds of tries (429 waits as long as Retry-After
    says; 5xx back off 0.8 s, 1.6 s, ... up to `retry_backoff_max`), at most `retry_total`
    retries; `SecretStore` adds an overall deadline in case Retry-After asks for longer.
    """

    retry_total: int = 3
    retry_backoff_factor: float = 0.8
    retry_backoff_max: float = 8.0
    timeout: float = 20.0
    connection_timeout: float = 5.0
    read_timeout: float = 10.0

    def client_kwargs(self, session: Any) -> dict[str, Any]:
        """For `SecretClient`: the retry knobs, and azure-core's requests transport on `session`."""
        from azure.core.pipeline.transport import RequestsTransport

        return {
            "retry_total": self.retry_total,
            "retry_backoff_factor": self.retry_backoff_factor,
            "retry_backoff_max": self.retry_backoff_max,
            "timeout": self.timeout,
            "transport": RequestsTransport(
                session=session,
                session_owner=True,
                # azure-core passes its own `verify` on every request, over the session's.
                connection_verify=session.verify,
                connection_timeout=self.connection_timeout,
                read_timeout=self.read_timeout,
            ),
        }


def _pooled_session(vault_url: str) -> Any:
    """A requests session for the vault, with a pool as large as the fan-out: the default keeps
    10 connections, so 20 concurrent fetches would reopen (and re-handshake) half.

    It reads the environment (proxies, NO_PROXY, REQUESTS_CA_BUNDLE) once, here: with
    `trust_env` on, requests reads it again on every request, walking every variable twice for
    the proxies and looking for ~/.netrc (src/requests/sessions.py,
    `merge_environment_settings`), a sixth of each request's CPU here and more with the
    hundred-odd variables of a Functions host; the fetches queue for that CPU under one lock.
    """
    import requests
    from urllib3.util.retry import Retry

    session = requests.Session()
    environment = session.merge_environment_settings(vault_url, {}, None, True, None)
    session.trust_env = False
    session.proxies = environment["proxies"]
    session.verify = environment["verify"]
    # Retries belong to azure-core's RetryPolicy (with its bound), never to urllib3.
    no_retries = Retry(total=False, redirect=False, raise_on_status=False)
    adapter = requests.adapters.HTTPAdapter(
        pool_maxsize=MAX_CONCURRENT_FETCHES, max_retries=no_retries
    )
    session.mount("https://", adapter)
    return session


class _EarlyConnection:
    """One of a session's pooled connections to a host, opened (TCP and TLS) before its request
    is ready and held out of the pool until `release()`.

    The pool is found as `requests` finds it when azure-core's `RequestsTransport.send` calls
    `session.request` (the session's `verify`, proxies and no cert), so the pool key matches
    (psf/requests, src/requests/adapters.py,
    `get_connection_with_tls_context`); the slot is taken and given back as urllib3's own
    `urlopen` does (urllib3/urllib3, src/urllib3/connectionpool.py, `_get_conn`, `_put_conn`).
    """

    def __init__(self, session: Any, url: str, connect_timeout: float) -> None:
        import requests

        environment = session.merge_environment_settings(url, {}, None, session.verify, None)
        self._pool = session.get_adapter(url).get_connection_with_tls_context(
            requests.Request("GET", url).prepare(),
            environment["verify"],
            proxies=environment["proxies"],
            cert=environment["cert"],
        )
        self._connection = self._pool._get_conn()
        try:
            if not self._connection.is_connected:
                self._connection.timeout = connect_timeout
                self._connection.connect()
        except BaseException:
            self._connection.close()
            self._pool._put_conn(None)  # the slot, empty, as `urlopen` gives it back on errors
            raise

    def release(self) -> None:
        """Back into the pool, where the next request to the host takes it (the pool is LIFO).
        Never fails the fetch: `_put_conn` is urllib3's own, and a release that goes wrong only
        costs the connection (the pool opens another)."""
        try:
            if not _idle_after_reading_session_tickets(self._connection.sock):
                self._connection.close()
            self._pool._put_conn(self._connection)
        except Exception as error:
            logger.debug("early connection dropped (%s)", type(error).__name__)
            self._connection.close()


def _idle_after_reading_session_tickets(sock: Any) -> bool:
    """TLS 1.3 servers send session tickets after the handshake. Left unread, they keep an idle
    socket readable, and urllib3 takes a readable idle connection for one the server closed
    (`is_connection_dropped` in src/urllib3/util/connection.py) and opens a new one. A read
    processes them; application data or EOF before any request means the connection is not
    fit to use."""
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        sock.recv(1)
    except (ssl.SSLWantReadError, BlockingIOError):
        return True  # nothing but handshake messages, if anything
    except OSError:
        return False
    finally:
        sock.settimeout(timeout)
    return False


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _OneTokenRequestAtATime:
    """Wraps a credential so that twenty concurrent first fetches ask the identity endpoint
    for one token, not twenty: the first caller fetches, the others find it in the cache.
    `on_token` runs once a token is in hand (the challenge is cached by then)."""

    def __init__(self, credential: Any, on_token: Callable[[], None]) -> None:
        self._credential = credential
        self._on_token = on_token
        self._lock = threading.Lock()

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        with self._lock:
            token = self._credential.get_token(*scopes, **kwargs)
        self._on_token()
        return token

    def get_token_info(self, *scopes: str, options: Any = None) -> Any:
        with self._lock:
            token = self._credential.get_token_info(*scopes, options=options)
        self._on_token()
        return token

    def close(self) -> None:
        self._credential.close()


class KeyVaultSource:
    """`SecretClient` for KEY_VAULT_URL with the user-assigned managed identity AZURE_CLIENT_ID.

    `ManagedIdentityCredential`, not `DefaultAzureCredential`: production must not probe a
    chain of credentials. The clients are made on first fetch, never at import.

    N secrets cost N + 1 requests, in two round trips: the first fetch goes alone and draws
    Key Vault's 401 bearer challenge, which the SDK caches per vault (azure-keyvault-secrets,
    `_shared/challenge_auth_policy.py` and `http_challenge_cache.py`); the other fetches wait
    until it holds a token, then all go at once with it. Without the wait, every concurrent
    first fetch draws a challenge of its own: 2 N requests, three round trips. While they
    wait, they open their connections, so that the second round trip starts with no handshake.
    """

    def __init__(self, vault_url: str, client_id: str | None, bounds: RetryBounds) -> None:
        self.vault_url = vault_url
        self.client_id = client_id
        self.bounds = bounds
        self.description = f"Key Vault {vault_url}"
        self._client: Any = None
        self._session: Any = None
        self._lock = threading.Lock()
        self._connecting = threading.Lock()
        self._first_fetch_started = False
        # Set once the first fetch holds a token, or has ended without one (the others then
        # try, and fail, on their own): nobody waits on a first fetch that is gone.
        self._authenticated = threading.Event()

    def _secret_client(self) -> Any:
        with self._lock:
            if self._client is None:
                from azure.identity import ManagedIdentityCredential
                from azure.keyvault.secrets import SecretClient

                self._session = _pooled_session(self.vault_url)
                credential = _OneTokenRequestAtATime(
                    ManagedIdentityCredential(client_id=self.client_id), self._authenticated.set
                )
                self._client = SecretClient(
                    self.vault_url,
                    credential,
                    # The challenge names https://vault.azure.net; only a vault on this machine
                    # (a test fixture) has another host name. Azure's vaults keep the check.
                    verify_challenge_resource=not _is_loopback(self.vault_url),
                    **self.bounds.client_kwargs(self._session),
                )
            return self._client

    def _is_first_fetch(self) -> bool:
        with self._lock:
            first, self._first_fetch_started = not self._first_fetch_started, True
            return first

    def fetch(self, name: str) -> str:
        if self._is_first_fetch():
            try:
                return self._fetch(name)
            finally:
                self._authenticated.set()
        connection = self._connect_while_the_first_fetch_waits()
        # The first fetch's whole retry bound at most; it normally takes one round trip.
        self._authenticated.wait(timeout=self.bounds.timeout)
        if connection is not None:
            connection.release()  # just before this fetch takes one from the pool
        return self._fetch(name)

    def _connect_while_the_first_fetch_waits(self) -> _EarlyConnection | None:
        """The first fetch's round trip (challenge, then token) is idle time for the others:
        each opens its connection now, so that once the token is in hand only its request is
        left; otherwise all their TLS handshakes come after the token, on the critical path.
        None when the token is already there (a refresh: the pool holds the connections)."""
        # One handshake at a time: twenty at once compete for the CPU with the first fetch's
        # own connection and request (1 to 7 ms slower, measured in pairs). At 100 ms a round
        # trip they all finish within it; a fetch still waiting its turn once the token is in
        # hand connects on its own, as before.
        with self._connecting:
            if self._authenticated.is_set():
                return None
            session = self._session_for_fetches()
            try:
                return _EarlyConnection(session, self.vault_url, self.bounds.connection_timeout)
            except Exception as error:  # the fetch then connects, and reports, on its own
                logger.debug("no early connection to %s (%s)", self.vault_url, type(error).__name__)
                return None

    def _session_for_fetches(self) -> Any:
        self._secret_client()  # made with the client, so that both use one pool
        return self._session

    def _fetch(self, name: str) -> str:
        from azure.core.exceptions import (
            AzureError,
            ClientAuthenticationError,
            HttpResponseError,
            ResourceNotFoundError,
            ServiceRequestTimeoutError,
            ServiceResponseTimeoutError,
        )

        try:
            value = self._secret_client().get_secret(name).value
        except ResourceNotFoundError:
            raise self._error(name, "not found (404): create it, or fix its name") from None
        except ClientAuthenticationError as error:
            reason = (
                f"no managed-identity token ({type(error).__name__}): check AZURE_CLIENT_ID, "
                "IDENTITY_ENDPOINT and IDENTITY_HEADER"
            )
            raise self._error(name, reason) from None
        except HttpResponseError as error:
            reason = {
                403: "forbidden (403): grant the app's identity 'Key Vault Secrets User'",
                429: "throttled (429) past the retry bound",
            }.get(error.status_code or 0, f"HTTP {error.status_code} after retries")
            raise self._error(name, reason) from None
        except (ServiceRequestTimeoutError, ServiceResponseTimeoutError):
            reason = (
                f"gave up at the retry bound ({self.bounds.timeout:g} s): "
                "the vault kept throttling (429), failing (5xx) or not answering"
            )
            raise self._error(name, reason) from None
        except AzureError as error:
            raise self._error(name, f"unreachable ({type(error).__name__})") from None
        if value is None:
            raise self._error(name, "has no value")
        return str(value)

    def _error(self, name: str, reason: str) -> SecretFetchError:
        return SecretFetchError(name, self.description, reason)


class DevelopmentFileSource:
    """Local development only: a git-ignored JSON file `{"<key-vault-name>": "<value>"}`."""

    def __init__(self, path: Path = DEVELOPMENT_FILE) -> None:
        self.path = path
        self.description = f"development file {path} (NOT Key Vault)"
        self._values: dict[str, str] | None = None
        self._lock = threading.Lock()

    def _load(self) -> dict[str, str]:
        with self._lock:
            if self._values is None:
                logger.warning(
                    "KEY_VAULT_URL is not set: secrets come from the development file %s, NOT from "
                    "Key Vault. Never run like this in Azure.",
                    self.path,
                )
                try:
                    loaded = json.loads(self.path.read_text(encoding="utf-8"))
                except FileNotFoundError:
                    loaded = {}
                except (OSError, ValueError):
                    # No details: a parse error's message can quote the file's text.
                    raise SecretFetchError("*", self.description, "unreadable JSON") from None
                self._values = {str(k): str(v) for k, v in dict(loaded).items()}
            return self._values

    def fetch(self, name: str) -> str:
        try:
            return self._load()[name]
        except KeyError:
            raise SecretFetchError(name, self.description, "missing from the file") from None
