"""TCM's two fused forms side by side: the folded attention vs ``scaled_dot_product_attention``.

For each width C (at the resolution its scale has in ``nalsuper_ms`` training: batch 8,
128² crops) and text length L, the median time of a forward + backward (training) and of a
no-grad forward (inference) with each form forced, and which form ``TCM._folds`` picks.
The pick should be the faster form (ratio = SDPA / folded > 1 means folding pays).

Usage::

    python benchmarks/tcm_forms.py --out benchmarks/results/tcm_forms.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, environment, matmul_gflops, time_runs  # noqa: E402

from textrestore.layers import TCM  # noqa: E402


def _time(module: TCM, x: torch.Tensor, text: torch.Tensor, train: bool, reps: int) -> float:
    def run() -> None:
        if train:
            module(x, text).sum().backward()
        else:
            with torch.no_grad():
                module(x, text)

    return statistics.median(time_runs(run, reps, warmup=2))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--widths", default="16:128,32:64,64:32,96:16", help="C:resolution pairs")
    ap.add_argument("--tokens", default="5,8,12,16,24", help="text lengths L")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.manual_seed(0)
    rows: list[dict[str, Any]] = []
    for pair in args.widths.split(","):
        dim, res = (int(v) for v in pair.split(":"))
        for n_tok in (int(v) for v in args.tokens.split(",")):
            module = TCM(dim, 384, num_heads=args.heads)
            picks = module._folds(n_tok, torch.device("cpu"))
            text = torch.randn(args.batch, n_tok, 384)
            row: dict[str, Any] = {"dim": dim, "resolution": res, "tokens": n_tok,
                                   "rule_folds": picks}  # fmt: skip
            for mode, train in (("train", True), ("infer", False)):
                x = torch.randn(args.batch, dim, res, res).contiguous(
                    memory_format=torch.channels_last
                )
                x.requires_grad_(train)
                module.train(train)
                secs = {}
                for form, fold in (("folded", True), ("sdpa", False)):
                    module._folds = lambda n, device=None, fold=fold: fold  # type: ignore[method-assign]
                    secs[form] = _time(module, x, text, train, args.reps)
                del module._folds
                row[mode] = {
                    "folded_ms": 1e3 * secs["folded"],
                    "sdpa_ms": 1e3 * secs["sdpa"],
                    "sdpa_over_folded": secs["sdpa"] / secs["folded"],
                    "rule_picks_faster": picks == (secs["folded"] <= secs["sdpa"]),
                }
            rows.append(row)
            print(row, file=sys.stderr, flush=True)
    emit(
        {
            "benchmark": "tcm_forms",
            "environment": environment(),
            "matmul_gflops_per_s": matmul_gflops(),
            "rows": rows,
            "rule_picks_faster_fraction": {
                m: sum(r[m]["rule_picks_faster"] for r in rows) / len(rows)
                for m in ("train", "infer")
            },
        },
        args.out,
    )


if __name__ == "__main__":
    main()
