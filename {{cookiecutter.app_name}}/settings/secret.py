"""A secret value that never shows itself in a repr, a log line, an f-string or a pickle."""

import hmac
from typing import Final, NoReturn, final

MASK: Final = "**********"


class SecretsUnavailableError(RuntimeError):
    """A required secret could not be loaded; the message names it and the vault."""


@final
class Secret:
    """Holds a value from Key Vault; only `get_secret_value()` gives it out, on purpose.

    A secret that could not be loaded is `Secret.unavailable(reason)`: only the functions that
    ask for its value fail (`SecretsUnavailableError`, naming it), the others keep answering.
    """

    __slots__ = ("_unavailable", "_value")

    def __init__(self, value: str) -> None:
        self._value = value
        self._unavailable: str | None = None

    @classmethod
    def unavailable(cls, reason: str) -> "Secret":
        secret = cls("")
        secret._unavailable = reason
        return secret

    @property
    def available(self) -> bool:
        return self._unavailable is None

    def get_secret_value(self) -> str:
        if self._unavailable is not None:
            raise SecretsUnavailableError(self._unavailable)
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{MASK}')"

    def __str__(self) -> str:
        return MASK

    def __format__(self, format_spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        # Constant-time, so that comparing a caller's input with a secret leaks no timing.
        if not isinstance(other, Secret):
            return NotImplemented
        if not (self.available and other.available):
            return self is other
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(Secret)

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret cannot be pickled: it would leave memory")
