# TEST FIXTURE, not part of the product: the stand-in Azure Functions host, installed as
# /azure-functions-host/standin_host.py and run by the ELF beside it,
# /azure-functions-host/Microsoft.Azure.WebJobs.Script.WebHost (host_apphost.c), which embeds the
# stand-in's Python: the host never runs through any `python` the product replaces or moves.
"""Starts the Python worker the way the real host does, speaks its gRPC protocol, serves HTTP.

Like the real host it runs as root, reads workers/python/worker.config.json and starts its
`defaultExecutablePath` (`python`) as .NET's Process.Start does with a bare file name: looked up
in the host executable's own directory, then the current directory, then PATH, and passed on as
argv[0] unchanged. The arguments are the real ones: the config's `arguments`, the worker path,
`--host 127.0.0.1 --port N --workerId W --requestId R --grpcMaxMessageLength M` and their
`--functions-*` copies; the environment is the host's own, full. The worker connects to the
host's `FunctionRpc.EventStream` (gRPC, protocol/function_rpc.proto) and the host drives it as the
real one does (azure-functions-host, src/WebJobs.Script.Grpc/Channel/GrpcWorkerChannel.cs):
WorkerInitRequest, FunctionsMetadataRequest, one FunctionLoadRequest a function,
then an InvocationRequest per HTTP request. HTTP on the port of ASPNETCORE_URLS:
`/admin/host/status` reports the worker, anything else is routed to a function. grpcio and the
generated stubs come from the worker's directory. It logs what happens, never a variable's value.
"""

import hmac
import http.server
import json
import os
import platform
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from concurrent import futures
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

HOST_DIR = Path(os.environ.get("ASPNETCORE_CONTENTROOT", "/azure-functions-host"))
CONNECT_TIMEOUT = float(os.environ.get("STANDIN_WORKER_CONNECT_TIMEOUT", "60"))
REQUEST_TIMEOUT = float(os.environ.get("STANDIN_REQUEST_TIMEOUT", "30"))
MAX_BODY = 16 * 1024 * 1024
# RpcWorkerConstants.DefaultMaxMessageLengthBytes in azure-functions-host.
MAX_MESSAGE_LENGTH = 2147483647
START_CATEGORY = "standin.worker.start"  # worker/main.py's report of how it was started
# The host restarts a worker that exits while fewer than 3 errors (3 per worker process) came
# within 30 minutes of each other; at the third it stops (azure-functions-host,
# src/WebJobs.Script/Workers/Rpc/FunctionRegistration/RpcFunctionInvocationDispatcher.cs,
# ErrorEventsThreshold, AddOrUpdateErrorBucket; WorkerConstants.cs,
# WorkerRestartErrorIntervalThresholdInMinutes).
RESTART_ERRORS = 3
RESTART_WINDOW_SECONDS = 30 * 60
CONFIG = json.loads((HOST_DIR / "workers/python/worker.config.json").read_text())["description"]
VERSION = os.environ.get("FUNCTIONS_WORKER_RUNTIME_VERSION", CONFIG["defaultRuntimeVersion"])
WORKER_DIR = HOST_DIR / "workers/python" / VERSION / "LINUX/X64"
sys.path.insert(0, str(WORKER_DIR))
import grpc  # noqa: E402 - from the worker's directory, as the line above makes it found
from standin_rpc import function_rpc_pb2 as protos  # noqa: E402
from standin_rpc import function_rpc_pb2_grpc as services  # noqa: E402


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


class HttpFunction:
    """One function the worker indexed, by its metadata: route template, methods, parameter."""

    def __init__(self, metadata: Any, route_prefix: str) -> None:
        self.name, self.function_id = metadata.name, metadata.function_id
        bindings = [json.loads(raw) for raw in metadata.raw_bindings]
        trigger = next(b for b in bindings if b.get("type") == "httpTrigger")
        self.parameter = trigger["name"]
        self.methods = {m.upper() for m in trigger.get("methods") or []}
        self.auth_level = str(trigger.get("authLevel", "function")).lower()
        route = trigger.get("route") or self.name
        self.template = [s for s in f"{route_prefix}/{route}".split("/") if s]

    def match(self, path: str) -> dict[str, str] | None:
        """Route parameters if the path fits the template ({name}, {name?}, {*rest})."""
        segments = [s for s in path.split("/") if s]
        params: dict[str, str] = {}
        for index, part in enumerate(self.template):
            is_param = part.startswith("{") and part.endswith("}")
            name = part.strip("{}*?").split(":")[0]
            if is_param and part.startswith("{*"):
                params[name] = "/".join(segments[index:])
                return params
            if index >= len(segments):
                last = index == len(self.template) - 1
                return params if is_param and part.endswith("?}") and last else None
            if is_param:
                params[name] = segments[index]
            elif part.lower() != segments[index].lower():
                return None
        return params if len(segments) == len(self.template) else None


