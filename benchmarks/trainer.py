"""Training throughput of the library's own ``Trainer``: one commit against another.

Each (source tree, preset) runs ``textrestore train`` in a fresh subprocess with the
source tree first on ``PYTHONPATH`` (e.g. an old commit checked out with
``git worktree add /tmp/old <commit>``), on the same config: batch 8, 128² crops, fp32,
``synthetic`` data (scikit-image photos degraded on the fly: the data pipeline is part of
the step; ``--data photos``: the shipped recipe's corpus and per-sample prompts), no validation or checkpoints inside the timed steps. Reported per run: the
median seconds per step after ``--warmup`` steps (from the run's ``log.jsonl``), steps/s,
the fraction of step time spent waiting for data (new trainers log it), and the matmul
roof R measured in the same subprocess just before training (seconds × R as the
load-independent figure). Runs of the two trees alternate, ``--repeats`` times.
``--keep-freed-memory`` applies the allocator setting that the ``textrestore`` command
sets for its process (:mod:`textrestore.allocator`) to both trees: what users of
``textrestore train`` get; without it, what ``Trainer`` gets in a plain Python process.

Usage::

    git worktree add /tmp/textrestore-old d6f54e9
    python benchmarks/trainer.py --old-src /tmp/textrestore-old/src \\
        --presets nalsuper_s nalsuper_ms --steps 30 --repeats 2 \\
        --out benchmarks/results/trainer_old_vs_new.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, environment  # noqa: E402

NEW_SRC = Path(__file__).resolve().parents[1] / "src"

_CHILD = r"""
import json, sys, time, torch
sys.argv = ["textrestore"] + sys.argv[1:]
a = torch.randn(1024, 1024); b = torch.randn(1024, 1024)
for _ in range(3): a @ b
t = time.perf_counter(); reps = 10
for _ in range(reps): a @ b
r = 2 * 1024**3 * reps / (time.perf_counter() - t) / 1e9
print("MATMUL_GFLOPS", r, flush=True)
if KEEP:
    from textrestore.allocator import keep_freed_memory
    keep_freed_memory()
from textrestore.cli import main
raise SystemExit(main(sys.argv[1:]))
"""


def _commit(src: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True
        )
    except OSError:
        return None
    return out.stdout.strip() or None


def run_once(src: Path, preset: str, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        overrides = [
            f"model={preset}", f"data.kind={args.data}", f"data.crop={args.crop}",
            f"data.batch_size={args.batch}", "data.size=256", "data.length=512",
            "data.val_length=1", f"steps={args.steps}", "val_every=0",
            f"ckpt_every={args.steps}", f"amp={args.amp}", "num_workers=0", "log_every=0",
            f"out_dir={tmp}/run", "resume=null", "text_encoder=minilm",
        ]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": str(args.threads)}
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD.replace("KEEP", str(args.keep_freed_memory)), "train",
             *overrides],
            capture_output=True, text=True, env=env, cwd=tmp,
        )  # fmt: skip
        if proc.returncode != 0:
            raise RuntimeError(f"{src} {preset}: exit {proc.returncode}\n{proc.stderr[-3000:]}")
        r = next(
            float(line.split()[1])
            for line in proc.stdout.splitlines()
            if line.startswith("MATMUL_GFLOPS")
        )
        records = [
            json.loads(line) for line in Path(tmp, "run", "log.jsonl").read_text().splitlines()
        ]
        steps = [x for x in records if "it_s" in x and x.get("it_s")]
        timed = steps[args.warmup :]
        sec = [1.0 / x["it_s"] for x in timed]
        data = [x["data_s"] for x in timed if "data_s" in x]
    median = statistics.median(sec)
    return {
        "median_s_per_step": round(median, 4),
        "steps_per_s": round(1.0 / median, 3),
        "data_wait_fraction": round(sum(data) / sum(sec), 4) if data else None,
        "matmul_gflops_per_s": round(r, 1),
        "seconds_x_R": round(median * r, 1),
        "timed_steps": len(sec),
    }


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--old-src", type=Path, help="src/ folder of the commit to compare against")
    p.add_argument("--presets", nargs="+", default=["nalsuper_s", "nalsuper_ms"])
    p.add_argument("--old-presets", nargs="+", default=["nalsuper_s"],
                   help="presets the old tree is run with (those it has)")  # fmt: skip
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument(
        "--data", choices=("synthetic", "photos"), default="synthetic",
        help="synthetic: one prompt; photos: the shipped recipe's corpus with per-sample "
        "prompts from the control vocabulary (longer texts)",
    )  # fmt: skip
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument(
        "--amp", choices=["none", "bf16"], default="none",
        help="the trainer's autocast (bf16 pays on CPUs with native bfloat16)",
    )  # fmt: skip
    p.add_argument(
        "--keep-freed-memory", action="store_true",
        help="apply the allocator setting of the `textrestore` command (textrestore.allocator) "
        "in every run, old and new: what `textrestore train` does; without it, the Python API",
    )  # fmt: skip
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    trees = {"new": NEW_SRC}
    if args.old_src is not None:
        trees["old"] = args.old_src.resolve()
    results: dict[str, dict[str, list[dict[str, Any]]]] = {k: {} for k in trees}
    for _ in range(args.repeats):
        for name, src in trees.items():
            for preset in args.presets if name == "new" else args.old_presets:
                res = run_once(src, preset, args)
                print(name, preset, res, file=sys.stderr, flush=True)
                results[name].setdefault(preset, []).append(res)

    def best(runs: list[dict[str, Any]]) -> dict[str, Any]:
        return min(runs, key=lambda r: r["seconds_x_R"])

    report: dict[str, Any] = {
        "benchmark": "trainer",
        "environment": environment(),
        "config": {
            "batch": args.batch,
            "crop": args.crop,
            "keep_freed_memory": args.keep_freed_memory,
            "amp": args.amp,
            "data": args.data,
            "steps": args.steps,
            "warmup": args.warmup,
        },  # fmt: skip
        "trees": {k: {"src": str(v), "commit": _commit(v)} for k, v in trees.items()},
        "runs": results,
        "best": {k: {p: best(r) for p, r in v.items()} for k, v in results.items()},
    }
    if "old" in results:
        speedups = {}
        for preset, runs in results["old"].items():
            if preset in results["new"]:
                old, new = best(runs), best(results["new"][preset])
                speedups[preset] = round(old["seconds_x_R"] / new["seconds_x_R"], 2)
        old_ref = next(iter(results["old"].values()), None)
        if old_ref:
            ref = best(old_ref)["seconds_x_R"]
            speedups.update({
                f"{p} (new) vs {args.old_presets[0]} (old)": round(ref / best(r)["seconds_x_R"], 2)
                for p, r in results["new"].items()
            })  # fmt: skip
        report["speedup_in_R_seconds"] = speedups
    emit(report, args.out)


if __name__ == "__main__":
    main()
