"""A worker killed mid-invocation is started again by the host, through the launcher.

The real host restarts a worker that exits (azure-functions-host,
src/WebJobs.Script/Workers/Rpc/FunctionRegistration/RpcFunctionInvocationDispatcher.cs,
WorkerError, RestartWorkerChannel): the restarted worker must be as confined as the first, or
crashing the worker would be a way out of the sandbox. The stand-in host restarts it the same
way (tests/image/standin/README.md); this kills the worker of the hardened image while it runs
an invocation and checks the next one.
"""

import os
import signal
import subprocess
import time

import pytest
from image.engine import podman, running
from image.probe_app import host_pid, http, parse, probe_image, request_command, status_when

HELD = "Function name: probe"  # the runtime's log line as an invocation starts


def test_a_worker_killed_mid_invocation_is_restarted_through_the_launcher(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    image = probe_image("3.13", tmp_path_factory)
    with running(image, env={"AzureWebJobsStorage": "canary-restart"}) as container:
        first = status_when(container, lambda status: status["state"] == "Running")
        held = subprocess.Popen(request_command(container, "/api/probe/hold"), text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
        deadline = time.monotonic() + 60
        while HELD not in podman("logs", container).stdout and time.monotonic() < deadline:
            time.sleep(0.3)  # polling the host's log, bounded by the deadline
        assert HELD in podman("logs", container).stdout, "the invocation never started"
        os.kill(host_pid(container, first["worker"]["reported"]["pid"]), signal.SIGKILL)
        stdout, stderr = held.communicate(timeout=120)
        code, answer = parse(subprocess.CompletedProcess([], held.returncode, stdout, stderr))
        second = status_when(container, lambda s: s["state"] == "Running" and s["restarts"] == 1)
        code_after, facts = http(container, "/api/probe")
    assert code == 503, answer  # the invocation the worker died in
    worker, reported = second["worker"], second["worker"]["reported"]
    assert worker["pid"] != first["worker"]["pid"]
    assert reported["module"] == "proxy_worker" and reported["argv"][0] == "python", reported
    assert worker["uid"] != 0 and worker["no_new_privs"] == 1 and worker["seccomp"] == 2, worker
    assert worker["seccomp_filters"] > second["seccomp_filters"], second
    assert code_after == 200 and isinstance(facts, dict) and facts["uid"] == worker["uid"]
    assert facts["canaries"] == [], facts  # the restarted worker's environment is filtered too
