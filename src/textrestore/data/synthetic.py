"""Synthetic low light from normal-light images, and the photos ``skimage.data`` ships.

Recipe (per sample; every parameter is drawn uniformly from its range, and every random
draw comes from one ``torch.Generator`` seeded by ``(seed, epoch, index)``):

1. geometry: random square crop, horizontal/vertical flips and 90° rotation of the source
   (the target ``high`` is this crop of the source itself);
2. exposure and tone: ``clean = β · (α · I)^γ`` with α ~ U(0.9, 1.0), β ~ U(0.5, 1.0),
   γ ~ U(1.5, 5.0) — the darkening recipe of Lv et al., "Attention guided low-light image
   enhancement with a large scale low-light simulation dataset" (IJCV 2021), the family of
   gamma-and-scale degradations also used to build the synthetic part of LOL-v2;
3. sensor noise, a heteroscedastic Gaussian approximation of Poisson shot noise plus
   Gaussian read noise: ``low = clean + s · sqrt(clean) · n₁ + r · n₂`` with
   n₁, n₂ ~ N(0, 1), s ~ U(0, 0.02) (shot, std ∝ sqrt(signal)) and r ~ U(0, 0.01) (read);
4. clip to [0, 1] and, by default, quantise to 8 bits (1/255 steps) as a camera file would.

:func:`textrestore.baselines.darken` (the demo's and the shipped checkpoint's darkening)
is a different, brighter parametrisation (``k · x^g``, k in 0.08-0.3, g in 1.0-1.6) of the
same exposure-plus-noise model.

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
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from .image_io import is_image_file, read_image, to_tensor
from .transforms import PairedTransform, sample_seed

__all__ = [
    "SyntheticLowLight",
    "SYNTHETIC_DEFAULTS",
    "degrade",
    "skimage_photos",
    "SKIMAGE_TRAIN",
    "SKIMAGE_VAL",
    "resize_short_side",
]

#: Default ranges (low, high) of the synthetic degradation (see the module docstring).
SYNTHETIC_DEFAULTS: dict[str, tuple[float, float]] = {
    "alpha": (0.9, 1.0),
    "beta": (0.5, 1.0),
    "gamma": (1.5, 5.0),
    "shot_noise": (0.0, 0.02),
    "read_noise": (0.0, 0.01),
}

#: skimage.data photos used for training (grey photos are replicated to RGB).
SKIMAGE_TRAIN: tuple[str, ...] = (
    "rocket", "stereo_motorcycle", "immunohistochemistry", "hubble_deep_field", "retina",
    "colorwheel", "camera", "brick", "grass", "gravel", "moon", "coins", "clock", "cell",
)  # fmt: skip
#: Held-out skimage.data photos (never in the training split); the same three photos the
#: shipped ``nalsuper_s`` checkpoint was validated on.
SKIMAGE_VAL: tuple[str, ...] = ("astronaut", "coffee", "chelsea")


def _check_range(name: str, value: object) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)  # type: ignore[attr-defined]
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name}: expected a (low, high) pair of numbers, got {value!r}") from err
    if not lo <= hi or lo != lo or hi != hi:
        raise ValueError(f"{name}: expected low <= high, got ({lo}, {hi})")
    if name in ("shot_noise", "read_noise") and lo < 0:
        raise ValueError(f"{name}: noise levels must be >= 0, got ({lo}, {hi})")
    if name in ("alpha", "beta", "gamma") and lo <= 0:
        raise ValueError(f"{name}: expected values > 0, got ({lo}, {hi})")
    return lo, hi


def degrade(
    image: Tensor,
    generator: torch.Generator,
    quantize: bool = True,
    **ranges: tuple[float, float],
) -> Tensor:
    """Apply the synthetic low-light recipe (steps 2-4 of the module docstring) to one image.

    Draws α, β, γ, the shot and read noise levels (in this order), then the two noise
    fields, from ``generator``.

    Args:
        image: (C, H, W) float in [0, 1].
        generator: CPU generator the parameters and noise are drawn from.
        quantize: round to 1/255 steps.
        **ranges: overrides of :data:`SYNTHETIC_DEFAULTS` (``alpha``, ``beta``, ``gamma``,
            ``shot_noise``, ``read_noise``).

    Returns:
        (C, H, W) float in [0, 1].

    Example:
        >>> import torch
        >>> x = torch.full((3, 4, 4), 0.5)
        >>> y = degrade(x, torch.Generator().manual_seed(0), gamma=(2.0, 2.0), shot_noise=(0, 0),
        ...             read_noise=(0, 0), alpha=(1, 1), beta=(1, 1), quantize=False)
        >>> round(y.mean().item(), 4)
        0.25
    """
    unknown = set(ranges) - set(SYNTHETIC_DEFAULTS)
    if unknown:
        raise ValueError(
            f"unknown degradation range(s) {sorted(unknown)}; valid: {sorted(SYNTHETIC_DEFAULTS)}"
        )
    cfg = {k: _check_range(k, v) for k, v in {**SYNTHETIC_DEFAULTS, **ranges}.items()}
    draw = {}
    for key in ("alpha", "beta", "gamma", "shot_noise", "read_noise"):
        lo, hi = cfg[key]
        draw[key] = lo + (hi - lo) * float(torch.rand((), generator=generator, dtype=torch.float64))
    x = image.clamp(0, 1)
    clean = draw["beta"] * (draw["alpha"] * x) ** draw["gamma"]
    n1 = torch.randn(x.shape, generator=generator, dtype=x.dtype)
    n2 = torch.randn(x.shape, generator=generator, dtype=x.dtype)
    low = clean + draw["shot_noise"] * clean.sqrt() * n1 + draw["read_noise"] * n2
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

    Sample ``i`` uses source image ``i % len(images)``; its crop position, flips, rotation,
    α, β, γ and noise all come from a ``torch.Generator`` seeded by ``(seed, epoch, i)``,
    so an epoch is reproducible in any process or data-loader worker, and
    :meth:`set_epoch` changes the draws (``vary_with_epoch=False`` pins the epoch to 0,
    e.g. for validation).

    Args:
        images: (3, H, W) float tensors in [0, 1], image file paths, or a folder of images.
        length: samples per epoch (default: one per image).
        crop: square crop side (None: full images). Must fit every source image.
        seed: base seed.
        alpha: range of α (exposure scale inside the power).
        beta: range of β (exposure scale outside the power).
        gamma: range of γ (> 1 darkens the mid-tones most).
        shot_noise: range of the shot-noise factor (std = factor · sqrt(signal)).
        read_noise: range of the read-noise std.
        prompt: if given, every sample carries this ``"prompt"``.
        augment: random flips (horizontal, vertical) and 90° rotations.
        center: with ``crop``, take the centre crop instead of a random one (validation).
        vary_with_epoch: draw new crops/noise every epoch.
        quantize: 8-bit quantisation of the low image.
        max_side: downscale the sources so that the longer side is at most this.

    Raises:
        ValueError: no images, bad ranges, ``length`` < 1, or a crop larger than a source.
        TypeError: an item of ``images`` is neither a tensor nor a path.

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
        alpha: tuple[float, float] = SYNTHETIC_DEFAULTS["alpha"],
        beta: tuple[float, float] = SYNTHETIC_DEFAULTS["beta"],
        gamma: tuple[float, float] = SYNTHETIC_DEFAULTS["gamma"],
        shot_noise: tuple[float, float] = SYNTHETIC_DEFAULTS["shot_noise"],
        read_noise: tuple[float, float] = SYNTHETIC_DEFAULTS["read_noise"],
        prompt: str | None = None,
        augment: bool = True,
        *,
        center: bool = False,
        vary_with_epoch: bool = True,
        quantize: bool = True,
        max_side: int | None = None,
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
        self.ranges = {
            k: _check_range(k, v)
            for k, v in dict(
                alpha=alpha, beta=beta, gamma=gamma, shot_noise=shot_noise, read_noise=read_noise
            ).items()
        }
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
        self.prompt, self.quantize = prompt, quantize

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
        high, _ = self.transform(src, src, gen)
        low = degrade(high, gen, quantize=self.quantize, **self.ranges)
        sample: dict[str, Any] = {"low": low, "high": high, "name": f"synthetic_{index:06d}"}
        if self.prompt is not None:
            sample["prompt"] = self.prompt
        return sample

    def __repr__(self) -> str:
        return (
            f"SyntheticLowLight(images={len(self.images)}, length={self.length}, "
            f"crop={self.crop}, seed={self.seed})"
        )
