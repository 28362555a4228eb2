"""Where a forward's time goes: ``torch.profiler`` self CPU time per op and per module kind.

Prints the top ops and a breakdown into convs / attention (TCM) / cross-layer fusion /
elementwise, plus the process's user vs system (kernel: page faults) CPU time.

Usage::

    python benchmarks/profile_forward.py --quick
    python benchmarks/profile_forward.py --preset nalsuper --size 400x600
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import defaultdict
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, environment, max_rss_mb  # noqa: E402

GROUPS = {
    "conv": ("conv", "mkldnn_convolution"),
    "matmul (linear/bmm/mm/attention)": ("addmm", "mm", "bmm", "linear", "matmul", "scaled_dot"),
    "softmax": ("softmax",),
    "layer_norm": ("layer_norm",),
}


def group_of(name: str) -> str:
    low = name.lower()
    for group, keys in GROUPS.items():
        if any(k in low for k in keys):
            return group
    return "elementwise / copies / other"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="nalsuper")
    p.add_argument("--size", default="400x600")
    p.add_argument("--tokens", type=int, default=77)
    p.add_argument("--top", type=int, default=15)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out")
    args = p.parse_args(argv)
    if args.quick:
        args.preset, args.size = "nalsuper_t", "32x48"
    from textrestore.models import create_model

    h, w = (int(v) for v in args.size.split("x"))
    torch.manual_seed(0)
    model = create_model(args.preset).eval()
    image, text = torch.rand(1, 3, h, w), torch.randn(1, args.tokens, model.text_dim)
    with torch.no_grad():
        model(image, text)
        t0 = os.times()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            model(image, text)
        t1 = os.times()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[: args.top]
    groups: dict[str, float] = defaultdict(float)
    for e in events:
        groups[group_of(e.key)] += e.self_cpu_time_total
    emit(
        {
            "benchmark": "profile_forward",
            "environment": environment(),
            "preset": args.preset,
            "size": args.size,
            "user_s": round(t1.user - t0.user, 3),
            "system_s": round(t1.system - t0.system, 3),
            "wall_s": round(t1.elapsed - t0.elapsed, 3),
            "peak_rss_mb": round(max_rss_mb(), 1),
            "self_cpu_s_total": round(total / 1e6, 3),
            "groups_share": {k: round(v / total, 3) for k, v in sorted(groups.items())},
            "top_ops": [
                {"op": e.key, "calls": e.count, "self_cpu_s": round(e.self_cpu_time_total / 1e6, 3)}
                for e in top
            ],
        },
        args.out,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
