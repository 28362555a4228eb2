"""Data: image I/O, paired folders (LOL-v1/v2, generic), synthetic low light, transforms.

Low light is synthesised by one degradation model, :func:`degrade`
(:mod:`textrestore.data.degradation`), with the ranges of a :class:`DegradationConfig`.

Samples are dicts ``{"low": (3, H, W), "high": (3, H, W), "name": str[, "prompt": str]}``;
:func:`collate_pairs` turns a list of them into the batch contract used by the trainer and
by :func:`textrestore.metrics.evaluate`.

Example:
    >>> import torch
    >>> from torch.utils.data import DataLoader
    >>> ds = SyntheticLowLight([torch.rand(3, 24, 24)], length=4, crop=16, prompt="normal light image")
    >>> batch = next(iter(DataLoader(ds, batch_size=2, collate_fn=collate_pairs)))
    >>> batch["low"].shape, len(batch["prompt"])
    (torch.Size([2, 3, 16, 16]), 2)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_namespace

# Public names and the submodule each lives in, imported on first use (PEP 562): the
# torch-free constants of :mod:`.kinds` can be read (e.g. by the CLI's parsers) without
# importing torch.
_LAZY: dict[str, str] = {
    "IMAGE_EXTENSIONS": ".image_io",
    "is_image_file": ".image_io",
    "read_image": ".image_io",
    "read_image_array": ".image_io",
    "write_image": ".image_io",
    "to_tensor": ".image_io",
    "to_array": ".image_io",
    "LAYOUTS": ".kinds",
    "LAYOUT_DIRS": ".kinds",
    "SPLITS": ".kinds",
    "PairedImageFolder": ".paired",
    "PairingError": ".paired",
    "find_pairs": ".paired",
    "image_size": ".paired",
    "load_prompts": ".paired",
    "SyntheticLowLight": ".synthetic",
    "degrade": ".degradation",
    "DegradationConfig": ".degradation",
    "DegradationParams": ".degradation",
    "FAMILIES": ".degradation",
    "skimage_photos": ".synthetic",
    "resize_short_side": ".synthetic",
    "SKIMAGE_TRAIN": ".synthetic",
    "SKIMAGE_VAL": ".synthetic",
    "PairedTransform": ".transforms",
    "center_crop": ".transforms",
    "sample_seed": ".transforms",
    "collate_pairs": ".collate",
    "build_dataset": ".builders",
    "DATASET_KINDS": ".kinds",
}

if TYPE_CHECKING:
    from .builders import build_dataset
    from .collate import collate_pairs
    from .degradation import FAMILIES, DegradationConfig, DegradationParams, degrade
    from .image_io import (
        IMAGE_EXTENSIONS,
        is_image_file,
        read_image,
        read_image_array,
        to_array,
        to_tensor,
        write_image,
    )
    from .kinds import DATASET_KINDS, LAYOUT_DIRS, LAYOUTS, SPLITS
    from .paired import PairedImageFolder, PairingError, find_pairs, image_size, load_prompts
    from .synthetic import (
        SKIMAGE_TRAIN,
        SKIMAGE_VAL,
        SyntheticLowLight,
        resize_short_side,
        skimage_photos,
    )
    from .transforms import PairedTransform, center_crop, sample_seed


__getattr__, __dir__ = lazy_namespace(__name__, _LAZY, globals())


__all__ = [
    "IMAGE_EXTENSIONS",
    "is_image_file",
    "read_image",
    "read_image_array",
    "write_image",
    "to_tensor",
    "to_array",
    "LAYOUTS",
    "LAYOUT_DIRS",
    "SPLITS",
    "PairedImageFolder",
    "PairingError",
    "find_pairs",
    "image_size",
    "load_prompts",
    "SyntheticLowLight",
    "degrade",
    "DegradationConfig",
    "DegradationParams",
    "FAMILIES",
    "skimage_photos",
    "resize_short_side",
    "SKIMAGE_TRAIN",
    "SKIMAGE_VAL",
    "PairedTransform",
    "center_crop",
    "sample_seed",
    "collate_pairs",
    "build_dataset",
    "DATASET_KINDS",
]
