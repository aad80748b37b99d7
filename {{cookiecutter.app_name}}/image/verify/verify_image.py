"""Prove the image's hardening claims on a running container (`make verify-image`).

The image starts normally (its own entrypoint runs as root, as in Azure) with a canary value in
every sensitive variable the platform sets and no network. The worker-side probes then run the
way the host runs the worker: `python` from PATH, as root, through `ENGINE exec`, so in a
hardened image they go through the launcher. The file-system checks read `ENGINE export`.
Prints `check | result | detail` (names only, never a value) and exits 1 on any failure.
"""

import argparse
import json
import os
import posixpath
import re
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from code_directory import secret_files_row
from interpreter_roads import interpreter_or_launcher, road_rows
from launch_probes import launch_rows
from rootfs import RootFS, engine_run, export, image_env, inspect

# What the Functions platform puts in the host's environment and the worker must never see
# (the launcher's policy denies or does not allow each; IDENTITY_HEADER stays with the broker).
SENSITIVE_VARIABLES = (
    "IDENTITY_HEADER",
    "AzureWebJobsStorage", "AzureWebJobsDashboard", "AzureWebJobsSecretStorageSas",
    "AzureWebJobsSecretStorageKeyVaultClientSecret", "AzureWebJobsSecretStorageKeyVaultUri",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING", "CONTAINER_ENCRYPTION_KEY",
    "WEBSITE_AUTH_ENCRYPTION_KEY", "WEBSITE_AUTH_SIGNING_KEY", "MACHINEKEY_DecryptionKey",
    "MACHINEKEY_ValidationKey", "MSI_SECRET", "DOCKER_REGISTRY_SERVER_PASSWORD",
    "DOCKER_REGISTRY_SERVER_USERNAME", "DOCKER_REGISTRY_SERVER_URL",
    "CONTAINER_START_CONTEXT_SAS_URI",
    "AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PASSWORD", "AZURE_PASSWORD",
    "APPSETTING_AzureWebJobsStorage", "APPSETTING_WEBSITE_AUTH_ENCRYPTION_KEY",
    "APPSETTING_CONTAINER_ENCRYPTION_KEY", "APPSETTING_DOCKER_REGISTRY_SERVER_PASSWORD",
    "APPSETTING_MSI_SECRET", "APPSETTING_MY_DATABASE_PASSWORD", "ServiceBusConnection",
    "EventHubConnection", "CosmosDbConnection",
)  # fmt: skip
# Tools that must exist nowhere in the image, by what an attacker would use them for.
FORBIDDEN = {
    "shells": ("sh", "bash", "dash", "rbash", "zsh", "ksh", "mksh", "csh", "tcsh", "fish",
               "busybox", "toybox"),
    "download and network tools": ("curl", "wget", "nc", "ncat", "netcat", "socat", "telnet"),
    "other interpreters": ("perl",),
    "package managers": ("apt", "apt-get", "dpkg", "dpkg-deb"),
    "privilege tools": ("su", "sudo", "doas", "runuser", "setpriv", "chroot", "nsenter"),
    "remote access": ("sshd", "ssh", "scp", "sftp-server"),
}  # fmt: skip
LAUNCHER_POLICY_PATH = b"/etc/launcher/policy.conf"
# The Functions host's directory (Azure/azure-functions-docker copies /azure-functions-host into
# every image): its files are the host's own, and it is the first place the host looks for `python`.
HOST_DIR = "/azure-functions-host"
SHARED_LIBRARY = re.compile(r"\.so(\.[0-9]+)*$")
START_DEADLINE_SECONDS = 60

Row = tuple[str, bool, str]

# Azure Container Apps runs the image differently (--hosting containerapps): the host recognises
# the platform by MANAGED_ENVIRONMENT (Azure/azure-functions-host, src/WebJobs.Script/Environment/
# EnvironmentExtensions.cs, IsManagedAppEnvironment), the identity endpoint is on localhost:42356,
# and neither CONTAINER_NAME nor WEBSITE_INSTANCE_ID is set, so worker.py imports the worker
# in-process instead of re-executing it (Azure/azure-functions-python-worker,
# workers/python/prodV4/worker.py and, from 3.13, proxyV4/worker.py: is_azure_environment). The
# root file system is read-only here, with these writable paths alone: the host's /tmp and /var/tmp
# (root's, 0755) and the worker's TMPDIR (the policy's, root's 0711, which holds each launch's own
# directory), all tmpfs that run nothing.
CONTAINER_APPS_ENV = {
    "MANAGED_ENVIRONMENT": "true",
    "CONTAINER_APP_NAME": "verify-image",
    "CONTAINER_APP_REVISION": "verify-image--0000001",
    "IDENTITY_ENDPOINT": "http://localhost:42356/msi/token",
}


