"""The benchmarks on a CUDA GPU: forward, 12/24 MP ``enhance()``, training throughput.

One process, in sections that each append to the JSON written after every record (a run
cut short keeps what it measured). Every record says whether its output was finite.

- ``forward``: presets × sizes × precision (fp32; bf16 and fp16 autocast) × eager or
  ``torch.compile``: median seconds (CUDA-synchronised) of ``--reps`` no-grad forwards
  after warm-up, peak allocated GPU memory, achieved GFLOP/s (reference FLOP count) as a
  fraction of the matmul rate R of the same precision measured in this process.
- ``enhance``: the shipped preset through ``textrestore.enhance`` at 12 MP (3000×4000)
  and 24 MP (4000×6000), automatic tiling, default precision (a bfloat16 copy of the
  weights on a GPU with bf16) and fp32.
- ``train``: the library's ``Trainer`` on the shipped preset, batch 8, 128² crops,
  ``synthetic`` data, fp32 and bf16 autocast; steps/s after warm-up and the fraction of
  step time spent waiting for data. The text encoder is ``learned:8`` (the ``minilm``
  weights package does not travel to the GPU machine; the prompt bank caches encodings, so
  the encoder is off the step's critical path either way).

TF32 stays at PyTorch's defaults (cuDNN convolutions may use it; matmuls do not), recorded.

Usage (on a machine with CUDA)::

    python benchmarks/gpu.py --out benchmarks/results/gpu_h200.json
    python benchmarks/gpu.py --quick     # seconds: a smoke run of every section
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import environment  # noqa: E402

DEV = "cuda"
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def cuda_time(fn: Any, reps: int, warmup: int) -> list[float]:
    """Seconds of ``reps`` synchronised calls of ``fn`` after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return times


def matmul_rate(dtype: torch.dtype, n: int = 8192, reps: int = 10) -> float:
    """GFLOP/s of an n×n CUDA matmul in ``dtype`` (fp32 without TF32)."""
    a = torch.randn(n, n, device=DEV, dtype=dtype)
    b = torch.randn(n, n, device=DEV, dtype=dtype)
    t = statistics.median(cuda_time(lambda: a @ b, reps, warmup=3))
    return 2 * n**3 / t / 1e9


class Report:
    """Records appended per section; the JSON file is rewritten after each one."""

    def __init__(self, out: Path | None, env: dict[str, Any]) -> None:
        self.out, self.data = out, {"environment": env, "forward": [], "enhance": [], "train": []}

    def add(self, section: str, record: dict[str, Any]) -> None:
        self.data[section].append(record)
        print(json.dumps({section: record}), flush=True)
        if self.out is not None:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            self.out.write_text(json.dumps(self.data, indent=2) + "\n")


def _forward(model: Any, x: torch.Tensor, text: torch.Tensor, dtype: Any) -> torch.Tensor:
    amp = torch.autocast("cuda", dtype=dtype) if dtype else contextlib.nullcontext()
    with torch.no_grad(), amp:
        return model(x, text)


def bench_forward(
    rep: Report,
    args: argparse.Namespace,
    rates: dict[str, float],
    compiled: bool = False,
) -> None:
    from textrestore.models import create_model
    from textrestore.models.cli import count_flops

    presets = args.compile_presets if compiled else args.presets
    sizes = args.compile_sizes if compiled else args.sizes
    for preset in presets:
        for size in sizes:
            h, w = (int(v) for v in size.split("x"))
            flops = count_flops(preset, h, w, text_tokens=77)
            for prec in args.precisions:
                torch.manual_seed(0)
                model = create_model(preset).eval().cuda()
                x = torch.rand(1, 3, h, w, device=DEV) * 0.3
                text = torch.randn(1, 77, model.text_dim, device=DEV)
                run = torch.compile(model) if compiled else model
                fwd = functools.partial(_forward, run, x, text, PRECISIONS[prec])
                torch.cuda.reset_peak_memory_stats()
                t0 = time.perf_counter()
                out = fwd()
                torch.cuda.synchronize()
                first = time.perf_counter() - t0
                finite = bool(torch.isfinite(out).all())
                times = cuda_time(fwd, args.reps, warmup=2)
                t = statistics.median(times)
                rate = rates[prec]
                rep.add("forward", {
                    "preset": preset, "size": size, "precision": prec,
                    "compiled": compiled, "median_s": round(t, 5),
                    "min_s": round(min(times), 5), "first_call_s": round(first, 2),
                    "peak_gpu_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1),
                    "gflops_model": round(flops / 1e9, 2),
                    "achieved_gflops_per_s": round(flops / 1e9 / t, 1),
                    "fraction_of_matmul_rate": round(flops / t / 1e9 / rate, 4),
                    "finite": finite,
                })  # fmt: skip
                del model, run, out, x, text
                torch.cuda.empty_cache()
                if compiled:
                    torch._dynamo.reset()


