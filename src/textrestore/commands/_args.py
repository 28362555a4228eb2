"""Arguments shared by the subcommands that load a model."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

__all__ = ["add_model_arguments", "add_device_argument", "load_model_option", "model_from_args"]


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """``--weights CKPT`` and ``--model PRESET``, resolved by ``inference.load_model``."""
    parser.add_argument(
        "--weights", metavar="CKPT", default=None,
        help="a .safetensors file, a trainer checkpoint (.pt; its EMA weights), a "
        "weights-only state dict or a save_pretrained folder; default: the shipped checkpoint",
    )  # fmt: skip
    parser.add_argument(
        "--model", metavar="PRESET", default=None,
        help="model preset (default: the one the weights file names, else nalsuper_ms); "
        "without --weights the preset's shipped weights are used",
    )  # fmt: skip


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    """``--device auto|cpu|cuda``."""
    parser.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default="auto",
        help="where to run (default: auto = cuda when available)",
    )  # fmt: skip


def load_model_option(
    weights: str | os.PathLike[str] | None, model: str | None, *, use_ema: bool = True
) -> Any:
    """The model ``--weights`` and ``--model`` name (imports torch; call it in ``run``).

    A folder is a ``save_pretrained`` folder; a file goes to
    :func:`textrestore.inference.load_model` (``use_ema=False``: a trainer checkpoint's raw
    weights); no weights: the preset's shipped weights (default: the shipped default).
    """
    if weights is not None and Path(weights).is_dir():
        from ..models import from_pretrained

        return from_pretrained(weights)
    if weights is not None and not use_ema:
        from ..models import model_from_checkpoint

        return model_from_checkpoint(Path(weights), model, use_ema=False).eval()
    from ..inference import load_model

    return load_model(weights, preset=model) if weights is not None else load_model(model)


def model_from_args(args: argparse.Namespace, *, use_ema: bool = True) -> Any:
    """:func:`load_model_option` for the parsed ``--weights`` and ``--model``."""
    return load_model_option(args.weights, args.model, use_ema=use_ema)
