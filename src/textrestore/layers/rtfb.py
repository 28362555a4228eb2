"""RTFB: the Residual Textual-guide Fusion Block (conv body → TCM → IFA, block skip)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._checks import check_image_batch
from ..text.embedding import TextEmbedding
from ._fast import inference_fast_path
from .ifa import IFA
from .tcm import TCM

__all__ = ["RTFB"]


class RTFB(nn.Module):
    """One residual block of NaLSuper.

    ``y = conv(act(conv(x)) + x)``; ``y = TCM(y, text)``; ``y = PA(CA(y))``; output ``x + y``.
    The conv body follows FFA-Net's block; TCM injects the text, IFA re-weights
    channels and pixels.

    Args:
        dim: channels C.
        text_dim: text token width D.
        num_heads: TCM heads.
        reduction: bottleneck ratio of the channel and pixel attention.
        act_layer: activation of the conv body and attention bottlenecks.
        init_values: initial LayerScale of the TCM update.
        use_tcm: ``False`` drops the text branch (the "Base" model of the ablation).
        use_ifa: ``False`` drops channel and pixel attention.
        num_levels: the block ends a sequence of ``num_levels`` blocks and its IFA fuses
            their outputs (see ``forward``'s ``levels``); ``None``: no fusion.
        fusion_temperature: initial temperature of the cross-layer affinity.
        layer_attention: ``False``: the fusion is concatenation + 1×1 conv only.

    Shape:
        - x: (B, C, H, W); text: (B, L, D) / (L, D) / (D,) or TextEmbedding; mask: (B, L) bool
        - output: (B, C, H, W)

    Example:
        >>> import torch
        >>> block = RTFB(dim=16, text_dim=8, num_heads=2)
        >>> block(torch.rand(2, 16, 7, 5), torch.randn(2, 4, 8)).shape
        torch.Size([2, 16, 7, 5])
    """

    def __init__(
        self,
        dim: int,
        text_dim: int,
        *,
        num_heads: int = 4,
        reduction: int = 8,
        act_layer: type[nn.Module] = nn.ReLU,
        init_values: float | None = 0.1,
        use_tcm: bool = True,
        use_ifa: bool = True,
        num_levels: int | None = None,
        fusion_temperature: float = 10.0,
        layer_attention: bool = True,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.conv1 = nn.Conv2d(dim, dim, 3, padding=1)
        self.act = act_layer()
        self.conv2 = nn.Conv2d(dim, dim, 3, padding=1)
        self.tcm = (
            TCM(dim, text_dim, num_heads=num_heads, init_values=init_values) if use_tcm else None
        )
        self.ifa = (
            IFA(
                dim, reduction=reduction, num_levels=num_levels, attention=use_ifa,
                act_layer=act_layer, fusion_temperature=fusion_temperature,
                layer_attention=layer_attention,
            )  # fmt: skip
            if use_ifa or num_levels is not None
            else None
        )

    def forward(
        self,
        x: Tensor,
        text: Tensor | TextEmbedding | None = None,
        mask: Tensor | None = None,
        *,
        levels: list[Tensor] | None = None,
        out: Tensor | None = None,
    ) -> Tensor:
        """``x + IFA(TCM(conv(act(conv(x)) + x), text))``, written into ``out`` when given.

        With ``levels`` (the outputs of the earlier blocks of the sequence; the block was
        built with ``num_levels``) the block returns its IFA's cross-layer fusion of
        ``[*levels, x + IFA(...)]`` instead.

        When :func:`~textrestore.layers._fast.inference_fast_path` holds, the same
        operations run with in-place intermediates (the conv body's buffer is reused by
        TCM and IFA, which get ``inplace=True`` when they are this library's own classes),
        so only two full-size buffers live besides ``x``; ``x`` is never modified.
        """
        check_image_batch(x, "RTFB input x", self.dim)
        if levels is not None and (self.ifa is None or self.ifa.fusion is None):
            raise ValueError("RTFB: levels were given but the block was built without num_levels")
        if levels is not None and out is not None:
            raise ValueError("RTFB: out= is for the block's output, not for a fusion of levels")
        if self.tcm is not None and text is None:
            raise ValueError("RTFB: text is required (the block was built with use_tcm=True)")
        lean = inference_fast_path(self, x)
        t = self.conv1(x)
        t = t.relu_() if lean and type(self.act) is nn.ReLU else self.act(t)
        y = self.conv2(t.add_(x) if lean else t + x)
        del t
        if self.tcm is not None:
            y = (
                self.tcm(y, text, mask, inplace=True)
                if lean and type(self.tcm) is TCM
                else self.tcm(y, text, mask)
            )
        own_ifa = lean and type(self.ifa) is IFA
        if levels is not None:
            return self.ifa(y, levels, residual=x, inplace=own_ifa)  # type: ignore[misc]
        if self.ifa is not None:
            y = self.ifa(y, inplace=True) if own_ifa else self.ifa(y)
        if out is not None:
            return torch.add(x, y, out=out)
        return y.add_(x) if lean else x + y
