"""Channel, pixel and cross-layer attention: the three parts of IFA.

- :class:`ChannelAttention`: squeeze-and-excitation (global average pool, C → C/r → C,
  sigmoid gate per channel), as in FFA-Net's CA; the same module (and ``state_dict`` keys)
  as timm's ``SEModule``, written here so that importing the layers does not import timm.
- :class:`PixelAttention`: a per-pixel gate (1×1 conv C → C/r → 1, sigmoid) shared by all
  channels, as in FFA-Net's PA: dark and bright regions get different weights.
- :class:`CrossLayerAttention`: layer attention over N level features (HAN's LAM): an
  N×N affinity between whole levels, softmax, a residual update with a learnable scale
  that starts at 0, then a 1×1 conv N·C → C. The affinity is the cosine similarity of
  the levels times a learnable temperature (the levels are normalised before the
  product, so it is finite in float16).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from .._checks import check_image_batch
from .statistics import fixed_statistic, record_statistic

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

    def __init__(
        self, dim: int, *, reduction: int = 8, act_layer: type[nn.Module] = nn.ReLU
    ) -> None:
        super().__init__()
        self.dim = dim
        self.se = _SqueezeExcite(dim, _reduced(dim, reduction), act_layer)

    def gate_values(self, x: Tensor) -> Tensor:
        """The per-channel gate for ``x``, shape (B or 1, C, 1, 1), values in (0, 1).

        Inside :meth:`GlobalStatistics.applied <textrestore.layers.GlobalStatistics.applied>`
        (tiled inference) the whole image's recorded gate is used instead of ``x``'s own.
        """
        fixed = fixed_statistic(self)
        if fixed is not None:
            return fixed.to(dtype=x.dtype, device=x.device)
        gate = self.se.gate_values(x)
        record_statistic(self, gate)
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

    def __init__(
        self, dim: int, *, reduction: int = 8, act_layer: type[nn.Module] = nn.ReLU
    ) -> None:
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


class _Gram(torch.autograd.Function):
    """``G = f fᵀ`` for ``f`` (B, N, K), with the symmetric backward ``(dG + dGᵀ) f``."""

    @staticmethod
    def forward(ctx: Any, f: Tensor) -> Tensor:
        ctx.save_for_backward(f)
        return torch.bmm(f, f.transpose(1, 2))

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        (f,) = ctx.saved_tensors
        return torch.bmm(grad + grad.transpose(1, 2), f)


def _memory_order(t: Tensor) -> Tensor:
    """``t`` (B, C, H, W) permuted to (B, H, W, C) when it is channels_last (a view)."""
    if not t.is_contiguous() and t.is_contiguous(memory_format=torch.channels_last):
        return t.permute(0, 2, 3, 1)
    return t


def level_norms(f: Tensor) -> Tensor:
    """L2 norm of every flattened level of ``f`` (B, N, K), accumulated in float32: (B, N).

    Accumulating in float32 keeps the norm finite in float16, where the sum of squares of a
    400×600 feature map (~1e5) would overflow (float16 max 65504).
    """
    return torch.linalg.vector_norm(f, dim=-1, dtype=_accumulate_dtype(f))


def _accumulate_dtype(t: Tensor) -> torch.dtype:
    """float32 for half precisions, the tensor's own dtype for float32/float64."""
    return torch.promote_types(t.dtype, torch.float32)


def cosine_from_gram(gram: Tensor, norms: Tensor, eps: float = 1e-6) -> Tensor:
    """Cosine similarity (B, N, N) from a Gram matrix of already normalised levels.

    ``gram`` is ``F̂ F̂ᵀ`` of the levels divided by their norms *before* the product (so no
    entry exceeds 1 in magnitude at any precision); ``norms`` (B, N) only marks all-zero
    levels, whose similarity is 0.
    """
    nonzero = (norms > eps).to(gram.dtype)
    gram = gram.to(_accumulate_dtype(gram))
    return gram.clamp(-1.0, 1.0) * (nonzero[:, :, None] * nonzero[:, None, :]).to(gram.dtype)


