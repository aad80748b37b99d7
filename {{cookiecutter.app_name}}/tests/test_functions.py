"""The functions called directly, as the worker calls them, with real `HttpRequest` objects."""

import hashlib
import hmac
import json
import logging
from pathlib import Path

import azure.functions as func
import pytest

import settings
from blueprints.greeting import hello
from blueprints.health import health
from function_app import app
from settings.declared import Environment
from settings.sources import DevelopmentFileSource
from tests.conftest import DEVELOPMENT_SIGNING_KEY, with_new_secret


def call(function: object, request: func.HttpRequest) -> func.HttpResponse:
    user_function = function.build().get_user_function()  # type: ignore[attr-defined]
    response = user_function(request)
    assert isinstance(response, func.HttpResponse)
    return response


def get(route: str, **params: str) -> func.HttpRequest:
    return func.HttpRequest(method="GET", url=f"/api/{route}", params=params, body=b"")


def test_health_answers_ok() -> None:
    response = call(health, get("health"))
    assert response.status_code == 200
    assert json.loads(response.get_body()) == {"status": "ok"}


def expected_signature(message: str) -> str:
    key = DEVELOPMENT_SIGNING_KEY.encode()
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def test_hello_greets_the_given_name_and_signs_it() -> None:
    response = call(hello, get("hello", name="Ada"))
    assert response.status_code == 200
    assert json.loads(response.get_body()) == {
        "message": "Hello, Ada!",
        "signature": expected_signature("Hello, Ada!"),
    }


def test_hello_defaults_to_world() -> None:
    assert json.loads(call(hello, get("hello")).get_body())["message"] == "Hello, world!"


def test_hello_answers_503_without_its_signing_key_and_logs_its_name(
    development_secrets: Path, caplog: pytest.LogCaptureFixture
) -> None:
    development_secrets.write_text("{}")
    response = call(hello, get("hello"))
    assert response.status_code == 503
    assert DEVELOPMENT_SIGNING_KEY not in response.get_body().decode()
    assert "hello cannot sign: required secret 'greeting-signing-key'" in caplog.text


def test_hello_keeps_answering_when_another_secret_is_missing(
    development_secrets: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A new function's secret, declared but not yet in local.secrets.json (or the vault).
    with_new = with_new_secret("not_yet_provided", "not-yet-provided")
    environment = Environment(key_vault_url=None, azure_client_id=None, refresh_seconds=600)
    source = DevelopmentFileSource(development_secrets)
    settings.install(settings.SecretStore(source, environment, secrets_type=with_new))
    caplog.set_level(logging.ERROR)
    assert call(hello, get("hello")).status_code == 200
    assert "secret 'not-yet-provided' is unavailable" in caplog.text


def test_health_needs_no_secret(development_secrets: Path) -> None:
    development_secrets.unlink()
    assert call(health, get("health")).status_code == 200


def test_hello_rejects_an_oversize_name() -> None:
    response = call(hello, get("hello", name="x" * 65))
    assert response.status_code == 400
    assert "name must be" in json.loads(response.get_body())["error"]


def test_hello_rejects_control_characters() -> None:
    assert call(hello, get("hello", name="a\nb")).status_code == 400


def test_app_indexes_both_functions_with_their_auth_levels() -> None:
    functions = app.get_functions()
    triggers = {f.get_function_name(): f.get_bindings_dict()["bindings"][0] for f in functions}
    levels = {name: t["authLevel"].value for name, t in triggers.items() if "authLevel" in t}
    assert levels["health"] == "anonymous"
    assert levels["hello"] == "function"
{%- if cookiecutter.workshop %}
    assert levels["download"] == "anonymous"
{%- endif %}
