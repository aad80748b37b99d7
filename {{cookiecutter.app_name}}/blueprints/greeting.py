"""Sample HTTP function behind a function key (the app's default auth level)."""

import json

import azure.functions as func

MAX_NAME_LENGTH = 64

bp = func.Blueprint()


def _error(status: int, message: str) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps({"error": message}), status_code=status, mimetype="application/json"
    )


@bp.route(route="hello", methods=["GET"])
def hello(req: func.HttpRequest) -> func.HttpResponse:
    name = req.params.get("name", "world")
    if not name or len(name) > MAX_NAME_LENGTH or not name.isprintable():
        return _error(400, f"name must be 1 to {MAX_NAME_LENGTH} printable characters")
    body = {"message": f"Hello, {name}!"}
    return func.HttpResponse(json.dumps(body), mimetype="application/json")
