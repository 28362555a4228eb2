"""Multi-scale NaLSuper: the same RTFB (TCM + IFA) and cross-layer fusion at several resolutions.

Exposure and uneven light are regional and global, but a full-resolution NaLSuper sees
about 35 pixels around each pixel (plus globally pooled channel gates). This variant runs
its RTFBs in an encoder–decoder: every scale has a stage of RTFBs whose outputs are fused
by cross-layer attention, strided 2×2 convs go down, 1×1 conv + pixel shuffle go up and
skips are added. Every RTFB has its TCM, so text steers the local detail at full
resolution and the global tone at 1/8. The paper's single-scale ``nalsuper`` is unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_image_batch
from ..layers import RTFB
from ..text import PromptBank
from .base import TextGuidedModel, TextInput
from .nalsuper import _build, move_fusion_keys
from .registry import register_model

__all__ = ["RTFBStage", "MultiScaleNaLSuper", "nalsuper_ms"]


class RTFBStage(nn.Module):
    """``depth`` RTFBs at one resolution, their outputs fused by the last block's IFA.

    ``out = x + CLA([b_1, ..., b_depth])`` with ``CLA`` the cross-layer attention of the
    last block's IFA (with one block: ``out = b_1``).

    Args:
        dim: channels C.
        text_dim: text token width D.
        depth: number of RTFBs.
        num_heads: TCM heads.
        reduction: channel/pixel attention bottleneck ratio.
        init_values: initial LayerScale of the TCM updates.
        layer_attention: ``False``: the fusion is concatenation + 1×1 conv only.

    Shape:
        - x: (B, C, H, W); tokens: (B, L, D); mask: (B, L) bool or None
        - output: (B, C, H, W)

    Example:
        >>> import torch
        >>> stage = RTFBStage(8, 4, depth=2, num_heads=2)
        >>> stage(torch.rand(1, 8, 5, 6), torch.randn(1, 3, 4), None).shape
        torch.Size([1, 8, 5, 6])
    """

    def __init__(
        self,
        dim: int,
        text_dim: int,
        *,
        depth: int,
        num_heads: int = 4,
        reduction: int = 8,
        init_values: float | None = 0.1,
        layer_attention: bool = True,
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"RTFBStage: depth must be >= 1, got {depth}")
        self.depth = depth
        self.blocks = nn.ModuleList(
            RTFB(
                dim, text_dim, num_heads=num_heads, reduction=reduction,
                init_values=init_values, layer_attention=layer_attention,
                num_levels=depth if depth > 1 and i == depth - 1 else None,
            )  # fmt: skip
            for i in range(depth)
        )

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        move_fusion_keys(state_dict, prefix, f"blocks.{self.depth - 1}.")
        super()._load_from_state_dict(state_dict, prefix, *args)

    def forward(self, x: Tensor, tokens: Tensor, mask: Tensor | None) -> Tensor:
        levels: list[Tensor] = []
        y = x
        for block in self.blocks[:-1]:
            y = block(y, tokens, mask)
            levels.append(y)
        if self.depth == 1:
            return self.blocks[-1](y, tokens, mask)
        return x + self.blocks[-1](y, tokens, mask, levels=levels)


class MultiScaleNaLSuper(TextGuidedModel):
    """Text-guided low-light enhancer on an encoder–decoder of RTFB stages.

    ``image → 3×3 stem → [stage_s → 2×2/2 conv] for each scale → bottleneck stage →
    [1×1 conv + pixel shuffle, + skip, stage_s] back up → 3×3 conv → + image``.
    Inputs of any size are padded (replicate) to a multiple of ``2^(len(widths)-1)`` and
    the output is cropped back.

    Args:
        in_chans: image channels.
        widths: channels per scale, full resolution first (each further scale is half
            the resolution of the previous one).
        enc_depths: RTFBs per encoder stage (one per scale except the last).
        mid_depth: RTFBs at the coarsest scale.
        dec_depths: RTFBs per decoder stage (coarse to fine, one per scale except the last).
        num_heads: TCM heads (every width must be divisible by it).
        text_dim: text token width D.
        reduction: channel/pixel attention bottleneck ratio.
        init_values: initial LayerScale of the TCM updates.
        layer_attention: cosine layer attention in the stages' fusion (ablation switch).
        default_prompt: prompt used when ``text`` is None.
        channels_last: run in channels_last memory format.
        text_encoder: name of the text encoder the preset was designed for.

    Shape:
        - image: (B, in_chans, H, W), any H, W >= 1; text: as for :class:`NaLSuper`
        - output: (B, in_chans, H, W) (not clipped)

    Example:
        >>> import torch
        >>> m = MultiScaleNaLSuper(widths=(8, 16), enc_depths=(1,), mid_depth=1,
        ...                        dec_depths=(1,), num_heads=2, text_dim=4)
        >>> m(torch.rand(1, 3, 13, 17), torch.randn(3, 4)).shape
        torch.Size([1, 3, 13, 17])
    """

    def __init__(
        self,
        in_chans: int = 3,
        *,
        widths: Sequence[int] = (16, 32, 64, 96),
        enc_depths: Sequence[int] = (1, 1, 2),
        mid_depth: int = 2,
        dec_depths: Sequence[int] = (2, 1, 1),
        num_heads: int = 4,
        text_dim: int = 384,
        reduction: int = 8,
        init_values: float | None = 0.1,
        layer_attention: bool = True,
        default_prompt: str = "normal light image",
        channels_last: bool = True,
        text_encoder: str | None = None,
    ) -> None:
        super().__init__()
        widths, enc_depths, dec_depths = list(widths), list(enc_depths), list(dec_depths)
        if (
            len(widths) < 1
            or len(enc_depths) != len(widths) - 1
            or len(dec_depths) != len(widths) - 1
        ):
            raise ValueError(
                "MultiScaleNaLSuper: expected len(enc_depths) == len(dec_depths) == "
                f"len(widths) - 1, got widths={widths}, enc_depths={enc_depths}, "
                f"dec_depths={dec_depths}"
            )
        if any(w % num_heads for w in widths):
            raise ValueError(
                f"MultiScaleNaLSuper: every width must be divisible by num_heads={num_heads}, "
                f"got {widths}"
            )
        self.in_chans, self.text_dim, self.channels_last = in_chans, text_dim, channels_last
        self.widths = widths
        self.use_tcm = True
        self.text_encoder_name = text_encoder
        self.config: dict[str, Any] = {
            "in_chans": in_chans, "widths": widths, "enc_depths": enc_depths,
            "mid_depth": mid_depth, "dec_depths": dec_depths, "num_heads": num_heads,
            "text_dim": text_dim, "reduction": reduction, "init_values": init_values,
            "layer_attention": layer_attention, "default_prompt": default_prompt,
            "channels_last": channels_last, "text_encoder": text_encoder,
        }  # fmt: skip
        common: dict[str, Any] = dict(
            num_heads=num_heads, reduction=reduction, init_values=init_values,
            layer_attention=layer_attention,
        )  # fmt: skip
        self.stem = nn.Conv2d(in_chans, widths[0], 3, padding=1)
        self.encoders = nn.ModuleList(
            RTFBStage(w, text_dim, depth=d, **common) for w, d in zip(widths, enc_depths)
        )
        self.downs = nn.ModuleList(
            nn.Conv2d(widths[i], widths[i + 1], 2, stride=2) for i in range(len(widths) - 1)
        )
        self.middle = RTFBStage(widths[-1], text_dim, depth=mid_depth, **common)
        self.ups = nn.ModuleList(
            nn.Sequential(nn.Conv2d(widths[i + 1], 4 * widths[i], 1), nn.PixelShuffle(2))
            for i in reversed(range(len(widths) - 1))
        )
        self.decoders = nn.ModuleList(
            RTFBStage(widths[i], text_dim, depth=d, **common)
            for i, d in zip(reversed(range(len(widths) - 1)), dec_depths)
        )
        self.tail = nn.Conv2d(widths[0], in_chans, 3, padding=1)
        self.prompt_bank = PromptBank(text_dim, default_prompt=default_prompt)

    @property
    def multiple(self) -> int:
        """Inputs are padded to a multiple of this (2 per downsampling)."""
        return 2 ** (len(self.widths) - 1)

    def forward(self, image: Tensor, text: TextInput = None) -> Tensor:
        check_image_batch(image, "MultiScaleNaLSuper input image", self.in_chans)
        b, _, h, w = image.shape
        emb = self.embed_text(text, b)
        tokens = emb.tokens.to(device=image.device, dtype=image.dtype)
        mask = emb.mask.to(image.device)
        m = self.multiple
        ph, pw = (-h) % m, (-w) % m
        x = F.pad(image, (0, pw, 0, ph), mode="replicate") if ph or pw else image
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x = self.stem(x)
        skips = []
        for stage, down in zip(self.encoders, self.downs):
            x = stage(x, tokens, mask)
            skips.append(x)
            x = down(x)
        x = self.middle(x, tokens, mask)
        for up, stage, skip in zip(self.ups, self.decoders, reversed(skips)):
            x = stage(up(x) + skip, tokens, mask)
        out = self.tail(x)
        if ph or pw:
            out = out[:, :, :h, :w]
        return (image + out).contiguous()


@register_model
def nalsuper_ms(pretrained: bool = False, **overrides: Any) -> MultiScaleNaLSuper:
    """Multi-scale CPU preset: widths 16/32/64/96 at 1, 1/2, 1/4, 1/8 resolution, 10 RTFBs, MiniLM text."""
    preset = {
        "widths": (16, 32, 64, 96), "enc_depths": (1, 1, 2), "mid_depth": 2,
        "dec_depths": (2, 1, 1), "num_heads": 4, "text_dim": 384, "text_encoder": "minilm",
    }  # fmt: skip
    return _build(preset, pretrained, "nalsuper_ms", overrides, cls=MultiScaleNaLSuper)
