"""Loads every declared secret concurrently on first use, then serves them from memory.

After `refresh_seconds` the next caller starts one background refresh and is answered at once
with the values there are; a secret whose refresh fails keeps its last good value and the
failure is logged by the secret's name. A secret that never loaded (not yet in the vault, say)
is `Secret.unavailable`: the functions that use it answer 503, the others keep answering, and
it is tried again every `MISSING_RETRY_SECONDS` until it arrives. Values live in this object
only: never in `os.environ`, a file or a log line.
"""

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait

from settings.declared import Environment, Secrets, Settings, declared_vault_names
from settings.secret import Secret, SecretsUnavailableError
from settings.sources import MAX_CONCURRENT_FETCHES, SecretFetchError, SecretSource

__all__ = ["MISSING_RETRY_SECONDS", "SecretStore", "SecretsUnavailableError"]

logger = logging.getLogger(__name__)

# A secret shipped after its code is picked up this soon, without a restart.
MISSING_RETRY_SECONDS = 30.0

Fetched = tuple[dict[str, Secret], dict[str, SecretFetchError]]


class SecretStore:
    def __init__(
        self,
        source: SecretSource,
        environment: Environment,
        load_deadline: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        secrets_type: type[Secrets] = Secrets,
    ) -> None:
        self.source = source
        self.environment = environment
        self.load_deadline = load_deadline
        self._clock = clock
        self._declared = declared_vault_names(secrets_type)
        self._secrets_type = secrets_type
        self._lock = threading.Lock()
        self._settings: Settings | None = None
        self._loaded_at = 0.0
        self._refreshing = False

    def get(self) -> Settings:
        """The settings; the first call loads them (and raises if a required one is missing)."""
        with self._lock:
            if self._settings is None:
                # Under the lock: concurrent first callers wait for one load, not start twenty.
                values, failed = self._fetch_all()
                self._settings = self._build(values, failed, last_good={})
                self._loaded_at = self._clock()
                for name, error in sorted(failed.items()):
                    logger.error(
                        "secret %r is unavailable; the functions that use it answer 503 until it "
                        "arrives (tried again every %g s): %s", name, self._ttl, error,
                    )  # fmt: skip
            elif not self._refreshing and self._clock() - self._loaded_at >= self._ttl:
                self._refreshing = True
                threading.Thread(target=self._refresh, name="secrets-refresh", daemon=True).start()
            return self._settings

    @property
    def _ttl(self) -> float:
        secrets = self._settings.secrets if self._settings else None
        if any(not getattr(secrets, field).available for field in self._declared):
            return min(self.environment.refresh_seconds, MISSING_RETRY_SECONDS)
        return self.environment.refresh_seconds

    def _fetch_all(self) -> Fetched:
        """Every declared secret at once, bounded by `load_deadline` in all."""
        names = sorted(set(self._declared.values()))
        pool = ThreadPoolExecutor(min(len(names), MAX_CONCURRENT_FETCHES), "secrets-fetch")
        futures = {name: pool.submit(self.source.fetch, name) for name in names}
        wait(futures.values(), timeout=self.load_deadline)
        pool.shutdown(wait=False, cancel_futures=True)
        values: dict[str, Secret] = {}
        failed: dict[str, SecretFetchError] = {}
        for name, future in futures.items():
            if not future.done():
                reason = f"no answer within {self.load_deadline:g} s"
                failed[name] = SecretFetchError(name, self.source.description, reason)
            elif isinstance(error := future.exception(), SecretFetchError):
                failed[name] = error
            elif error is not None:
                reason = f"failed ({type(error).__name__})"
                failed[name] = SecretFetchError(name, self.source.description, reason)
            else:
                values[name] = Secret(future.result())
        return values, failed

    def _build(
        self,
        values: dict[str, Secret],
        failed: dict[str, SecretFetchError],
        last_good: dict[str, Secret],
    ) -> Settings:
        fields: dict[str, Secret] = {}
        for field, name in self._declared.items():
            secret = values.get(name) or last_good.get(name)
            if secret is None:
                more = len(failed) - 1
                also = f" (and {more} more secret(s) failed)" if more > 0 else ""
                secret = Secret.unavailable(f"required {failed[name]}{also}")
            fields[field] = secret
        return Settings(self.environment, self._secrets_type(**fields))

    def _refresh(self) -> None:
        try:
            values, failed = self._fetch_all()
            with self._lock:
                current = self._settings.secrets if self._settings else None
                last_good = {
                    name: secret
                    for field, name in self._declared.items()
                    if (secret := getattr(current, field)).available
                }
            for name, error in sorted(failed.items()):
                if name in last_good:
                    logger.warning(
                        "refresh failed for secret %r, keeping its last value: %s", name, error
                    )
                else:
                    logger.error("secret %r is still unavailable: %s", name, error)
            with self._lock:
                self._settings = self._build(values, failed, last_good)
        except Exception:  # a refresh must never take the app down; the old values stay
            logger.exception("secrets refresh failed; keeping the last values")
        finally:
            with self._lock:
                # A failed refresh also waits a whole TTL: a struggling vault is not hammered.
                self._loaded_at = self._clock()
                self._refreshing = False
