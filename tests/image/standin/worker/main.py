# TEST FIXTURE, not part of the product: the stand-in Python language worker's protocol code,
# installed as azure_functions_worker/main.py (up to 3.12) or azure_functions_runtime/main.py
# (3.13) beside worker.py in /azure-functions-host/workers/python/<version>/LINUX/X64.
"""Loads the function app and runs its HTTP functions for the stand-in host.

Run as `python -m azure_functions_worker` or `python -m proxy_worker` by worker.py (or imported by
it), with the host's arguments (`--host H --port N --workerId W --requestId R` and the rest); it
connects back and speaks JSON lines (README.md). It imports `function_app` from the script root
the host sends, indexes `app.get_functions()`, and calls the user function with a real
`azure.functions.HttpRequest`. Standard library plus azure-functions (installed with the app's
requirements). It never prints a variable's value; a function that raises is answered with its
exception's class name only.
"""

import argparse
import asyncio
import base64
import importlib
import inspect
import json
import os
import platform
import socket
import sys
import traceback
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl


def log(message: str) -> None:
    print(f"standin-worker: {message}", file=sys.stderr, flush=True)


class HttpFunction:
    """One indexed function: its route template, methods and the name of its trigger parameter."""

    def __init__(self, function: Any, route_prefix: str) -> None:
        self.name = function.get_function_name()
        self.user_function = function.get_user_function()
        trigger = next(
            b
            for b in json.loads(function.get_function_json())["bindings"]
            if b["type"] == "httpTrigger"
        )
        self.parameter = trigger["name"]
        self.methods = {m.upper() for m in trigger.get("methods") or []}
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
                return (
                    params
                    if is_param and part.endswith("?}") and index == len(self.template) - 1
                    else None
                )
            if is_param:
                params[name] = segments[index]
            elif part.lower() != segments[index].lower():
                return None
        return params if len(segments) == len(self.template) else None


class Worker:
    def __init__(self) -> None:
        self.functions: list[HttpFunction] = []

    def init(self, script_root: str) -> dict[str, Any]:
        try:
            sys.path.insert(0, script_root)
            module = importlib.import_module("function_app")
            app = next(
                v
                for v in vars(module).values()
                if hasattr(v, "get_functions") and not isinstance(v, type)
            )
            host_json = Path(script_root, "host.json")
            settings = json.loads(host_json.read_text()) if host_json.exists() else {}
            prefix = settings.get("extensions", {}).get("http", {}).get("routePrefix", "api")
            self.functions = [
                HttpFunction(f, prefix) for f in app.get_functions() if self._is_http(f)
            ]
        except Exception as error:
            traceback.print_exc()  # the worker's own log; the host is told the class name only
            return {"error": type(error).__name__}
        log(f"indexed {len(self.functions)} HTTP function(s)")
        return {"functions": [f.name for f in self.functions]}

    @staticmethod
    def _is_http(function: Any) -> bool:
        return any(
            b["type"] == "httpTrigger" for b in json.loads(function.get_function_json())["bindings"]
        )

    def invoke(self, message: dict[str, Any]) -> dict[str, Any]:
        import azure.functions as func

        method = message["method"].upper()
        for function in self.functions:
            params = function.match(message["path"])
            if params is None:
                continue
            if function.methods and method not in function.methods:
                return self._plain(405, "method not allowed")
            request = func.HttpRequest(
                method=method,
                url=message["url"],
                headers=message["headers"],
                params=dict(parse_qsl(message["query"], keep_blank_values=True)),
                route_params=params,
                body=base64.b64decode(message["body"]),
            )
            try:
                result = function.user_function(**{function.parameter: request})
                if inspect.iscoroutine(result):
                    result = asyncio.run(result)
            except Exception as error:
                frame = traceback.extract_tb(error.__traceback__)[-1]
                where = f"{Path(frame.filename).name}:{frame.lineno}"
                log(f"{function.name} raised {type(error).__name__} at {where}")
                return {"error": type(error).__name__, "raised": True}
            return self._response(result)
        return self._plain(404, "no function matches this route")

    @staticmethod
    def _plain(status: int, text: str) -> dict[str, Any]:
        body = base64.b64encode(json.dumps({"error": text}).encode()).decode()
        return {"status": status, "headers": {"Content-Type": "application/json"}, "body": body}

    @staticmethod
    def _response(result: Any) -> dict[str, Any]:
        if result is None:
            return {"status": 204, "headers": {}, "body": ""}
        if isinstance(result, (str, bytes)):
            data = result.encode() if isinstance(result, str) else result
            return {"status": 200, "headers": {}, "body": base64.b64encode(data).decode()}
        headers = dict(result.headers.items())
        if result.mimetype and not any(h.lower() == "content-type" for h in headers):
            headers["Content-Type"] = f"{result.mimetype}; charset={result.charset}"
        body = result.get_body() or b""
        return {
            "status": result.status_code,
            "headers": headers,
            "body": base64.b64encode(body).decode(),
        }


def main(started_as: str) -> None:
    """Serve the host; `started_as` names the module the worker runs as (what worker.py chose)."""
    parser = argparse.ArgumentParser()
    for option in ("--host", "--port", "--workerId", "--requestId"):
        parser.add_argument(option, required=True)
    args, _ = parser.parse_known_args()
    log(
        f"started pid {os.getpid()} uid {os.getuid()} gid {os.getgid()}"
        f" python {platform.python_version()} executable {sys.executable}"
    )
    connection = socket.create_connection((args.host, int(args.port)))
    worker = Worker()

    def send(message: dict[str, Any]) -> None:
        connection.sendall(json.dumps(message).encode() + b"\n")

    send(
        {
            "type": "start",
            "workerId": args.workerId,
            "requestId": args.requestId,
            "pid": os.getpid(),
            "uid": os.getuid(),
            "gid": os.getgid(),
            "euid": os.geteuid(),
            "python": platform.python_version(),
            # How this process was started, for the tests of the real worker's re-exec: names
            # and paths only, never a value of the environment.
            "module": started_as,
            "executable": sys.executable,
            "argv": sys.orig_argv,
            "pythonpath": os.environ.get("PYTHONPATH"),
            "environ": sorted(os.environ),
        }
    )
    with connection.makefile("rb") as lines:
        for line in lines:
            message = json.loads(line)
            try:
                if message["type"] == "init":
                    answer = worker.init(message["scriptRoot"])
                elif message["type"] == "invoke":
                    answer = worker.invoke(message)
                else:
                    answer = {"error": f"unknown message type {message['type']!r}"}
            except Exception as error:  # one bad message must not take the worker down
                answer = {"error": type(error).__name__, "raised": True}
            send({"type": f"{message['type']}_result", "id": message["id"], **answer})
    log("the host closed the connection")
