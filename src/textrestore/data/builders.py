"""``build_dataset``: one entry point from a config's data section to a dataset.

Example:
    >>> ds = build_dataset("synthetic", split="val", crop=32, length=3, prompt="normal light image")
    >>> s = ds[0]
    >>> s["low"].shape, s["prompt"], len(ds)
    (torch.Size([3, 32, 32]), 'normal light image', 3)
"""

from __future__ import annotations

import os
from typing import Any

from torch.utils.data import Dataset

from .paired import LAYOUTS, PairedImageFolder
from .synthetic import SyntheticLowLight, skimage_photos

__all__ = ["build_dataset", "DATASET_KINDS"]

#: Kinds :func:`build_dataset` knows: the folder layouts and ``synthetic``.
DATASET_KINDS: tuple[str, ...] = (*LAYOUTS, "synthetic")


def build_dataset(
    kind: str,
    root: str | os.PathLike[str] | None = None,
    split: str = "train",
    crop: int | None = None,
    prompt: str | None = None,
    prompts_file: str | os.PathLike[str] | None = None,
    seed: int = 0,
    length: int | None = None,
    size: int = 256,
    cache: bool = False,
) -> Dataset[Any]:
    """Build a paired dataset from a kind and a few settings.

    Args:
        kind: ``lol_v1``, ``lol_v2_real``, ``lol_v2_synthetic``, ``generic`` (a
            :class:`PairedImageFolder` layout) or ``synthetic`` (:class:`SyntheticLowLight`).
        root: dataset root; for ``synthetic`` a folder of normal-light images (None: the
            offline ``skimage.data`` photos, fixed train/val hold-out).
        split: ``"train"``, or ``"test"``/``"val"`` for held-out data.
        crop: square crop side. Training: random crops (with flips and 90° rotations);
            held-out: ``synthetic`` takes centre crops; folders keep full images (the
            benchmark protocol), whatever ``crop`` says.
        prompt: one prompt for every sample.
        prompts_file: per-image prompts (JSON/CSV path or ``"sidecar"``) for folders.
        seed: base seed of the augmentation / synthesis.
        length: ``synthetic``: samples per epoch (default 1000 for training, one per photo
            held out).
        size: ``synthetic``: crop side when ``crop`` is None; the sources are downscaled so
            that their longer side is at most ``max(2 * crop, 256)``.
        cache: folders: keep decoded images in memory.

    Returns:
        A map-style dataset of sample dicts (see :mod:`textrestore.data`).
    """
    if kind not in DATASET_KINDS:
        raise ValueError(f"unknown dataset kind {kind!r}; expected one of {list(DATASET_KINDS)}")
    train = split == "train"
    if not train and split not in ("test", "val"):
        raise ValueError(f"split must be 'train', 'test' or 'val', got {split!r}")
    if kind == "synthetic":
        side = int(crop if crop is not None else size)
        max_side = max(2 * side, 256)
        if root is None:
            images: Any = skimage_photos("train" if train else "val", max_side=max_side)
        else:
            images = root
        n = length if length is not None else (1000 if train else None)
        return SyntheticLowLight(
            images,
            crop=side,
            length=n,
            seed=seed,
            prompt=prompt,
            center=not train,
            vary_with_epoch=train,
            hflip=train,
            rot90=train,
            max_side=max_side,
        )
    if root is None:
        raise ValueError(f"dataset kind {kind!r} needs root= (the dataset folder)")
    return PairedImageFolder(
        root,
        layout=kind,
        split="train" if train else "test",
        crop=crop if train else None,
        prompt=prompt,
        prompts=prompts_file,
        seed=seed,
        cache=cache,
    )
