"""``textrestore train`` and ``textrestore eval``.

``textrestore train --config cfg.yaml [key=value ...]`` runs a :class:`~textrestore.train.Trainer`
(also under ``torchrun --nproc_per_node=N``); ``textrestore eval --weights CKPT --data DIR
--layout lol_v1`` scores a checkpoint on a folder's test split (PSNR/SSIM/MAE and their
GT-mean variants) and writes ``eval.csv`` and ``eval.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..data.kinds import LAYOUTS, SPLITS
from ._args import add_device_argument, add_model_arguments, model_from_args

__all__ = ["register", "run_train", "run_eval"]

TRAIN_EPILOG = """\
examples:
  textrestore train --config examples/configs/synthetic.yaml steps=200 out_dir=runs/demo
  textrestore train --config examples/configs/lol_v1.yaml data.root=/data/LOL resume=auto
  torchrun --nproc_per_node=2 -m textrestore.cli train --config examples/configs/lol_v1.yaml
"""

EVAL_EPILOG = """\
examples:
  textrestore eval --weights runs/lol_v1/best.pt --data /data/LOL --layout lol_v1
  textrestore eval --weights my.safetensors --model nalsuper_s --data DIR --layout generic
"""


TRAIN_DESCRIPTION = (
    "Train a model from a YAML, TOML or JSON config, with key=value overrides (dotted keys "
    "for nested settings, e.g. data.root=/data/LOL). Runs unchanged under torchrun "
    "--nproc_per_node=N (DistributedDataParallel). Checkpoints are written atomically to "
    "out_dir; resume=auto continues a killed run exactly where it stopped."
)


def register(subparsers: Any) -> None:
    """Add the ``train`` and ``eval`` subcommands."""
    p = subparsers.add_parser(
        "train",
        help="train a model from a YAML/TOML config",
        description=TRAIN_DESCRIPTION,
        epilog=TRAIN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--config", type=Path, default=None, help="YAML, TOML or JSON config (default: defaults)"
    )
    p.add_argument(
        "overrides", nargs="*", metavar="key=value", help="config overrides (dotted keys)"
    )
    p.add_argument("--print-config", action="store_true", help="print the final config and exit")
    p.set_defaults(func=run_train)

    e = subparsers.add_parser(
        "eval",
        help="score a checkpoint on a paired folder (PSNR/SSIM/MAE, GT-mean too)",
        description="Evaluate a checkpoint on the test split of a paired dataset folder.",
        epilog=EVAL_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_arguments(e)
    add_device_argument(e)
    e.add_argument("--data", type=Path, required=True, help="dataset root folder")
    e.add_argument("--layout", default="lol_v1", choices=LAYOUTS, help="folder layout")
    e.add_argument("--split", default="test", choices=sorted(SPLITS))
    e.add_argument("--prompts-file", default=None, help="per-image prompts (JSON/CSV/sidecar)")
    e.add_argument("--prompt", default=None, help="prompt for every image (default: model's)")
    e.add_argument("--text-encoder", default=None, help="encoder for prompts not in the bank")
    e.add_argument("--no-ema", action="store_true", help="use the raw weights, not the EMA")
    e.add_argument(
        "--out", type=Path, default=None,
        help="folder for eval.csv and eval.json (default: beside --weights, else ./eval)",
    )  # fmt: skip
    e.set_defaults(func=run_eval)


def _config_error(err: BaseException, path: Path | None) -> str:
    """One line for a config that cannot be read (YAML errors span several lines)."""
    import yaml

    if isinstance(err, yaml.YAMLError):
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or type(err).__name__
        return f"config file {path}: not valid YAML ({problem}{where})"
    if isinstance(err, UnicodeDecodeError):
        return f"config file {path}: not a UTF-8 text file ({err.reason})"
    return " ".join(str(err).split())


def run_train(args: argparse.Namespace) -> int:
    """Run ``textrestore train``; returns the exit code."""
    import yaml

    from ..train.config import TrainConfig
    from ..train.distributed import cleanup_distributed
    from ..train.trainer import NonFiniteLossError, Trainer

    try:
        if args.config is None:
            cfg = TrainConfig.from_dict({}, args.overrides)
        else:
            cfg = TrainConfig.from_file(args.config, args.overrides)
    except (ValueError, OSError, ImportError, yaml.YAMLError, UnicodeDecodeError) as err:
        print(f"textrestore train: {_config_error(err, args.config)}", file=sys.stderr)
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
    except (ValueError, FileNotFoundError, ImportError) as err:
        print(f"textrestore train: {err}", file=sys.stderr)
        return 2
    finally:
        cleanup_distributed()
    print(json.dumps(summary, indent=2))
    return 0


def run_eval(args: argparse.Namespace) -> int:
    """Run ``textrestore eval``; returns the exit code."""
    from torch.utils.data import DataLoader

    from ..data import build_dataset, collate_pairs
    from ..inference import _resolve_device
    from ..metrics import evaluate

    try:
        device = _resolve_device(args.device)
        model: Any = model_from_args(args, use_ema=not args.no_ema)
        if args.text_encoder:
            from ..text import create_text_encoder

            model.set_text_encoder(create_text_encoder(args.text_encoder))
        dataset = build_dataset(
            args.layout,
            root=args.data,
            split=args.split,
            prompt=args.prompt,
            prompts_file=args.prompts_file,
        )
        model.to(device)
        loader = DataLoader(dataset, batch_size=1, shuffle=False, collate_fn=collate_pairs)
        report = evaluate(model, loader, prompts=args.prompt, metrics=("psnr", "ssim", "mae"))
    except (ValueError, FileNotFoundError, ImportError, KeyError, RuntimeError, TypeError) as err:
        print(f"textrestore eval: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    out = args.out or (Path(args.weights).parent if args.weights else Path("eval"))
    out.mkdir(parents=True, exist_ok=True)
    report.to_csv(out / "eval.csv")
    report.to_json(out / "eval.json")
    s = report.summary
    print(f"{s['num_images']} images ({args.layout}, {args.data})")
    for m in ("psnr", "ssim", "mae"):
        print(f"  {m.upper():5s} {s[m]:.4f}   GT-mean {s[m + '_gt_mean']:.4f}")
    print(f"wrote {out / 'eval.csv'} and {out / 'eval.json'}")
    return 0
