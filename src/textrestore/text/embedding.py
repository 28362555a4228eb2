"""The text-side contract: :class:`TextEmbedding` and its normalisation."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .._checks import check_floating, check_tensor

__all__ = ["TextEmbedding", "as_text_embedding"]


@dataclass(frozen=True)
class TextEmbedding:
    """Token-level text features with their padding mask and a pooled vector.

    Args:
        tokens: token states of shape (B, L, D).
        mask: bool tensor of shape (B, L); ``True`` marks a real token, ``False`` padding.
        pooled: one vector per prompt, shape (B, D).

    Example:
        >>> import torch
        >>> emb = TextEmbedding.from_tensor(torch.randn(5, 8))
        >>> emb.tokens.shape, emb.mask.shape, emb.pooled.shape
        (torch.Size([1, 5, 8]), torch.Size([1, 5]), torch.Size([1, 8]))
    """

    tokens: Tensor
    mask: Tensor
    pooled: Tensor

    def __post_init__(self) -> None:
        check_floating(check_tensor(self.tokens, "TextEmbedding.tokens"), "TextEmbedding.tokens")
        check_tensor(self.mask, "TextEmbedding.mask")
        check_tensor(self.pooled, "TextEmbedding.pooled")
        if self.tokens.ndim != 3:
            raise ValueError(
                f"TextEmbedding.tokens: expected shape (B, L, D), got {tuple(self.tokens.shape)}"
            )
        b, length, d = self.tokens.shape
        if length < 1 or d < 1:
            raise ValueError(
                f"TextEmbedding.tokens: empty text, expected L >= 1 and D >= 1, "
                f"got shape {tuple(self.tokens.shape)}"
            )
        if self.mask.dtype != torch.bool or tuple(self.mask.shape) != (b, length):
            raise ValueError(
                f"TextEmbedding.mask: expected a bool tensor of shape ({b}, {length}), "
                f"got {tuple(self.mask.shape)} {self.mask.dtype}"
            )
        if tuple(self.pooled.shape) != (b, d):
            raise ValueError(
                f"TextEmbedding.pooled: expected shape ({b}, {d}), got {tuple(self.pooled.shape)}"
            )

    @property
    def batch_size(self) -> int:
        return int(self.tokens.shape[0])

    @property
    def dim(self) -> int:
        return int(self.tokens.shape[-1])

    @classmethod
    def from_tensor(cls, x: Tensor, mask: Tensor | None = None) -> TextEmbedding:
        """Build from a (D,), (L, D) or (B, L, D) tensor; pooled is the masked mean."""
        x = check_floating(check_tensor(x, "text"), "text")
        if x.ndim == 1:
            x = x[None, None]
        elif x.ndim == 2:
            x = x[None]
        elif x.ndim != 3:
            raise ValueError(
                f"text: expected shape (D,), (L, D) or (B, L, D), got {tuple(x.shape)}"
            )
        if x.shape[1] < 1 or x.shape[2] < 1:
            raise ValueError(f"text: empty text, expected L >= 1 and D >= 1, got {tuple(x.shape)}")
        if mask is None:
            mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        else:
            mask = check_tensor(mask, "mask").to(torch.bool)
            if mask.ndim == 1:
                mask = mask[None]
            mask = mask.expand(x.shape[0], -1) if mask.shape[0] == 1 else mask
        w = mask.to(x.dtype).unsqueeze(-1)
        pooled = (x * w).sum(1) / w.sum(1).clamp_min(1.0)
        return cls(x, mask, pooled)

    def expand(self, batch: int) -> TextEmbedding:
        """Repeat a batch-1 embedding to ``batch`` samples (a view, no copy)."""
        if self.batch_size != 1:  # tested first: under torch.export ``batch`` is symbolic
            if self.batch_size == batch:
                return self
            raise ValueError(
                f"text: batch of {self.batch_size} prompts does not match {batch} images"
            )
        return TextEmbedding(
            self.tokens.expand(batch, -1, -1),
            self.mask.expand(batch, -1),
            self.pooled.expand(batch, -1),
        )

    def to(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> TextEmbedding:
        """Move tokens and pooled to ``device`` / ``dtype``; the mask keeps its bool dtype."""
        tokens = self.tokens.to(device=device, dtype=dtype)
        pooled = self.pooled.to(device=device, dtype=dtype)
        return TextEmbedding(tokens, self.mask.to(tokens.device), pooled)


def as_text_embedding(text: TextEmbedding | Tensor, batch: int | None = None) -> TextEmbedding:
    """Normalise a TextEmbedding or a (D,), (L, D), (B, L, D) tensor, broadcast to ``batch``."""
    emb = text if isinstance(text, TextEmbedding) else TextEmbedding.from_tensor(text)
    return emb.expand(batch) if batch is not None else emb
