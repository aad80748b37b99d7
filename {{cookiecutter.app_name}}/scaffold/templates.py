"""What `make new-function` writes (string.Template: $name, $secret, $field). Each text, once
substituted with names as long as `new_function.py` allows, is ruff- and mypy-clean as it stands."""

HTTP = '''\
"""$name: an HTTP function behind a function key (the app's default auth level)."""

import json

import azure.functions as func

bp = func.Blueprint()


@bp.route(route="$name", methods=["GET"])
def $name(req: func.HttpRequest) -> func.HttpResponse:
    body = {"message": "$name answers", "name": req.params.get("name", "world")[:64]}
    return func.HttpResponse(json.dumps(body), mimetype="application/json")
'''

HTTP_VAULT = '''\
"""$name: an HTTP function behind a function key.

It uses the secret `$secret` (settings/declared.py).
"""

import json
import logging

import azure.functions as func

import settings

bp = func.Blueprint()
logger = logging.getLogger(__name__)


@bp.route(route="$name", methods=["GET"])
def $name(req: func.HttpRequest) -> func.HttpResponse:
    try:
        key = settings.get().secrets.$field.get_secret_value()
    except settings.SecretsUnavailableError as error:
        logger.error("$name cannot run: %s", error)  # names the secret, never a value
        unavailable = json.dumps({"error": "a required secret is unavailable; see the app's log"})
        return func.HttpResponse(unavailable, status_code=503, mimetype="application/json")
    # Use `key` here (call your service with it); never log it or put it in an answer.
    body = {"message": "$name answers", "secret_loaded": bool(key)}
    return func.HttpResponse(json.dumps(body), mimetype="application/json")
'''

TIMER = '''\
"""$name: a timer function, every five minutes.

The schedule is NCRONTAB (second minute hour day month weekday). The host keeps the schedule's
state and a lock in AzureWebJobsStorage (Azurite under `make run`).
"""

import logging

import azure.functions as func

bp = func.Blueprint()
logger = logging.getLogger(__name__)


@bp.timer_trigger(arg_name="timer", schedule="0 */5 * * * *")
def $name(timer: func.TimerRequest) -> None:
    if timer.past_due:
        logger.warning("$name runs late")
    logger.info("$name ran")
'''

TIMER_VAULT = '''\
"""$name: a timer function, every five minutes.

It uses the secret `$secret` (settings/declared.py).
The schedule is NCRONTAB (second minute hour day month weekday). The host keeps the schedule's
state and a lock in AzureWebJobsStorage (Azurite under `make run`).
"""

import logging

import azure.functions as func

import settings

bp = func.Blueprint()
logger = logging.getLogger(__name__)


@bp.timer_trigger(arg_name="timer", schedule="0 */5 * * * *")
def $name(timer: func.TimerRequest) -> None:
    if timer.past_due:
        logger.warning("$name runs late")
    try:
        key = settings.get().secrets.$field.get_secret_value()
    except settings.SecretsUnavailableError as error:
        logger.error("$name skipped: %s", error)  # names the secret, never a value
        return
    # Use `key` here (call your service with it); never log it.
    logger.info("$name ran (secret loaded: %s)", bool(key))
'''

HTTP_TEST = '''\
"""$name, called directly as the worker calls it (written by `make new-function`)."""

import json
$path_import
import azure.functions as func

from blueprints.$name import $name


def call_$name(**params: str) -> func.HttpResponse:
    request = func.HttpRequest(method="GET", url="/api/$name", params=params, body=b"")
    function = $name.build().get_user_function()
    response = function(request)
    assert isinstance(response, func.HttpResponse)
    return response


def test_${name}_answers() -> None:
    response = call_$name(name="Ada")
    assert response.status_code == 200
    assert json.loads(response.get_body()) == $expected
'''

HTTP_VAULT_TEST = """

def test_${name}_answers_503_without_its_secret(development_secrets: Path) -> None:
    development_secrets.write_text("{}")
    assert call_$name().status_code == 503
"""

TIMER_TEST = '''\
"""$name, called directly as the worker calls it (written by `make new-function`)."""

import logging
$path_import
import pytest
from azure.functions.timer import TimerRequest

from blueprints.$name import $name


def run_$name() -> None:
    function = $name.build().get_user_function()
    function(TimerRequest(past_due=False))


def test_${name}_runs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    run_$name()
    assert $expected in caplog.text
'''

TIMER_VAULT_TEST = """

def test_${name}_skips_without_its_secret(
    development_secrets: Path, caplog: pytest.LogCaptureFixture
) -> None:
    development_secrets.write_text("{}")
    run_$name()
    assert "$name skipped: required secret '$secret'" in caplog.text
"""

FUNCTIONS = {"http": {False: HTTP, True: HTTP_VAULT}, "timer": {False: TIMER, True: TIMER_VAULT}}


def tests_for(trigger: str, uses_secret: bool) -> str:
    """The test module for a function (still with $name, $secret)."""
    path_import = "from pathlib import Path\n" if uses_secret else ""
    if trigger == "http":
        expected = (
            '{\n        "message": "$name answers",\n        "secret_loaded": True,\n    }'
            if uses_secret
            else '{"message": "$name answers", "name": "Ada"}'
        )
        text, more = HTTP_TEST, HTTP_VAULT_TEST
    else:
        expected = '"$name ran (secret loaded: True)"' if uses_secret else '"$name ran"'
        text, more = TIMER_TEST, TIMER_VAULT_TEST
    text = text.replace("$path_import", path_import).replace("$expected", expected)
    return text + more if uses_secret else text
