"""Paired augmentations: the same random crop, flips and 90° rotations on both images.

Every random choice is drawn from a ``torch.Generator`` passed in by the caller, so a
sample is a pure function of its seed (see :func:`sample_seed`), whichever process or
data-loader worker draws it.

Example:
    >>> import torch
    >>> low, high = torch.rand(3, 10, 12), torch.rand(3, 10, 12)
    >>> t = PairedTransform(crop=8, hflip=True, vflip=True, rot90=True)
    >>> a = t(low, high, torch.Generator().manual_seed(3))
    >>> b = t(low, high, torch.Generator().manual_seed(3))
    >>> a[0].shape, torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    (torch.Size([3, 8, 8]), True)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

__all__ = ["PairedTransform", "sample_seed", "center_crop"]


def sample_seed(*keys: int) -> int:
    """A 63-bit seed mixed from integers (e.g. ``seed, epoch, index``) by NumPy's SeedSequence.

    Example:
        >>> sample_seed(0, 1, 2) == sample_seed(0, 1, 2) != sample_seed(0, 2, 1)
        True
    """
    words = np.random.SeedSequence([int(k) & 0xFFFFFFFFFFFFFFFF for k in keys]).generate_state(2)
    return int((int(words[0]) << 31) ^ int(words[1])) & 0x7FFFFFFFFFFFFFFF


def center_crop(x: Tensor, size: int | tuple[int, int]) -> Tensor:
    """Centre crop of a (..., H, W) tensor to ``size`` (clipped to the image)."""
    th, tw = (size, size) if isinstance(size, int) else size
    h, w = x.shape[-2:]
    th, tw = min(th, h), min(tw, w)
    y, x0 = (h - th) // 2, (w - tw) // 2
    return x[..., y : y + th, x0 : x0 + tw]


@dataclass
class PairedTransform:
    """Random crop, flips and 90° rotations applied identically to a low/high pair.

    Every random choice is drawn from the ``generator`` passed to :meth:`__call__`, in a
    fixed order (crop position, horizontal flip, vertical flip, rotation), so the result is
    a pure function of the generator's state.

    Args:
        crop: side of the square crop (None keeps the full image). A crop larger than the
            image raises ``ValueError``.
        hflip: random horizontal flip (p = 0.5).
        vflip: random vertical flip (p = 0.5).
        rot90: random rotation by 0, 90, 180 or 270 degrees; a non-square image only
            turns by 0 or 180 degrees, so that every sample of a batch keeps its shape.
        center: take the centre crop instead of a random one (held-out data); draws
            nothing from the generator for the crop.

    Shape:
        - low, high: (C, H, W), the same H and W.
        - Output: (C, crop, crop) each, or (C, H, W) / (C, W, H) without a crop.

    Example:
        >>> import torch
        >>> x = torch.arange(16.0).reshape(1, 4, 4)
        >>> lo, hi = PairedTransform(crop=2)(x, x.clone(), torch.Generator().manual_seed(0))
        >>> lo.shape, torch.equal(lo, hi)
        (torch.Size([1, 2, 2]), True)
    """

    crop: int | None = None
    hflip: bool = True
    vflip: bool = True
    rot90: bool = True
    center: bool = False

    def __post_init__(self) -> None:
        if self.crop is not None and (
            isinstance(self.crop, bool) or not isinstance(self.crop, int) or self.crop < 1
        ):
            raise ValueError(
                f"PairedTransform: crop must be a positive int or None, got {self.crop!r}"
            )

    def __call__(
        self, low: Tensor, high: Tensor, generator: torch.Generator
    ) -> tuple[Tensor, Tensor]:
        """Transform one pair of (C, H, W) tensors of the same size.

        Args:
            low: (C, H, W) low-light image.
            high: (C, H, W) normal-light target of the same size.
            generator: CPU generator every random choice is drawn from.

        Returns:
            The transformed ``(low, high)``, contiguous.

        Raises:
            TypeError: an input is not a tensor or ``generator`` is not a ``torch.Generator``.
            ValueError: the sizes differ, or ``crop`` is larger than the image.
        """
        if not isinstance(low, Tensor) or not isinstance(high, Tensor):
            raise TypeError(
                f"PairedTransform: expected two tensors, got {type(low).__name__} and "
                f"{type(high).__name__}"
            )
        if not isinstance(generator, torch.Generator):
            raise TypeError(
                f"PairedTransform: expected a torch.Generator, got {type(generator).__name__}"
            )
        if low.ndim < 2 or low.shape[-2:] != high.shape[-2:]:
            raise ValueError(
                f"PairedTransform: low {tuple(low.shape)} and high {tuple(high.shape)} "
                f"differ in size"
            )
        h, w = low.shape[-2:]
        if self.crop is not None:
            c = self.crop
            if c > h or c > w:
                raise ValueError(
                    f"PairedTransform: crop {c}x{c} is larger than the image {h}x{w} (H x W)"
                )
            if self.center:
                y, x = (h - c) // 2, (w - c) // 2
            else:
                y = int(torch.randint(h - c + 1, (1,), generator=generator))
                x = int(torch.randint(w - c + 1, (1,), generator=generator))
            low, high = low[..., y : y + c, x : x + c], high[..., y : y + c, x : x + c]
        if self.hflip and bool(torch.rand(1, generator=generator) < 0.5):
            low, high = low.flip(-1), high.flip(-1)
        if self.vflip and bool(torch.rand(1, generator=generator) < 0.5):
            low, high = low.flip(-2), high.flip(-2)
        if self.rot90:
            k = int(torch.randint(4, (1,), generator=generator))
            if low.shape[-1] != low.shape[-2]:
                k = 2 * (k % 2)  # 0 or 180 degrees keep a non-square shape
            if k:
                low, high = low.rot90(k, (-2, -1)), high.rot90(k, (-2, -1))
        return low.contiguous(), high.contiguous()
