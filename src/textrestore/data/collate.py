"""Collate samples into the batch contract of the trainer and :func:`textrestore.metrics.evaluate`.

Batch: ``{"low": (B, 3, H, W) float32, "high": (B, 3, H, W) float32, "name": list[str]}``
plus ``"prompt": list[str]`` (length B) when the samples carry prompts.

Example:
    >>> import torch
    >>> s = {"low": torch.zeros(3, 4, 4), "high": torch.ones(3, 4, 4), "name": "a", "prompt": "p"}
    >>> b = collate_pairs([s, s])
    >>> b["low"].shape, b["name"], b["prompt"]
    (torch.Size([2, 3, 4, 4]), ['a', 'a'], ['p', 'p'])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

__all__ = ["collate_pairs"]


def collate_pairs(samples: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Stack ``low``/``high`` and list ``name``/``prompt`` (see the module docstring).

    Raises:
        ValueError: empty batch, missing keys, mixed prompt/no-prompt samples or images of
            different sizes (use a crop or batch size 1 for full images of mixed sizes).
    """
    if not samples:
        raise ValueError("collate_pairs: empty batch")
    for i, s in enumerate(samples):
        if "low" not in s or "high" not in s:
            raise ValueError(f"collate_pairs: sample {i} lacks 'low'/'high'; got keys {sorted(s)}")
    shapes = {tuple(s["low"].shape) for s in samples} | {tuple(s["high"].shape) for s in samples}
    if len(shapes) > 1:
        raise ValueError(
            f"collate_pairs: images of different sizes in one batch {sorted(shapes)}; set a crop "
            f"size or use batch size 1"
        )
    batch: dict[str, Any] = {
        "low": torch.stack([s["low"] for s in samples]).float(),
        "high": torch.stack([s["high"] for s in samples]).float(),
        "name": [str(s.get("name", i)) for i, s in enumerate(samples)],
    }
    has_prompt = ["prompt" in s for s in samples]
    if any(has_prompt):
        if not all(has_prompt):
            raise ValueError("collate_pairs: some samples carry a prompt and others do not")
        batch["prompt"] = [str(s["prompt"]) for s in samples]
    return batch
