"""Channel, pixel and cross-layer attention: the three parts of IFA.

- :class:`ChannelAttention`: squeeze-and-excitation (global average pool, C → C/r → C,
  sigmoid gate per channel), as in FFA-Net's CA; the same module (and ``state_dict`` keys)
  as timm's ``SEModule``, written here so that importing the layers does not import timm.
- :class:`PixelAttention`: a per-pixel gate (1×1 conv C → C/r → 1, sigmoid) shared by all
  channels, as in FFA-Net's PA: dark and bright regions get different weights.
- :class:`CrossLayerAttention`: layer attention over N level features (HAN's LAM): an
  N×N affinity between whole levels, softmax, a residual update with a learnable scale
  that starts at 0, then a 1×1 conv N·C → C.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .._checks import check_image_batch

__all__ = ["ChannelAttention", "PixelAttention", "CrossLayerAttention"]


def _reduced(dim: int, reduction: int) -> int:
    if dim < 1 or reduction < 1:
        raise ValueError(f"dim and reduction must be >= 1, got dim={dim}, reduction={reduction}")
    return max(1, dim // reduction)


class _SqueezeExcite(nn.Module):
    """timm's ``SEModule`` (no max-pool, no norm): ``x * sigmoid(fc2(act(fc1(mean(x)))))``."""

    def __init__(self, dim: int, hidden: int, act_layer: type[nn.Module]) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(dim, hidden, kernel_size=1)
        self.bn = nn.Identity()
        try:
            self.act = act_layer(inplace=True)  # type: ignore[call-arg]
        except TypeError:
            self.act = act_layer()
        self.fc2 = nn.Conv2d(hidden, dim, kernel_size=1)
        self.gate = nn.Sigmoid()

    def gate_values(self, x: Tensor) -> Tensor:
        """The per-channel gate, shape (B, C, 1, 1)."""
        x_se = self.fc1(x.mean((2, 3), keepdim=True))
        return self.gate(self.fc2(self.act(self.bn(x_se))))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gate_values(x)


class ChannelAttention(nn.Module):
    """Per-channel gate from globally pooled features (squeeze-and-excitation).

    Args:
        dim: channels C.
        reduction: bottleneck ratio r (hidden width ``max(1, C // r)``).
        act_layer: activation inside the bottleneck.

    Shape:
        - input: (B, C, H, W); output: (B, C, H, W)

    Example:
        >>> import torch
        >>> ChannelAttention(16)(torch.rand(2, 16, 5, 7)).shape
        torch.Size([2, 16, 5, 7])
    """

    def __init__(self, dim: int, reduction: int = 8, act_layer: type[nn.Module] = nn.ReLU) -> None:
        super().__init__()
        self.dim = dim
        self.se = _SqueezeExcite(dim, _reduced(dim, reduction), act_layer)
        #: A (1 or B, C, 1, 1) gate used instead of the input's own (not saved in the
        #: ``state_dict``). Tiled inference sets it to the whole image's gate so that every
        #: tile is scaled like the whole image; ``None`` (default) computes it from ``x``.
        self.fixed_gate: Tensor | None = None
        #: When True, every computed gate is kept (detached) in :attr:`recorded`.
        self.record_stats = False
        self.recorded: Tensor | None = None

    def gate_values(self, x: Tensor) -> Tensor:
        """The per-channel gate for ``x``, shape (B or 1, C, 1, 1), values in (0, 1)."""
        if self.fixed_gate is not None:
            return self.fixed_gate.to(dtype=x.dtype, device=x.device)
        gate = self.se.gate_values(x)
        if self.record_stats:
            self.recorded = gate.detach()
        return gate

    def forward(self, x: Tensor) -> Tensor:
        check_image_batch(x, "ChannelAttention input", self.dim)
        return x * self.gate_values(x)


class PixelAttention(nn.Module):
    """Per-pixel gate shared across channels.

    Args:
        dim: channels C.
        reduction: bottleneck ratio r of the 1×1 convs (C → C/r → 1).
        act_layer: activation inside the bottleneck.

    Shape:
        - input: (B, C, H, W); output: (B, C, H, W)

    Example:
        >>> import torch
        >>> PixelAttention(16)(torch.rand(2, 16, 5, 7)).shape
        torch.Size([2, 16, 5, 7])
    """

    def __init__(self, dim: int, reduction: int = 8, act_layer: type[nn.Module] = nn.ReLU) -> None:
        super().__init__()
        self.dim = dim
        hidden = _reduced(dim, reduction)
        self.gate = nn.Sequential(
            nn.Conv2d(dim, hidden, 1), act_layer(), nn.Conv2d(hidden, 1, 1), nn.Sigmoid()
        )

    def attention_map(self, x: Tensor) -> Tensor:
        """The gate itself, shape (B, 1, H, W), values in (0, 1)."""
        check_image_batch(x, "PixelAttention input", self.dim)
        return self.gate(x)

    def forward(self, x: Tensor) -> Tensor:
        return x * self.attention_map(x)


def _expand_fixed(fixed: Tensor, like: Tensor) -> Tensor:
    """A fixed (1 or B, N, N) affinity in ``like``'s dtype and device, expanded to its batch."""
    return fixed.to(dtype=like.dtype, device=like.device).expand(like.shape[0], -1, -1)


