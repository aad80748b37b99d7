"""An app team's first function: `make new-function` in a fresh bake writes an HTTP function with
a new secret and a timer function, each with its test; declaring the secret is the only other
edit, and the project's own `make test` (ruff, format, mypy strict, pytest) passes as it stands.
"""

import re
import subprocess
from pathlib import Path

from test_bake import python_for

from conftest import run


def test_new_functions_with_a_new_secret_pass_the_projects_checks(bake) -> None:
    project = bake()
    made = run(["make", "-s", "new-function", "NAME=orders", "TRIGGER=http",
                "SECRET=orders-api-key"], cwd=project)  # fmt: skip
    assert made.stdout.startswith(
        "make new-function: http function orders: function_app.py, settings/declared.py, "
        "blueprints/orders.py, tests/test_orders.py\n"
    ), made.stdout
    assert "make secret-set NAME=orders-api-key" in made.stdout
    run(["make", "-s", "new-function", "NAME=nightly", "TRIGGER=timer"], cwd=project)
    declared = (project / "settings/declared.py").read_text()
    assert 'orders_api_key: Secret = field(metadata=key_vault("orders-api-key"))' in declared
    app = (project / "function_app.py").read_text()
    assert "app.register_functions(orders_bp)" in app and "app.register_functions(nightly_bp)" in app

    python = f"PYTHON={python_for('3.13')}"
    checked = run(["make", "test", python], cwd=project, timeout=900)
    assert re.search(r"\d+ passed", checked.stdout), checked.stdout[-2000:]
    tests = ["test_orders_answers", "test_orders_answers_503_without_its_secret",
             "test_nightly_runs"]  # fmt: skip
    listed = run([str(project / ".venv/bin/python"), "-m", "pytest", "-o", "addopts=", "--co", "-q"],
                 cwd=project).stdout  # fmt: skip
    assert all(f"::{name}" in listed for name in tests), listed
    formatted = run(["make", "format", python], cwd=project)
    assert "files reformatted" not in formatted.stdout, formatted.stdout


def test_a_taken_name_or_an_unknown_trigger_writes_nothing(bake) -> None:
    project = bake()
    before = {p: p.read_text() for p in Path(project).rglob("*.py")}
    for args, message in [
        (["NAME=hello", "TRIGGER=http"], "make new-function: NAME=hello: blueprints/ already has it (greeting.py).\n"),
        (["NAME=orders", "TRIGGER=queue"], "make new-function: TRIGGER='queue': use one of http, timer.\n"),
    ]:  # fmt: skip
        result = run_failing(["make", "-s", "new-function", *args], project)
        assert result == message
    assert {p: p.read_text() for p in Path(project).rglob("*.py")} == before


def run_failing(args: list[str], cwd: Path) -> str:
    """Its stderr without make's own `make: *** ... Error 1` line."""
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)
    assert result.returncode != 0, result.stdout
    lines = result.stderr.splitlines(keepends=True)
    return "".join(line for line in lines if not re.match(r"make(\[\d+\])?: \*\*\*", line))
