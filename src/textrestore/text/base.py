"""The :class:`TextEncoder` base class: prompts in, :class:`TextEmbedding` out."""

from __future__ import annotations

import abc
from collections.abc import Sequence

import torch
from torch import nn

from .embedding import TextEmbedding

__all__ = ["TextEncoder", "check_prompts"]


def check_prompts(prompts: object, name: str = "prompts") -> list[str]:
    """Normalise one prompt or a sequence of prompts to a non-empty list of ``str``.

    Args:
        prompts: a ``str`` (one prompt) or a sequence of ``str``.
        name: the argument name used in error messages.

    Returns:
        The prompts as a new list.

    Example:
        >>> check_prompts("normal light image")
        ['normal light image']
        >>> check_prompts(("a", "b"))
        ['a', 'b']
    """
    if isinstance(prompts, str):
        return [prompts]
    if not isinstance(prompts, Sequence):
        raise TypeError(
            f"{name}: expected a str or a sequence of str, got {type(prompts).__name__}"
        )
    out = list(prompts)
    if not out:
        raise ValueError(f"{name}: expected at least one prompt, got an empty sequence")
    bad = [type(p).__name__ for p in out if not isinstance(p, str)]
    if bad:
        raise TypeError(f"{name}: expected every prompt to be a str, got {', '.join(bad)}")
    return out


class TextEncoder(nn.Module, metaclass=abc.ABCMeta):
    """Base class of text encoders: ``encode(prompts) -> TextEmbedding``.

    A subclass sets ``name``, ``dim`` (width D of the token states and of the
    pooled vector) and ``max_length`` (most tokens per prompt), and implements
    :meth:`forward` on a list of prompts. Users call :meth:`encode`, which checks
    the prompts, runs :meth:`forward` without autograd for frozen encoders, and
    checks what came back.

    Encoders are frozen by default: :meth:`freeze` puts them in eval mode with
    ``requires_grad=False`` and :meth:`train` keeps them in eval mode. The one
    trainable built-in is ``learned:<n_tokens>``; a trainable subclass sets the
    class attribute ``trainable = True``. Encoders are ``nn.Module`` s, so they move
    with ``.to(device)``; :meth:`encode` returns tensors on the encoder's device.

    Attributes:
        name: registry-style name, e.g. ``"openclip:ViT-B-32"``.
        dim: width D of the token states and of the pooled vector.
        max_length: the most tokens one prompt is encoded to.
        trainable: whether the encoder has parameters meant to be optimised.

    Example:
        >>> import torch
        >>> class CharEncoder(TextEncoder):
        ...     def __init__(self, dim: int = 4) -> None:
        ...         super().__init__(name="chars", dim=dim, max_length=32)
        ...         self.table = torch.nn.Embedding(256, dim)
        ...         self.freeze()
        ...     def forward(self, prompts):
        ...         ids = [torch.tensor(list(p.encode()[:32]) or [0]) for p in prompts]
        ...         x = torch.nn.utils.rnn.pad_sequence(ids, batch_first=True)
        ...         mask = torch.nn.utils.rnn.pad_sequence(
        ...             [torch.ones(len(i), dtype=torch.bool) for i in ids], batch_first=True)
        ...         return TextEmbedding.from_tensor(self.table(x), mask)
        >>> emb = CharEncoder().encode(["dark", "a bright room"])
        >>> emb.tokens.shape, emb.mask.sum(1).tolist()
        (torch.Size([2, 13, 4]), [4, 13])
    """

    trainable: bool = False

    def __init__(self, name: str, dim: int, max_length: int) -> None:
        super().__init__()
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
            raise ValueError(f"TextEncoder.dim: expected a positive int, got {dim!r}")
        if not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 1:
            raise ValueError(f"TextEncoder.max_length: expected a positive int, got {max_length!r}")
        self.name = str(name)
        self.dim = dim
        self.max_length = max_length

    # -- freezing -------------------------------------------------------------------
    def freeze(self) -> TextEncoder:
        """Eval mode, no gradients, ``trainable = False`` (a frozen ``learned:`` encoder is
        then cached by a PromptBank like any other encoder)."""
        self.trainable = False
        for p in self.parameters():
            p.requires_grad_(False)
        return super().train(False)

    def train(self, mode: bool = True) -> TextEncoder:
        """Frozen encoders stay in eval mode; trainable ones follow ``mode``."""
        return super().train(mode if self.trainable else False)

    @property
    def device(self) -> torch.device:
        """Device of the encoder's first parameter or buffer (CPU when it has none)."""
        for t in self.parameters():
            return t.device
        for b in self.buffers():
            return b.device
        return torch.device("cpu")

    # -- encoding -------------------------------------------------------------------
    @abc.abstractmethod
    def forward(self, prompts: list[str]) -> TextEmbedding:
        """Encode a non-empty list of prompts; subclasses implement this."""

    def encode(self, prompts: Sequence[str] | str) -> TextEmbedding:
        """Encode prompts to token states, a padding mask and pooled vectors.

        Args:
            prompts: one prompt or a sequence of B prompts.

        Returns:
            A :class:`TextEmbedding` on the encoder's device.

        Shape:
            - tokens: (B, L, dim), L <= max_length (some encoders always pad to max_length)
            - mask: (B, L) bool, True marks a real token
            - pooled: (B, dim)
        """
        items = check_prompts(prompts)
        if self.trainable:
            emb = self(items)
        else:
            with torch.no_grad():
                emb = self(items)
        if not isinstance(emb, TextEmbedding):
            raise TypeError(
                f"{type(self).__name__}.forward: expected a TextEmbedding, got {type(emb).__name__}"
            )
        if emb.batch_size != len(items) or emb.dim != self.dim:
            raise ValueError(
                f"{type(self).__name__}.forward: expected tokens of shape ({len(items)}, L, "
                f"{self.dim}) for {len(items)} prompts, got {tuple(emb.tokens.shape)}"
            )
        return emb

    def extra_repr(self) -> str:
        return (
            f"name={self.name!r}, dim={self.dim}, max_length={self.max_length}, "
            f"trainable={self.trainable}"
        )
