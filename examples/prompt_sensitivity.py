"""One trained model under four prompts: how much does the text change the output?

``nalsuper_t`` (TCM + IFA, real MiniLM text encoder) is trained on synthetic low-light
pairs with the prompt "normal light image" (the paper's recipe), then run on held-out
dark photos under:

- ``"normal light image"`` — the training prompt (reference);
- ``"dark image"`` — the opposite meaning;
- ``""`` — the empty prompt. It is *not* an error: MiniLM's tokenizer turns it into
  ``[CLS] [SEP]``, two real tokens, so TCM attends to those two states;
- ``"a recipe for banana bread"`` — unrelated text.

For each prompt: number of tokens, cosine similarity of the pooled text embedding to the
reference prompt's, output mean / std, PSNR / SSIM against the target, and mean |Δ| to
the reference output. A model trained with one prompt has only ever seen one set of
value vectors, so other prompts act as a perturbation of a learned bias, not as an
instruction: expect small Δ, growing with how different the embedding is.

    python examples/prompt_sensitivity.py --quick    # ~15 s
    python examples/prompt_sensitivity.py            # full: 800 steps, 48x48 crops

Writes ``prompts.png`` (input, the four outputs, target, and the |Δ| maps),
``summary.json`` and ``summary.md`` to ``--out``.
"""

from __future__ import annotations

import time
from typing import Any

import _common as C
import torch
import torch.nn.functional as F

REFERENCE = "normal light image"
PROMPTS = (REFERENCE, "dark image", "", "a recipe for banana bread")


def main(argv: list[str] | None = None) -> int:
    args = C.build_parser(__doc__.splitlines()[0]).parse_args(argv)
    out = C.setup(args, "prompt_sensitivity")
    started = time.perf_counter()
    steps = args.steps or (12 if args.quick else 800)
    crop, batch, test_size = (32, 2, 64) if args.quick else (48, 4, 192)

    encoder = C.minilm_or_none()
    model = C.nalsuper("nalsuper_t").set_text_encoder(encoder)
    log = C.train(model, C.synthetic_source(crop, batch, args.seed), steps,
                  forward=lambda m, x: m(x, REFERENCE))  # fmt: skip
    low, high = C.test_pairs(test_size)

    emb = encoder.encode(list(PROMPTS))
    pooled = F.normalize(emb.pooled, dim=-1)
    rows: list[dict[str, Any]] = []
    outs: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        ref = model(low, REFERENCE)
        for i, prompt in enumerate(PROMPTS):
            pred = model(low, prompt)
            outs[prompt] = pred
            ids = encoder.tokenize([prompt])["input_ids"][0]
            rows.append(
                {
                    "prompt": repr(prompt),
                    "tokens": " ".join(encoder.tokenizer.convert_ids_to_tokens(ids)),
                    "cos_to_reference": float(pooled[i] @ pooled[0]),
                    "out_mean": float(pred.clamp(0, 1).mean()),
                    "out_std": float(pred.clamp(0, 1).std()),
                    **C.scores(pred, high),
                    "mean_abs_delta": float((pred - ref).abs().mean()),
                    "max_abs_delta": float((pred - ref).abs().max()),
                }
            )
            print(rows[-1], flush=True)

    # Side by side: input, outputs, target; second row: |Δ| maps (amplified) per prompt.
    deltas = [(outs[p] - ref).abs().mean(1, keepdim=True) for p in PROMPTS]
    gain = 1.0 / max(1e-6, max(float(d.max()) for d in deltas))
    images: list[torch.Tensor | None] = [low[0], *(outs[p][0] for p in PROMPTS), high[0]]
    titles = ["input", *(f"{p!r}" for p in PROMPTS), "target"]
    images += [None, *((d[0] * gain).expand(3, -1, -1) for d in deltas)]
    titles += ["", *(f"|Δ| x{gain:.0f}" for _ in PROMPTS)]
    images += [None]
    titles += [""]
    C.save_grid(out / "prompts.png", images, titles, rows=2)

    md = "\n".join(
        [
            "# Prompt sensitivity (nalsuper_t, trained with one prompt)",
            "",
            f"Trained {steps} steps with {REFERENCE!r}; evaluated on {', '.join(C.TEST_PHOTOS)} "
            f"({test_size}x{test_size}). The empty prompt is encoded as `[CLS] [SEP]`.",
            "",
            C.markdown_table(
                rows,
                [
                    "prompt",
                    "tokens",
                    "cos_to_reference",
                    "out_mean",
                    "out_std",
                    "psnr",
                    "ssim",
                    "mean_abs_delta",
                    "max_abs_delta",
                ],
            ),  # fmt: skip
        ]
    )
    summary = {
        "example": "prompt_sensitivity",
        "quick": args.quick,
        "steps": steps,
        "train_seconds": round(log["seconds"], 1),
        "final_loss": C.smooth(log["losses"]),
        "empty_prompt": "encoded by MiniLM as [CLS] [SEP] (2 real tokens); no error",
        "results": rows,
        "images": ["prompts.png"],
    }
    C.write_summary(out, summary, md, started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