def is_http(metadata: Any) -> bool:
    return any(json.loads(raw).get("type") == "httpTrigger" for raw in metadata.raw_bindings)


def route_prefix(script_root: str) -> str:
    host_json = Path(script_root, "host.json")
    settings = json.loads(host_json.read_text()) if host_json.exists() else {}
    return str(settings.get("extensions", {}).get("http", {}).get("routePrefix", "api"))


def key_level(key: str, function: str) -> str | None:
    """What a function key opens, as the host's secret manager reads its files store
    (AzureWebJobsSecretStorageType=files, FUNCTIONS_SECRETS_PATH; azure-functions-host,
    src/WebJobs.Script.WebHost/Security/KeyManagement/FileSystemSecretsRepository.cs): "admin" for
    host.json's masterKey, "function" for its functionKeys or <function>.json's keys, else None.
    The other stores (blob, Key Vault, Kubernetes) are not imitated: there every key is unknown."""
    if os.environ.get("AzureWebJobsSecretStorageType", "").lower() != "files":
        return None
    directory = Path(os.environ.get("FUNCTIONS_SECRETS_PATH", "/nonexistent"))

    def values(path: Path, *fields: str) -> list[str]:
        try:
            content = json.loads(path.read_text())
        except (OSError, ValueError):
            return []
        found = [content.get(field) for field in fields] if isinstance(content, dict) else []
        entries = [e for f in found for e in (f if isinstance(f, list) else [f]) if e]
        return [str(e["value"]) for e in entries if isinstance(e, dict) and not e.get("encrypted")]

    def opens(candidates: list[str]) -> bool:
        return any(hmac.compare_digest(key.encode(), value.encode()) for value in candidates)

    if opens(values(directory / "host.json", "masterKey")):
        return "admin"
    function_keys = values(directory / f"{function}.json", "keys")
    if opens(values(directory / "host.json", "functionKeys") + function_keys):
        return "function"
    return None


def authorized(function: "HttpFunction", headers: Any, query: str) -> bool:
    """The host's check before an invocation (AuthenticationLevelHandler.cs: the x-functions-key
    header, else the `code` query parameter): anonymous opens to all, function to a function or
    host key, admin to the master key only."""
    if function.auth_level == "anonymous":
        return True
    key = headers.get("x-functions-key") or dict(parse_qsl(query)).get("code", "")
    level = key_level(key, function.name) if key else None
    return level == "admin" or (level == "function" and function.auth_level == "function")


def failure(result: Any) -> str | None:
    """The exception class a StatusResult names (its message is `<class>: <text>`), or None."""
    if result.status == protos.StatusResult.Success:
        return None
    return result.exception.message.split(":", 1)[0] or "Failure"


