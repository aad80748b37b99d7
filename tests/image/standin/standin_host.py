# TEST FIXTURE, not part of the product: the stand-in Azure Functions host, installed as
# /azure-functions-host/standin_host.py and run by the ELF beside it,
# /azure-functions-host/Microsoft.Azure.WebJobs.Script.WebHost (host_apphost.c), which embeds the
# stand-in's Python: the host never runs through any `python` the product replaces or moves.
"""Starts the Python worker the way the real host does and serves HTTP in front of it.

Like the real host it runs as root, reads workers/python/worker.config.json and starts its
`defaultExecutablePath` (`python`) as .NET's Process.Start does with a bare file name: looked up
in the host executable's own directory, then the current directory, then PATH, and passed on as
argv[0] unchanged. The arguments are the real ones: the config's `arguments`, the worker path,
`--host 127.0.0.1 --port N --workerId W --requestId R --grpcMaxMessageLength M` and their
`--functions-*` copies; the environment is the host's own, full. The worker connects back; they
speak JSON lines (README.md). HTTP on the port of ASPNETCORE_URLS: `/admin/host/status` reports
the worker, anything else goes to the worker. It logs what happens, never the value of a variable.
Standard library only.
"""

import base64
import http.server
import json
import os
import platform
import queue
import signal
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

HOST_DIR = Path(os.environ.get("ASPNETCORE_CONTENTROOT", "/azure-functions-host"))
CONNECT_TIMEOUT = float(os.environ.get("STANDIN_WORKER_CONNECT_TIMEOUT", "60"))
REQUEST_TIMEOUT = float(os.environ.get("STANDIN_REQUEST_TIMEOUT", "30"))
MAX_BODY = 16 * 1024 * 1024
# RpcWorkerConstants.DefaultMaxMessageLengthBytes in azure-functions-host.
MAX_MESSAGE_LENGTH = 2147483647


def resolve_path(name: str) -> str | None:
    """Where Process.Start runs a file name from (dotnet/runtime, Process.Unix.cs, ResolvePath).

    A rooted name as it is; else the first that exists (any file: File.Exists checks no mode) in
    the host executable's directory, then the current directory; then the first executable on
    PATH (empty entries skipped).
    """
    if name.startswith("/"):
        return name
    host_dir = os.path.dirname(os.path.realpath("/proc/self/exe"))
    for directory in (host_dir, os.getcwd()):
        candidate = os.path.join(directory, name)
        if os.path.isfile(candidate):
            return candidate
    for directory in filter(None, os.environ.get("PATH", "").split(":")):
        candidate = os.path.join(directory, name)
        if os.path.isfile(candidate) and os.stat(candidate).st_mode & 0o111:
            return candidate
    return None


def log(message: str) -> None:
    print(f"standin-host: {message}", flush=True)


