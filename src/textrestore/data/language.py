"""Language-labelled low-light pairs: a photo, its degradation, a prompt and the prompt's target.

Each sample takes a random multi-scale crop of a normally exposed photo (a window of
``crop`` to ``max_zoom · crop`` pixels, resized to ``crop``, so the model sees both
detail and whole-scene light), degrades it with :func:`~textrestore.data.degradation.degrade`,
draws a prompt from the control vocabulary (:mod:`textrestore.data.controls`) and returns
that control's target: the reference itself for ``"normal light image"``, an exposure,
colour or grain edit of it otherwise.

Example:
    >>> import torch
    >>> ds = LanguageLowLight([torch.rand(3, 64, 64)], length=4, crop=32, seed=0)
    >>> s = ds[0]
    >>> s["low"].shape, s["high"].shape, isinstance(s["prompt"], str)
    (torch.Size([3, 32, 32]), torch.Size([3, 32, 32]), True)
    >>> torch.equal(ds[0]["low"], s["low"])
    True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

from .controls import TRAIN_PROMPTS, make_target, prompt_control, sample_prompt
from .degradation import DegradationConfig, degrade
from .transforms import sample_seed

__all__ = ["LanguageLowLight"]


class LanguageLowLight(Dataset):
    """Pairs ``{"low", "high", "prompt", "name"}`` made on the fly from normally exposed photos.

    Sample ``i`` depends only on ``(seed, epoch, i)`` (``vary_with_epoch=False`` pins the
    epoch, for validation), whatever the worker or access order.

    Args:
        images: (3, H, W) float tensors in [0, 1] (e.g. :func:`~textrestore.data.corpus.corpus_photos`).
        length: samples per epoch.
        crop: side of the square samples.
        seed: base seed.
        max_zoom: largest window side as a multiple of ``crop`` (1: plain crops).
        prompt: a fixed prompt for every sample (None: drawn from the vocabulary).
        prompts: the wordings to draw from (default: every trained wording).
        config: the degradation's ranges (default: the training mix).
        augment: random flips and 90° rotations.
        center: centre window instead of a random one (validation).
        vary_with_epoch: new draws every epoch.

    Raises:
        ValueError: no images, a crop larger than a photo, ``length`` or ``max_zoom`` < 1,
            or a prompt outside the vocabulary.
    """

    def __init__(
        self,
        images: Sequence[Tensor],
        length: int = 1000,
        crop: int = 128,
        seed: int = 0,
        *,
        max_zoom: float = 4.0,
        prompt: str | None = None,
        prompts: Sequence[str] | None = None,
        config: DegradationConfig | None = None,
        augment: bool = True,
        center: bool = False,
        vary_with_epoch: bool = True,
    ) -> None:
        if not images:
            raise ValueError("LanguageLowLight: no images given")
        for i, im in enumerate(images):
            if not isinstance(im, Tensor) or im.ndim != 3 or im.shape[0] != 3:
                raise ValueError(f"LanguageLowLight: image {i}: expected a (3, H, W) tensor")
            if min(im.shape[1:]) < crop:
                raise ValueError(
                    f"LanguageLowLight: crop {crop} is larger than image {i} "
                    f"({im.shape[1]}x{im.shape[2]})"
                )
        if length < 1 or max_zoom < 1:
            raise ValueError(
                f"LanguageLowLight: length and max_zoom must be >= 1, got {length}, {max_zoom}"
            )
        self.prompt_pool = tuple(prompts) if prompts is not None else TRAIN_PROMPTS
        for p in (prompt, *self.prompt_pool):
            if p is not None:
                prompt_control(p)  # raises for a prompt outside the vocabulary
        self.images = [im.float().contiguous() for im in images]
        self.length, self.crop, self.seed = int(length), int(crop), int(seed)
        self.max_zoom, self.fixed_prompt, self.config = float(max_zoom), prompt, config
        self.augment, self.center, self.vary_with_epoch = augment, center, vary_with_epoch
        self.epoch = 0

    @property
    def prompts(self) -> list[str]:
        """Every prompt a sample can carry (a trainer encodes them up front)."""
        return [self.fixed_prompt] if self.fixed_prompt is not None else list(self.prompt_pool)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def _window(self, src: Tensor, g: torch.Generator) -> Tensor:
        h, w = src.shape[1:]
        top_side = min(h, w, int(self.crop * self.max_zoom))
        if self.center:
            side = top_side
            top, left = (h - side) // 2, (w - side) // 2
        else:
            lo, hi = math.log(self.crop), math.log(max(top_side, self.crop))
            side = int(round(math.exp(lo + (hi - lo) * float(torch.rand((), generator=g)))))
            side = min(max(side, self.crop), top_side)
            top = int(torch.randint(h - side + 1, (), generator=g))
            left = int(torch.randint(w - side + 1, (), generator=g))
        win = src[:, top : top + side, left : left + side]
        if side != self.crop:
            win = F.interpolate(win[None], size=(self.crop, self.crop), mode="area")[0]
        if self.augment:
            if bool(torch.rand((), generator=g) < 0.5):
                win = win.flip(-1)
            k = int(torch.randint(4, (), generator=g))
            win = torch.rot90(win, k, dims=(1, 2))
        return win.clamp(0.0, 1.0).contiguous()

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} samples")
        epoch = self.epoch if self.vary_with_epoch else 0
        seed = sample_seed(self.seed, epoch, index)
        g = torch.Generator().manual_seed(seed)
        if self.center:
            src = self.images[index % len(self.images)]
        else:
            src = self.images[int(torch.randint(len(self.images), (), generator=g))]
        ref = self._window(src, g)[None]
        low, params = degrade(ref, [seed ^ 0x5EED], self.config)
        if self.fixed_prompt is not None:
            prompt = self.fixed_prompt
        else:
            prompt = self.prompt_pool[int(torch.randint(len(self.prompt_pool), (), generator=g))]
            if self.prompt_pool is TRAIN_PROMPTS:
                prompt = sample_prompt(g)
        target = make_target(ref, prompt_control(prompt), low=low, gain=params.gain_map())
        return {"low": low[0], "high": target[0], "prompt": prompt, "name": f"photo_{index:06d}"}

    def __repr__(self) -> str:
        return (
            f"LanguageLowLight(images={len(self.images)}, length={self.length}, "
            f"crop={self.crop}, prompt={self.fixed_prompt or 'vocabulary'})"
        )
