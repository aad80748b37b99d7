"""The generated project's `make bench-startup` on the stand-ins: container start to the first 200
of /api/health, hardened image against its unhardened app stage, pairwise in one run, split at
the stand-in host's and worker's log lines. The figures go into CI's log; only a bound that
noise cannot reach is asserted (a hardened start twice as slow means something broke)."""

import re
import sys

import pytest
from image.engine import ENGINE, TEST_IMAGES
from test_image import build

from conftest import run, show_in_log

# The stand-in host's and worker's log lines (tests/image/standin/standin_host.py, worker/main.py).
STANDIN_MARKS = (
    "--mark 'host starts the worker=starting worker' "
    "--mark 'worker interpreter up=standin-worker: started' "
    "--mark 'worker connected=worker connected' "
    "--mark 'app imported, functions indexed=worker indexed'"
)
RATIO_BOUND = 2.0
VERSION = "3.13"  # the version whose worker loads azure-functions-runtime on Azure too


def test_startup_benchmark_splits_hardened_against_unhardened(
    tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    built = build(VERSION, tmp_path_factory)
    result = run(
        ["make", "--no-print-directory", "-C", str(built.project), "bench-startup",
         f"ENGINE={ENGINE}", f"IMAGE={built.image}",
         f"BASELINE_IMAGE={TEST_IMAGES}/unhardened:{built.version}",
         f"BASE_IMAGE={built.base}", f"BUILDER_IMAGE={built.builder}",
         f"STARTUP_MARKS={STANDIN_MARKS}", f"PYTHON={sys.executable}"],
        timeout=1800,
    )  # fmt: skip
    table = result.stdout[result.stdout.index("container start to first 200") :]
    show_in_log(capsys, f"make bench-startup, Python {built.version}\n{table}")
    for part in ("engine", "host's own start", "worker interpreter up", "first answer"):
        assert re.search(rf"^  {re.escape(part)} +\d+ ms +\d+ ms", table, re.M), table
    total = re.search(r"^  total +(\d+) ms +(\d+) ms +(\d+\.\d+)$", table, re.M)
    assert total, table
    assert float(total.group(3)) <= RATIO_BOUND
