"""Sample HTTP function behind a function key (the app's default auth level).

It signs its message with HMAC-SHA256 under the Key Vault secret `greeting-signing-key`: a
caller who knows the key can check the signature, which proves the secret arrived without
ever showing it.
"""

import hashlib
import hmac
import json
import logging

import azure.functions as func

import settings

MAX_NAME_LENGTH = 64

bp = func.Blueprint()
logger = logging.getLogger(__name__)


def _error(status: int, message: str) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps({"error": message}), status_code=status, mimetype="application/json"
    )


def sign(key: settings.Secret, message: str) -> str:
    return hmac.new(key.get_secret_value().encode(), message.encode(), hashlib.sha256).hexdigest()


@bp.route(route="hello", methods=["GET"])
def hello(req: func.HttpRequest) -> func.HttpResponse:
    name = req.params.get("name", "world")
    if not name or len(name) > MAX_NAME_LENGTH or not name.isprintable():
        return _error(400, f"name must be 1 to {MAX_NAME_LENGTH} printable characters")
    message = f"Hello, {name}!"
    try:
        signature = sign(settings.get().secrets.greeting_signing_key, message)
    except settings.SecretsUnavailableError as error:
        logger.error("hello cannot sign: %s", error)  # names the secret and vault, no value
        return _error(503, "a required secret is unavailable; see the app's log")
    body = {"message": message, "signature": signature}
    return func.HttpResponse(json.dumps(body), mimetype="application/json")
