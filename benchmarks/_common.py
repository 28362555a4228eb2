"""Shared helpers of the benchmark scripts: matmul roof, load, timing, JSON output.

Every figure a script prints is meant to be read as a ratio to the matmul rate measured
in the same process (this machine is shared, so absolute seconds drift with the load).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"


def loadavg() -> list[float]:
    """The 1/5/15-minute load averages (other engineers share these 2 cores)."""
    try:
        return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]
    except OSError:
        return []


def max_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def matmul_gflops(dtype: torch.dtype = torch.float32, n: int = 2048, reps: int = 5) -> float:
    """Median GFLOP/s of an n×n matmul (the roof R, or R16 for bfloat16)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    out = torch.empty(n, n, dtype=dtype)
    torch.mm(a, b, out=out)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        torch.mm(a, b, out=out)
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / statistics.median(times) / 1e9


def time_runs(fn: Callable[[], Any], reps: int, warmup: int = 1) -> list[float]:
    """Wall-clock seconds of ``reps`` calls of ``fn`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def summary(times: list[float]) -> dict[str, float]:
    """Median, min and max of a list of seconds, rounded."""
    return {
        "median_s": round(statistics.median(times), 4),
        "min_s": round(min(times), 4),
        "max_s": round(max(times), 4),
    }


def environment() -> dict[str, Any]:
    """What a reader needs to compare two result files."""
    return {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "glibc_tunables": os.environ.get("GLIBC_TUNABLES", ""),
        "loadavg_start": loadavg(),
    }


def run_worker(script: Path, args: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``script --worker ...`` in a fresh process and parse the JSON it prints last."""
    proc = subprocess.run(
        [sys.executable, str(script), "--worker", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-5:], "args": args}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def emit(result: dict[str, Any], out: str | None) -> None:
    """Print ``result`` as JSON (with the command line) and write it to ``out`` if given."""
    result = {"command": "python " + " ".join(sys.argv), **result, "loadavg_end": loadavg()}
    text = json.dumps(result, indent=2)
    print(text)
    if out:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
