"""Evaluate a restoration model on paired data: per-image rows, means, CSV/JSON output."""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from textrestore.metrics.functional import gt_mean_align, mae, psnr, ssim
from textrestore.metrics.perceptual import LPIPS

__all__ = ["EvalReport", "evaluate", "AVAILABLE_METRICS"]

#: Metric names :func:`evaluate` knows.
AVAILABLE_METRICS: tuple[str, ...] = ("psnr", "ssim", "mae", "lpips")


def _json_value(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return v


@dataclass
class EvalReport:
    """Result of :func:`evaluate`: one row per image and the mean of every metric.

    Attributes:
        rows: one dict per image, ``{"name": ..., "prompt": ..., "psnr": ..., ...}``.
        summary: ``{"num_images": N, "psnr": mean, ...}`` (means over images; a PSNR of
            ``inf`` for an exact output makes the mean ``inf``).
        metrics: the metric column names, in order.

    Example:
        >>> r = EvalReport(rows=[{"name": "a", "psnr": 30.0}], metrics=["psnr"])
        >>> r.summary
        {'num_images': 1, 'psnr': 30.0}
        >>> r["psnr"]
        30.0
    """

    rows: list[dict[str, Any]]
    metrics: list[str]
    summary: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.summary:
            self.summary = {"num_images": len(self.rows)}
            for m in self.metrics:
                vals = [float(r[m]) for r in self.rows if m in r]
                self.summary[m] = sum(vals) / len(vals) if vals else math.nan

    def __getitem__(self, key: str) -> Any:
        """Mean of metric ``key`` (same as ``summary[key]``)."""
        return self.summary[key]

    def to_dict(self) -> dict[str, Any]:
        """``{"summary": {...}, "rows": [...]}``."""
        return {"summary": dict(self.summary), "rows": [dict(r) for r in self.rows]}

    def to_json(self, path: str | os.PathLike[str]) -> None:
        """Write :meth:`to_dict` as JSON; non-finite numbers are written as "inf"/"nan"."""
        data = self.to_dict()
        data["summary"] = {k: _json_value(v) for k, v in data["summary"].items()}
        data["rows"] = [{k: _json_value(v) for k, v in r.items()} for r in data["rows"]]
        Path(path).write_text(json.dumps(data, indent=2, allow_nan=False) + "\n")

    def to_csv(self, path: str | os.PathLike[str]) -> None:
        """Write one line per image (name, prompt, metrics...) and a final ``mean`` line."""
        columns: list[str] = []
        for r in self.rows:
            for k in r:
                if k not in columns:
                    columns.append(k)
        with open(path, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            for r in self.rows:
                writer.writerow(r)
            mean_row: dict[str, Any] = {c: self.summary[c] for c in columns if c in self.summary}
            if "name" in columns:
                mean_row["name"] = "mean"
            writer.writerow(mean_row)


def _model_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    for b in model.buffers():
        return b.device
    return torch.device("cpu")


def evaluate(
    model: nn.Module,
    loader: Iterable[Mapping[str, Any]],
    prompts: str | Sequence[str] | None = None,
    device: str | torch.device | None = None,
    gt_mean: bool = True,
    metrics: Sequence[str] = ("psnr", "ssim", "mae"),
    lpips_weights: str | os.PathLike[str] | LPIPS | None = None,
    lpips_net: str = "alex",
    y_channel: bool = False,
) -> EvalReport:
    """Run ``model`` over paired data and score every output against its reference.

    Batch contract: ``loader`` yields dicts ``{"low": (B, 3, H, W), "high": (B, 3, H, W),
    optional "prompt": list[str] of length B, optional "name": list[str]}``. The model is
    called as ``model(low, text)`` with ``text`` the batch's ``"prompt"`` if present, else
    ``prompts``, else None (the model's default prompt), under ``torch.no_grad()`` and in
    eval mode (the training flag is restored afterwards). Outputs are clamped to [0, 1]
    before scoring (as BasicSR's ``tensor2img``).

    Args:
        model: ``nn.Module`` mapping ``(low, text)`` to a (B, 3, H, W) image.
        loader: iterable of batch dicts (e.g. a ``DataLoader``).
        prompts: prompt(s) used when a batch has no ``"prompt"``.
        device: where the batches are moved (the model must already be there); None
            uses the device of the model's first parameter (CPU for a parameterless model).
        gt_mean: also report every metric in its GT-mean variant (``psnr_gt_mean``, ...).
        metrics: any of ``"psnr"``, ``"ssim"``, ``"mae"``, ``"lpips"``. LPIPS needs local
            backbone weights (see :mod:`textrestore.metrics.perceptual`); it is resolved
            before the first batch, so a missing file fails fast.
        lpips_weights: backbone file for LPIPS, or a ready :class:`LPIPS` module.
        lpips_net: LPIPS backbone (``"alex"``, ``"vgg"``, ``"squeeze"``).
        y_channel: compute PSNR, SSIM and MAE on the BT.601 Y channel.

    Returns:
        An :class:`EvalReport` with per-image rows and means.

    Example:
        >>> class Identity(torch.nn.Module):
        ...     def forward(self, x, text=None):
        ...         return x
        >>> batch = {"low": torch.full((2, 3, 16, 16), 0.5), "high": torch.full((2, 3, 16, 16), 0.5)}
        >>> report = evaluate(Identity(), [batch])
        >>> report.summary["num_images"], report["ssim"], report["mae"]
        (2, 1.0, 0.0)
    """
    unknown = [m for m in metrics if m not in AVAILABLE_METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; choose from {list(AVAILABLE_METRICS)}")
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected an nn.Module, got {type(model).__name__}")
    dev = torch.device(device) if device is not None else _model_device(model)
    lpips_module: LPIPS | None = None
    if "lpips" in metrics:
        lpips_module = (
            lpips_weights
            if isinstance(lpips_weights, LPIPS)
            else LPIPS(lpips_net, lpips_weights)  # type: ignore[arg-type]
        )
        lpips_module = lpips_module.to(dev)
    columns: list[str] = list(metrics)
    if gt_mean:
        columns += [f"{m}_gt_mean" for m in metrics]

    rows: list[dict[str, Any]] = []
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for i, batch in enumerate(loader):
                if not isinstance(batch, Mapping) or "low" not in batch or "high" not in batch:
                    got = sorted(batch) if isinstance(batch, Mapping) else type(batch).__name__
                    raise ValueError(
                        f"batch {i}: expected a dict with 'low' and 'high' tensors, got {got}"
                    )
                low: Tensor = batch["low"].to(dev)
                high: Tensor = batch["high"].to(dev)
                n = low.shape[0]
                text = batch.get("prompt", prompts)
                out = model(low, text)
                if not isinstance(out, Tensor) or out.shape != high.shape:
                    shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
                    raise ValueError(
                        f"batch {i}: model output {shape} does not match 'high' "
                        f"{tuple(high.shape)}"
                    )
                out = out.float().clamp(0.0, 1.0)
                high = high.float()
                names = batch.get("name") or [f"{len(rows) + j:05d}" for j in range(n)]
                batch_prompts: list[Any]
                if isinstance(text, str) or text is None:
                    batch_prompts = [text] * n
                else:
                    batch_prompts = list(text) if len(text) == n else [None] * n
                scores: dict[str, Tensor] = {}
                variants = [("", out)]
                if gt_mean:
                    variants.append(("_gt_mean", gt_mean_align(out, high)))
                for suffix, pred in variants:
                    for m in metrics:
                        if m == "psnr":
                            v = psnr(pred, high, y_channel=y_channel)
                        elif m == "ssim":
                            v = ssim(pred, high, y_channel=y_channel)
                        elif m == "mae":
                            v = mae(pred, high, y_channel=y_channel)
                        elif lpips_module is not None:
                            v = lpips_module(pred, high)
                        else:  # pragma: no cover - metrics were validated above
                            raise ValueError(f"unknown metric {m!r}")
                        scores[m + suffix] = v.detach().cpu().double()
                for j in range(n):
                    row: dict[str, Any] = {"name": str(names[j])}
                    if batch_prompts[j] is not None:
                        row["prompt"] = batch_prompts[j]
                    for c in columns:
                        row[c] = float(scores[c][j])
                    rows.append(row)
    finally:
        model.train(was_training)
    return EvalReport(rows=rows, metrics=columns)
