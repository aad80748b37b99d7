"""`make run` and `make stop`: the hardened image on this machine, as the platform runs it.

The image starts by its own entrypoint (the host as root, the worker through the launcher). The
host's storage is Azurite, the official Azure Storage emulator (installed from npm into azurite/,
pinned by its lockfile), on 127.0.0.1 only; the app's secrets come from its local development
source, local.secrets.json; the host's log goes to this terminal, each security event in it
highlighted (launcher/README.md, "Detection"). Ctrl+C or `make stop` ends the
container and Azurite. Everything this run keeps is in .run/ (git-ignored).

Networking: the container shares this machine's network (`--network host`), so the host listens
on 127.0.0.1:PORT and reaches Azurite at 127.0.0.1:10000-10002, exactly where
`UseDevelopmentStorage=true` points. That works the same with Docker Engine on Linux and with
Podman, rootful and rootless. Rootless Docker keeps host networking in its own namespace and is
refused; Docker Desktop needs "Enable host networking" (4.34 or later; Docker's docs, "Host
network driver").
"""

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, NoReturn

PROJECT = Path(__file__).resolve().parents[2]
STATE = PROJECT / ".run"
AZURITE = PROJECT / "azurite/node_modules/.bin/azurite"
AZURITE_PORTS = (10000, 10001, 10002)  # blob, queue, table: UseDevelopmentStorage=true's ports
SECRETS_FILE = PROJECT / "local.secrets.json"  # settings/sources.py, DevelopmentFileSource
CODE_DIR = "/home/site/wwwroot"
# The host's key store: files in a directory of our own (FUNCTIONS_SECRETS_PATH), so that the
# function key is known here; azure-functions-host, WebScriptHostConfigurationSource.cs and
# Security/KeyManagement/FileSystemSecretsRepository.cs (host.json: master and function keys).
KEYS_DIR = "/run/functions-keys"
READY_SECONDS = 180
STOP_SECONDS = 15
PS = shutil.which("ps") or "/bin/ps"  # POSIX ps: the same options on Linux and macOS
# Every security event line starts with this (launcher/src/events.h); a worker's line holding it
# reaches the log defanged ('-' made '_'), so a line holding it is the launcher's or the broker's.
EVENT_MARKER = "launcher-security-event:"


def say(message: str) -> None:
    print(f"make run: {message}", flush=True)


