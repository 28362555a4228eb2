"""Training steps/s of a preset, with and without the prompt bank, and text-encoder calls.

Each step draws per-sample prompts from a fixed set. ``bank``: the prompts go to the
model, whose :class:`~textrestore.text.PromptBank` encodes each distinct prompt once;
``no_bank``: the encoder is called on every step and its embedding passed in. A
counting encoder (a frozen stand-in with the real ``TextEncoder`` interface) reports
how often the encoder ran after the first step.

Usage::

    python benchmarks/train.py --quick
    python benchmarks/train.py --preset nalsuper_s --batch 8 --crop 128 --dtype bf16 --steps 6
"""

from __future__ import annotations

import argparse
import contextlib
import random
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, environment, loadavg, matmul_gflops, summary  # noqa: E402

PROMPTS = ["normal light image", "a well exposed photo", "bright image", "daylight scene"]


def counting_encoder(dim: int, delay_s: float):  # noqa: ANN201
    from textrestore.text import TextEmbedding, TextEncoder

    class CountingEncoder(TextEncoder):
        """Deterministic per-prompt token states; counts calls (sleeps like a real one)."""

        def __init__(self) -> None:
            super().__init__(name="counting", dim=dim, max_length=8)
            self.calls = 0
            self.freeze()

        def forward(self, prompts: list[str]) -> TextEmbedding:
            self.calls += 1
            time.sleep(delay_s)
            rows = []
            for p in prompts:
                g = torch.Generator().manual_seed(sum(map(ord, p)))
                rows.append(torch.randn(8, dim, generator=g))
            return TextEmbedding.from_tensor(torch.stack(rows))

    return CountingEncoder()


def run(args: argparse.Namespace, use_bank: bool) -> dict:
    from textrestore.models import create_model

    torch.manual_seed(0)
    rng = random.Random(0)
    model = create_model(args.preset).train()
    encoder = counting_encoder(model.text_dim, args.encoder_delay)
    model.set_text_encoder(encoder)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    amp = args.dtype == "bf16"
    times, calls_after_first = [], []
    seen: set[str] = set()
    for step in range(args.steps + 1):
        low = torch.rand(args.batch, 3, args.crop, args.crop) * 0.2
        high = (low * 4).clamp(0, 1)
        prompts = [rng.choice(PROMPTS) for _ in range(args.batch)]
        seen.update(prompts)
        before = encoder.calls
        t0 = time.perf_counter()
        text = prompts if use_bank else encoder.encode(prompts)
        ctx = torch.autocast("cpu", torch.bfloat16) if amp else contextlib.nullcontext()
        with ctx:
            loss = (model(low, text).float() - high).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step > 0:  # the first step encodes the prompts (and warms up)
            times.append(time.perf_counter() - t0)
            calls_after_first.append(encoder.calls - before)
    return {
        **summary(times),
        "steps_per_s": round(1 / (sum(times) / len(times)), 4),
        "encoder_calls_per_step_after_first": calls_after_first,
        "encoder_calls_total": encoder.calls,
        "distinct_prompts_seen": len(seen),
        "loadavg": loadavg(),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="nalsuper_s")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--crop", type=int, default=128)
    p.add_argument("--dtype", choices=["bf16", "fp32"], default="bf16")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--encoder-delay", type=float, default=0.02, help="seconds per encoder call")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--out")
    args = p.parse_args(argv)
    if args.quick:
        args.preset, args.batch, args.crop, args.steps = "nalsuper_t", 2, 32, 2
    rate = matmul_gflops(torch.bfloat16 if args.dtype == "bf16" else torch.float32, n=512)
    result = {"bank": run(args, True), "no_bank": run(args, False)}
    emit(
        {
            "benchmark": "train",
            "environment": environment(),
            "preset": args.preset,
            "batch": args.batch,
            "crop": args.crop,
            "dtype": args.dtype,
            "prompts": PROMPTS,
            "matmul_gflops_per_s_n512": round(rate, 1),
            **result,
        },
        args.out,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
