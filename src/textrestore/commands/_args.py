"""Arguments shared by the subcommands that load a model."""

from __future__ import annotations

import argparse

__all__ = ["add_model_arguments", "add_device_argument"]


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """``--weights CKPT`` and ``--model PRESET``, resolved by ``inference.load_model``."""
    parser.add_argument(
        "--weights", metavar="CKPT", default=None,
        help="a .safetensors file, a trainer checkpoint (.pt; its EMA weights) or a "
        "weights-only state dict; default: the shipped checkpoint",
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