class CrossLayerAttention(nn.Module):
    """Layer attention: fuse N level features by their mutual affinity.

    For levels stacked as F of shape (B, N, C·H·W) the affinity is
    ``A = softmax(F Fᵀ / (C·H·W))`` (N×N per sample, normalised by the feature size so
    that it does not grow with the image), the update is ``F + scale · A F`` with
    ``scale`` learnable from 0, and a 1×1 conv maps the N·C channels back to C.

    Args:
        dim: channels C of every level.
        num_levels: number N of level features fused.

    Shape:
        - levels: a sequence of N tensors (B, C, H, W), or one (B, N, C, H, W) tensor
        - output: (B, C, H, W)

    Example:
        >>> import torch
        >>> cla = CrossLayerAttention(dim=8, num_levels=3)
        >>> cla([torch.rand(2, 8, 6, 6) for _ in range(3)]).shape
        torch.Size([2, 8, 6, 6])
    """

    def __init__(self, dim: int, num_levels: int) -> None:
        super().__init__()
        if dim < 1 or num_levels < 1:
            raise ValueError(
                f"CrossLayerAttention: dim and num_levels must be >= 1, got {dim}, {num_levels}"
            )
        self.dim, self.num_levels = dim, num_levels
        self.scale = nn.Parameter(torch.zeros(1))
        self.proj = nn.Conv2d(num_levels * dim, dim, 1)
        #: A (1 or B, N, N) affinity used instead of the levels' own (not saved in the
        #: ``state_dict``); tiled inference sets it to the whole image's. ``None``: computed.
        self.fixed_affinity: Tensor | None = None
        #: When True, every computed affinity is kept (detached) in :attr:`recorded`.
        self.record_stats = False
        self.recorded: Tensor | None = None

    def _stack(self, levels: Sequence[Tensor] | Tensor) -> Tensor:
        if isinstance(levels, Tensor):
            if levels.ndim != 5:
                raise ValueError(
                    f"CrossLayerAttention: expected levels as (B, N, C, H, W) or a list of "
                    f"(B, C, H, W), got a tensor of shape {tuple(levels.shape)}"
                )
            stacked = levels
        else:
            if not isinstance(levels, Sequence) or len(levels) == 0:
                raise TypeError(
                    "CrossLayerAttention: expected a non-empty list of (B, C, H, W) tensors"
                )
            for i, lv in enumerate(levels):
                check_image_batch(lv, f"CrossLayerAttention level {i}", self.dim)
            if any(lv.shape != levels[0].shape for lv in levels[1:]):
                shapes = [tuple(lv.shape) for lv in levels]
                raise ValueError(
                    f"CrossLayerAttention: all levels must share one shape, got {shapes}"
                )
            stacked = torch.stack(list(levels), dim=1)
        if stacked.shape[1] != self.num_levels or stacked.shape[2] != self.dim:
            raise ValueError(
                f"CrossLayerAttention: expected {self.num_levels} levels of {self.dim} channels, "
                f"got {stacked.shape[1]} levels of {stacked.shape[2]} channels"
            )
        return stacked

    def _affinity_from_gram(self, gram: Tensor, numel: int) -> Tensor:
        """``softmax(F Fᵀ / numel)`` from the Gram matrix (B, N, N), or the fixed affinity."""
        if self.fixed_affinity is not None:
            return _expand_fixed(self.fixed_affinity, gram)
        attn = (gram / numel).softmax(dim=-1)
        if self.record_stats:
            self.recorded = attn.detach()
        return attn

    def _affinity(self, f: Tensor) -> Tensor:
        """The (B, N, N) affinity of flattened levels ``f`` (B, N, C·H·W)."""
        if self.fixed_affinity is not None:  # no Gram matrix needed
            return _expand_fixed(self.fixed_affinity, f)
        return self._affinity_from_gram(torch.bmm(f, f.transpose(1, 2)), f.shape[-1])

    def affinity(self, levels: Sequence[Tensor] | Tensor) -> Tensor:
        """The softmax-normalised level affinity, shape (B, N, N) (ignores ``fixed_affinity``)."""
        f = self._stack(levels).flatten(2)
        return (torch.bmm(f, f.transpose(1, 2)) / f.shape[-1]).softmax(dim=-1)

    def fold_projection(self, gram: Tensor, numel: int) -> Tensor:
        """The 1×1 projection with the layer attention folded in, from the levels' Gram matrix.

        ``proj(F + scale · A F) = (W (I + scale · A)) F``: with ``gram = F Fᵀ`` (B, N, N)
        and ``numel = C·H·W`` this returns the per-sample weights ``W (I + scale · A)`` as
        (B, C_out, N, C), so the fused output is ``Σ_m W'[:, :, m] F_m + bias`` and the
        (B, N, C·H·W) tensor ``A F`` is never formed (inference fast path of NaLSuper).
        """
        attn = self._affinity_from_gram(gram, numel)
        eye = torch.eye(self.num_levels, dtype=attn.dtype, device=attn.device)
        mix = eye + self.scale.to(attn.dtype) * attn  # (B, N, N): fused_n = Σ_m mix[n, m] F_m
        weight = self.proj.weight.view(self.dim, self.num_levels, self.dim).to(attn.dtype)
        return torch.einsum("onc,bnm->bomc", weight, mix)

    def forward(self, levels: Sequence[Tensor] | Tensor) -> Tensor:
        stacked = self._stack(levels)
        b, n, c, h, w = stacked.shape
        f = stacked.reshape(b, n, c * h * w)
        attn = self._affinity(f)
        fused = f + self.scale * torch.bmm(attn, f)
        return self.proj(fused.view(b, n * c, h, w))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, num_levels={self.num_levels}"
