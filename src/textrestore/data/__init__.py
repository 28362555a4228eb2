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

from .builders import DATASET_KINDS, build_dataset
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
from .paired import (
    LAYOUT_DIRS,
    LAYOUTS,
    SPLITS,
    PairedImageFolder,
    PairingError,
    find_pairs,
    image_size,
    load_prompts,
)
from .synthetic import (
    SKIMAGE_TRAIN,
    SKIMAGE_VAL,
    SyntheticLowLight,
    resize_short_side,
    skimage_photos,
)
from .transforms import PairedTransform, center_crop, sample_seed

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
