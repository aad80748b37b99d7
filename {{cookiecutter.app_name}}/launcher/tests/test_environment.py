"""What reaches the worker: the shipped policy against a host-like environment full of canaries."""

import secrets

import pytest
from conftest import (
    PYTHON,
    SANITIZE,
    SOURCE_DIR,
    Account,
    security_events,
    Launcher,
    default_policy,
    minimal_policy,
)

# Names a Functions host (or a careless app setting) may hold; none may reach the worker.
SENSITIVE = [
    "AzureWebJobsStorage",
    "AzureWebJobsStorage__accountName",
    "azurewebjobsstorage",
    "AzureWebJobsDashboard",
    "AzureWebJobsSecretStorageSas",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "CONTAINER_ENCRYPTION_KEY",
    "CONTAINER_START_CONTEXT_SAS_URI",
    "WEBSITE_AUTH_ENCRYPTION_KEY",
    "WEBSITE_AUTH_SIGNING_KEY",
    "MACHINEKEY_DecryptionKey",
    "MSI_SECRET",
    "MSI_ENDPOINT",
    "DOCKER_REGISTRY_SERVER_PASSWORD",
    "DOCKER_REGISTRY_SERVER_USERNAME",
    "APPSETTING_AzureWebJobsStorage",
    "APPSETTING_KEY_VAULT_URL",
    "CUSTOMCONNSTR_Orders",
    "SQLCONNSTR_Main",
    "SQLAZURECONNSTR_Main",
    "MYSQLCONNSTR_Main",
    "POSTGRESQLCONNSTR_Main",
    "SERVICEBUSCONNSTR_Bus",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPINSIGHTS_INSTRUMENTATIONKEY",
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD",
    "AZURE_USERNAME",
    "AZURE_PASSWORD",
    "AZURE_FEDERATED_TOKEN_FILE",
    "STRIPE_API_KEY",
    "DATABASE_PASSWORD",
    "FUNCTIONS_WORKER_RUNTIME_PASSWORD",  # once an allowed prefix: the deny must still win
    "FUNCTIONS_WORKER_RUNTIMEPASS",  # what the old FUNCTIONS_WORKER_RUNTIME* passed
    "FUNCTIONS_WORKER_RUNTIME_SECRET_SAUCE",
    "WEBSITE_RUN_FROM_PACKAGE",
    "SCM_RUN_FROM_PACKAGE",
    "APPINSIGHTS_QUICKPULSEAUTHAPIKEY",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "SSH_PASSWD",
    "IDENTITY_SERVER_THUMBPRINT",
    "ServiceBusConnection",  # a binding's connection string: dropped because nothing allows it
]
# Not secret but dangerous in a worker: they change what the interpreter runs. The sanitized
# build is dynamic, so its own ld.so would act on LD_PRELOAD; the real, static one has no ld.so.
DANGEROUS = ["PYTHONSTARTUP", "PYTHONINSPECT", "PYTHONHOME", "BASH_ENV"] + (
    [] if SANITIZE else ["LD_PRELOAD"]
)
# What a real host passes that the worker needs (values are not secret). The identity variables
# are the broker's business: test_identity_broker.py.
NEEDED = {
    "FUNCTIONS_WORKER_RUNTIME": "python",
    "FUNCTIONS_WORKER_RUNTIME_VERSION": "3.11",
    "AzureWebJobsScriptRoot": "/home/site/wwwroot",
    "LANG": "C.UTF-8",
    "WEBSITE_SITE_NAME": "app",
    "WEBSITE_INSTANCE_ID": "0123abcd",
    "CONTAINER_NAME": "app-container",
    "AZURE_CLIENT_ID": "00000000-0000-0000-0000-000000000001",
    "KEY_VAULT_URL": "https://kv-app.vault.azure.net/",
    "SECRETS_REFRESH_SECONDS": "3600",
    "REQUESTS_CA_BUNDLE": "/etc/ssl/company-ca.crt",
    "SSL_CERT_FILE": "/etc/ssl/company-ca.crt",
}
# The shipped policy's `set` lines (HOME and TMPDIR are the image's paths: Landlock is off here).
FIXED = dict(
    line.split(None, 1)[1].split("=", 1)
    for line in (SOURCE_DIR / "policy.conf").read_text().splitlines()
    if line.startswith("set ")
)
SHOW_ENVIRON = "import sys; sys.stdout.buffer.write(open('/proc/self/environ', 'rb').read())"


def parse_environ(raw: bytes) -> dict[str, str]:
    entries = [entry.decode() for entry in raw.split(b"\0") if entry]
    return dict(entry.split("=", 1) for entry in entries)


def host_environment() -> tuple[dict[str, str], set[str]]:
    """A host's environment: canary values in every sensitive name, plus what the worker needs."""
    canaries = {name: f"canary-{secrets.token_hex(8)}" for name in SENSITIVE + DANGEROUS}
    env = {**canaries, **NEEDED, "PATH": "/host/bin:/usr/bin", "HOME": "/root"}
    return env, set(canaries.values())


