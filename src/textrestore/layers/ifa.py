"""IFA: Information Fusion Attention (channel → pixel attention → cross-layer fusion)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from .._checks import check_image_batch
from ._fast import inference_fast_path
from .attention import ChannelAttention, CrossLayerAttention, PixelAttention

__all__ = ["IFA"]


class IFA(nn.Module):
    """Channel attention, then pixel attention, then (with levels) cross-layer fusion.

    ``forward(x)`` returns ``y = PA(CA(x))``. Built with ``num_levels=N``, the block also
    owns a :class:`CrossLayerAttention` and ``forward(x, levels=[l_1, ..., l_{N-1}])``
    fuses the earlier levels with this one, ``residual + y`` (``residual`` defaults to
    nothing): ``CLA([l_1, ..., l_{N-1}, residual + y])``. In NaLSuper every RTFB holds an
    IFA, and the IFA of the block that ends a sequence of blocks fuses their outputs (its
    ``residual`` is the block's skip, so the last level is that block's output).

    Args:
        dim: channels C.
        reduction: bottleneck ratio of the channel and pixel attention.
        num_levels: number of levels fused (including this one); ``None`` for no fusion.
        attention: ``False`` drops channel and pixel attention (``y = x``), keeping only
            the fusion (the ``use_ifa=False`` ablation of a block that fuses).
        act_layer: activation inside the attention bottlenecks.
        fusion_temperature: initial temperature of the cross-layer affinity.
        layer_attention: ``False``: the fusion is concatenation + 1×1 conv only.

    Shape:
        - x: (B, C, H, W); levels: N-1 tensors (B, C, H, W); residual: (B, C, H, W)
        - output: (B, C, H, W)

    Example:
        >>> import torch
        >>> ifa = IFA(16, num_levels=3)
        >>> x, earlier = torch.rand(1, 16, 9, 9), [torch.rand(1, 16, 9, 9) for _ in range(2)]
        >>> ifa(x).shape, ifa(x, levels=earlier).shape
        (torch.Size([1, 16, 9, 9]), torch.Size([1, 16, 9, 9]))
    """

    def __init__(
        self,
        dim: int,
        *,
        reduction: int = 8,
        num_levels: int | None = None,
        attention: bool = True,
        act_layer: type[nn.Module] = nn.ReLU,
        fusion_temperature: float = 10.0,
        layer_attention: bool = True,
    ) -> None:
        super().__init__()
        if not attention and num_levels is None:
            raise ValueError("IFA: attention=False needs num_levels (the block would do nothing)")
        self.dim = dim
        self.channel_attn = (
            ChannelAttention(dim, reduction=reduction, act_layer=act_layer) if attention else None
        )
        self.pixel_attn = (
            PixelAttention(dim, reduction=reduction, act_layer=act_layer) if attention else None
        )
        self.fusion = (
            CrossLayerAttention(
                dim, num_levels, temperature=fusion_temperature, layer_attention=layer_attention
            )
            if num_levels is not None
            else None
        )

    def forward(
        self,
        x: Tensor,
        levels: Sequence[Tensor] | None = None,
        *,
        residual: Tensor | None = None,
        inplace: bool = False,
    ) -> Tensor:
        """``PA(CA(x))``; with ``levels``, the cross-layer fusion of ``[*levels, residual + y]``.

        ``inplace=True`` lets the fast branch scale ``x`` itself (the caller gives up ``x``):
        taken when :func:`~textrestore.layers._fast.inference_fast_path` holds and both
        attentions are this library's own classes; the same products, bit-identical.
        """
        check_image_batch(x, "IFA input x", self.dim)
        if self.channel_attn is None or self.pixel_attn is None:
            y = x
        elif (
            inplace
            and type(self.channel_attn) is ChannelAttention
            and type(self.pixel_attn) is PixelAttention
            and inference_fast_path(self, x)
        ):
            x.mul_(self.channel_attn.gate_values(x))
            y = x.mul_(self.pixel_attn.attention_map(x))
        else:
            y = self.pixel_attn(self.channel_attn(x))
        if levels is None:
            return y if residual is None else residual + y
        if self.fusion is None:
            raise ValueError("IFA: levels were given but the block was built with num_levels=None")
        if len(levels) != self.fusion.num_levels - 1:
            raise ValueError(
                f"IFA: expected {self.fusion.num_levels - 1} earlier levels "
                f"(num_levels={self.fusion.num_levels} includes x), got {len(levels)}"
            )
        last = y if residual is None else residual + y
        return self.fusion([*levels, last])
