"""The environment-reload attack: FunctionEnvironmentReloadRequest against a worker the launcher
started.

What Azure's code does, shown here with the real runtime: at placeholder specialisation the host
sends its placeholder worker every variable of its own environment (azure-functions-host,
src/WebJobs.Script.Grpc/Channel/GrpcWorkerChannel.cs, GetFunctionEnvironmentReloadRequest; sent
by src/WebJobs.Script/Workers/Rpc/WebHostRpcWorkerChannelManager.cs, SpecializeAsync), and
azure-functions-runtime's handler (handle_event.py, function_environment_reload_request) clears
os.environ and sets each one. The launcher's allow-list holds for what the worker was started
with, not for what a reload writes into it later: one reload and the app's process holds the
storage key, the encryption keys and the identity header.

What the product does about it: the host sends this request only to a worker started in
placeholder mode (WEBSITE_PLACEHOLDER_MODE=1, the Consumption plan's pre-warmed workers, never a
custom container on the plans this template deploys to), and the launcher refuses to start a
worker in that mode, so no reload can reach a worker it started. The stand-in host sends one on
demand (POST /admin/standin/reload) to show what that refusal prevents.
"""

import secrets

import pytest
from image.engine import running
from image.probe_app import http, probe_image, status_when

CANARIES = ("AzureWebJobsStorage", "CONTAINER_ENCRYPTION_KEY", "WEBSITE_AUTH_ENCRYPTION_KEY",
            "IDENTITY_HEADER", "MSI_SECRET", "APPSETTING_DATABASE_PASSWORD")  # fmt: skip
# The platform's identity endpoint and the app's identity, which the launcher needs beside the
# header to start its broker (the header goes to the broker, never to the worker).
PLATFORM = {"IDENTITY_ENDPOINT": "http://169.254.255.2:8081/msi/token",
            "AZURE_CLIENT_ID": "00000000-0000-0000-0000-000000000001"}


def test_a_reload_hands_the_worker_every_variable_of_the_host(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    image = probe_image("3.13", tmp_path_factory)
    env = {name: f"canary-{secrets.token_hex(8)}" for name in CANARIES} | PLATFORM
    with running(image, env=env) as container:
        started = status_when(container, lambda status: status["state"] != "Starting")
        assert started["state"] == "Running", started
        code, before = http(container, "/api/probe")
        assert code == 200 and isinstance(before, dict), before
        assert before["canaries"] == [], "the launcher passed a canary on"
        code, reloaded = http(container, "/admin/standin/reload", "POST")
        code_after, after = http(container, "/api/probe")
    # The runtime sets the environment first, then indexes the app again; this app is indexed
    # already (a placeholder's is not), so the runtime answers a failure: too late.
    assert (code, reloaded) == (500, {"result": "ValueError"})
    assert code_after == 200 and isinstance(after, dict), after
    assert after["canaries"] == sorted(CANARIES), after["canaries"]
    # The same process and account: only the environment changed under it.
    assert (after["pid"], after["uid"]) == (before["pid"], before["uid"]) and after["uid"] != 0
