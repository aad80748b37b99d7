"""What the template's own `make test` tells a person: how long it takes, where the quick
subset is, and negative controls that read as expected failures in a passing run's log."""

import re

from conftest import TEMPLATE, control_text, run

VERIFY_OUTPUT = """\
check | result | detail
no shells | FAIL | /bin/sh
worker runs as funcworker, not root | FAIL | uid 0
no canary in os.environ | pass |
verify-image: 2 checks failed
make[1]: *** [Makefile:88: verify-image] Error 1
"""


def test_a_negative_controls_failures_read_as_expected() -> None:
    text = control_text("verify-image on the unhardened app stage", VERIFY_OUTPUT)
    assert text.splitlines()[0] == (
        "negative control, verify-image on the unhardened app stage: every failure below is expected"
    )
    assert "no shells | FAIL (expected) | /bin/sh" in text
    assert not re.search(r"\bFAIL\b(?! \(expected\))", text), text
    assert "***" not in text and "Error 1" not in text
    assert "make stopped with an error, as this negative control expects" in text


def test_readme_gives_make_tests_duration_and_the_quick_subset() -> None:
    readme = (TEMPLATE / "README.md").read_text()
    assert "`make test` takes 10 to 15 minutes on a 2-core machine" in readme
    listed = run(["make", "--no-print-directory", "-s", "help"], cwd=TEMPLATE).stdout
    assert re.search(r"^quick\s+the answers and every bake", listed, re.MULTILINE), listed