def container_apps_writable(worker_user: str) -> dict[str, str]:
    """The writable paths named above, with their modes."""
    return {"/tmp": "0755", "/var/tmp": "0755", f"/var/tmp/{worker_user}": "0711"}  # noqa: S108


def container_apps_options(engine: str, worker_user: str) -> list[str]:
    """Read-only root and the writable paths as tmpfs (Podman adds its own unless told not to)."""
    writable = container_apps_writable(worker_user).items()
    options = ["--read-only"]
    options += [f"--tmpfs={path}:rw,nosuid,nodev,noexec,mode={mode}" for path, mode in writable]
    return options + (["--read-only-tmpfs=false"] if Path(engine).name == "podman" else [])


def elf_interpreter(data: bytes) -> str | None:
    """The PT_INTERP of a 64-bit little-endian ELF ('' when static), None when not an ELF."""
    if data[:5] != b"\x7fELF\x02":
        return None
    phoff = int.from_bytes(data[32:40], "little")
    size, count = int.from_bytes(data[54:56], "little"), int.from_bytes(data[56:58], "little")
    for header in range(phoff, phoff + size * count, size):
        if int.from_bytes(data[header : header + 4], "little") == 3:  # PT_INTERP
            offset = int.from_bytes(data[header + 8 : header + 16], "little")
            length = int.from_bytes(data[header + 32 : header + 40], "little")
            return data[offset : offset + length].rstrip(b"\0").decode()
    return ""


def host_resolution_row(fs: RootFS, cwd: str, search_path: str, launcher: str | None) -> Row:
    """The `python` the host starts is the launcher, wherever the host looks first.

    .NET's Process.Start with a bare name (dotnet/runtime, Process.Unix.cs, ResolvePath) takes
    the first that exists of <host's directory>/python and <working directory>/python (any
    file: no mode check), and only then searches PATH.
    """
    name = "no python ahead of the launcher (host dir, cwd, PATH)"
    for where, directory in (("host's directory", HOST_DIR), ("working directory", cwd)):
        path = posixpath.join(directory, "python")
        resolved = fs.resolve(path)
        entry = fs.entries.get(resolved) if resolved else None
        if entry is not None and entry.kind != "dir" and resolved != launcher:
            return name, False, f"{where}: {path} -> {resolved}"
    found = fs.which("python", search_path)
    first = f"{found} -> {fs.resolve(found)}" if found else "none on PATH"
    ok = found is not None and launcher is not None and fs.resolve(found) == launcher
    return name, ok, f"nothing in {HOST_DIR} or {cwd}; PATH: {first}"


def program_row(fs: RootFS, allowed: set[str]) -> Row:
    """Every program left is the host's, the interpreter or the launcher (libraries aside)."""
    others = sorted(
        path for path, head in fs.programs().items()
        if (head == b"\x7fELF" and not SHARED_LIBRARY.search(path)) or head[:2] == b"#!"
        if path not in allowed and not path.startswith(HOST_DIR + "/")
    )  # fmt: skip
    listed = f"{', '.join(sorted(allowed))} and {HOST_DIR}/"
    detail = ", ".join(others[:6]) + (f" and {len(others) - 6} more" if len(others) > 6 else "")
    name = "only the host, the interpreter and the launcher are programs"
    return name, not others, f"also: {detail}" if others else listed