class Worker:
    """The worker process, its connection, and what the status endpoint reports about it."""

    def __init__(self) -> None:
        self.state = "Starting"
        self.error = ""
        self.process: subprocess.Popen[bytes] | None = None
        # Set by the one thread that waits: Popen.poll() from another thread answers None while
        # that wait holds the lock, so the status reads this instead.
        self.exit_code: int | None = None
        self.reported: dict[str, Any] = {}
        self.functions: list[str] = []
        self._conn: socket.socket | None = None
        self._send_lock = threading.Lock()
        self._waiting: dict[str, queue.Queue[dict[str, Any]]] = {}
        self._ids = iter(range(1, sys.maxsize))

    def fail(self, reason: str) -> None:
        if self.state != "Error":
            self.state, self.error = "Error", reason
            log(f"error: {reason}")
        for waiter in list(self._waiting.values()):
            waiter.put({"error": reason})

    def start(self) -> None:
        try:
            self._start()
        except Exception as error:  # a broken image must show in the status, not hang it
            self.fail(f"starting the worker failed: {type(error).__name__}")

    def _start(self) -> None:
        config = json.loads((HOST_DIR / "workers/python/worker.config.json").read_text())[
            "description"
        ]
        version = os.environ.get(
            "FUNCTIONS_WORKER_RUNTIME_VERSION", config["defaultRuntimeVersion"]
        )
        worker_path = (
            HOST_DIR
            / "workers/python"
            / (
                config["defaultWorkerPath"]
                .replace("%FUNCTIONS_WORKER_RUNTIME_VERSION%", version)
                .replace("{os}", "LINUX")
                .replace("{architecture}", "X64")
            )
        )
        executable_name = config["defaultExecutablePath"]
        executable = resolve_path(executable_name)
        if executable is None:
            return self.fail(f"{executable_name!r} is found neither beside the host nor on PATH")
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(CONNECT_TIMEOUT)
        port = listener.getsockname()[1]
        worker_id, request_id = str(uuid.uuid4()), str(uuid.uuid4())
        # Each configured argument is one string ("-X no_debug_ranges"), split on spaces when
        # the host parses its command line.
        arguments = [part for argument in config.get("arguments", []) for part in argument.split()]
        args = [
            executable_name,
            *arguments,
            str(worker_path),
            *("--host", "127.0.0.1", "--port", str(port)),
            *("--workerId", worker_id, "--requestId", request_id),
            *("--grpcMaxMessageLength", str(MAX_MESSAGE_LENGTH)),
            *("--functions-uri", f"http://127.0.0.1:{port}/"),
            *("--functions-worker-id", worker_id, "--functions-request-id", request_id),
            *("--functions-grpc-max-message-length", str(MAX_MESSAGE_LENGTH)),
        ]
        script_root = os.environ.get("AzureWebJobsScriptRoot", "/home/site/wwwroot")
        environment = dict(os.environ)
        environment["FUNCTIONS_WORKER_DIRECTORY"] = str(HOST_DIR / "workers/python")
        environment.setdefault("PYTHON_THREADPOOL_THREAD_COUNT", "1000")
        log(f"starting worker: {executable} as {' '.join(args)}")
        self.process = subprocess.Popen(
            args,
            executable=executable,
            env=environment,
            cwd=script_root if os.path.isdir(script_root) else "/",
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        threading.Thread(target=self._relay_output, daemon=True).start()
        threading.Thread(target=self._watch_exit, daemon=True).start()
        try:
            self._conn, _ = listener.accept()
        except TimeoutError:
            return self.fail(f"the worker did not connect within {CONNECT_TIMEOUT:.0f} s")
        except OSError:
            return self.fail("the worker did not connect")
        finally:
            listener.close()
        self._conn.settimeout(None)
        threading.Thread(target=self._read, daemon=True).start()
        answer = self.call({"type": "init", "scriptRoot": script_root}, CONNECT_TIMEOUT)
        if "error" in answer:
            return self.fail(f"the worker could not load the function app: {answer['error']}")
        self.functions = [str(name) for name in answer.get("functions", [])]
        self.state = "Running"
        log(f"worker indexed {len(self.functions)} function(s): {', '.join(self.functions)}")

    def call(
        self, message: dict[str, Any], timeout: float = REQUEST_TIMEOUT
    ) -> dict[str, Any]:
        """Send one message and wait for the answer carrying its id; an error dict on failure."""
        if self._conn is None or self.state == "Error":
            return {"error": self.error or "the worker is not connected"}
        message_id = str(next(self._ids))
        waiter: queue.Queue[dict[str, Any]] = queue.Queue()
        self._waiting[message_id] = waiter
        try:
            with self._send_lock:
                self._conn.sendall(json.dumps({**message, "id": message_id}).encode() + b"\n")
            return waiter.get(timeout=timeout)
        except queue.Empty:
            log(f"{message['type']} {message_id} timed out after {timeout:.0f} s")
            return {"error": "timeout"}
        except OSError as error:
            return {"error": f"sending to the worker failed ({type(error).__name__})"}
        finally:
            self._waiting.pop(message_id, None)

    def _read(self) -> None:
        assert self._conn is not None
        with self._conn.makefile("rb") as lines:
            for line in lines:
                message = json.loads(line)
                if message.get("type") == "start":
                    self.reported = message
                    pid, uid, gid = (message.get(key) for key in ("pid", "uid", "gid"))
                    log(f"worker connected: pid {pid} uid {uid} gid {gid}")
                elif (waiter := self._waiting.get(str(message.get("id")))) is not None:
                    waiter.put(message)
        self.fail("the worker closed its connection")

    def _relay_output(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            print(f"worker: {line.decode(errors='replace').rstrip()}", flush=True)

    def _watch_exit(self) -> None:
        assert self.process is not None
        code = self.exit_code = self.process.wait()
        log(f"worker exited with code {code}")
        self.fail(f"the worker exited with code {code}")

    def status(self) -> dict[str, Any]:
        # The state first: init sets the functions, then "Running", so a status read while it
        # finishes can never say Running beside the functions it had before.
        state, error = self.state, self.error
        process = self.process
        worker: dict[str, Any] = {
            "pid": process.pid if process else None,
            "exit_code": self.exit_code,
            "uid": self.reported.get("uid"),
            "gid": self.reported.get("gid"),
            "functions": self.functions,
            "no_new_privs": None,
            "seccomp": None,
            "seccomp_filters": None,
            "reported": self.reported,
        }
        # What the kernel says, not only what the worker claims: the launcher's drop must show here.
        # The process that connected may be a descendant of the one started (the launcher stays as
        # its parent when it runs the identity broker); it counts only if it is one.
        if process and self.exit_code is None:
            pid = self.reported.get("pid")
            if not (isinstance(pid, int) and descends_from(pid, process.pid)):
                pid = process.pid
            try:
                fields = dict(
                    line.split(":", 1)
                    for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                )
                worker["uid"] = int(fields["Uid"].split()[1])
                worker["gid"] = int(fields["Gid"].split()[1])
                worker["no_new_privs"] = int(fields["NoNewPrivs"])
                worker["seccomp"] = int(fields["Seccomp"])
                worker["seccomp_filters"] = int(fields["Seccomp_filters"])
            except (OSError, KeyError, ValueError):
                pass
        return {
            "state": state,
            "error": error,
            "version": os.environ.get("HOST_VERSION"),
            "python": platform.python_version(),
            # The container engine's own filter counts here too: a filter the launcher installs
            # shows as the worker having more than the host.
            "seccomp_filters": seccomp_filters(),
            "worker": worker,
        }


def descends_from(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return False
        pid = int(next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:")))
    return False


def seccomp_filters() -> int | None:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("Seccomp_filters:"):
            return int(line.split()[1])
    return None


WORKER = Worker()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, value: object) -> None:
        self._answer(status, json.dumps(value).encode(), {"Content-Type": "application/json"})

    def _handle(self) -> None:
        url = urlsplit(self.path)
        if url.path in ("/admin/host/status", "/admin/host/ping"):
            return self._json(200, WORKER.status())
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            return self._json(413, {"error": "request body too large"})
        body = self.rfile.read(length) if length else b""
        answer = WORKER.call(
            {
                "type": "invoke",
                "method": self.command,
                "url": f"http://{self.headers.get('Host', 'localhost')}{self.path}",
                "path": url.path,
                "query": url.query,
                "headers": dict(self.headers.items()),
                "body": base64.b64encode(body).decode(),
            }
        )
        if "error" in answer:
            status = 504 if answer["error"] == "timeout" else 500 if answer.get("raised") else 503
            return self._json(status, {"error": answer["error"]})
        self._answer(
            int(answer["status"]),
            base64.b64decode(str(answer["body"])),
            dict(answer.get("headers", {})),
        )

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        log(
            f"http {self.command} {urlsplit(self.path).path} -> {args[1] if len(args) > 1 else '?'}"
        )


def http_port() -> int:
    url = os.environ.get("ASPNETCORE_URLS", "http://+:80").split(";")[0]
    return int(url.rsplit(":", 1)[1].strip("/"))


def main() -> None:
    # PID 1 ignores SIGTERM unless it handles it: stop the worker and leave, so that
    # `podman stop` is quick.
    def stop(signum: int, frame: object) -> None:
        if WORKER.process and WORKER.process.poll() is None:
            WORKER.process.terminate()
        log("stopping")
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server = http.server.ThreadingHTTPServer(("0.0.0.0", http_port()), Handler)
    version = os.environ.get("HOST_VERSION")
    log(f"stand-in host {version} as uid {os.getuid()}, listening on port {http_port()}")
    threading.Thread(target=WORKER.start, daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