def bench_enhance(rep: Report, args: argparse.Namespace) -> None:
    from textrestore import enhance
    from textrestore.models import create_model

    model = create_model(args.shipped, pretrained=True).eval().cuda()
    for size in args.enhance_sizes:
        h, w = (int(v) for v in size.split("x"))
        g = torch.Generator().manual_seed(0)
        x = (
            torch.nn.functional.interpolate(
                torch.rand(1, 3, h // 64, w // 64, generator=g), size=(h, w), mode="bilinear"
            )[0]
            * 0.3
        )
        for amp in (None, False):
            torch.cuda.reset_peak_memory_stats()
            call = functools.partial(enhance, x, model, progress=False, amp=amp)
            out = call()
            finite = bool(torch.isfinite(out).all())
            times = cuda_time(call, args.enhance_reps, warmup=0)
            rep.add("enhance", {
                "preset": args.shipped, "size": size, "megapixels": round(h * w / 1e6, 1),
                "precision": "default (bf16 weights copy)" if amp is None else "fp32",
                "median_s": round(statistics.median(times), 4), "min_s": round(min(times), 4),
                "peak_gpu_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1),
                "finite": finite,
            })  # fmt: skip
            del out
            torch.cuda.empty_cache()


def bench_train(rep: Report, args: argparse.Namespace) -> None:
    from textrestore.train import TrainConfig, Trainer

    for amp in args.train_amp:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = TrainConfig.from_dict({
                "model": args.shipped, "text_encoder": "learned:8", "device": "cuda",
                "data": {"kind": "synthetic", "crop": 128, "batch_size": 8, "length": 512,
                         "size": 256, "val_length": 1},
                "steps": args.train_steps, "val_every": 0, "ckpt_every": 0, "amp": amp,
                "log_every": 0, "num_workers": args.workers, "out_dir": f"{tmp}/run",
                "resume": None,
            })  # fmt: skip
            summary = Trainer(cfg).fit()
            records = [
                json.loads(line) for line in Path(tmp, "run", "log.jsonl").read_text().splitlines()
            ]
            steps = [r for r in records if r.get("it_s")][args.train_warmup :]
            sec = [1.0 / r["it_s"] for r in steps]
            data = [r["data_s"] for r in steps if "data_s" in r]
            losses = [r.get("loss") for r in steps]
            rep.add("train", {
                "preset": args.shipped, "amp": amp, "batch": 8, "crop": 128,
                "num_workers": args.workers, "timed_steps": len(sec),
                "median_s_per_step": round(statistics.median(sec), 4),
                "steps_per_s": round(1.0 / statistics.median(sec), 2),
                "data_wait_fraction": round(sum(data) / sum(sec), 4) if data else None,
                "nonfinite_steps": summary["nonfinite_steps"],
                "finite": all(isinstance(v, float) for v in losses),
            })  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--presets", nargs="+", default=["nalsuper_ms", "nalsuper_s", "nalsuper"])
    p.add_argument("--sizes", nargs="+", default=["400x600", "1200x1800"])
    p.add_argument("--precisions", nargs="+", default=list(PRECISIONS), choices=PRECISIONS)
    p.add_argument("--compile-presets", nargs="*", default=["nalsuper_ms"])
    p.add_argument("--compile-sizes", nargs="*", default=["400x600"])
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--shipped", default="nalsuper_ms")
    p.add_argument("--enhance-sizes", nargs="*", default=["3000x4000", "4000x6000"])
    p.add_argument("--enhance-reps", type=int, default=3)
    p.add_argument("--train-amp", nargs="*", default=["none", "bf16"])
    p.add_argument("--train-steps", type=int, default=40)
    p.add_argument("--train-warmup", type=int, default=5)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument(
        "--sections", nargs="+", default=["forward", "enhance", "train", "compile"],
        choices=["forward", "enhance", "train", "compile"],
    )  # fmt: skip
    p.add_argument("--quick", action="store_true", help="tiny sizes, a smoke run")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("benchmarks/gpu.py: no CUDA device", file=sys.stderr)
        return 2
    if args.quick:
        args.presets, args.sizes = ["nalsuper_t"], ["64x96"]
        args.compile_presets, args.compile_sizes = ["nalsuper_t"], ["64x96"]
        args.enhance_sizes, args.enhance_reps, args.reps = ["256x384"], 1, 2
        args.train_steps, args.train_warmup, args.workers = 4, 1, 0
    env = {
        **environment(),
        "device": torch.cuda.get_device_name(),
        "cuda": torch.version.cuda,
        "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
        "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
    }
    n = 1024 if args.quick else 8192
    rates = {k: matmul_rate(v or torch.float32, n=n) for k, v in PRECISIONS.items()}
    env["matmul_gflops_per_s"] = {k: round(v, 1) for k, v in rates.items()}
    rep = Report(args.out, env)
    print(json.dumps(env), flush=True)
    sections = {
        "forward": lambda: bench_forward(rep, args, rates),
        "enhance": lambda: bench_enhance(rep, args),
        "train": lambda: bench_train(rep, args),
        "compile": lambda: bench_forward(rep, args, rates, compiled=True),
    }
    failed = 0
    for name in args.sections:
        t0 = time.perf_counter()
        try:
            sections[name]()
        except Exception as exc:  # a failed section is reported; the others still run
            failed += 1
            rep.data.setdefault("errors", []).append(f"{name}: {type(exc).__name__}: {exc}")
            rep.add("forward" if name == "compile" else name, {"section_error": repr(exc)})
        print(f"# section {name}: {time.perf_counter() - t0:.1f} s", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
