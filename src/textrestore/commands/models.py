"""``textrestore models``: a table of the presets with parameters and FLOPs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = ["register"]


#: The shipped table of the presets at 400×600 (textrestore.models.cli.TABLE_CACHE).
_CACHE = Path(__file__).resolve().parents[1] / "assets" / "models_table.json"


def _run(args: argparse.Namespace) -> int:
    if (args.height, args.width) == (400, 600) and _CACHE.is_file():
        rows = json.loads(_CACHE.read_text())["rows"]  # no torch import: ~0.1 s
    else:
        from ..models.cli import model_table

        rows = model_table(args.height, args.width)
    print(_format_table(rows, args.height, args.width))
    return 0


def _format_table(rows: list[dict[str, Any]], height: int, width: int) -> str:
    header = f"| model | params (M) | GFLOPs @ {height}x{width} | C | RTFBs | text encoder |"
    lines = [header, "| --- | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['params_M']:.3f} | {r['gflops']:.1f} | {r['dim']} "
            f"| {r['depth']} | {r['text_encoder']} |"
        )
    return "\n".join(lines)


def register(subparsers: Any) -> None:
    """Add the ``models`` subcommand."""
    p = subparsers.add_parser("models", help="list the model presets with params and FLOPs")
    p.add_argument("--height", type=int, default=400, help="image height for FLOPs (400)")
    p.add_argument("--width", type=int, default=600, help="image width for FLOPs (600)")
    p.set_defaults(func=_run)
