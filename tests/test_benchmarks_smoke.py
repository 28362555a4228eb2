"""The benchmark scripts still run against the library's current API (their --quick modes).

Figures are not asserted here (timings belong in benchmarks/results/); a script that no
longer matches a constructor or a function signature fails.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.slow
@pytest.mark.parametrize("script", ["tcm.py", "forward.py", "memory.py"])
def test_benchmark_quick_mode_runs(script: str) -> None:
    out = subprocess.run(
        [sys.executable, str(BENCH / script), "--quick"], capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    start = out.stdout.index("{")
    report = json.loads(out.stdout[start:])
    assert report["benchmark"] in script


@pytest.mark.slow
def test_enhance_batch_benchmark_runs_the_command_on_a_folder() -> None:
    out = subprocess.run(
        [sys.executable, str(BENCH / "enhance_batch.py"), "--big", "300x400", "--small", "1"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout[out.stdout.index("{") :])
    assert report["exit_code"] == 0 and report["written"] == ["big.png", "small0.png"]
    assert report["peak_rss_mb"] > 0
