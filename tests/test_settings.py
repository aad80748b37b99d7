"""The generated project's settings benchmark: baked, run by its own `make bench-settings`,
and held to issue 5's targets (20 secrets at 100 ms latency in under 3 x latency; no Key Vault
request from 1,000 warm invocations). The figures are printed for the CI log."""

import re
import sys
from pathlib import Path

import pytest
from conftest import run, show_in_log

LATENCY_MS = 100
SECRETS = 20


def test_settings_benchmark_meets_its_targets(bake, capsys: pytest.CaptureFixture[str]) -> None:
    project: Path = bake()
    output = run(["make", "bench-settings", f"PYTHON={sys.executable}"], cwd=project, timeout=900).stdout
    show_in_log(capsys, f"make bench-settings\n{output}")
    load = re.search(
        rf"load {SECRETS} secrets, {LATENCY_MS} ms injected latency: concurrent (\d+) ms "
        r"\(target < (\d+) ms.*sequential baseline (\d+) ms",
        output,
    )
    assert load, output
    concurrent, limit, sequential = map(int, load.groups())
    assert limit == 3 * LATENCY_MS
    assert concurrent < limit, f"concurrent load {concurrent} ms"
    # The baseline proves the latency was really injected: one request after another.
    assert sequential >= SECRETS * LATENCY_MS, f"sequential baseline {sequential} ms"
    warm = re.search(r"Key Vault requests by 1000 warm invocations: (\d+) ", output)
    assert warm, output
    assert int(warm.group(1)) == 0