def test_worker_environment_is_exactly_the_allowed_set(launcher: Launcher, worker: Account) -> None:
    assert len(SENSITIVE) >= 25
    launcher.write_policy(default_policy(worker))
    env, canary_values = host_environment()
    result = launcher.run(["-c", SHOW_ENVIRON], env=env)
    assert result.returncode == 0, result.stderr.decode()
    seen = parse_environ(result.stdout)
    assert seen == {**NEEDED, **FIXED}
    leaked = [name for name in SENSITIVE + DANGEROUS if name in seen]
    assert leaked == []
    for value in canary_values:  # not in the environment, not in any message
        assert value.encode() not in result.stdout + result.stderr


def test_deny_wins_over_a_careless_allow(launcher: Launcher, worker: Account) -> None:
    careless = "allow AzureWebJobsStorage_*\nallow APPSETTING_*\nallow SQLCONNSTR_*\n"
    launcher.write_policy(default_policy(worker, careless))
    env, _ = host_environment()
    result = launcher.run(["-c", SHOW_ENVIRON], env=env)
    assert result.returncode == 0, result.stderr.decode()
    seen = parse_environ(result.stdout)
    assert [name for name in SENSITIVE if name in seen] == []
    assert "AzureWebJobsScriptRoot" in seen


def test_deny_ignores_case_but_allow_does_not(launcher: Launcher, worker: Account) -> None:
    launcher.write_policy(minimal_policy(worker, "allow SHOUT", "allow MY_*", "deny *TOKEN*"))
    env = {
        "SHOUT": "1",
        "shout": "1",
        "MY_NAME": "1",
        "MY_token": "x",
        "MY_Token": "x",
        "MY_TOKEN": "x",
    }
    result = launcher.run(["-c", SHOW_ENVIRON], env=env)
    assert result.returncode == 0, result.stderr.decode()
    assert parse_environ(result.stdout) == {"SHOUT": "1", "MY_NAME": "1"}


def test_set_replaces_the_host_value_and_first_duplicate_wins(
    launcher: Launcher, worker: Account
) -> None:
    launcher.write_policy(
        minimal_policy(worker, "allow KEEP", "allow HOME", "set HOME=/tmp", "set EMPTY=")
    )
    # A raw environment with a duplicate name and an entry without '=' (execve allows both,
    # os.execve does not), so a small program calls execve itself.
    code = f"""
import ctypes
def array(items):
    return (ctypes.c_char_p * (len(items) + 1))(*items, None)
argv = array([b"python", b"-c", {SHOW_ENVIRON.encode()!r}])
envp = array([b"KEEP=first", b"KEEP=second", b"NOEQUALS", b"HOME=/root"])
ctypes.CDLL(None).execve({bytes(launcher.binary)!r}, argv, envp)
"""
    result = launcher.run(["-c", code], env={}, executable=PYTHON)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.split(b"\0")[:-1] == [b"KEEP=first", b"HOME=/tmp", b"EMPTY="]


def test_audit_names_dropped_variables_never_values(launcher: Launcher, worker: Account) -> None:
    launcher.write_policy(minimal_policy(worker, "allow LANG", "audit"))
    env = {"LANG": "C.UTF-8", "MSI_SECRET": "canary-audit-value", "ODD\x01NAME": "canary-odd"}
    result = launcher.run(["-c", "pass"], env=env)
    assert result.returncode == 0
    lines = result.stderr.decode().splitlines()
    assert sorted(lines) == [
        "launcher: audit: dropped MSI_SECRET",
        "launcher: audit: dropped ODD?NAME",
        "launcher: audit: sandbox: seccomp filter (x86_64, refusals reported), landlock off, session keyring new",
    ]
    assert b"canary" not in result.stderr


PLACEHOLDER_REFUSAL = (
    "WEBSITE_PLACEHOLDER_MODE=1: the host's environment reload would reach the worker past the policy; "
    "not starting it"
)
EXIT_PLACEHOLDER = 76


@pytest.mark.parametrize("mode", ["1", "0"])
def test_placeholder_mode_starts_no_worker(launcher: Launcher, worker: Account, mode: str) -> None:
    """In placeholder mode the host's FunctionEnvironmentReloadRequest would hand the worker its
    whole environment (launcher/README.md, "What it does not protect against"): no worker at all."""
    launcher.write_policy(default_policy(worker))
    env, canary_values = host_environment()
    result = launcher.run(["-c", "print('worker ran')"], env={**env, "WEBSITE_PLACEHOLDER_MODE": mode})
    if mode == "0":
        assert result.returncode == 0, result.stderr.decode()
        assert result.stdout == b"worker ran\n"
        return
    assert result.returncode == EXIT_PLACEHOLDER
    assert result.stdout == b""
    lines = result.stderr.decode().splitlines()
    assert lines[-1] == f"launcher: {PLACEHOLDER_REFUSAL}"
    assert [(e["kind"], e["detail"]) for e in security_events(result.stderr)] == [("launcher", PLACEHOLDER_REFUSAL)]
    assert len(lines) == 2
    for value in canary_values:
        assert value.encode() not in result.stderr
