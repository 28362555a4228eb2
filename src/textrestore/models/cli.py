"""The preset table of ``textrestore models``: parameters and FLOPs of every preset."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..layers import RTFB, TCM
from .base import TextGuidedModel
from .registry import create_model, list_models

#: The presets' table at 400×600, computed by :func:`model_table` and shipped, so that
#: ``textrestore models`` answers without importing torch (a test keeps it current).
TABLE_CACHE = Path(__file__).resolve().parents[1] / "assets" / "models_table.json"

__all__ = ["count_flops", "model_table", "format_table", "write_table_cache", "TABLE_CACHE"]


def _reference_path(model: torch.nn.Module) -> None:
    """Switch every TCM to the plain softmax(QKᵀ/√d)V formulation (counted exactly)."""
    for module in model.modules():
        if isinstance(module, TCM):
            module.fused_attn = False


def count_flops(
    name: str, height: int = 400, width: int = 600, text_tokens: int = 77, **overrides: Any
) -> int:
    """FLOPs of one forward of preset ``name`` on a (1, 3, height, width) image.

    Counted by :class:`torch.utils.flop_counter.FlopCounterMode` on the reference
    attention path, on the meta device (no memory, no compute).
    """
    with torch.device("meta"):
        model = create_model(name, **overrides)
        if not isinstance(model, TextGuidedModel):
            raise TypeError(f"count_flops: {name} is not a text-guided model preset")
        image = torch.empty(1, int(getattr(model, "in_chans", 3)), height, width)
        text = torch.empty(1, text_tokens, model.text_dim)
    _reference_path(model)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(image, text)
    return int(counter.get_total_flops())


def model_table(height: int = 400, width: int = 600) -> list[dict[str, Any]]:
    """One row per preset: name, params, GFLOPs at ``height``×``width``, text encoder."""
    rows = []
    for name in list_models():
        with torch.device("meta"):
            model = create_model(name)
        params = sum(p.numel() for p in model.parameters())
        rows.append(
            {
                "model": name,
                "params_M": round(params / 1e6, 3),
                "gflops": round(count_flops(name, height, width) / 1e9, 1),
                "dim": getattr(model, "dim", None)
                or "/".join(str(w) for w in getattr(model, "widths", ())),
                "depth": sum(isinstance(m, RTFB) for m in model.modules()),
                "text_encoder": getattr(model, "text_encoder_name", None),
            }
        )
    return rows


def format_table(rows: list[dict[str, Any]], height: int, width: int) -> str:
    """The markdown table of :func:`model_table`'s rows (what ``textrestore models`` prints)."""
    from ..commands.models import _format_table

    return _format_table(rows, height, width)


def write_table_cache(path: Path = TABLE_CACHE) -> None:
    """Recompute :data:`TABLE_CACHE` (after a preset changes)."""
    from .._atomic import atomic_write_text

    table = {"height": 400, "width": 600, "rows": model_table(400, 600)}
    atomic_write_text(path, json.dumps(table, indent=1) + "\n")
