"""``textrestore models``: a table of the presets with parameters and FLOPs."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register"]


def _run(args: argparse.Namespace) -> int:
    from ..models.cli import format_table, model_table

    print(format_table(model_table(args.height, args.width), args.height, args.width))
    return 0


def register(subparsers: Any) -> None:
    """Add the ``models`` subcommand."""
    p = subparsers.add_parser("models", help="list the model presets with params and FLOPs")
    p.add_argument("--height", type=int, default=400, help="image height for FLOPs (400)")
    p.add_argument("--width", type=int, default=600, help="image width for FLOPs (600)")
    p.set_defaults(func=_run)
