"""RTFB: the Residual Textual-guide Fusion Block (conv body → TCM → IFA, block skip)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._checks import check_image_batch
from ..text.embedding import TextEmbedding
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
    ) -> None:
        super().__init__()
        self.dim = dim
        self.conv1 = nn.Conv2d(dim, dim, 3, padding=1)
        self.act = act_layer()
        self.conv2 = nn.Conv2d(dim, dim, 3, padding=1)
        self.tcm = (
            TCM(dim, text_dim, num_heads=num_heads, init_values=init_values) if use_tcm else None
        )
        self.ifa = IFA(dim, reduction=reduction, act_layer=act_layer) if use_ifa else None

    def forward_inference(
        self, x: Tensor, tokens: Tensor | None, mask: Tensor | None, out: Tensor | None = None
    ) -> Tensor:
        """:meth:`forward` without autograd, with in-place intermediates (memory-lean).

        Only two full-size buffers live at a time besides ``x``: the conv body's, and the
        block output, written into ``out`` when given (NaLSuper passes a slot of its level
        buffer). TCM runs in pixel chunks in place. Same result as :meth:`forward` up to
        floating-point reassociation. Call only under ``torch.no_grad()``/inference mode.

        Args:
            x: (B, C, H, W) block input; not modified.
            tokens: (B, L, D) text tokens (required when the block has a TCM).
            mask: (B, L) bool or None.
            out: optional (B, C, H, W) tensor that receives the output.
        """
        t = self.conv1(x)
        t = t.relu_() if type(self.act) is nn.ReLU else self.act(t)
        y = self.conv2(t.add_(x))
        del t
        if self.tcm is not None:
            if tokens is None:
                raise ValueError("RTFB: text is required (the block was built with use_tcm=True)")
            y = self.tcm.forward_inplace(y, tokens, mask)
        if self.ifa is not None:
            y = self.ifa.attend_(y)
        if out is None:
            return y.add_(x)
        return torch.add(x, y, out=out)

    def forward(
        self, x: Tensor, text: Tensor | TextEmbedding | None = None, mask: Tensor | None = None
    ) -> Tensor:
        check_image_batch(x, "RTFB input x", self.dim)
        y = self.conv2(self.act(self.conv1(x)) + x)
        if self.tcm is not None:
            if text is None:
                raise ValueError("RTFB: text is required (the block was built with use_tcm=True)")
            y = self.tcm(y, text, mask)
        if self.ifa is not None:
            y = self.ifa(y)
        return x + y
