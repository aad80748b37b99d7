"""The security alert (infra/alerts.bicep), parsed with pycep like tests/test_infra.py: on by default,
any event in five minutes, mailing the answer or the subscription's Owners; and its query, taken
from the Bicep, run over the lines the launcher, its supervisor and the identity broker really print
in the launcher's attack tests, so that the alert and the printed shape cannot drift apart."""

import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from pycep import BicepParser

from conftest import IN_CI, TEMPLATE, run, show_in_log

OWNER_ROLE_ID = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
MARKER = "launcher-security-event:"
# The attack tests whose output holds every kind: each refused call, forgery and its control,
# a refused token request, a refusal to start (launcher/tests).
ATTACK_TESTS = [
    "tests/test_detection.py",
    "tests/test_identity_broker.py::test_other_audiences_and_identities_are_refused_before_the_platform",
    "tests/test_privileges.py::test_non_root_is_refused_by_default",
]


def bake_with(tmp_path_factory: pytest.TempPathFactory, **answers: Any) -> Path:
    from cookiecutter.main import cookiecutter

    out = tmp_path_factory.mktemp("alerts")
    return Path(cookiecutter(str(TEMPLATE), no_input=True, output_dir=str(out), extra_context=answers))


def the(bicep: dict[str, Any], type_: str) -> dict[str, Any]:
    (found,) = [r["config"] for r in bicep["resources"].values() if r["type"] == type_]
    return found


def alerts_of(project: Path) -> dict[str, Any]:
    return BicepParser().parse(text=(project / "infra" / "alerts.bicep").read_text())


def query_patterns(bicep: dict[str, Any]) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """The query's filter (`matches regex`) and its kind (`extract`), as the rule runs them."""
    rule = the(bicep, "Microsoft.Insights/scheduledQueryRules")
    (condition,) = rule["properties"]["criteria"]["allOf"]
    query = bicep["variables"][condition["query"]]["value"]
    assert query.split()[0] == "traces"  # Application Insights' table of log lines
    # Only what the host read from the worker process's stdout and stderr, through the launcher:
    # the worker's own logging reaches the host over gRPC, unfiltered, under Function.<name>.User.
    assert '| where customDimensions.Category == "Host.Function.Console"\n' in query
    (where,) = re.findall(r'\| where message matches regex @"([^"]*)"', query)
    (kind,) = re.findall(r'\| extend kind = extract\(@"([^"]*)", 1, message\)', query)
    return re.compile(where), re.compile(kind)  # RE2 and Python agree on these classes


@pytest.fixture(scope="module")
def default_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bake_with(tmp_path_factory)


def test_the_alert_is_on_and_fires_on_any_event_per_kind(default_project: Path) -> None:
    bicep = alerts_of(default_project)
    rule = the(bicep, "Microsoft.Insights/scheduledQueryRules")
    props = rule["properties"]
    assert rule["kind"] == "LogAlert" and props["enabled"] is True
    assert props["scopes"] == ["insightsId"]
    assert (props["evaluationFrequency"], props["windowSize"]) == ("PT5M", "PT5M")
    (condition,) = props["criteria"]["allOf"]
    assert (condition["timeAggregation"], condition["operator"], condition["threshold"]) == ("Count", "GreaterThan", 0)
    assert condition["dimensions"] == [{"name": "kind", "operator": "Include", "values": ["*"]}]
    (group,) = props["actions"]["actionGroups"]
    assert group["operator"]["operands"] == {"operand_1": "team", "operand_2": "id"}
    main = (default_project / "infra" / "main.bicep").read_text()
    assert "module alerts 'alerts.bicep'" in main and "insightsId: insights.id" in main


def test_by_default_it_mails_the_subscriptions_owners(default_project: Path) -> None:
    bicep = alerts_of(default_project)
    assert bicep["parameters"]["notifyEmail"]["default"] == ""
    assert bicep["variables"]["ownerRoleId"]["value"] == OWNER_ROLE_ID
    text = (default_project / "infra" / "alerts.bicep").read_text()
    assert "armRoleReceivers: empty(notifyEmail) ? [" in text
    assert "emailReceivers: empty(notifyEmail) ? [] : [" in text


def test_the_answer_names_who_is_mailed(tmp_path_factory: pytest.TempPathFactory) -> None:
    project = bake_with(tmp_path_factory, security_alert_email="security@contoso.com")
    assert alerts_of(project)["parameters"]["notifyEmail"]["default"] == "security@contoso.com"
    assert "security@contoso.com" in (project / "SECURITY.md").read_text()


def test_the_query_matches_exactly_the_events_the_launcher_prints(
    baked_default: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if os.geteuid() != 0:
        message = "the launcher's attack tests need root (root-owned policies, switching users)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    where, kind = query_patterns(alerts_of(baked_default))
    record = tmp_path / "event-lines"
    env = {**os.environ, "LAUNCHER_EVENT_LINES": str(record), "PYTHONDONTWRITEBYTECODE": "1"}
    result = run([sys.executable, "-m", "pytest", "-q", "-o", "addopts=", "-p", "no:cacheprovider",
                  *ATTACK_TESTS], cwd=baked_default / "launcher", env=env, timeout=600)  # fmt: skip
    assert re.search(r"^\d+ passed", result.stdout, re.M), result.stdout[-2000:]
    lines = record.read_text().splitlines()
    events = [line for line in lines if line.startswith(MARKER)]
    others = [line for line in lines if not line.startswith(MARKER)]
    # Every event line as printed fires the alert, with its kind; nothing else does, however close.
    assert [line for line in events if not where.search(line)] == []
    assert [line for line in others if where.search(line)] == []
    seen = {kind.search(line).group(1) for line in events}  # type: ignore[union-attr]
    assert seen == {"syscall", "identity", "launcher", "forged"}
    assert any(line.startswith("worker: (forged) ") for line in others)
    examples = {k: next(line for line in events if f" kind={k} " in line) for k in sorted(seen)}
    show_in_log(capsys, "alert query over the printed lines: "
                        f"{len(events)} events matched, {len(others)} other lines not;\n"
                        + "\n".join(examples.values()))  # fmt: skip
