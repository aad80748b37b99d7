"""An unconfined worker serves nothing; local development (no launcher policy) says so."""

from pathlib import Path

import pytest

import confinement
from confinement import ConfinedFunctionApp, refusal

CONFINED_STATUS = "Name:\tpython\nNoNewPrivs:\t1\nSeccomp:\t2\nSeccomp_filters:\t1\n"
UNCONFINED_STATUS = "Name:\tpython\nNoNewPrivs:\t0\nSeccomp:\t0\n"


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    path = tmp_path / "policy.conf"
    path.write_text("exec /opt/python/bin/python\n")
    return path


def status(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "status"
    path.write_text(text)
    return path


def test_a_confined_worker_has_no_refusal(tmp_path: Path, policy: Path) -> None:
    assert refusal(policy, status(tmp_path, CONFINED_STATUS), 61000, {"LANG": "C.UTF-8"}) is None


def test_an_unconfined_worker_is_refused_with_every_reason_and_no_value(
    tmp_path: Path, policy: Path
) -> None:
    environ = {"AzureWebJobsStorage": "canary-value", "APPSETTING_X": "canary-value"}
    reason = refusal(policy, status(tmp_path, UNCONFINED_STATUS), 0, environ)
    assert reason == (
        "it runs as root; no_new_privs is not set; no seccomp filter; "
        "the platform's secrets are in its environment (APPSETTING_X, AzureWebJobsStorage)"
    )


def test_without_the_launchers_policy_nothing_is_checked(tmp_path: Path) -> None:
    absent = tmp_path / "absent.conf"
    assert refusal(absent, status(tmp_path, UNCONFINED_STATUS), 0, {"MSI_SECRET": "x"}) is None


def test_an_unconfined_app_indexes_no_function(
    policy: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """These tests run without the launcher's filter: with a policy present, that is a bypass."""
    monkeypatch.setattr(confinement, "POLICY", policy)
    monkeypatch.setattr(confinement, "refusal", lambda: refusal(policy))
    app = ConfinedFunctionApp()
    app.route(route="x")(lambda req: None)
    assert app.get_functions() == []
    line = capsys.readouterr().err
    assert line.startswith("confinement: serving no function: the worker was not started through ")
    assert "no seccomp filter" in line and line.count("\n") == 1


def test_local_development_serves_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(confinement, "POLICY", tmp_path / "absent.conf")
    monkeypatch.setattr(confinement, "refusal", lambda: refusal(tmp_path / "absent.conf"))
    app = ConfinedFunctionApp()
    app.route(route="x")(lambda req: None)
    assert len(app.get_functions()) == 1
    assert capsys.readouterr().err == (
        f"confinement: not checked: {tmp_path / 'absent.conf'} is absent (local development, or "
        "an image built without the launcher); every function is served unconfined\n"
    )