class Worker:
    """One worker process, its gRPC stream, and what the status endpoint reports about it."""

    def __init__(self, port: int, on_exit: Any) -> None:
        self.port, self.on_exit = port, on_exit
        self.worker_id, self.request_id = str(uuid.uuid4()), str(uuid.uuid4())
        self.state = "Starting"
        self.error = ""
        self.process: subprocess.Popen[bytes] | None = None
        # Set by the one thread that waits: Popen.poll() from another thread answers None while
        # that wait holds the lock, so the status reads this instead.
        self.exit_code: int | None = None
        self.reported: dict[str, Any] = {}
        self.functions: list[HttpFunction] = []
        self._connected = threading.Event()
        self._outgoing: queue.Queue[Any] = queue.Queue()
        self._waiting: dict[tuple[str, str], queue.Queue[Any]] = {}

    def fail(self, reason: str) -> None:
        if self.state != "Error":
            self.state, self.error = "Error", reason
            log(f"error: {reason}")
        for waiter in list(self._waiting.values()):
            waiter.put(reason)

    def start(self) -> None:
        try:
            self._start()
        except Exception as error:  # a broken image must show in the status, not hang it
            self.fail(f"starting the worker failed: {type(error).__name__}")

    def _start(self) -> None:
        worker_path = HOST_DIR / "workers/python" / (
            CONFIG["defaultWorkerPath"]
            .replace("%FUNCTIONS_WORKER_RUNTIME_VERSION%", VERSION)
            .replace("{os}", "LINUX")
            .replace("{architecture}", "X64")
        )  # fmt: skip
        executable_name = CONFIG["defaultExecutablePath"]
        executable = resolve_path(executable_name)
        if executable is None:
            return self.fail(f"{executable_name!r} is found neither beside the host nor on PATH")
        port, worker_id = self.port, self.worker_id
        # Each configured argument is one string ("-X no_debug_ranges"), split on spaces when
        # the host parses its command line.
        arguments = [part for argument in CONFIG.get("arguments", []) for part in argument.split()]
        args = [
            executable_name,
            *arguments,
            str(worker_path),
            *("--host", "127.0.0.1", "--port", str(port)),
            *("--workerId", worker_id, "--requestId", self.request_id),
            *("--grpcMaxMessageLength", str(MAX_MESSAGE_LENGTH)),
            *("--functions-uri", f"http://127.0.0.1:{port}/"),
            *("--functions-worker-id", worker_id, "--functions-request-id", self.request_id),
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
        if not self._connected.wait(CONNECT_TIMEOUT):
            return self.fail(f"the worker did not connect within {CONNECT_TIMEOUT:.0f} s")
        if self.state == "Error":
            return None
        self._load(script_root)

    def _load(self, script_root: str) -> None:
        """WorkerInit, FunctionsMetadata, then FunctionLoad for each function, as the host does."""
        init = self.call("worker_init_request", protos.WorkerInitRequest(
            host_version=os.environ.get("HOST_VERSION", ""),
            worker_directory=str(WORKER_DIR), function_app_directory=script_root,
        ), timeout=CONNECT_TIMEOUT)  # fmt: skip
        if isinstance(init, str) or (error := failure(init.worker_init_response.result)):
            reason = init if isinstance(init, str) else error
            return self.fail(f"the worker could not load the function app: {reason}")
        metadata = self.call("functions_metadata_request", protos.FunctionsMetadataRequest(
            function_app_directory=script_root), timeout=CONNECT_TIMEOUT)  # fmt: skip
        if isinstance(metadata, str) or failure(metadata.function_metadata_response.result):
            return self.fail("the worker could not index the function app")
        prefix = route_prefix(script_root)
        indexed = metadata.function_metadata_response.function_metadata_results
        for function in indexed:
            loaded = self.call("function_load_request", protos.FunctionLoadRequest(
                function_id=function.function_id, metadata=function,
            ), key=function.function_id, timeout=CONNECT_TIMEOUT)  # fmt: skip
            if isinstance(loaded, str) or failure(loaded.function_load_response.result):
                return self.fail(f"the worker could not load {function.name}")
        self.functions = [HttpFunction(each, prefix) for each in indexed if is_http(each)]
        self.state = "Running"
        names = ", ".join(function.name for function in self.functions)
        log(f"worker indexed {len(self.functions)} function(s): {names}")

    def serve(self, first: Any, requests: Any) -> Any:
        """The worker's stream: messages to it are queued; its answers are matched to the
        waiting call by kind and id (function or invocation)."""
        self._receive(first)
        threading.Thread(target=self._read, args=(requests,), daemon=True).start()
        while (message := self._outgoing.get()) is not None:
            yield message

    def _read(self, requests: Any) -> None:
        try:
            for message in requests:
                self._receive(message)
        except grpc.RpcError:
            pass
        self.fail("the worker closed its connection")
        self._outgoing.put(None)

    def _receive(self, message: Any) -> None:
        kind = message.WhichOneof("content")
        if kind == "start_stream":
            self._connected.set()
        elif kind == "rpc_log" and message.rpc_log.category == START_CATEGORY:
            self.reported = json.loads(message.rpc_log.message)
            pid, uid, gid = (self.reported.get(key) for key in ("pid", "uid", "gid"))
            log(f"worker connected: pid {pid} uid {uid} gid {gid}")
        elif kind == "rpc_log":
            level = protos.RpcLog.Level.Name(message.rpc_log.level)
            log(f"worker log {level} {message.rpc_log.category}: {message.rpc_log.message}")
        else:
            answer = getattr(message, kind)
            key = getattr(answer, "invocation_id", "") or getattr(answer, "function_id", "")
            if (waiter := self._waiting.get((kind, key))) is not None:
                waiter.put(message)

    def call(self, kind: str, request: Any, key: str = "", timeout: float = REQUEST_TIMEOUT) -> Any:
        """Send one request, wait for its answer: the StreamingMessage, or a reason (str)."""
        if self.state == "Error":
            return self.error
        answer_kind = {
            "worker_init_request": "worker_init_response",
            "functions_metadata_request": "function_metadata_response",
            "function_load_request": "function_load_response",
            "invocation_request": "invocation_response",
            "function_environment_reload_request": "function_environment_reload_response",
        }[kind]
        waiter: queue.Queue[Any] = queue.Queue()
        self._waiting[(answer_kind, key)] = waiter
        try:
            message = protos.StreamingMessage(request_id=self.request_id, **{kind: request})
            self._outgoing.put(message)
            return waiter.get(timeout=timeout)
        except queue.Empty:
            log(f"{kind} {key} timed out after {timeout:.0f} s")
            return "timeout"
        finally:
            self._waiting.pop((answer_kind, key), None)

    def _relay_output(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            print(f"worker: {line.decode(errors='replace').rstrip()}", flush=True)

    def _watch_exit(self) -> None:
        assert self.process is not None
        code = self.exit_code = self.process.wait()
        log(f"worker exited with code {code}")
        self.fail(f"the worker exited with code {code}")
        self._connected.set()
        self._outgoing.put(None)
        self.on_exit(self)

    def invoke(self, function: HttpFunction, http: Any) -> Any:
        invocation_id = str(uuid.uuid4())
        binding = protos.ParameterBinding(name=function.parameter, data=protos.TypedData(http=http))
        return self.call("invocation_request", protos.InvocationRequest(
            invocation_id=invocation_id, function_id=function.function_id, input_data=[binding],
        ), key=invocation_id)  # fmt: skip

    def reload(self) -> Any:
        """FunctionEnvironmentReloadRequest as the host sends it at specialisation: its whole
        environment (every variable with a value) and FUNCTIONS_WORKER_DIRECTORY, and the script
        root (GrpcWorkerChannel.GetFunctionEnvironmentReloadRequest)."""
        environment = {name: value for name, value in os.environ.items() if value}
        environment["FUNCTIONS_WORKER_DIRECTORY"] = str(HOST_DIR / "workers/python")
        script_root = os.environ.get("AzureWebJobsScriptRoot", "/home/site/wwwroot")
        return self.call("function_environment_reload_request",
                         protos.FunctionEnvironmentReloadRequest(
                             environment_variables=environment,
                             function_app_directory=script_root))  # fmt: skip

    def status(self) -> dict[str, Any]:
        # The state first: loading sets the functions, then "Running", so a status read while it
        # finishes can never say Running beside the functions it had before.
        state, error = self.state, self.error
        process = self.process
        worker: dict[str, Any] = {
            "pid": process.pid if process else None,
            "exit_code": self.exit_code,
            "uid": self.reported.get("uid"),
            "gid": self.reported.get("gid"),
            "functions": [function.name for function in self.functions],
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


class Host(services.FunctionRpcServicer):
    """The gRPC server every worker connects to, and the current worker, restarted as the
    real host restarts it (RESTART_ERRORS)."""

    def __init__(self) -> None:
        self.worker: Worker | None = None
        self.exits: list[int | None] = []
        self.stopping = False
        self._workers: dict[str, Worker] = {}
        self._errors: list[float] = []
        self._port = 0
        self._server: Any = None  # kept: a grpc.Server that is collected stops serving

    def start(self) -> None:
        server = self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=8), options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_LENGTH),
            ("grpc.max_send_message_length", MAX_MESSAGE_LENGTH),
        ])  # fmt: skip
        services.add_FunctionRpcServicer_to_server(self, server)
        self._port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self._launch()

    def _launch(self) -> None:
        worker = Worker(self._port, self._exited)
        self._workers[worker.worker_id] = self.worker = worker
        threading.Thread(target=worker.start, daemon=True).start()

    def _exited(self, worker: Worker) -> None:
        self._workers.pop(worker.worker_id, None)
        now = time.monotonic()
        if self._errors and now - self._errors[-1] > RESTART_WINDOW_SECONDS:
            self._errors.clear()
        self._errors.append(now)
        restart = not self.stopping and worker is self.worker
        if restart and len(self._errors) >= RESTART_ERRORS:
            restart = False
            worker.error = (f"the worker exited {RESTART_ERRORS} times within 30 minutes: "
                            "not restarted")
            log(f"error: {worker.error} (the real host stops here)")
        self.exits.append(worker.exit_code)  # after the error: the status shows both at once
        if restart:
            log(f"restarting the worker (error {len(self._errors)} of {RESTART_ERRORS})")
            self._launch()

    def EventStream(self, requests: Any, context: Any) -> Any:  # noqa: N802 - the RPC's name
        """A worker's stream; its first message, StartStream, names which worker it is."""
        first = next(requests, None)
        kind = first.WhichOneof("content") if first is not None else None
        worker = self._workers.get(first.start_stream.worker_id) if kind == "start_stream" else None
        if worker is None:
            return log("a stream that does not start with a known worker's StartStream: closed")
        yield from worker.serve(first, requests)

    def status(self) -> dict[str, Any]:
        if self.worker is None:
            return {"state": "Starting", "error": "", "worker": None}
        # The exits before the worker's state: _exited sets the error before it appends the
        # exit, so a status that counts an exit also shows what that exit decided.
        exits = list(self.exits)
        return self.worker.status() | {"restarts": len(exits), "exits": exits}


