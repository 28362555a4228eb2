"""TCM: the Textual guidance Conditioning Mechanism (text cross-attention).

Image features of shape (B, C, H, W) are flattened to HW query tokens which attend to
L text tokens of width D (projected to C by ``W_k`` and ``W_v``):

.. math::

    \\mathrm{TCM}(x, t) = x + \\gamma \\cdot W_o\\,\\mathrm{softmax}\\!\\left(
        \\frac{(W_q \\hat{x})(W_k \\hat{t})^\\top}{\\sqrt{d}}\\right) W_v \\hat{t}

with :math:`\\hat{x}, \\hat{t}` layer-normalised, per head of width ``d = C / heads``,
and :math:`\\gamma` a learnable per-channel scale (LayerScale).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_image_batch, check_tensor, is_tracing
from ..text.embedding import TextEmbedding
from ._fast import inference_fast_path

__all__ = ["TCM", "text_attention", "text_attention_reference"]

#: Pixels per chunk of the inference fast path: the chunk's queries, scores and update
#: stay in the CPU caches, and no full-size (B, HW, C) temporaries are allocated.
CHUNK_PIXELS = 4096


def text_attention_reference(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> Tensor:
    """Plain softmax(QKᵀ/√d)V, the formulation the fast path must match.

    Shape:
        - q: (B, heads, N, d); k, v: (B, heads, L, d); mask: (B, L) bool, True = real token.
        - output: (B, heads, N, d)
    """
    scores = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(q.shape[-1]))
    if mask is not None:
        scores = scores.masked_fill(~mask[:, None, None, :], float("-inf"))
    return torch.matmul(scores.softmax(dim=-1), v)


def text_attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> Tensor:
    """Fused attention via :func:`torch.nn.functional.scaled_dot_product_attention`.

    Same contract as :func:`text_attention_reference`. Inputs are made contiguous in
    their last dimension, because SDPA silently falls back to its slow path otherwise.
    """
    q, k, v = (t if t.stride(-1) == 1 else t.contiguous() for t in (q, k, v))
    attn_mask = None if mask is None else mask[:, None, None, :]
    return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)


def _split_text(
    text: Tensor | TextEmbedding, mask: Tensor | None, batch: int, text_dim: int
) -> tuple[Tensor, Tensor | None]:
    """Normalise text to (B, L, D) tokens and an optional (B, L) bool mask."""
    if isinstance(text, TextEmbedding):
        if mask is not None:
            raise ValueError("text: pass the mask inside the TextEmbedding or as mask=, not both")
        tokens, mask = text.tokens, text.mask
    else:
        tokens = check_tensor(text, "text")
        if not torch.is_floating_point(tokens):
            raise TypeError(f"text: expected a floating-point tensor, got dtype {tokens.dtype}")
        if tokens.ndim == 1:
            tokens = tokens[None, None]
        elif tokens.ndim == 2:
            tokens = tokens[None]
        elif tokens.ndim != 3:
            raise ValueError(
                f"text: expected shape (D,), (L, D) or (B, L, D), got {tuple(tokens.shape)}"
            )
    if tokens.shape[1] < 1:
        raise ValueError(
            f"text: empty text, expected L >= 1 tokens, got shape {tuple(tokens.shape)}"
        )
    if tokens.shape[-1] != text_dim:
        raise ValueError(
            f"text: expected text width D={text_dim} in (B, L, {text_dim}), "
            f"got shape {tuple(tokens.shape)}"
        )
    if tokens.shape[0] not in (1, batch):
        raise ValueError(
            f"text: batch of {tokens.shape[0]} text entries does not match {batch} images"
        )
    tokens = tokens.expand(batch, -1, -1)
    if mask is not None:
        mask = check_tensor(mask, "mask")
        if mask.dtype != torch.bool:
            raise TypeError(f"mask: expected a bool tensor (True = real token), got {mask.dtype}")
        if mask.ndim == 1:
            mask = mask[None]
        if mask.ndim != 2 or mask.shape[-1] != tokens.shape[1] or mask.shape[0] not in (1, batch):
            raise ValueError(
                f"mask: expected shape ({batch}, {tokens.shape[1]}) or ({tokens.shape[1]},), "
                f"got {tuple(mask.shape)}"
            )
        mask = mask.expand(batch, -1)
        if mask.device.type != "meta" and not is_tracing() and not bool(mask.any(dim=-1).all()):
            raise ValueError("mask: every sample needs at least one real token (empty text)")
    return tokens, mask


class TCM(nn.Module):
    """Text cross-attention: image tokens (queries) attend to text tokens (keys, values).

    Args:
        dim: image feature channels C (the query width).
        text_dim: text token width D.
        num_heads: attention heads; ``dim`` must be divisible by it.
        qkv_bias: bias in the q and v projections (the key projection has none: a key bias
            shifts every logit of a query equally, which softmax ignores).
        init_values: initial LayerScale γ of the residual update; ``None`` for γ = 1 fixed.
        norm_layer: normalisation applied to image tokens (over C) and text tokens (over D).
        fused_attn: use ``scaled_dot_product_attention`` (and, when
            :func:`~textrestore.layers._fast.inference_fast_path` holds, the chunked fast
            branch); ``False`` uses the reference path.

    Shape:
        - x: (B, C, H, W), any H, W >= 1
        - text: (B, L, D), (L, D) or (D,) tensor, or a :class:`TextEmbedding`
        - mask: (B, L) or (L,) bool, True = real token (ignored padding otherwise)
        - output: (B, C, H, W)

    Example:
        >>> import torch
        >>> tcm = TCM(dim=32, text_dim=16, num_heads=4)
        >>> x, text = torch.rand(2, 32, 8, 8), torch.randn(2, 5, 16)
        >>> tcm(x, text).shape
        torch.Size([2, 32, 8, 8])
    """

    def __init__(
        self,
        dim: int,
        text_dim: int,
        *,
        num_heads: int = 4,
        qkv_bias: bool = True,
        init_values: float | None = 0.1,
        norm_layer: type[nn.Module] = nn.LayerNorm,
        fused_attn: bool = True,
    ) -> None:
        super().__init__()
        if dim < 1 or text_dim < 1 or num_heads < 1:
            raise ValueError(
                f"TCM: dim, text_dim and num_heads must be >= 1, got {dim}, {text_dim}, {num_heads}"
            )
        if dim % num_heads != 0:
            raise ValueError(f"TCM: dim ({dim}) must be divisible by num_heads ({num_heads})")
        self.dim, self.text_dim, self.num_heads = dim, text_dim, num_heads
        self.head_dim = dim // num_heads
        self.fused_attn = fused_attn
        self.norm = norm_layer(dim)
        self.text_norm = norm_layer(text_dim)
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        # No key bias: softmax is shift-invariant per query, so q·b_k adds the same logit to
        # every text token and the bias would get no gradient.
        self.k = nn.Linear(text_dim, dim, bias=False)
        self.v = nn.Linear(text_dim, dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        if init_values is None:
            self.register_parameter("gamma", None)
        else:
            self.gamma = nn.Parameter(torch.full((dim,), float(init_values)))

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        # Checkpoints from before the key bias was dropped carry ``k.bias``: it never changed
        # the output (shift-invariant softmax), so it is ignored.
        state_dict.pop(prefix + "k.bias", None)
        super()._load_from_state_dict(state_dict, prefix, *args)

    def _heads(self, t: Tensor) -> Tensor:
        b, n, _ = t.shape
        return t.view(b, n, self.num_heads, self.head_dim).transpose(1, 2)

    def _chunked(self, x: Tensor, tokens: Tensor, mask: Tensor | None, inplace: bool) -> Tensor:
        """Fast path without autograd: attention over pixel chunks, written to the output.

        ``γ`` is folded into the output projection (``(aWᵀ + b)·γ = a(Wᵀγ) + bγ``).
        ``inplace`` adds the update into ``x`` itself when ``x`` is channels_last (or has
        a single channel layout), avoiding any full-size temporary.
        """
        b, c, h, w = x.shape
        n = h * w
        seq = x.permute(0, 2, 3, 1)
        if not seq.is_contiguous():
            inplace = False
        seq = seq.reshape(b, n, c)
        out = seq if inplace else torch.empty((b, h, w, c), dtype=x.dtype, device=x.device)
        out_seq = out.view(b, n, c)
        t = self.text_norm(tokens.to(x.dtype))
        k, v = self._heads(self.k(t)), self._heads(self.v(t))
        weight: Tensor = self.proj.weight
        bias: Tensor = self.proj.bias
        if self.gamma is not None:
            weight, bias = weight * self.gamma[:, None], bias * self.gamma
        for start in range(0, n, CHUNK_PIXELS):
            stop = min(start + CHUNK_PIXELS, n)
            chunk = seq[:, start:stop]
            q = self._heads(self.q(self.norm(chunk)))
            a = text_attention(q, k, v, mask).transpose(1, 2).reshape(b, stop - start, c)
            update = torch.nn.functional.linear(a, weight, bias)
            if inplace:
                chunk.add_(update)
            else:
                torch.add(chunk, update, out=out_seq[:, start:stop])
        return x if inplace else out.permute(0, 3, 1, 2)

    def forward(
        self,
        x: Tensor,
        text: Tensor | TextEmbedding,
        mask: Tensor | None = None,
        *,
        inplace: bool = False,
    ) -> Tensor:
        """``x + γ·attn(x, text)``; ``inplace=True`` lets the fast branch write into ``x``.

        The fast branch (fused attention, :func:`~textrestore.layers._fast.inference_fast_path`)
        runs the attention over pixel chunks with γ folded into the output projection; with
        ``inplace`` and a channels_last ``x`` it adds the update into ``x`` itself (the caller
        gives up ``x``). Otherwise ``x`` is never modified.
        """
        check_image_batch(x, "TCM input x", self.dim)
        b, c, h, w = x.shape
        tokens, mask = _split_text(text, mask, b, self.text_dim)
        tokens = tokens.to(x.dtype)
        if self.fused_attn and inference_fast_path(self, x):
            return self._chunked(x, tokens, mask, inplace=inplace)
        # (B, C, H, W) -> (B, HW, C): free for channels_last inputs.
        seq = x.permute(0, 2, 3, 1).reshape(b, h * w, c)
        t = self.text_norm(tokens)
        q = self._heads(self.q(self.norm(seq)))
        k, v = self._heads(self.k(t)), self._heads(self.v(t))
        attend = text_attention if self.fused_attn else text_attention_reference
        out = attend(q, k, v, mask).transpose(1, 2).reshape(b, h * w, c)
        out = self.proj(out)
        if self.gamma is not None:
            out = out * self.gamma
        # (B, HW, C) -> (B, C, H, W) as a channels_last view, no copy.
        return x + out.view(b, h, w, c).permute(0, 3, 1, 2)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, text_dim={self.text_dim}, num_heads={self.num_heads}"
