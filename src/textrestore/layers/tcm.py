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
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_image_batch, check_tensor, is_tracing
from ..text.embedding import TextEmbedding
from ._fast import inference_fast_path

__all__ = ["TCM", "text_attention", "text_attention_reference"]

#: Pixels per chunk of the inference fast path on CPU: the chunk's queries, scores and
#: update stay in the CPU caches, and no full-size (B, HW, C) temporaries are allocated.
CHUNK_PIXELS = 4096
#: Pixels per chunk on other devices (CUDA): small chunks would make the branch
#: launch-bound (a 12 MP image in 4096-pixel chunks is ~3000 kernel groups per TCM).
CHUNK_PIXELS_GPU = 1 << 18


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


def _trim_padding(tokens: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """Drop the trailing token positions that are padding in every sample (CLIP pads to 77).

    Padded tokens get zero attention weight, so the result is unchanged; not while tracing
    (the length would depend on the data).
    """
    if mask is None or is_tracing() or mask.device.type == "meta":
        return tokens, mask
    real = torch.nonzero(mask.any(dim=0))
    keep = int(real.max()) + 1 if real.numel() else mask.shape[1]
    if keep == mask.shape[1]:
        return tokens, mask
    return tokens[:, :keep], mask[:, :keep]


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
        fused_attn: the fast forms (padding trimmed; the folded attention of
            :meth:`_folded_maps` for short texts, else ``scaled_dot_product_attention``;
            pixel chunks when :func:`~textrestore.layers._fast.inference_fast_path`
            holds); ``False`` uses the reference formulation.

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

    def _folded_maps(self, tokens: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        """The attention with its projections folded into two small per-sample maps.

        With ``L`` text tokens and ``h`` heads, query projection and keys fold into one
        (C, h·L) map and values, output projection and γ into one (h·L, C) map:

        ``scores = x̂ (W_qᵀK_hᵀ/√d) + b_q·K_hᵀ/√d``,  ``update = softmax_L(scores) (V_h W_{o,h}ᵀ γ) + b_o γ``

        so that each pixel costs 2·C·h·L multiply-adds instead of the 2·C² of the q and
        output projections plus the attention (a short prompt has h·L ≤ C).

        Returns:
            ``qk`` (B, h·L, C), ``qk_bias`` (B, h·L, 1) with ``-inf`` at padded tokens,
            ``vo`` (B, h·L, C).
        """
        b, n_tok, _ = tokens.shape
        heads, d = self.num_heads, self.head_dim
        t = self.text_norm(tokens)
        k = self.k(t).view(b, n_tok, heads, d)
        v = self.v(t).view(b, n_tok, heads, d)
        scale = 1.0 / math.sqrt(d)
        w_q = self.q.weight.view(heads, d, self.dim)
        qk = torch.einsum("hdc,blhd->bhlc", w_q, k).reshape(b, heads * n_tok, self.dim) * scale
        if self.q.bias is not None:
            qk_bias = torch.einsum("hd,blhd->bhl", self.q.bias.view(heads, d), k) * scale
        else:
            qk_bias = k.new_zeros(b, heads, n_tok)
        if mask is not None:
            qk_bias = qk_bias.masked_fill(~mask[:, None, :], float("-inf"))
        w_o = self.proj.weight
        if self.gamma is not None:
            w_o = w_o * self.gamma[:, None]
        vo = torch.einsum("chd,blhd->bhlc", w_o.view(self.dim, heads, d), v)
        return qk, qk_bias.reshape(b, heads * n_tok, 1), vo.reshape(b, heads * n_tok, self.dim)

    def _out_bias(self) -> Tensor:
        bias: Tensor = self.proj.bias
        return bias * self.gamma if self.gamma is not None else bias

    def _folded_update(
        self, seq: Tensor, qk: Tensor, qk_bias: Tensor, vo: Tensor, out_bias: Tensor
    ) -> Tensor:
        """(B, n, C) pixels → their (B, n, C) update ``γ·attn`` (see :meth:`_folded_maps`).

        The scores are laid out (B, h, L, n), pixels innermost: a softmax over the few
        tokens of each pixel is then a vectorised reduction across pixels (about 20x
        faster on CPU than a softmax over a last dimension of 5).
        """
        b, n, _ = seq.shape
        scores = torch.baddbmm(qk_bias, qk, self.norm(seq).transpose(1, 2))
        attn = scores.view(b, self.num_heads, -1, n).softmax(dim=2).view(b, -1, n)
        return torch.baddbmm(out_bias, attn.transpose(1, 2), vo)

    def _folds(self, n_tokens: int, device: torch.device | None = None) -> bool:
        """Whether the folded form is cheaper: 2·C·h·L ≤ 2·C² + 2·L·C per pixel, or, on
        the CPU, a text shorter than 16 tokens.

        The CPU SDPA kernel works on blocks of 16 keys: a shorter text leaves most of each
        block idle, so it runs 1.3–3× slower than the folded form at C = 16–96 and
        L = 5–12, in training and in inference, even where the folded form costs more
        multiply-adds (``python benchmarks/tcm_forms.py``;
        ``benchmarks/results/tcm_forms_{before,after}.json``).
        Not under CUDA autocast: there the fused half-precision SDPA kernel trains faster
        (H200, ``nalsuper_s``, batch 8, 128², bf16: 22.5 steps/s unfolded, 19.3 folded;
        float32: 15.2 unfolded, 18.9 folded).
        """
        on_cuda = device is not None and device.type == "cuda"
        if on_cuda and torch.is_autocast_enabled("cuda"):
            return False
        if not on_cuda and n_tokens < 16:
            return True
        return self.num_heads * n_tokens <= self.dim + n_tokens

    def _update_fn(self, tokens: Tensor, mask: Tensor | None) -> Callable[[Tensor], Tensor]:
        """The fused update ``γ·attn``: (B, n, C) pixels → (B, n, C), folded when cheaper."""
        out_bias = self._out_bias()
        if self._folds(tokens.shape[1], tokens.device):
            qk, qk_bias, vo = self._folded_maps(tokens, mask)
            return lambda seq: self._folded_update(seq, qk, qk_bias, vo, out_bias)
        t = self.text_norm(tokens)
        k, v = self._heads(self.k(t)), self._heads(self.v(t))
        weight = self.proj.weight
        if self.gamma is not None:
            weight = weight * self.gamma[:, None]

        def update(seq: Tensor) -> Tensor:
            b, n, c = seq.shape
            q = self._heads(self.q(self.norm(seq)))
            a = text_attention(q, k, v, mask).transpose(1, 2).reshape(b, n, c)
            return F.linear(a, weight, out_bias)

        return update

    def _chunked(self, x: Tensor, update: Callable[[Tensor], Tensor], inplace: bool) -> Tensor:
        """Fast path without autograd: the update over pixel chunks, written to the output.

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
        step = CHUNK_PIXELS if x.device.type == "cpu" else CHUNK_PIXELS_GPU
        for start in range(0, n, step):
            stop = min(start + step, n)
            chunk = seq[:, start:stop]
            if inplace:
                chunk.add_(update(chunk))
            else:
                torch.add(chunk, update(chunk), out=out_seq[:, start:stop])
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

        With ``fused_attn`` (the default) trailing padding is dropped and, for a short text
        (``heads·L ≤ C + L``), the attention runs in the folded form of
        :meth:`_folded_maps`, else through ``scaled_dot_product_attention`` with γ folded
        into the output projection. When
        :func:`~textrestore.layers._fast.inference_fast_path` holds, the same update runs
        over pixel chunks, and with ``inplace`` and a channels_last ``x`` it is added into
        ``x`` itself (the caller gives up ``x``). Otherwise ``x`` is never modified.
        """
        check_image_batch(x, "TCM input x", self.dim)
        b, c, h, w = x.shape
        tokens, mask = _split_text(text, mask, b, self.text_dim)
        tokens = tokens.to(x.dtype)
        if not self.fused_attn:
            return x + self._reference_update(x, tokens, mask)
        update = self._update_fn(*_trim_padding(tokens, mask))
        if inference_fast_path(self, x):
            return self._chunked(x, update, inplace=inplace)
        # (B, C, H, W) -> (B, HW, C): free for channels_last inputs.
        out = update(x.permute(0, 2, 3, 1).reshape(b, h * w, c))
        # (B, HW, C) -> (B, C, H, W) as a channels_last view, no copy.
        return x + out.view(b, h, w, c).permute(0, 3, 1, 2)

    def _reference_update(self, x: Tensor, tokens: Tensor, mask: Tensor | None) -> Tensor:
        """``γ·W_o softmax(QKᵀ/√d) V`` as written (the formulation the fast forms must match)."""
        b, c, h, w = x.shape
        seq = x.permute(0, 2, 3, 1).reshape(b, h * w, c)
        t = self.text_norm(tokens)
        q = self._heads(self.q(self.norm(seq)))
        k, v = self._heads(self.k(t)), self._heads(self.v(t))
        out = text_attention_reference(q, k, v, mask).transpose(1, 2).reshape(b, h * w, c)
        out = self.proj(out)
        if self.gamma is not None:
            out = out * self.gamma
        return out.view(b, h, w, c).permute(0, 3, 1, 2)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, text_dim={self.text_dim}, num_heads={self.num_heads}"
