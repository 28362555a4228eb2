"""Synthetic low light from normal-light images, and the photos ``skimage.data`` ships.

Recipe (per sample, all parameters drawn from a generator seeded by ``(seed, epoch,
index)``; ranges are constructor arguments):

1. exposure and tone: ``clean = β · (α · I)^γ`` with α ~ U(0.9, 1.0), β ~ U(0.5, 1.0),
   γ ~ U(1.5, 5.0) — the darkening of Lv et al., "Attention guided low-light image
   enhancement with a large scale low-light simulation dataset" (IJCV 2021);
2. sensor noise (heteroscedastic Gaussian approximation of Poisson + read noise):
   ``low = clean + sqrt(k · clean) · n₁ + σ_r · n₂`` with n₁, n₂ ~ N(0, 1),
   k ~ U(1e-4, 1e-3) (shot) and σ_r ~ U(1e-3, 5e-3) (read);
3. clip to [0, 1] and, by default, quantise to 8 bits.

The target is the (cropped, flipped, rotated) source image itself.

Example:
    >>> import torch
    >>> ds = SyntheticLowLight([torch.rand(3, 20, 20)], crop=16, length=4, seed=0)
    >>> s = ds[1]
    >>> s["low"].shape, bool(s["low"].mean() < s["high"].mean()), torch.equal(ds[1]["low"], s["low"])
    (torch.Size([3, 16, 16]), True, True)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from .image_io import is_image_file, read_image, to_tensor
from .transforms import PairedTransform, center_crop, sample_seed

__all__ = [
    "SyntheticLowLight",
    "SYNTHETIC_DEFAULTS",
    "degrade",
    "skimage_photos",
    "SKIMAGE_TRAIN",
    "SKIMAGE_VAL",
]

#: Default ranges (low, high) of the synthetic degradation.
SYNTHETIC_DEFAULTS: dict[str, tuple[float, float]] = {
    "alpha": (0.9, 1.0),
    "beta": (0.5, 1.0),
    "gamma": (1.5, 5.0),
    "shot": (1e-4, 1e-3),
    "read": (1e-3, 5e-3),
}

#: skimage.data photos used for training (grey photos are replicated to RGB).
SKIMAGE_TRAIN: tuple[str, ...] = (
    "rocket", "stereo_motorcycle", "immunohistochemistry", "hubble_deep_field", "retina",
    "colorwheel", "camera", "brick", "grass", "gravel", "moon", "coins", "clock", "cell",
)  # fmt: skip
#: Held-out skimage.data photos (never in the training split); the same three photos the
#: shipped ``nalsuper_s`` checkpoint was validated on.
SKIMAGE_VAL: tuple[str, ...] = ("astronaut", "coffee", "chelsea")


def degrade(
    image: Tensor,
    generator: torch.Generator,
    quantize: bool = True,
    **ranges: tuple[float, float],
) -> Tensor:
    """Apply the synthetic low-light recipe (module docstring) to one (3, H, W) image.

    Args:
        image: (C, H, W) float in [0, 1].
        generator: CPU generator the parameters and noise are drawn from.
        quantize: round to 1/255 steps.
        **ranges: overrides of :data:`SYNTHETIC_DEFAULTS`.

    Returns:
        (C, H, W) float in [0, 1].
    """
    unknown = set(ranges) - set(SYNTHETIC_DEFAULTS)
    if unknown:
        raise ValueError(
            f"unknown degradation range(s) {sorted(unknown)}; valid: {sorted(SYNTHETIC_DEFAULTS)}"
        )
    cfg = {**SYNTHETIC_DEFAULTS, **ranges}
    draw = {}
    for key in ("alpha", "beta", "gamma", "shot", "read"):
        lo, hi = cfg[key]
        draw[key] = lo + (hi - lo) * float(torch.rand((), generator=generator, dtype=torch.float64))
    x = image.clamp(0, 1)
    clean = draw["beta"] * (draw["alpha"] * x) ** draw["gamma"]
    n1 = torch.randn(x.shape, generator=generator, dtype=x.dtype)
    n2 = torch.randn(x.shape, generator=generator, dtype=x.dtype)
    low = clean + (draw["shot"] * clean).sqrt() * n1 + draw["read"] * n2
    low = low.clamp(0, 1)
    return torch.round(low * 255) / 255 if quantize else low


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
    split: str = "train", names: Sequence[str] | None = None, max_side: int | None = None
) -> list[Tensor]:
    """The real photos bundled with scikit-image, as (3, H, W) float tensors in [0, 1].

    The hold-out is fixed: ``split="val"`` gives :data:`SKIMAGE_VAL` (astronaut, coffee,
    chelsea) and ``split="train"`` gives :data:`SKIMAGE_TRAIN` (14 other photos, grey ones
    replicated to RGB; ``stereo_motorcycle`` contributes both views). Nothing is downloaded.

    Args:
        split: ``"train"`` or ``"val"``.
        names: explicit ``skimage.data`` names instead of the split's.
        max_side: downscale (area) so that the longer side is at most this.

    Returns:
        List of tensors.
    """
    if split not in ("train", "val"):
        raise ValueError(f"skimage_photos: split must be 'train' or 'val', got {split!r}")
    chosen = (
        list(names)
        if names is not None
        else list(SKIMAGE_TRAIN if split == "train" else SKIMAGE_VAL)
    )
    photos: list[Tensor] = []
    for name in chosen:
        photos += _load_skimage(name)
    if max_side is not None:
        photos = [_shrink(p, max_side) for p in photos]
    return photos


def _shrink(x: Tensor, max_side: int) -> Tensor:
    h, w = x.shape[-2:]
    scale = max_side / max(h, w)
    if scale >= 1:
        return x
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    return torch.nn.functional.interpolate(x[None], size=size, mode="area")[0].contiguous()


class SyntheticLowLight(Dataset):
    """Pairs made on the fly from normal-light images with the module's recipe.

    Sample ``i`` uses source image ``i % len(images)``; its crop, flips, rotation,
    degradation parameters and noise come from a generator seeded by
    ``(seed, epoch, i)`` (``epoch`` fixed to 0 when ``vary_with_epoch=False``, e.g. for
    validation), so an epoch is reproducible in any process or worker.

    Args:
        images: (3, H, W) tensors in [0, 1], image file paths, or a folder of images.
        crop: random square crop side (None: full images, or a centre crop with
            ``center_crop=True``).
        length: samples per epoch (default: one per image).
        seed: base seed.
        prompt: if given, every sample carries this ``"prompt"``.
        hflip: random horizontal flips.
        rot90: random 90° rotations.
        center: with ``crop``, take the centre crop instead of a random one (validation).
        vary_with_epoch: draw new crops/noise every epoch.
        quantize: 8-bit quantisation of the low image.
        max_side: downscale the sources so that the longer side is at most this.
        **ranges: overrides of :data:`SYNTHETIC_DEFAULTS` (e.g. ``gamma=(2.0, 3.0)``).
    """

    def __init__(
        self,
        images: Sequence[Tensor | str | os.PathLike] | str | os.PathLike,
        crop: int | None = None,
        length: int | None = None,
        seed: int = 0,
        prompt: str | None = None,
        hflip: bool = True,
        rot90: bool = True,
        center: bool = False,
        vary_with_epoch: bool = True,
        quantize: bool = True,
        max_side: int | None = None,
        **ranges: tuple[float, float],
    ) -> None:
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
                    f"SyntheticLowLight: image {i}: expected a tensor or a path, got {type(item).__name__}"
                )
        if not sources:
            raise ValueError("SyntheticLowLight: no images given")
        if max_side is not None:
            sources = [_shrink(s, max_side) for s in sources]
        unknown = set(ranges) - set(SYNTHETIC_DEFAULTS)
        if unknown:
            raise ValueError(
                f"SyntheticLowLight: unknown range(s) {sorted(unknown)}; valid: {sorted(SYNTHETIC_DEFAULTS)}"
            )
        self.images = sources
        self.length = int(length) if length is not None else len(sources)
        if self.length < 1:
            raise ValueError(f"SyntheticLowLight: length must be >= 1, got {length}")
        self.crop, self.center = crop, center
        self.transform = PairedTransform(None if center else crop, hflip=hflip, rot90=rot90)
        self.seed, self.epoch, self.vary_with_epoch = int(seed), 0, vary_with_epoch
        self.prompt, self.quantize, self.ranges = prompt, quantize, dict(ranges)

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
        gen = torch.Generator().manual_seed(sample_seed(self.seed, epoch, index))
        src = self.images[index % len(self.images)]
        if self.center and self.crop is not None:
            src = center_crop(src, self.crop)
        high, _ = self.transform(src, src, gen)
        low = degrade(high, gen, quantize=self.quantize, **self.ranges)
        sample: dict[str, Any] = {"low": low, "high": high, "name": f"synthetic_{index:06d}"}
        if self.prompt is not None:
            sample["prompt"] = self.prompt
        return sample