HOST = Host()


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
            return self._json(200, HOST.status())
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            return self._json(413, {"error": "request body too large"})
        body = self.rfile.read(length) if length else b""
        worker = HOST.worker
        if worker is None or worker.state != "Running":
            return self._json(503, {"error": worker.error if worker else "no worker yet"})
        if url.path == "/admin/standin/reload" and self.command == "POST":
            return self._reload(worker)
        method = self.command.upper()
        for function in worker.functions:
            params = function.match(url.path)
            if params is None:
                continue
            if function.methods and method not in function.methods:
                return self._json(405, {"error": "method not allowed"})
            if not authorized(function, self.headers, url.query):
                return self._answer(401, b"", {})
            return self._invoke(worker, function, method, url.query, params, body)
        return self._json(404, {"error": "no function matches this route"})

    def _invoke(
        self, worker: Worker, function: HttpFunction, method: str, query: str,
        params: dict[str, str], body: bytes,
    ) -> None:  # fmt: skip
        http = protos.RpcHttp(
            method=method,
            url=f"http://{self.headers.get('Host', 'localhost')}{self.path}",
            headers=dict(self.headers.items()),
            body=protos.TypedData(bytes=body),
            params=params,
            query=dict(parse_qsl(query, keep_blank_values=True)),
        )
        answer = worker.invoke(function, http)
        if isinstance(answer, str):
            return self._json(504 if answer == "timeout" else 503, {"error": answer})
        response = answer.invocation_response
        if (error := failure(response.result)) is not None:
            log(f"{function.name} failed: {error}")
            return self._json(500, {"error": error})
        returned = response.return_value
        if returned.WhichOneof("data") != "http":
            data = returned.string.encode() if returned.WhichOneof("data") == "string" else b""
            return self._answer(200 if data else 204, data, {})
        result = returned.http
        body = result.body
        data = body.string.encode() if body.WhichOneof("data") == "string" else body.bytes
        self._answer(int(result.status_code or 200), data, dict(result.headers))

    def _reload(self, worker: Worker) -> None:
        """The stand-in's own trigger (the real host sends it only at specialisation)."""
        answer = worker.reload()
        if isinstance(answer, str):
            return self._json(503, {"error": answer})
        error = failure(answer.function_environment_reload_response.result)
        log(f"FunctionEnvironmentReloadRequest sent on demand: {error or 'Success'}")
        return self._json(200 if error is None else 500, {"result": error or "Success"})

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
        HOST.stopping = True
        worker = HOST.worker
        if worker and worker.process and worker.process.poll() is None:
            worker.process.terminate()
        log("stopping")
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server = http.server.ThreadingHTTPServer(("0.0.0.0", http_port()), Handler)
    version = os.environ.get("HOST_VERSION")
    log(f"stand-in host {version} as uid {os.getuid()}, listening on port {http_port()}")
    threading.Thread(target=HOST.start, daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
