"""Synthetic low light from normal-light images, and the photos ``skimage.data`` ships.

Recipe (per sample; every random draw depends only on ``(seed, epoch, index)``):

1. geometry: random square crop, horizontal/vertical flips and 90° rotation of the source
   (the target ``high`` is this crop of the source itself), drawn from a
   ``torch.Generator`` seeded by :func:`~textrestore.data.transforms.sample_seed`;
2. the project's one degradation model, :func:`textrestore.data.degradation.degrade`
   (linear light: unprocessing, an exposure drop of 1-7 stops, uneven illumination,
   the colour of the light, Poisson-Gaussian sensor noise, tone curve back, 8-bit and
   JPEG), with the ranges of a :class:`~textrestore.data.degradation.DegradationConfig`
   (default: the training mix, ``FAMILIES["training"]``) and a seed derived from the
   same ``(seed, epoch, index)``.

Example:
    >>> import torch
    >>> ds = SyntheticLowLight([torch.rand(3, 20, 20)], length=4, crop=16, seed=0)
    >>> s = ds[1]
    >>> s["low"].shape, bool(s["low"].mean() < s["high"].mean()), torch.equal(ds[1]["low"], s["low"])
    (torch.Size([3, 16, 16]), True, True)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from .degradation import DegradationConfig, degrade
from .image_io import is_image_file, read_image, to_tensor
from .transforms import PairedTransform, sample_seed

__all__ = [
    "SyntheticLowLight",
    "skimage_photos",
    "SKIMAGE_TRAIN",
    "SKIMAGE_VAL",
    "resize_short_side",
]

#: skimage.data photos used for training (grey photos are replicated to RGB).
SKIMAGE_TRAIN: tuple[str, ...] = (
    "rocket", "stereo_motorcycle", "immunohistochemistry", "hubble_deep_field", "retina",
    "colorwheel", "camera", "brick", "grass", "gravel", "moon", "coins", "clock", "cell",
)  # fmt: skip
#: Held-out skimage.data photos (never in the training split); the same three photos the
#: shipped ``nalsuper_s`` checkpoint was validated on.
SKIMAGE_VAL: tuple[str, ...] = ("astronaut", "coffee", "chelsea")


def _load_skimage(name: str) -> list[Tensor]:
    try:
        from skimage import data
    except ImportError as err:
        raise ImportError(
            "skimage_photos needs scikit-image (pip install scikit-image); its photos ship "
            "with the package, nothing is downloaded"
        ) from err
    fn = getattr(data, name, None)
    if fn is None:
        raise ValueError(f"skimage.data has no photo {name!r}")
    out = fn()
    arrays = list(out[:2]) if isinstance(out, tuple) else [out]  # stereo pair: both views
    return [to_tensor(np.asarray(a)) for a in arrays]


def skimage_photos(
    split: str = "train", size: int | None = 256, *, names: Sequence[str] | None = None
) -> list[Tensor]:
    """The real photos bundled with scikit-image, as (3, H, W) float tensors in [0, 1].

    The hold-out is fixed and matches ``examples/train_default.py`` (the recipe of the
    shipped ``nalsuper_s`` checkpoint): ``split="val"`` gives :data:`SKIMAGE_VAL`
    (astronaut, coffee, chelsea: 3 photos), ``split="train"`` gives :data:`SKIMAGE_TRAIN`
    (14 other names, 15 photos: grey ones replicated to RGB, ``stereo_motorcycle``
    contributes both views) and ``"all"`` both (train first). Nothing is downloaded.

    Args:
        split: ``"train"``, ``"val"`` or ``"all"``.
        size: resize (bilinear, antialiased) so that the short side is ``size``; None keeps
            the original sizes.
        names: explicit ``skimage.data`` names instead of the split's.

    Returns:
        List of (3, H, W) float32 tensors.

    Raises:
        ImportError: scikit-image is not installed.
        ValueError: unknown split, bad size, or a name ``skimage.data`` does not have.

    Example:
        >>> photos = skimage_photos("val", size=32)
        >>> len(photos), [min(p.shape[1:]) for p in photos]
        (3, [32, 32, 32])
    """
    if split not in ("train", "val", "all"):
        raise ValueError(f"skimage_photos: split must be 'train', 'val' or 'all', got {split!r}")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise ValueError(f"skimage_photos: size must be a positive int or None, got {size!r}")
    if names is not None:
        chosen = list(names)
    else:
        chosen = {
            "train": list(SKIMAGE_TRAIN),
            "val": list(SKIMAGE_VAL),
            "all": [*SKIMAGE_TRAIN, *SKIMAGE_VAL],
        }[split]
    photos: list[Tensor] = []
    for name in chosen:
        photos += _load_skimage(name)
    if size is not None:
        photos = [resize_short_side(p, size) for p in photos]
    return photos


def resize_short_side(x: Tensor, size: int) -> Tensor:
    """Resize a (C, H, W) image (bilinear, antialiased) so that its short side is ``size``.

    Example:
        >>> resize_short_side(torch.rand(3, 40, 60), 20).shape
        torch.Size([3, 20, 30])
    """
    h, w = x.shape[-2:]
    if min(h, w) == size:
        return x
    scale = size / min(h, w)
    new = (size, max(1, round(w * scale))) if h <= w else (max(1, round(h * scale)), size)
    out = torch.nn.functional.interpolate(
        x[None].float(), size=new, mode="bilinear", antialias=True, align_corners=False
    )[0]
    return out.clamp(0, 1).contiguous()


def _shrink(x: Tensor, max_side: int) -> Tensor:
    h, w = x.shape[-2:]
    scale = max_side / max(h, w)
    if scale >= 1:
        return x
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    return torch.nn.functional.interpolate(x[None], size=size, mode="area")[0].contiguous()


class SyntheticLowLight(Dataset):
    """Pairs made on the fly from normal-light images with the module's recipe.

    Sample ``i`` uses source image ``i % len(images)``; its crop position, flips and
    rotation come from a ``torch.Generator`` seeded by ``(seed, epoch, i)`` and its
    degradation (:func:`~textrestore.data.degradation.degrade`) from a seed derived from
    the same triple, so an epoch is reproducible in any process or data-loader worker,
    and :meth:`set_epoch` changes the draws (``vary_with_epoch=False`` pins the epoch to
    0, e.g. for validation).

    Args:
        images: (3, H, W) float tensors in [0, 1], image file paths, or a folder of images.
        length: samples per epoch (default: one per image).
        crop: square crop side (None: full images). Must fit every source image.
        seed: base seed.
        config: the degradation's ranges and probabilities (None: the training mix,
            :class:`~textrestore.data.degradation.DegradationConfig`).
        prompt: if given, every sample carries this ``"prompt"``.
        augment: random flips (horizontal, vertical) and 90° rotations.
        center: with ``crop``, take the centre crop instead of a random one (validation).
        vary_with_epoch: draw new crops/noise every epoch.
        quantize: 8-bit quantisation of the low image (None: ``config.quantize``).
        max_side: downscale the sources so that the longer side is at most this.

    Raises:
        ValueError: no images, ``length`` < 1, or a crop larger than a source.
        TypeError: an item of ``images`` is neither a tensor nor a path, or ``config`` is
            not a :class:`~textrestore.data.degradation.DegradationConfig`.

    Example:
        >>> import torch
        >>> ds = SyntheticLowLight([torch.rand(3, 32, 32)], length=2, crop=16, prompt="p")
        >>> a = ds[0]["low"]
        >>> ds.set_epoch(1)
        >>> sorted(ds[0]), torch.equal(a, ds[0]["low"])
        (['high', 'low', 'name', 'prompt'], False)
    """

    def __init__(
        self,
        images: Sequence[Tensor | str | os.PathLike] | str | os.PathLike,
        length: int | None = None,
        crop: int | None = None,
        seed: int = 0,
        config: DegradationConfig | None = None,
        prompt: str | None = None,
        augment: bool = True,
        *,
        center: bool = False,
        vary_with_epoch: bool = True,
        quantize: bool | None = None,
        max_side: int | None = None,
    ) -> None:
        if config is not None and not isinstance(config, DegradationConfig):
            raise TypeError(
                "SyntheticLowLight: config must be a DegradationConfig or None, "
                f"got {type(config).__name__}"
            )
        config = config if config is not None else DegradationConfig()
        if quantize is not None:
            config = replace(config, quantize=bool(quantize))
        sources: list[Tensor] = []
        if isinstance(images, (str, os.PathLike)):
            folder = Path(images)
            if not folder.is_dir():
                raise FileNotFoundError(f"SyntheticLowLight: image folder not found: {folder}")
            images = sorted(p for p in folder.iterdir() if is_image_file(p))
        for i, item in enumerate(images):
            if isinstance(item, Tensor):
                if item.ndim != 3 or item.shape[0] != 3 or not item.is_floating_point():
                    raise ValueError(
                        f"SyntheticLowLight: image {i}: expected a float (3, H, W) tensor, "
                        f"got {item.dtype} {tuple(item.shape)}"
                    )
                sources.append(item.detach().cpu().float())
            elif isinstance(item, (str, os.PathLike)):
                sources.append(read_image(item))
            else:
                raise TypeError(
                    f"SyntheticLowLight: image {i}: expected a tensor or a path, "
                    f"got {type(item).__name__}"
                )
        if not sources:
            raise ValueError("SyntheticLowLight: no images given")
        if max_side is not None:
            sources = [_shrink(s, max_side) for s in sources]
        if crop is not None:
            if isinstance(crop, bool) or not isinstance(crop, int) or crop < 1:
                raise ValueError(f"SyntheticLowLight: crop must be a positive int, got {crop!r}")
            small = [
                f"image {i} ({s.shape[1]}x{s.shape[2]})"
                for i, s in enumerate(sources)
                if min(s.shape[1:]) < crop
            ]
            if small:
                raise ValueError(
                    f"SyntheticLowLight: crop {crop}x{crop} is larger than "
                    + ", ".join(small)
                    + " (H x W)"
                )
        self.config = config
        self.images = sources
        self.length = int(length) if length is not None else len(sources)
        if self.length < 1:
            raise ValueError(f"SyntheticLowLight: length must be >= 1, got {length}")
        if prompt is not None and not isinstance(prompt, str):
            raise TypeError(f"SyntheticLowLight: prompt must be a str, got {type(prompt).__name__}")
        self.crop, self.center, self.augment = crop, center, augment
        self.transform = PairedTransform(
            crop, hflip=augment, vflip=augment, rot90=augment, center=center
        )
        self.seed, self.epoch, self.vary_with_epoch = int(seed), 0, vary_with_epoch
        self.prompt = prompt

    @property
    def prompts(self) -> list[str]:
        """``[prompt]``, or an empty list without a prompt (for a trainer's prompt bank)."""
        return [self.prompt] if self.prompt is not None else []

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch that seeds the samples (ignored with ``vary_with_epoch=False``)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} samples")
        epoch = self.epoch if self.vary_with_epoch else 0
        seed = sample_seed(self.seed, epoch, index)
        gen = torch.Generator().manual_seed(seed)
        src = self.images[index % len(self.images)]
        high, _ = self.transform(src, src, gen)
        low, _ = degrade(high[None], [seed ^ 0x5EED], self.config)
        low = low[0]
        sample: dict[str, Any] = {"low": low, "high": high, "name": f"synthetic_{index:06d}"}
        if self.prompt is not None:
            sample["prompt"] = self.prompt
        return sample

    def __repr__(self) -> str:
        return (
            f"SyntheticLowLight(images={len(self.images)}, length={self.length}, "
            f"crop={self.crop}, seed={self.seed})"
        )
