"""TCM fast path vs reference path: time and max difference.

Fast: ``fused_attn=True`` under ``torch.no_grad()`` (SDPA in pixel chunks, γ folded);
reference: ``fused_attn=False`` (plain softmax(QKᵀ/√d)V over all pixels). Also the fused
path with autograd on (unchunked SDPA), the path used in training.

Usage::

    python benchmarks/tcm.py --quick
    python benchmarks/tcm.py --size 400x600 --tokens 77 --reps 7
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, environment, loadavg, matmul_gflops, summary, time_runs  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="400x600")
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--text-dim", type=int, default=512)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--tokens", type=int, default=77)
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out")
    args = p.parse_args(argv)
    if args.quick:
        args.size, args.reps = "32x48", 3
    from textrestore.layers import TCM

    h, w = (int(v) for v in args.size.split("x"))
    torch.manual_seed(0)
    tcm = TCM(args.dim, args.text_dim, num_heads=args.heads).eval()
    x = torch.randn(1, args.dim, h, w).contiguous(memory_format=torch.channels_last)
    text = torch.randn(1, args.tokens, args.text_dim)
    mask = torch.ones(1, args.tokens, dtype=torch.bool)
    mask[:, args.tokens // 2 :] = False  # padded tokens, as CLIP's 77 usually are

    def run(fused: bool, grad: bool) -> torch.Tensor:
        tcm.fused_attn = fused
        with torch.set_grad_enabled(grad):
            return tcm(x, text, mask)

    r = matmul_gflops(n=512 if args.quick else 2048)
    rows = {}
    # interleave the variants so that load changes hit all of them alike
    times: dict[str, list[float]] = {"fast": [], "reference": [], "fused_with_autograd": []}
    variants = {"fast": (True, False), "reference": (False, False),
                "fused_with_autograd": (True, True)}  # fmt: skip
    for _ in range(args.reps):
        for name, (fused, grad) in variants.items():
            times[name] += time_runs(lambda f=fused, g=grad: run(f, g), 1, warmup=0)
    for name in variants:
        rows[name] = summary(times[name])
    fast, ref = run(True, False), run(False, False).detach()
    med = {k: statistics.median(v) for k, v in times.items()}
    emit(
        {
            "benchmark": "tcm",
            "environment": environment(),
            "size": args.size,
            "tokens": args.tokens,
            "dim": args.dim,
            "heads": args.heads,
            "matmul_gflops_per_s": round(r, 1),
            "times": rows,
            "speedup_fast_over_reference": round(med["reference"] / med["fast"], 2),
            "speedup_fast_over_fused_with_autograd": round(
                med["fused_with_autograd"] / med["fast"], 2
            ),
            "max_abs_diff_fast_vs_reference": float((fast - ref).abs().max()),
            "loadavg": loadavg(),
        },
        args.out,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
