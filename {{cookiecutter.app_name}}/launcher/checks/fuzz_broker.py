"""libFuzzer, through atheris (coverage-guided, as fuzz_policy.c is for the policy parser), on what
the identity broker parses: a request's head as the worker writes it (parse_request, then check)
and the platform's raw answer (platform_answer). `make fuzz-broker` runs it; arguments are
libFuzzer's. Any exception but a refusal is a crash, and so is a broken promise: an audience
forwarded that the policy does not list, or an answer to the worker holding the platform's header.
"""

import sys
import time
from pathlib import Path

try:
    import atheris
except ImportError:
    sys.exit(
        "fuzz-broker: needs atheris (pip install atheris: the template's requirements-dev.txt)"
    )

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # what ships: the broker's program
import identity_broker as broker  # noqa: E402

PLATFORM_HEADER = "platform-secret-0123456789"
CONFIG = broker.Config(
    {
        "IDENTITY_ENDPOINT": "http://127.0.0.1:8081/msi/token",
        "IDENTITY_HEADER": PLATFORM_HEADER,
        "AZURE_CLIENT_ID": "6f1c2b3a-0000-4000-8000-00000000a99a",
        "LAUNCHER_BROKER_HEADER": "0" * 64,  # the seed in `make fuzz-broker` holds it
        "LAUNCHER_BROKER_AUDIENCES": "https://vault.azure.net https://example.org/api",
    }
)
NOW = time.time()


def one_input(data: bytes) -> None:
    end = broker.head_end(data)
    try:
        audience = broker.check(CONFIG, *broker.parse_request(data[: max(end, 0)]))
    except broker.Refused as refusal:
        assert 400 <= refusal.status < 600
        # A refusal names what the worker wrote, never what it did not: the platform's header.
        assert PLATFORM_HEADER.encode() in data or PLATFORM_HEADER not in str(refusal)
    else:
        assert audience in CONFIG.audiences.values(), audience
    status, body, until = broker.platform_answer(CONFIG, data, NOW)
    assert PLATFORM_HEADER.encode() not in body, "the platform's header in the worker's answer"
    assert status == 200 or (400 <= status < 600 and until == NOW + broker.FAILURE_HOLD_SECONDS)


if __name__ == "__main__":
    broker.log = lambda message: None  # a refusal's log line is not what is fuzzed
    # Every function loaded, the standard library's urlsplit and parse_qsl included: the bugs
    # are in how the broker uses them (an unclosed [ made urlsplit raise), and their branches
    # are what guides the fuzzer there. fuzz_broker.dict gives it the bytes that matter.
    atheris.instrument_all()
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