def filesystem_rows(fs: RootFS, search_path: str, cwd: str = "/") -> list[Row]:
    rows: list[Row] = []
    python = fs.which("python", search_path)
    data = fs.read(python) if python else None
    interp = elf_interpreter(data) if data else None
    is_launcher = interp == "" and data is not None and LAUNCHER_POLICY_PATH in data
    kind = "static launcher" if is_launcher else f"ELF interpreter {interp!r}" if interp else "?"
    where = f"{python} -> {fs.resolve(python)}" if python else "no python on PATH"
    rows.append(("host's `python` on PATH is the launcher", is_launcher, f"{where}: {kind}"))
    # python3 or python3.X left pointing at the interpreter would be a way around the launcher.
    launcher = fs.resolve(python) if python else None
    others = sorted(
        name for name in fs.executables_on_path(search_path)
        if name.startswith("python") and fs.resolve(fs.which(name, search_path) or "") != launcher
    )  # fmt: skip
    detail = f"not the launcher: {', '.join(others)}" if others else "python* lead to the launcher"
    detail = detail if is_launcher else "`python` itself is not the launcher"
    rows.append(("no other python on PATH", is_launcher and not others, detail))

    policy = fs.read("/etc/launcher/policy.conf")
    policy_entry = fs.file("/etc/launcher/policy.conf")
    exec_lines = [line.split()[1] for line in (policy or b"").decode().splitlines()
                  if line.split()[:1] == ["exec"] and len(line.split()) > 1]  # fmt: skip
    real = fs.file(exec_lines[0]) if exec_lines else None
    policy_ok = (
        policy_entry is not None and policy_entry.uid == 0 and not policy_entry.mode & 0o022
        and real is not None and real.uid == 0 and not real.mode & 0o022
        and fs.resolve(exec_lines[0]) != launcher
    )  # fmt: skip
    rows.append(("policy root-owned, exec is a root-owned interpreter", policy_ok,
                 f"exec {exec_lines[0] if exec_lines else '(none)'}"))  # fmt: skip
    rows.append(host_resolution_row(fs, cwd, search_path, launcher if is_launcher else None))
    interpreter = fs.resolve(exec_lines[0]) if exec_lines else None
    rows.append(program_row(fs, {p for p in (launcher if is_launcher else None, interpreter) if p}))

    for group, names in FORBIDDEN.items():
        found = sorted(
            e.path for e in fs.entries.values()
            if e.path.rsplit("/", 1)[-1] in names
            and (e.kind == "symlink" or (e.kind in ("file", "hardlink") and e.mode & 0o111))
        )  # fmt: skip
        detail = ", ".join(found[:4]) + (" ..." if len(found) > 4 else "") if found else "none"
        rows.append((f"no {group}", not found, detail))

    privileged = fs.privileged()
    rows.append(("no setuid/setgid file", not privileged,
                 ", ".join(privileged[:4]) if privileged else "none"))  # fmt: skip

    shadow = (fs.read("/etc/shadow") or b"").decode().splitlines()
    usable = [f[0] for f in (line.split(":") for line in shadow)
              if len(f) > 1 and not f[1].startswith(("!", "*"))]  # fmt: skip
    root_locked = bool(shadow) and "root" not in usable
    rows.append(("root's password locked", root_locked and not usable,
                 f"usable passwords: {', '.join(usable)}" if usable else "all locked"))  # fmt: skip
    return rows


def wait_running(engine: str, container: str) -> str | None:
    """None once the container runs; else why not (its last log lines)."""
    deadline = time.monotonic() + START_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        state = inspect(engine, "container", container)["State"]["Status"]
        if state == "running":
            return None
        if state in ("exited", "dead"):
            break
        time.sleep(0.2)  # polling the engine, bounded by the deadline above
    logs = subprocess.run([engine, "logs", container], capture_output=True, text=True, check=False)
    return f"container is not running: {(logs.stdout + logs.stderr).strip()[-300:]}"


# A security event as the launcher prints it (launcher/README.md, "Detection").
SECURITY_EVENT = re.compile(
    r"^launcher-security-event: warning v1 kind=(syscall|launcher|forged|identity) pid=\d+ "
    r"time=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ suppressed=\d+ detail=[ -~]*$",
    re.M,
)


def events_row(stderr: str) -> Row:
    """The probes' refused calls (unshare, keyctl, chmod +x, ...) and the refused storage token
    were also reported, each in the event's exact shape."""
    kinds = [match.group(1) for match in SECURITY_EVENT.finditer(stderr)]
    calls, tokens = kinds.count("syscall"), kinds.count("identity")
    told = f"{calls} syscall and {tokens} identity event(s) on the worker's stderr"
    return "refused calls are reported as security events", calls > 0 and tokens > 0, told


def forgery_row(stderr: str) -> Row:
    """The probe's forged event line reached the host behind a prefix, its '-' made '_', and the
    supervisor reported the forgery."""
    defanged = "worker: (forged) launcher_security_event:" in stderr
    reported = [m.group(1) for m in SECURITY_EVENT.finditer(stderr)].count("forged")
    told = f"defanged: {'yes' if defanged else 'no'}; {reported} forged event(s)"
    return "a forged event is defanged and reported", defanged and reported > 0, told


