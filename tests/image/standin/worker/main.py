# TEST FIXTURE, not part of the product: the stand-in worker's gRPC front end, installed as
# proxy_worker/main.py (3.13) or azure_functions_worker/main.py (up to 3.12) beside worker.py in
# /azure-functions-host/workers/python/<version>/LINUX/X64.
"""Connects to the host over the Functions gRPC protocol and hands each request to the real runtime.

The front ends Azure ships (proxy_worker for 3.13, azure_functions_worker 4.x) are not installable
here; this one is as thin as the protocol allows. Like proxy_worker's dispatcher
(Azure/azure-functions-python-worker, workers/proxy_worker/dispatcher.py) it opens one
`FunctionRpc.EventStream` to `--host:--port`, sends `StartStream` with the worker id, passes each
request to the handler of the same name in `azure_functions_runtime` (PyPI, which indexes the app,
converts the bindings and calls the functions) wrapped as that dispatcher wraps it (`.request`, and
`.properties` with the generated `protos` module and the host), starts the runtime's thread pool
on init and reload, answers `WorkerStatusRequest` itself, and sends logs as `RpcLog`.

One message is the stand-in's own: right after `StartStream` an `RpcLog` of category
`standin.worker.start` tells the host how this process was started (argv, executable, PYTHONPATH,
the names of its environment, never a value), for the image tests of the launcher's re-exec.
"""

import argparse
import asyncio
import json
import logging
import os
import platform
import queue
import sys
import threading
from types import SimpleNamespace
from typing import Any

START_CATEGORY = "standin.worker.start"
# Each request the host sends: the runtime's handler, and the StreamingMessage field of the answer.
HANDLERS = {
    "worker_init_request": "worker_init_response",
    "function_environment_reload_request": "function_environment_reload_response",
    "functions_metadata_request": "function_metadata_response",
    "function_load_request": "function_load_response",
    "invocation_request": "invocation_response",
}


def log(message: str) -> None:
    print(f"standin-worker: {message}", file=sys.stderr, flush=True)


def main(started_as: str) -> None:
    """Serve the host; `started_as` names the module the worker runs as (what worker.py chose)."""
    parser = argparse.ArgumentParser()
    for option in ("--host", "--port", "--workerId", "--requestId"):
        parser.add_argument(option, required=True)
    parser.add_argument("--grpcMaxMessageLength", type=int, default=0)
    args, _ = parser.parse_known_args()
    log(
        f"started pid {os.getpid()} uid {os.getuid()} gid {os.getgid()}"
        f" python {platform.python_version()} executable {sys.executable}"
    )
    import azure_functions_runtime as runtime
    import grpc
    from standin_rpc import function_rpc_pb2 as protos
    from standin_rpc import function_rpc_pb2_grpc as services

    outgoing: queue.Queue[Any] = queue.Queue()

    def send(**content: Any) -> None:
        outgoing.put(protos.StreamingMessage(request_id=args.requestId, **content))

    send(start_stream=protos.StartStream(worker_id=args.workerId))
    report = {
        "workerId": args.workerId, "requestId": args.requestId, "pid": os.getpid(),
        "uid": os.getuid(), "gid": os.getgid(), "euid": os.geteuid(),
        "python": platform.python_version(), "module": started_as,
        "executable": sys.executable, "argv": sys.orig_argv,
        "pythonpath": os.environ.get("PYTHONPATH"), "environ": sorted(os.environ),
        "runtime": runtime.__name__, "runtime_file": runtime.__file__,
    }  # fmt: skip
    send(rpc_log=protos.RpcLog(category=START_CATEGORY, level=protos.RpcLog.Information,
                               message=json.dumps(report)))  # fmt: skip

    class ToHost(logging.Handler):
        """The runtime's and the app's log records go to the host, as the real worker's do."""

        def emit(self, record: logging.LogRecord) -> None:
            level = {50: "Critical", 40: "Error", 30: "Warning", 20: "Information"}
            send(rpc_log=protos.RpcLog(
                category=record.name, message=self.format(record),
                level=protos.RpcLog.Level.Value(level.get(record.levelno, "Debug")),
            ))  # fmt: skip

    logging.getLogger().addHandler(ToHost())
    logging.getLogger().setLevel(logging.INFO)

    limit = args.grpcMaxMessageLength
    options = [("grpc.max_receive_message_length", limit), ("grpc.max_send_message_length", limit)]
    channel = grpc.insecure_channel(f"{args.host}:{args.port}", options if limit > 0 else [])
    stream = services.FunctionRpcStub(channel).EventStream(iter(outgoing.get, None))
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    async def dispatch(message: Any) -> None:
        kind = message.WhichOneof("content")
        if kind == "worker_status_request":
            return send(worker_status_response=protos.WorkerStatusResponse())
        if kind not in HANDLERS:
            return log(f"no handler for a {kind} message")
        if kind in ("worker_init_request", "function_environment_reload_request"):
            runtime.start_threadpool_executor()
        request = SimpleNamespace(
            name=kind, request=message, properties={"protos": protos, "host": args.host}
        )
        try:
            answer = await getattr(runtime, kind)(request)
        except Exception as error:  # the runtime answers its own failures; this is a crash
            log(f"the runtime's {kind} raised {type(error).__name__}")
            raise
        send(**{HANDLERS[kind]: answer})

    def receive() -> None:
        try:
            for message in stream:
                asyncio.run_coroutine_threadsafe(dispatch(message), loop)
        except grpc.RpcError as error:
            log(f"the host's stream ended: {error.code().name}")
        loop.call_soon_threadsafe(loop.stop)

    threading.Thread(target=receive, name="grpc-receive", daemon=True).start()
    loop.run_forever()
    outgoing.put(None)
    log("the host closed the connection")
