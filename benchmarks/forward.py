"""Forward time, achieved GFLOP/s and peak RSS of the NaLSuper presets vs image size.

Each (preset, size, mode) runs in a fresh process, so its ``ru_maxrss`` is the peak of
that forward alone; the fp32 (and bf16) 2048² matmul rate R is measured in the same
process, before and after the timed forwards, and the achieved rate F / t is reported
next to it. F is :func:`textrestore.models.cli.count_flops` (reference formulation,
77 text tokens).

Modes: ``fp32`` (default settings: channels_last inside the model), ``bf16`` (CPU
autocast), ``nchw`` (``channels_last=False``), ``compile`` (``torch.compile``, fp32).

Usage::

    python benchmarks/forward.py --quick
    python benchmarks/forward.py --presets nalsuper --sizes 400x600 --modes fp32 bf16 --reps 5
    python benchmarks/forward.py --presets nalsuper --sizes 400x600 --modes fp32 --keep-freed-memory
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    emit,
    environment,
    loadavg,
    matmul_gflops,
    max_rss_mb,
    run_worker,
    summary,
    time_runs,
)

MODES = ("fp32", "bf16", "nchw", "compile")


def worker(
    preset: str, h: int, w: int, mode: str, reps: int, tokens: int, mm_n: int, keep: bool
) -> dict[str, Any]:
    from textrestore.allocator import keep_freed_memory
    from textrestore.models import create_model
    from textrestore.models.cli import count_flops

    kept = keep_freed_memory() if keep else False

    torch.manual_seed(0)
    overrides = {"channels_last": False} if mode == "nchw" else {}
    model = create_model(preset, **overrides).eval()
    image = torch.rand(1, 3, h, w)
    text = torch.randn(1, tokens, model.text_dim)
    rss_model = max_rss_mb()
    bf16 = mode == "bf16"
    mm_dtype = torch.bfloat16 if bf16 else torch.float32
    r_before = matmul_gflops(mm_dtype, n=mm_n, reps=3)
    run = torch.compile(model) if mode == "compile" else model

    def forward() -> None:
        amp = torch.autocast("cpu", torch.bfloat16) if bf16 else contextlib.nullcontext()
        with torch.no_grad(), amp:
            run(image, text)

    forward()  # first call: the peak RSS of one forward in a fresh process
    rss_first = max_rss_mb()
    times = time_runs(forward, reps, warmup=0)
    r_after = matmul_gflops(mm_dtype, n=mm_n, reps=3)
    flops = count_flops(preset, h, w, text_tokens=tokens, **overrides)
    rate = (r_before + r_after) / 2
    t = statistics.median(times)
    roof = flops / 1e9 / rate
    return {
        "preset": preset,
        "size": f"{h}x{w}",
        "mode": mode,
        **summary(times),
        "gflops_model": round(flops / 1e9, 2),
        "achieved_gflops_per_s": round(flops / 1e9 / t, 1),
        "matmul_gflops_per_s": round(rate, 1),
        "matmul_dtype": "bf16" if bf16 else "fp32",
        "matmul_n": mm_n,
        "roof_s": round(roof, 4),
        "time_over_roof": round(t / roof, 3),
        "peak_rss_mb_first_forward": round(rss_first, 1),
        "rss_mb_after_build": round(rss_model, 1),
        "loadavg": loadavg(),
        "glibc_tunables": os.environ.get("GLIBC_TUNABLES", ""),
        "thp_mem_alloc_enable": os.environ.get("THP_MEM_ALLOC_ENABLE", ""),
        "keep_freed_memory": kept,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", nargs="+", default=["nalsuper_t", "nalsuper_s", "nalsuper"])
    p.add_argument("--sizes", nargs="+", default=["128x128", "256x384", "400x600"])
    p.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--tokens", type=int, default=77)
    p.add_argument(
        "--matmul-n", type=int, default=0,
        help="side of the roof matmul (default 2048 fp32, 1024 bf16: bf16 is slow without AVX-512)",
    )  # fmt: skip
    p.add_argument(
        "--env", nargs="*", default=[], metavar="KEY=VALUE",
        help="environment of the worker processes, e.g. GLIBC_TUNABLES=... THP_MEM_ALLOC_ENABLE=1",
    )  # fmt: skip
    p.add_argument(
        "--keep-freed-memory", action="store_true",
        help="call textrestore.allocator.keep_freed_memory() in the worker (as the CLI does)",
    )  # fmt: skip
    p.add_argument("--quick", action="store_true", help="tiny sizes, seconds (CI smoke)")
    p.add_argument("--out", help="write the JSON here too")
    p.add_argument("--plot", help="write a PNG of time and RSS vs pixels here")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        (preset, size, mode) = args.presets[0], args.sizes[0], args.modes[0]
        h, w = (int(v) for v in size.split("x"))
        mm_n = args.matmul_n or (1024 if mode == "bf16" else 2048)
        row = worker(preset, h, w, mode, args.reps, args.tokens, mm_n, args.keep_freed_memory)
        print(json.dumps(row))
        return 0
    if args.quick:
        args.presets, args.sizes, args.modes, args.reps = (
            ["nalsuper_t"],
            ["32x48"],
            ["fp32", "bf16"],
            2,
        )
        args.matmul_n = 256
    env = environment()
    rows = []
    for preset in args.presets:
        for size in args.sizes:
            for mode in args.modes:
                row = run_worker(
                    Path(__file__),
                    ["--presets", preset, "--sizes", size, "--modes", mode,
                     "--reps", str(args.reps), "--tokens", str(args.tokens),
                     "--matmul-n", str(args.matmul_n),
                     *(["--keep-freed-memory"] if args.keep_freed_memory else [])],
                    env=dict(kv.split("=", 1) for kv in args.env),
                )  # fmt: skip
                row["env"] = args.env
                rows.append(row)
                print(json.dumps(row), file=sys.stderr)
    if args.plot:
        plot(rows, args.plot)
    emit({"benchmark": "forward", "environment": env, "rows": rows}, args.out)
    return 0


def plot(rows: list[dict[str, Any]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11, 4))
    keys = sorted({(r["preset"], r["mode"]) for r in rows if "error" not in r})
    for preset, mode in keys:
        pts = [r for r in rows if r.get("preset") == preset and r.get("mode") == mode]
        px = [int(r["size"].split("x")[0]) * int(r["size"].split("x")[1]) / 1e6 for r in pts]
        ax_t.plot(px, [r["time_over_roof"] for r in pts], "o-", label=f"{preset} {mode}")
        ax_m.plot(px, [r["peak_rss_mb_first_forward"] for r in pts], "o-", label=f"{preset} {mode}")
    ax_t.set(xlabel="megapixels", ylabel="time / (F / R)", title="forward time over matmul roof")
    ax_m.set(xlabel="megapixels", ylabel="peak RSS (MB)", title="peak RSS, fresh process")
    ax_t.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    raise SystemExit(main())
