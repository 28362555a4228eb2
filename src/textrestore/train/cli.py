"""``textrestore train`` and ``textrestore eval``.

``textrestore train --config cfg.yaml [key=value ...]`` runs a :class:`~textrestore.train.Trainer`
(under ``torchrun --nproc_per_node=N`` the same command trains with DDP).
``textrestore eval --weights CKPT --data DIR --layout lol_v1`` scores a checkpoint on the
held-out pairs: PSNR, SSIM and MAE, each also in its GT-mean variant; it prints the means
and writes ``eval.json`` and ``eval.csv`` (one row per image).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["register", "run_train", "run_eval", "load_model_for_eval"]


def register(subparsers: Any) -> None:
    """Add the ``train`` and ``eval`` subcommands to the ``textrestore`` parser."""
    p = subparsers.add_parser(
        "train",
        help="train a model from a config file (torchrun-ready)",
        description="Train from a YAML/TOML config; key=value arguments override its settings "
        "(dotted keys reach into data and model_args, e.g. data.batch_size=4).",
    )
    p.add_argument("--config", type=Path, default=None, help="YAML/TOML/JSON config file")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.set_defaults(func=run_train)

    e = subparsers.add_parser(
        "eval",
        help="score a checkpoint on paired data (PSNR/SSIM/MAE, GT-mean too)",
        description="Evaluate weights on the held-out split of a paired dataset.",
    )
    e.add_argument("--weights", type=Path, required=True,
                   help="trainer checkpoint (.pt) or weights (.safetensors)")  # fmt: skip
    e.add_argument("--data", type=Path, required=True, help="dataset root folder")
    e.add_argument("--layout", default="lol_v1",
                   help="lol_v1, lol_v2_real, lol_v2_synthetic or generic")  # fmt: skip
    e.add_argument("--split", default="test", choices=["train", "test"])
    e.add_argument("--model", default=None,
                   help="preset for a .safetensors file (default: its metadata or the "
                        "checkpoint's config)")  # fmt: skip
    e.add_argument("--prompt", default=None, help="prompt (default: the model's default)")
    e.add_argument("--prompts-file", default=None, help="per-image prompts (JSON/CSV/sidecar)")
    e.add_argument("--no-ema", action="store_true", help="use the raw weights, not the EMA")
    e.add_argument("--out", type=Path, default=None,
                   help="output folder for eval.json / eval.csv (default: next to the weights)")  # fmt: skip
    e.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    e.set_defaults(func=run_eval)


def run_train(args: argparse.Namespace) -> int:
    """Entry point of ``textrestore train``; returns the exit code."""
    from . import NonFiniteLossError, TrainConfig, Trainer

    try:
        if args.config is not None:
            cfg = TrainConfig.from_file(args.config, args.overrides)
        else:
            cfg = TrainConfig.from_dict({}, args.overrides)
    except (ValueError, TypeError, FileNotFoundError) as err:
        print(f"textrestore train: {err}", file=sys.stderr)
        return 2
    if args.print_config:
        import yaml

        print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")
        return 0
    try:
        summary = Trainer(cfg).fit()
    except NonFiniteLossError as err:
        print(f"textrestore train: stopped: {err}", file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError) as err:
        print(f"textrestore train: {err}", file=sys.stderr)
        return 2
    if summary:
        print(json.dumps(summary, indent=2, default=str))
    return 0


def load_model_for_eval(
    weights: Path, model: str | None = None, use_ema: bool = True
) -> tuple[Any, dict[str, Any]]:
    """Build the model of a trainer checkpoint or a ``.safetensors`` file and load its weights.

    Returns:
        ``(model in eval mode, info)`` where info says the preset, the source and whether
        EMA weights were used.
    """
    from ..models import create_model, load_weights

    if not weights.is_file():
        raise FileNotFoundError(f"weights file not found: {weights}")
    if weights.suffix == ".safetensors":
        from ..inference import load_model

        net = load_model(str(weights), preset=model)
        return net.eval(), {"weights": str(weights), "preset": model, "ema": False}
    from .checkpoint import load_checkpoint

    state = load_checkpoint(weights)
    if "model" not in state:  # a plain state dict saved with torch.save
        if model is None:
            raise ValueError(f"{weights}: a plain state dict; give --model PRESET")
        return load_weights(create_model(model), weights).eval(), {"weights": str(weights),
                                                                  "preset": model, "ema": False}  # fmt: skip
    cfg = state.get("config") or {}
    preset = model or cfg.get("model")
    if preset is None:
        raise ValueError(f"{weights}: the checkpoint names no model; give --model PRESET")
    net = create_model(preset, **(cfg.get("model_args") or {}))
    sd = state["model"]
    ema = state.get("ema")
    used_ema = bool(use_ema and ema)
    if used_ema:
        sd = {k[len("module.") :]: v for k, v in ema.items() if k.startswith("module.")}
    sd = {k.removeprefix("module."): v for k, v in sd.items()}
    net.load_state_dict(sd)
    info = {"weights": str(weights), "preset": preset, "ema": used_ema, "step": state.get("step")}
    return net.eval(), info


def run_eval(args: argparse.Namespace) -> int:
    """Entry point of ``textrestore eval``; returns the exit code."""
    import torch
    from torch.utils.data import DataLoader

    from ..data import PairedImageFolder, collate_pairs
    from ..metrics import evaluate

    try:
        net, info = load_model_for_eval(args.weights, args.model, use_ema=not args.no_ema)
        ds = PairedImageFolder(args.data, layout=args.layout, split=args.split,
                               prompt=args.prompt, prompts=args.prompts_file)  # fmt: skip
    except (ValueError, FileNotFoundError, TypeError) as err:
        print(f"textrestore eval: {err}", file=sys.stderr)
        return 2
    device = torch.device(args.device)
    net.to(device)
    loader = DataLoader(ds, batch_size=1, shuffle=False, collate_fn=collate_pairs)
    report = evaluate(net, loader, prompts=args.prompt, device=device, gt_mean=True,
                      metrics=("psnr", "ssim", "mae"))  # fmt: skip
    out = args.out if args.out is not None else args.weights.parent
    out.mkdir(parents=True, exist_ok=True)
    report.summary.update(
        {"data": str(args.data), "layout": args.layout, "split": args.split, **info}
    )
    report.to_json(out / "eval.json")
    report.to_csv(out / "eval.csv")
    s = report.summary
    print(
        f"{info['weights']} on {args.data} ({args.layout}, {args.split}, {s['num_images']} images)"
    )
    for m in ("psnr", "ssim", "mae"):
        print(f"  {m.upper():5s} {s[m]:.4f}   GT-mean {s[m + '_gt_mean']:.4f}")
    print(f"wrote {out / 'eval.json'} and {out / 'eval.csv'}")
    return 0
