"""Every name the real workers read, and every name the host adds to the worker's environment, is
decided in policy.conf (allowed or denied, with the upstream file it comes from): a name a worker
reads that the policy never mentions is a setting that silently does nothing, or a secret that
one careless allow would pass.

Read from Azure/azure-functions-python-worker (`worker/`: azure_functions_worker/, the 4.x worker;
python/prodV4/worker.py; `runtime/`: the azure-functions-runtime package, 1.3.0) and
Azure/azure-functions-host (`host/`). A new upstream name goes here and into the policy together.
"""

import re

from conftest import SOURCE_DIR, Account, Launcher, default_policy

WORKER = "worker/constants.py"
RUNTIME = "runtime/utils/constants.py"
PROD_V4 = "python/prodV4/worker.py"
HOST_PROCESS = "host/src/WebJobs.Script/Workers/Rpc/RpcWorkerProcess.cs"

# name: (allowed, the upstream files that read or add it)
UPSTREAM = {
    "AzureWebJobsScriptRoot": (True, [WORKER, PROD_V4, RUNTIME]),
    "PYTHONPATH": (True, [PROD_V4]),
    "WEBSITE_INSTANCE_ID": (True, [PROD_V4]),
    "CONTAINER_NAME": (True, [PROD_V4, WORKER, RUNTIME]),
    "PYTHON_THREADPOOL_THREAD_COUNT": (True, [WORKER, RUNTIME]),
    "PYTHON_ISOLATE_WORKER_DEPENDENCIES": (True, [WORKER]),
    "PYTHON_ENABLE_WORKER_EXTENSIONS": (True, [WORKER]),
    "PYTHON_ENABLE_DEBUG_LOGGING": (True, [WORKER, RUNTIME]),
    "PYTHON_ENABLE_INIT_INDEXING": (True, [WORKER]),
    "PYTHON_SCRIPT_FILE_NAME": (True, [WORKER, RUNTIME]),
    "PYTHON_ROLLBACK_CWD_PATH": (True, [WORKER]),
    "PYTHON_EXTENSIONS_RELOAD_FUNCTIONS": (True, [WORKER]),
    "PYTHON_ENABLE_OPENTELEMETRY": (True, [WORKER, RUNTIME]),
    "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY": (True, [WORKER, "runtime/utils/app_setting_manager.py"]),
    "PYTHON_APPLICATIONINSIGHTS_LOGGER_NAME": (True, [WORKER, RUNTIME]),
    "PYTHON_AZURE_MONITOR_LOGGER_NAME": (True, [WORKER]),
    "APPLICATIONINSIGHTS_CONNECTION_STRING": (False, [WORKER, RUNTIME]),
    "FUNCTIONS_WORKER_SHARED_MEMORY_DATA_TRANSFER_ENABLED": (True, [WORKER]),
    "FUNCTIONS_UNIX_SHARED_MEMORY_DIRECTORIES": (True, [WORKER]),
    "WEBSITE_PLACEHOLDER_MODE": (
        False,
        ["worker/utils/dependency.py", "host/src/WebJobs.Script/Environment/EnvironmentExtensions.cs"],
    ),
    "FUNCTIONS_WORKER_DIRECTORY": (True, [HOST_PROCESS]),
    "FUNCTIONS_APPLICATION_DIRECTORY": (True, [HOST_PROCESS]),
    "FUNCTIONS_WORKER_RUNTIME_VERSION": (True, [HOST_PROCESS]),
}
SECTION = re.compile(r"(?ms)^# --- What the real workers read.*?(?=^# --- )")


def upstream_section() -> dict[str, tuple[bool, str]]:
    """The policy's upstream section: name -> (allowed, what follows `<-` on its line)."""
    match = SECTION.search((SOURCE_DIR / "policy.conf").read_text())
    assert match, "policy.conf has no section of upstream names"
    lines = {}
    for line in match.group(0).splitlines():
        words = line.split()
        if words[:1] in (["allow"], ["deny"]):
            assert "<- " in line, f"no upstream file named: {line}"
            lines[words[1]] = (words[0] == "allow", line.split("<- ", 1)[1])
    return lines


def test_the_policy_decides_every_upstream_name_and_names_its_file() -> None:
    section = upstream_section()
    assert sorted(section) == sorted(UPSTREAM)
    for name, (allowed, files) in UPSTREAM.items():
        assert section[name][0] == allowed, name
        for file in files:
            assert file in section[name][1], f"{name}: {file} not named in the policy"


def test_the_worker_sees_exactly_the_allowed_upstream_names(launcher: Launcher, worker: Account) -> None:
    launcher.write_policy(default_policy(worker))
    env = {name: "0" for name in UPSTREAM}  # 0: WEBSITE_PLACEHOLDER_MODE=1 starts no worker
    result = launcher.run(["-c", "import os; print(' '.join(sorted(os.environ)))"], env=env)
    assert result.returncode == 0, result.stderr.decode()
    seen = set(result.stdout.decode().split())
    assert {name for name in UPSTREAM if name in seen} == {name for name, (ok, _) in UPSTREAM.items() if ok}