class CrossLayerAttention(nn.Module):
    """Layer attention: fuse N level features by their mutual affinity.

    For levels stacked as F of shape (B, N, C·H·W) the affinity is
    ``A = softmax(τ · cos(F_n, F_m))`` (N×N per sample): the cosine similarity of whole
    levels, sharpened by a learnable temperature ``τ = exp(log_temperature)`` (initialised
    to ``temperature``). Each level is divided by its norm *before* the product, so the
    similarity lies in [-1, 1] at any precision (float16 included) and any image size.
    The update is ``F + scale · A F`` with ``scale`` learnable from 0 (HAN's layer
    attention), and a 1×1 conv maps the N·C channels back to C.

    With ``layer_attention=False`` (the ablation switch) the module is a plain
    concatenation + 1×1 conv: no affinity, no scale, no temperature.

    Args:
        dim: channels C of every level.
        num_levels: number N of level features fused.
        temperature: initial softmax temperature τ of the cosine affinity.
        layer_attention: ``False`` drops the affinity (concatenation + 1×1 conv only).

    Shape:
        - levels: a sequence of N tensors (B, C, H, W), or one (B, N, C, H, W) tensor
        - output: (B, C, H, W)

    Example:
        >>> import torch
        >>> cla = CrossLayerAttention(dim=8, num_levels=3)
        >>> cla([torch.rand(2, 8, 6, 6) for _ in range(3)]).shape
        torch.Size([2, 8, 6, 6])
    """

    def __init__(
        self,
        dim: int,
        num_levels: int,
        *,
        temperature: float = 10.0,
        layer_attention: bool = True,
    ) -> None:
        super().__init__()
        if dim < 1 or num_levels < 1:
            raise ValueError(
                f"CrossLayerAttention: dim and num_levels must be >= 1, got {dim}, {num_levels}"
            )
        if not temperature > 0:
            raise ValueError(f"CrossLayerAttention: temperature must be > 0, got {temperature}")
        self.dim, self.num_levels = dim, num_levels
        self.layer_attention = layer_attention
        if layer_attention:
            self.scale = nn.Parameter(torch.zeros(1))
            self.log_temperature = nn.Parameter(torch.tensor(math.log(temperature)))
        else:
            self.register_parameter("scale", None)
            self.register_parameter("log_temperature", None)
        self.proj = nn.Conv2d(num_levels * dim, dim, 1)

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        # Checkpoints written before the cosine affinity have no temperature: they load with
        # the default one (their affinity was ~uniform, FFᵀ/(C·H·W), with a scale near 0).
        key = prefix + "log_temperature"
        if self.layer_attention and key not in state_dict and prefix + "scale" in state_dict:
            state_dict[key] = self.log_temperature.detach().clone()
        super()._load_from_state_dict(state_dict, prefix, *args)

    def _stack(self, levels: Sequence[Tensor] | Tensor) -> Tensor:
        if isinstance(levels, Tensor):
            if levels.ndim != 5:
                raise ValueError(
                    f"CrossLayerAttention: expected levels as (B, N, C, H, W) or a list of "
                    f"(B, C, H, W), got a tensor of shape {tuple(levels.shape)}"
                )
            stacked = levels
        else:
            self._stack_check(levels)
            stacked = torch.stack(list(levels), dim=1)
        if stacked.shape[1] != self.num_levels or stacked.shape[2] != self.dim:
            raise ValueError(
                f"CrossLayerAttention: expected {self.num_levels} levels of {self.dim} channels, "
                f"got {stacked.shape[1]} levels of {stacked.shape[2]} channels"
            )
        return stacked

    @property
    def temperature(self) -> Tensor | None:
        """The softmax temperature τ (None without layer attention)."""
        return None if self.log_temperature is None else self.log_temperature.exp()

    def affinity_from_cosine(self, cosine: Tensor) -> Tensor:
        """``softmax(τ · cosine)`` (B, N, N) in float32, or the whole image's affinity
        inside :meth:`GlobalStatistics.applied <textrestore.layers.GlobalStatistics.applied>`."""
        fixed = fixed_statistic(self)
        if fixed is not None:
            return _expand_fixed(fixed, cosine)
        if self.log_temperature is None:
            raise RuntimeError("CrossLayerAttention: built with layer_attention=False")
        attn = (cosine * self.log_temperature.to(cosine.dtype).exp()).softmax(dim=-1)
        record_statistic(self, attn)
        return attn

    @staticmethod
    def cosine(f: Tensor) -> Tensor:
        """Cosine similarity (B, N, N) of flattened levels ``f`` (B, N, K).

        In half precision the levels are normalised before the product (their Gram matrix
        would overflow float16); in float32/float64 the Gram matrix is formed first, the
        norms are the square roots of its diagonal, and it is divided by their outer
        product: no (B, N, K) copy of ``f``, and the backward is one product
        ``(dG + dGᵀ) f`` (:class:`_Gram`) instead of the Gram's two and the norms' own
        pass over ``f``.
        """
        if f.dtype in (torch.float32, torch.float64):
            gram = _Gram.apply(f) if f.requires_grad else torch.bmm(f, f.transpose(1, 2))
            norms = gram.diagonal(dim1=1, dim2=2).clamp_min(1e-12).sqrt()
            clamped = norms.clamp_min(1e-6)
            return cosine_from_gram(gram / (clamped[:, :, None] * clamped[:, None, :]), norms)
        norms = level_norms(f)
        clamped = norms.clamp_min(1e-6)
        unit = f / clamped.to(f.dtype)[..., None]
        return cosine_from_gram(torch.bmm(unit, unit.transpose(1, 2)), norms)

    def affinity(self, levels: Sequence[Tensor] | Tensor) -> Tensor:
        """The level affinity ``softmax(τ·cos)`` of ``levels`` themselves, shape (B, N, N).

        Without layer attention this is the identity (each level keeps itself).
        """
        f = self._stack(levels).flatten(2)
        if self.log_temperature is None:
            return torch.eye(self.num_levels, device=f.device).expand(f.shape[0], -1, -1)
        cosine = self.cosine(f)
        return (cosine * self.log_temperature.to(cosine.dtype).exp()).softmax(dim=-1)

    def fold_projection(self, cosine: Tensor) -> Tensor:
        """The 1×1 projection with the layer attention folded in, from the levels' cosine.

        ``proj(F + scale · A F) = (W (I + scale · A)) F``: with ``cosine`` (B, N, N) this
        returns the per-sample weights ``W (I + scale · A)`` as (B, C_out, N, C) in ``cosine``'s dtype,
        so the fused output is ``Σ_m W'[:, :, m] F_m + bias`` and the (B, N, C·H·W) tensor
        ``A F`` is never formed (inference fast path of NaLSuper).
        """
        b = cosine.shape[0]
        eye = torch.eye(self.num_levels, dtype=cosine.dtype, device=cosine.device)
        if self.scale is None:
            mix = eye.expand(b, -1, -1)
        else:
            attn = self.affinity_from_cosine(cosine)
            mix = eye + self.scale.to(cosine.dtype) * attn  # (B, N, N): fused_n = Σ_m mix[n, m] F_m
        weight = self.proj.weight.view(self.dim, self.num_levels, self.dim).to(cosine.dtype)
        return torch.einsum("onc,bnm->bomc", weight, mix)

    def _concat(self, levels: Sequence[Tensor] | Tensor) -> Tensor:
        """The levels side by side along channels, (B, N·C, H, W).

        A list is concatenated (channels_last when its levels are, so the projection below
        reads it in the layout of the rest of the network); a (B, N, C, H, W) tensor is
        viewed as such.
        """
        if isinstance(levels, Tensor):
            stacked = self._stack(levels)
            b, n, c, h, w = stacked.shape
            return stacked.reshape(b, n * c, h, w)
        self._stack_check(levels)
        return torch.cat(list(levels), dim=1)

    def _stack_check(self, levels: Sequence[Tensor]) -> None:
        if not isinstance(levels, Sequence) or len(levels) == 0:
            raise TypeError("CrossLayerAttention: expected a non-empty list of (B, C, H, W) tensors")
        for i, lv in enumerate(levels):
            check_image_batch(lv, f"CrossLayerAttention level {i}", self.dim)
        if any(lv.shape != levels[0].shape for lv in levels[1:]):
            shapes = [tuple(lv.shape) for lv in levels]
            raise ValueError(f"CrossLayerAttention: all levels must share one shape, got {shapes}")
        if len(levels) != self.num_levels:
            raise ValueError(
                f"CrossLayerAttention: expected {self.num_levels} levels of {self.dim} channels, "
                f"got {len(levels)} levels of {self.dim} channels"
            )

    def _flat_levels(self, levels: Sequence[Tensor] | Tensor, x: Tensor) -> Tensor:
        """(B, N, K): every level flattened in one element order, for the cosine."""
        b = x.shape[0]
        if x.is_contiguous():  # each level is one contiguous block of x
            return x.view(b, self.num_levels, -1)
        # channels_last levels: flattened in memory order (a view), then stacked
        return torch.stack([_memory_order(lv).reshape(b, -1) for lv in levels], dim=1)

    def forward(self, levels: Sequence[Tensor] | Tensor) -> Tensor:
        """``proj(F + scale · A F)``, computed as ``(W (I + scale · A)) F``.

        The layer attention is folded into per-sample projection weights
        (:meth:`fold_projection`), so neither ``A F`` nor ``F + scale · A F`` (each the
        size of all levels) is formed, forward or backward; the projection is one batched
        matrix product in the levels' memory layout. The same result as the two-step form
        (``tests/test_layers.py`` checks it against the plain formula).
        """
        x = self._concat(levels)
        if self.scale is None:
            return self.proj(x)
        b, nc, h, w = x.shape
        fixed = fixed_statistic(self)
        if fixed is None:
            cosine = self.cosine(self._flat_levels(levels, x))
        else:  # the whole image's affinity (tiles): no cosine needed, only its shape
            cosine = x.new_zeros(b, self.num_levels, self.num_levels, dtype=_accumulate_dtype(x))
        weight = self.fold_projection(cosine).to(x.dtype).reshape(b, self.dim, nc)
        bias = self.proj.bias
        if x.is_contiguous() or not x.is_contiguous(memory_format=torch.channels_last):
            out = torch.bmm(weight, x.reshape(b, nc, h * w))  # (B, C, H·W)
            if bias is not None:
                out = out + bias.to(out.dtype)[:, None]
            return out.view(b, self.dim, h, w)
        pixels = x.permute(0, 2, 3, 1).reshape(b, h * w, nc)  # channels_last: a view
        out = torch.bmm(pixels, weight.transpose(1, 2))  # (B, H·W, C)
        if bias is not None:
            out = out + bias.to(out.dtype)
        return out.view(b, h, w, self.dim).permute(0, 3, 1, 2)

    def extra_repr(self) -> str:
        return (
            f"dim={self.dim}, num_levels={self.num_levels}, layer_attention={self.layer_attention}"
        )
