"""``build_dataset``: one entry point from a config's data section to a dataset.

Example:
    >>> ds = build_dataset("synthetic", split="val", crop=32, length=3, size=64, prompt="p")
    >>> s = ds[0]
    >>> s["low"].shape, s["prompt"], len(ds)
    (torch.Size([3, 32, 32]), 'p', 3)
"""

from __future__ import annotations

import os
from typing import Any

from torch.utils.data import Dataset

from .degradation import DegradationConfig
from .image_io import is_image_file, read_image
from .kinds import DATASET_KINDS, SPLITS
from .paired import PairedImageFolder
from .synthetic import SyntheticLowLight, resize_short_side, skimage_photos
from .transforms import PairedTransform

__all__ = ["build_dataset"]



def build_dataset(
    kind: str,
    *,
    root: str | os.PathLike[str] | None = None,
    split: str = "train",
    crop: int | None = None,
    prompt: str | None = None,
    prompts_file: str | os.PathLike[str] | None = None,
    seed: int = 0,
    length: int | None = None,
    size: int | None = 256,
    cache: bool = False,
    degradation: DegradationConfig | None = None,
) -> Dataset[Any]:
    """Build a paired dataset from a kind and a few settings.

    Every dataset returned has a fixed ``len``, a ``set_epoch(epoch)`` method and samples
    that depend only on ``(seed, epoch, index)`` (not on worker count or access order).

    Args:
        kind: ``lol_v1``, ``lol_v2_real``, ``lol_v2_synthetic``, ``generic`` (a
            :class:`PairedImageFolder` layout at ``root``), ``synthetic``
            (:class:`SyntheticLowLight`) or ``photos`` (language-labelled pairs from the
            photo corpus, :class:`~textrestore.data.language.LanguageLowLight`; ``root``
            adds a user folder of normally exposed photos to the training split).
        root: dataset root; for ``synthetic`` an optional folder of normal-light images
            (None: the offline ``skimage.data`` photos of :func:`skimage_photos`).
        split: ``"train"``, or ``"test"``/``"val"`` (held out: the layout's test folders;
            for ``synthetic`` the held-out skimage photos, ``root``'s images otherwise).
        crop: square crop side. ``"train"``: random crop with flips and 90° rotations,
            seeded per ``(seed, epoch, index)``; held out: centre crop, no flips (None: full
            images for folders).
        prompt: one prompt for every sample (the fallback of per-image prompts).
        prompts_file: per-image prompts for folders (JSON/CSV path or ``"sidecar"``).
        seed: base seed of the augmentation / synthesis.
        length: ``synthetic``: samples per epoch (default: one per photo).
        size: ``synthetic``: the sources are resized so that their short side is ``size``
            (None: original sizes); without ``crop`` the samples are ``size``-square crops
            (so that they batch), or full images when ``size`` is None too.
        cache: folders: keep decoded images in memory.
        degradation: ``synthetic`` and ``photos``: the ranges of the degradation model
            (:func:`~textrestore.data.degradation.degrade`; None: the training mix).

    Returns:
        A map-style dataset of sample dicts (see :mod:`textrestore.data`).

    Raises:
        ValueError: unknown kind (the valid ones are listed) or split; a folder kind
            without ``root``; any error of the dataset's constructor.
        TypeError: ``degradation`` is not a :class:`DegradationConfig`.
    """
    if kind not in DATASET_KINDS:
        raise ValueError(f"unknown dataset kind {kind!r}; expected one of {list(DATASET_KINDS)}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
    if degradation is not None and not isinstance(degradation, DegradationConfig):
        raise TypeError(
            "build_dataset: degradation must be a DegradationConfig or None, "
            f"got {type(degradation).__name__}"
        )
    train = split == "train"
    if kind == "photos":
        from .corpus import corpus_photos
        from .language import LanguageLowLight

        photo_crop = crop if crop is not None else 128
        photos = corpus_photos(
            "train" if train else "val", size=size, extra=[root] if root and train else ()
        )
        if train:
            return LanguageLowLight(
                photos, length=length or 1000, crop=photo_crop, seed=seed, prompt=prompt,
                config=degradation,
            )  # fmt: skip
        return LanguageLowLight(
            photos, length=length or 4 * len(photos), crop=photo_crop, seed=seed,
            prompt=prompt or "normal light image", augment=False, center=True,
            vary_with_epoch=False, config=degradation,
        )  # fmt: skip
    if kind == "synthetic":
        if prompts_file is not None:
            raise ValueError(
                "build_dataset: prompts_file is for image folders; synthetic data takes prompt="
            )
        if crop is not None and size is not None and crop > size:
            raise ValueError(
                f"build_dataset: crop {crop} is larger than size {size} (the short side the "
                f"synthetic sources are resized to); lower crop or raise size"
            )
        if root is None:
            images = skimage_photos("train" if train else "val", size=size)
        else:
            if not os.path.isdir(root):
                raise FileNotFoundError(f"build_dataset: synthetic image folder not found: {root}")
            files = sorted(os.path.join(root, f) for f in os.listdir(root) if is_image_file(f))
            if not files:
                raise FileNotFoundError(f"build_dataset: no images in {root}")
            images = [read_image(f) for f in files]
            if size is not None:
                images = [resize_short_side(im, size) for im in images]
        side = crop if crop is not None else size
        return SyntheticLowLight(
            images,
            length=length,
            crop=side,
            seed=seed,
            config=degradation,
            prompt=prompt,
            augment=train,
            center=not train,
            vary_with_epoch=train,
        )
    if root is None:
        raise ValueError(f"dataset kind {kind!r} needs root= (the dataset folder)")
    transform = None
    if crop is not None:
        transform = (
            PairedTransform(crop)
            if train
            else PairedTransform(crop, hflip=False, vflip=False, rot90=False, center=True)
        )
    return PairedImageFolder(
        root,
        layout=kind,
        split=split,
        transform=transform,
        prompt=prompt,
        prompts_file=prompts_file,
        seed=seed,
        cache=cache,
    )