def fail(message: str) -> NoReturn:
    print(f"make run: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def check_engine(engine: str) -> None:
    if shutil.which(engine) is None:
        fail(f"{engine} is not installed: install Podman or Docker, or name one with ENGINE=.")
    if Path(engine).name != "docker":
        return
    info = subprocess.run(
        [engine, "info", "--format", "json"], capture_output=True, text=True, check=False
    )
    try:
        details = json.loads(info.stdout)
    except ValueError:
        return  # a Docker older than 23 has no JSON here; run, and let the engine say what fails
    if any("rootless" in option for option in details.get("SecurityOptions") or []):
        fail(
            "rootless Docker keeps --network host in its own namespace, where Azurite on this "
            "machine's 127.0.0.1 cannot be reached: use Podman (rootless works) or rootful Docker."
        )
    if "Docker Desktop" in str(details.get("OperatingSystem", "")):
        say("Docker Desktop: this needs Settings > Resources > Network > Enable host networking.")


def check_ports(port: int) -> None:
    if listening(port):
        fail(f"port {port} is in use (a `make run` already?): `make stop`, or choose PORT=.")
    for azurite_port in AZURITE_PORTS:
        if listening(azurite_port):
            fail(
                f"Azurite's port {azurite_port} is in use (another Azurite?): `make stop`, or "
                "stop the other emulator; the host's storage setting expects these ports."
            )


def declared_secret_names() -> list[str]:
    sys.path.insert(0, str(PROJECT))
    from settings.declared import Secrets, declared_vault_names  # stdlib only at import

    return sorted(declared_vault_names(Secrets).values())


def local_secrets() -> Path:
    """The development source's file, created with random values when missing; a copy the
    worker's account can read (it is not this user) goes to .run/."""
    names = declared_secret_names()
    if not SECRETS_FILE.exists():
        SECRETS_FILE.touch(mode=0o600)
        SECRETS_FILE.write_text(json.dumps({n: secrets.token_urlsafe(32) for n in names}, indent=2))
        say(f"created {SECRETS_FILE.name} with a random value for {', '.join(names)} (git-ignored)")
    try:
        values = json.loads(SECRETS_FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        fail(f"{SECRETS_FILE.name} is not readable JSON: fix it, or delete it to get a new one.")
    if missing := [n for n in names if n not in values]:
        say(f"{SECRETS_FILE.name} lacks {', '.join(missing)}: functions needing it answer 503.")
    copy = STATE / "local.secrets.json"
    copy.unlink(missing_ok=True)
    copy.touch(mode=0o644)
    copy.chmod(0o644)  # whatever the umask: the worker reads it as another account
    copy.write_text(SECRETS_FILE.read_text(encoding="utf-8"))
    return copy


def function_keys() -> Path:
    """The host's keys for this machine: random once, kept in .run/keys (mode 0700)."""
    keys = STATE / "keys"
    keys.mkdir(mode=0o700, exist_ok=True)
    host_keys = keys / "host.json"
    if not host_keys.exists():
        key = secrets.token_urlsafe(32)
        host_keys.touch(mode=0o600)
        host_keys.write_text(json.dumps({
            "masterKey": {"name": "master", "value": secrets.token_urlsafe(32), "encrypted": False},
            "functionKeys": [{"name": "default", "value": key, "encrypted": False}],
        }))  # fmt: skip
        (STATE / "function-key").touch(mode=0o600)
        (STATE / "function-key").write_text(key)
    return keys


def start_azurite() -> subprocess.Popen[bytes]:
    if not AZURITE.exists():
        fail("Azurite is not installed: `make run` installs it (npm ci --prefix azurite).")
    data = STATE / "azurite"
    data.mkdir(exist_ok=True)
    with (STATE / "azurite.log").open("wb") as log:
        azurite = subprocess.Popen(
            [str(AZURITE), "--silent", "--disableTelemetry", "--skipApiVersionCheck",
             "--location", str(data), "--blobHost", "127.0.0.1", "--queueHost", "127.0.0.1",
             "--tableHost", "127.0.0.1"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,  # Ctrl+C is ours to relay
        )  # fmt: skip
    (STATE / "azurite.pid").write_text(str(azurite.pid))
    deadline = time.monotonic() + 30
    while not all(listening(port) for port in AZURITE_PORTS):
        if azurite.poll() is not None or time.monotonic() > deadline:
            stop_azurite()
            tail = (STATE / "azurite.log").read_text(errors="replace")[-1500:]
            fail(f"Azurite did not start (its log, .run/azurite.log, ends):\n{tail}")
        time.sleep(0.2)  # polling Azurite's ports, bounded by the deadline
    say("Azurite (blob, queue, table) listens on 127.0.0.1:10000-10002")
    return azurite


def alive(pid: int) -> bool:
    """Running, and not only a zombie waiting for `make run` (its parent) to collect it."""
    state = subprocess.run(
        [PS, "-o", "stat=", "-p", str(pid)], capture_output=True, text=True, check=False
    ).stdout.strip()
    return bool(state) and not state.startswith("Z")


def signal_process(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # ended meanwhile: the run and stop both clean up
        os.kill(pid, signum)


def running_azurite() -> int | None:
    """The pid of the Azurite this project started, if it still runs: its pid file, checked
    against the command line so that a later process that reused the number is left alone."""
    try:
        pid = int((STATE / "azurite.pid").read_text())
    except (OSError, ValueError):
        return None
    command = subprocess.run(
        [PS, "-ww", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, check=False
    ).stdout
    return pid if "azurite" in command and alive(pid) else None


def stop_azurite() -> None:
    """End the project's Azurite, if it runs."""
    pid = running_azurite()
    if pid is not None:
        signal_process(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        while alive(pid):
            if time.monotonic() > deadline:
                signal_process(pid, signal.SIGKILL)
                break
            time.sleep(0.1)  # waiting for Azurite to exit, bounded by the deadline
    (STATE / "azurite.pid").unlink(missing_ok=True)


def announce_when_ready(port: int, container: subprocess.Popen[bytes]) -> None:
    url = f"http://localhost:{port}/api"
    deadline = time.monotonic() + READY_SECONDS
    while container.poll() is None and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2):
                say(
                    f"the app answers: {url}/health (anonymous) and {url}/hello?name=you with the "
                    f'function key: curl -H "x-functions-key: $(cat .run/function-key)" '
                    f'"{url}/hello?name=you". Ctrl+C or `make stop` ends it.'
                )
                return
        except (OSError, urllib.error.URLError):
            time.sleep(0.5)  # polling the host, bounded by the deadline


def shown(line: str, colour: bool) -> str:
    """A line of the host's log as this terminal shows it: a security event stands out."""
    at = line.find(EVENT_MARKER)
    if at < 0:
        return line
    banner = "make run: SECURITY EVENT (an attack refused; the deployed app alerts on this):"
    if colour:
        banner = f"\033[1;31m{banner}\033[0m"  # bold red
    return f"{banner}\n    {line[at:]}"


def show_log(stream: IO[bytes]) -> None:
    colour = sys.stdout.isatty() and "NO_COLOR" not in os.environ  # no-color.org
    for raw in iter(stream.readline, b""):
        print(shown(raw.decode(errors="replace").rstrip("\r\n"), colour), flush=True)


def interrupt(signum: int, frame: object) -> NoReturn:
    raise KeyboardInterrupt  # SIGTERM, and SIGINT whatever we inherited, end the run as Ctrl+C does


def run(engine: str, image: str, name: str, port: int) -> int:
    check_engine(engine)
    check_ports(port)
    STATE.mkdir(mode=0o700, exist_ok=True)
    (STATE / "stop-requested").unlink(missing_ok=True)
    secrets_copy = local_secrets()
    keys = function_keys()
    subprocess.run([engine, "rm", "--force", name], capture_output=True, check=False)
    azurite = start_azurite()
    environment = {
        "ASPNETCORE_URLS": f"http://127.0.0.1:{port}",  # this machine's loopback only
        "AzureWebJobsStorage": "UseDevelopmentStorage=true",  # Azurite's well-known local account
        "AzureWebJobsSecretStorageType": "files",
        "FUNCTIONS_SECRETS_PATH": KEYS_DIR,
        "AZURE_FUNCTIONS_ENVIRONMENT": "Development",
    }
    command = [
        engine, "run", "--rm", "--name", name, "--network", "host",
        *(arg for key, value in environment.items() for arg in ("--env", f"{key}={value}")),
        "--volume", f"{secrets_copy}:{CODE_DIR}/local.secrets.json:ro,Z",
        "--volume", f"{keys}:{KEYS_DIR}:Z",
        image,
    ]  # fmt: skip
    say(f"starting {image} as {name}; the host's log follows")
    interrupted = False
    container = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    log = threading.Thread(target=show_log, args=(container.stdout,), daemon=True)
    log.start()
    try:
        threading.Thread(target=announce_when_ready, args=(port, container), daemon=True).start()
        # SIGINT too: a shell that starts a job in the background makes it ignore SIGINT.
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, interrupt)
        code = container.wait()
    except KeyboardInterrupt:
        interrupted = True
        subprocess.run([engine, "stop", "--time", "10", name], capture_output=True, check=False)
        code = container.wait()
    finally:
        log.join(timeout=5)  # the container's last lines
        stop_azurite()
        azurite.wait()  # collect it: ours to reap
    if interrupted or (STATE / "stop-requested").exists():
        say("stopped: the container and Azurite have ended")
        return 0
    return code


def stop(engine: str, name: str) -> None:
    if STATE.is_dir():
        (STATE / "stop-requested").touch()
    azurite = running_azurite()
    container = subprocess.run(
        [engine, "stop", "--time", "10", name], capture_output=True, text=True, check=False
    )
    subprocess.run([engine, "rm", "--force", name], capture_output=True, check=False)
    stop_azurite()  # the run may have done it already, once its container ended
    ended = [f"the container {name}"] if container.returncode == 0 else []
    ended += ["Azurite"] if azurite is not None else []
    print(f"make stop: ended {' and '.join(ended)}" if ended else "make stop: nothing was running")


def main() -> None:
    parser = argparse.ArgumentParser(description="make run and make stop")
    parser.add_argument("action", choices=("run", "stop"))
    parser.add_argument("--engine", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--image")
    parser.add_argument("--port", type=int, default=7071)
    args = parser.parse_args()
    if args.action == "stop":
        stop(args.engine, args.name)
        return
    sys.exit(run(args.engine, args.image, args.name, args.port))


if __name__ == "__main__":
    main()