def probe_rows(engine: str, container: str, marker: str, user: str) -> list[Row]:
    source = Path(__file__).with_name("worker_probe.py").read_text()
    result = subprocess.run(
        [engine, "exec", "--user", "0:0", container, "python", "-c", source, marker, user],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    try:
        results = json.loads(result.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        why = (result.stderr.strip() or result.stdout.strip() or "no output")[-300:]
        return [("worker probes ran through `python`", False, f"exit {result.returncode}: {why}")]
    rows = [(name, bool(ok), str(detail)) for name, (ok, detail) in results.items()]
    return [*rows, events_row(result.stderr), forgery_row(result.stderr)]


def verify(engine: str, image: str, user: str, hosting: str = "premium") -> list[Row]:
    marker = f"canary{secrets.token_hex(8)}"
    env = {name: f"{marker}-{name}" for name in SENSITIVE_VARIABLES}
    # The platform's identity endpoint as in a custom container (nothing listens there: a
    # forwarded request fails, a refused one never leaves the broker), and the app's identity.
    env["IDENTITY_ENDPOINT"] = "http://127.0.0.1:8081/msi/token"
    env["AZURE_CLIENT_ID"] = "00000000-0000-4000-8000-0000000000a1"
    env["AzureWebJobsStorage"] = (
        f"DefaultEndpointsProtocol=https;AccountName=canary;AccountKey={marker};"
        "EndpointSuffix=core.windows.net"
    )
    options = []
    if hosting == "containerapps":
        env |= CONTAINER_APPS_ENV
        options = container_apps_options(engine, user)
    container = f"verify-image-{secrets.token_hex(4)}"
    try:
        with tempfile.NamedTemporaryFile("w", suffix=".env") as env_file:
            env_file.write("".join(f"{name}={value}\n" for name, value in env.items()))
            env_file.flush()
            engine_run(engine, "run", "--detach", "--network", "none", "--name", container,
                       "--env-file", env_file.name, *options, image)  # fmt: skip
        rows: list[Row] = [("image starts as its entrypoint", True, f"{len(env)} canaries set")]
        not_running = wait_running(engine, container)
        if not_running:
            return [("image starts as its entrypoint", False, not_running)]
        if options:
            read_only = inspect(engine, "container", container)["HostConfig"].get("ReadonlyRootfs")
            writable = ", ".join(container_apps_writable(user))
            rows.append(("Container Apps shape, read-only root", read_only is True,
                         f"ReadonlyRootfs {read_only}; writable: {writable}"))  # fmt: skip
        rows += probe_rows(engine, container, marker, user)
        rows += launch_rows(engine, container)
        environment = image_env(engine, image)
        search_path = environment.get("PATH", "/usr/bin:/bin")
        # The .NET host otherwise opens a diagnostics socket (dotnet-diagnostic-*) in /tmp through
        # which a debugger or profiler attaches; the worker has no business with either.
        diagnostics = environment.get("DOTNET_EnableDiagnostics", "unset")
        rows.append(
            (
                "DOTNET diagnostics off",
                diagnostics == "0",
                f"DOTNET_EnableDiagnostics={diagnostics}",
            )
        )
        cwd = inspect(engine, "image", image)["Config"].get("WorkingDir") or "/"
        fs = export(engine, container, wanted=lambda p: p.rsplit("/", 1)[-1].startswith("python")
                    or p in ("/etc/shadow", "/etc/launcher/policy.conf"),
                    keep_if=interpreter_or_launcher)  # fmt: skip
        rows += filesystem_rows(fs, search_path, cwd)
        rows.append(secret_files_row(fs))
        rows += road_rows(engine, container, fs, marker)
        return [(name, ok, detail.replace(marker, "<canary>")) for name, ok, detail in rows]
    finally:
        subprocess.run([engine, "rm", "--force", container], capture_output=True, check=False)


def print_table(rows: list[Row]) -> None:
    width = max(len(name) for name, _, _ in rows)
    print(f"{'check'.ljust(width)} | result | detail")
    print(f"{'-' * width}-|--------|-------")
    for name, ok, detail in rows:
        print(f"{name.ljust(width)} | {'pass' if ok else 'FAIL':6} | {detail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", default=os.environ.get("ENGINE", "docker"))
    parser.add_argument("--image", required=True)
    parser.add_argument("--worker-user", required=True)
    parser.add_argument("--hosting", choices=("premium", "containerapps"), default="premium")
    args = parser.parse_args()
    rows = verify(args.engine, args.image, args.worker_user, args.hosting)
    print_table(rows)
    failed = [name for name, ok, _ in rows if not ok]
    if failed:
        print(f"\nverify-image: {len(failed)} check(s) failed on {args.image}: "
              f"{'; '.join(failed)}.", file=sys.stderr)  # fmt: skip
        raise SystemExit(1)
    print(f"\nverify-image: all {len(rows)} checks pass on {args.image}.")


if __name__ == "__main__":
    main()
