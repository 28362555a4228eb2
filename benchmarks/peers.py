"""The shipped preset against its peers, side by side: seconds per image and peak RSS.

The peers' architectures are built from local checkouts given on the command line (never
committed, never downloaded here), with random weights (the time of a forward does not
depend on them) and the configurations their papers evaluate on LOL:

- Retinexformer (``--retinexformer DIR``: ``basicsr/models/archs/RetinexFormer_arch.py``),
  ``Options/RetinexFormer_LOL_v1.yml``: n_feat 40, stage 1, num_blocks [1, 2, 2];
- HVI-CIDNet (``--cidnet DIR``: ``net/CIDNet.py``), its defaults (channels 36/36/72/144);
- InstructIR (``--instructir DIR``: ``models/instructir.py``), ``configs/eval5d.yml``:
  width 32, enc [2, 2, 4, 8], middle 4, dec [2, 2, 2, 2], a 256-d text embedding (random,
  the language model's time is not counted).

Every model runs in its own subprocess (so its peak RSS is its own), fp32, batch 1,
channels_last input, ``torch.inference_mode``, with the same allocator setting for all
(:func:`textrestore.allocator.keep_freed_memory`, what the ``textrestore`` command sets),
one warm-up then the median of ``--repeats`` runs; the fp32 matmul rate R is measured in
the same subprocess. The checkouts' commit ids go into the JSON.

Usage::

    python benchmarks/peers.py --retinexformer ~/src/Retinexformer --cidnet ~/src/HVI-CIDNet \\
        --instructir ~/src/InstructIR --sizes 400x600 1200x1800 \\
        --out benchmarks/results/peers.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, environment  # noqa: E402

_CHILD = r"""
import importlib, importlib.util, json, resource, statistics, sys, time
import torch
from textrestore.allocator import keep_freed_memory
keep_freed_memory()
name, root, h, w, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
torch.manual_seed(0)

def load(rel, modname):
    sys.path.insert(0, root)
    spec = importlib.util.spec_from_file_location(modname, f"{root}/{rel}")
    mod = importlib.util.module_from_spec(spec); sys.modules[modname] = mod
    spec.loader.exec_module(mod)
    return mod

extra = ()
if name == "textrestore":
    from textrestore import create_model
    model = create_model(sys.argv[6], pretrained=True)
elif name == "retinexformer":
    arch = load("basicsr/models/archs/RetinexFormer_arch.py", "retinexformer_arch")
    model = arch.RetinexFormer(in_channels=3, out_channels=3, n_feat=40, stage=1, num_blocks=[1, 2, 2])
elif name == "cidnet":
    sys.path.insert(0, root)
    model = importlib.import_module("net.CIDNet").CIDNet()
elif name == "instructir":
    sys.path.insert(0, root)
    model = importlib.import_module("models.instructir").create_model(
        input_channels=3, width=32, enc_blks=[2, 2, 4, 8], middle_blk_num=4,
        dec_blks=[2, 2, 2, 2], txtdim=256)
    extra = (torch.randn(1, 256),)
model = model.eval()
params = sum(p.numel() for p in model.parameters() if "prompt_bank" not in str(p.shape))
x = torch.rand(1, 3, h, w).contiguous(memory_format=torch.channels_last)
a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
for _ in range(3): a @ b
t = time.perf_counter()
for _ in range(10): a @ b
r = 2 * 1024**3 * 10 / (time.perf_counter() - t) / 1e9
times = []
with torch.inference_mode():
    model(x, *extra)  # warm-up
    for _ in range(repeats):
        t = time.perf_counter(); y = model(x, *extra); times.append(time.perf_counter() - t)
        del y
print(json.dumps({"median_s": round(statistics.median(times), 3), "min_s": round(min(times), 3),
    "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
    "matmul_gflops_per_s": round(r, 1), "params_M": round(params / 1e6, 3)}))
"""


def _commit(root: Path) -> str | None:
    head = root / ".commit"  # written by whoever exported the checkout (git archive has no .git)
    if head.is_file():
        return head.read_text().strip()
    out = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True
    )
    return out.stdout.strip() or None


def run_child(name: str, root: str, h: int, w: int, repeats: int, preset: str) -> dict[str, Any]:
    env = {**os.environ, "OMP_NUM_THREADS": str(os.cpu_count() or 1)}
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, name, root, str(h), str(w), str(repeats), preset],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"}
    res: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    res["seconds_x_R"] = round(res["median_s"] * res["matmul_gflops_per_s"], 1)
    return res


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--retinexformer", type=Path)
    p.add_argument("--cidnet", type=Path)
    p.add_argument("--instructir", type=Path)
    p.add_argument("--preset", default="nalsuper_ms", help="our preset (shipped weights)")
    p.add_argument("--sizes", nargs="+", default=["400x600"])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    models: dict[str, Path | None] = {"textrestore": None}
    for name in ("retinexformer", "cidnet", "instructir"):
        if getattr(args, name) is not None:
            models[name] = getattr(args, name).resolve()
    results: dict[str, dict[str, Any]] = {}
    for size in args.sizes:
        h, w = (int(v) for v in size.split("x"))
        for name, root in models.items():
            res = run_child(name, str(root or ""), h, w, args.repeats, args.preset)
            print(size, name, res, file=sys.stderr, flush=True)
            results.setdefault(size, {})[args.preset if name == "textrestore" else name] = res
    faster = {
        size: all(
            "error" not in r and r["seconds_x_R"] > rows[args.preset]["seconds_x_R"]
            for n, r in rows.items()
            if n != args.preset
        )  # fmt: skip
        for size, rows in results.items()
    }
    emit(
        {
            "benchmark": "peers",
            "environment": environment(),
            "checkouts": {
                n: {"path": str(r), "commit": _commit(r)} for n, r in models.items() if r
            },
            "results": results,
            f"{args.preset}_faster_than_every_peer": faster,
        },
        str(args.out) if args.out else None,
    )


if __name__ == "__main__":
    main()
