"""``learned:<n_tokens>``: trainable prompt context vectors (CoOp / CLIP-LIT style)."""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .base import TextEncoder, check_prompts
from .embedding import TextEmbedding
from .registry import register_text_encoder

__all__ = ["LearnedTextEncoder", "encode_prompt_bytes", "decode_prompt_bytes"]

_CTX_KEY = re.compile(r"^ctx_(\d+)$")


def encode_prompt_bytes(prompt: str) -> Tensor:
    """A prompt as a uint8 tensor of its UTF-8 bytes (storable in a state_dict)."""
    return torch.tensor(list(prompt.encode("utf-8")), dtype=torch.uint8)


def decode_prompt_bytes(data: Tensor) -> str:
    """Inverse of :func:`encode_prompt_bytes`."""
    return bytes(data.detach().cpu().to(torch.uint8).tolist()).decode("utf-8")


@register_text_encoder("learned")
class LearnedTextEncoder(TextEncoder):
    """Trainable context vectors, ``n_tokens`` of width ``dim`` for each prompt string.

    Each distinct prompt gets its own (n_tokens, dim) parameter, created on first use
    (initialised from N(0, init_std²) with a seed derived from the prompt, so the same
    prompt starts from the same vectors in every run). This is the only trainable
    encoder: it is not frozen, :meth:`encode` keeps autograd on, and a
    :class:`~textrestore.text.PromptBank` that gets it attached registers it as a
    submodule, so its parameters are optimised with the model and saved in (and
    restored from) the model's ``state_dict``.

    Create the prompts before building the optimiser (``prompts=`` or
    :meth:`add_prompts`): parameters created later are not in an existing optimiser.

    Args:
        n_tokens: context vectors per prompt (the token length L). Passed as the
            variant: ``create_text_encoder("learned:8", dim=512)``.
        dim: width D of each vector.
        prompts: prompts to create right away.
        init_std: standard deviation of the initial vectors.

    Shape:
        - encode(B prompts).tokens: (B, n_tokens, dim); mask all True; pooled: mean (B, dim)

    Example:
        >>> enc = LearnedTextEncoder(n_tokens=4, dim=8, prompts=["normal light image"])
        >>> emb = enc.encode(["normal light image"])
        >>> emb.tokens.shape, emb.tokens.requires_grad
        (torch.Size([1, 4, 8]), True)
        >>> enc.prompts
        ['normal light image']
    """

    trainable = True

    config: Tensor

    def __init__(
        self,
        n_tokens: int | str = 8,
        dim: int = 512,
        prompts: Iterable[str] = (),
        init_std: float = 0.02,
    ) -> None:
        try:
            n = int(n_tokens)
        except (TypeError, ValueError):
            raise ValueError(
                f"learned:<n_tokens>: expected an int number of tokens, got {n_tokens!r}"
            ) from None
        if n < 1:
            raise ValueError(f"learned:<n_tokens>: expected n_tokens >= 1, got {n}")
        super().__init__(name=f"learned:{n}", dim=dim, max_length=n)
        self.n_tokens = n
        self.init_std = float(init_std)
        self.register_buffer("config", torch.tensor([n, dim], dtype=torch.int64))
        self._index: dict[str, int] = {}
        initial = list(prompts)
        if initial:
            self.add_prompts(initial)

    @property
    def prompts(self) -> list[str]:
        """The prompts that have context vectors, in creation order."""
        return list(self._index)

    def add_prompts(self, prompts: Sequence[str] | str) -> None:
        """Create context vectors for prompts that do not have them yet."""
        ref = self.config
        for p in check_prompts(prompts):
            if p in self._index:
                continue
            i = len(self._index)
            gen = torch.Generator().manual_seed(zlib.crc32(p.encode("utf-8")))
            init = torch.randn(self.n_tokens, self.dim, generator=gen) * self.init_std
            ctx = nn.Parameter(init.to(ref.device), requires_grad=self.trainable)
            self.register_parameter(f"ctx_{i}", ctx)
            self.register_buffer(f"text_{i}", encode_prompt_bytes(p).to(ref.device))
            self._index[p] = i

    def forward(self, prompts: list[str]) -> TextEmbedding:
        self.add_prompts(prompts)
        tokens = torch.stack([getattr(self, f"ctx_{self._index[p]}") for p in prompts])
        mask = torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
        return TextEmbedding(tokens, mask, tokens.mean(1))

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        # Re-create the per-prompt parameters named in the checkpoint (a fresh encoder
        # has none), then let nn.Module copy the values.
        cfg = state_dict.get(prefix + "config")
        if isinstance(cfg, Tensor) and cfg.tolist() != [self.n_tokens, self.dim]:
            error_msgs.append(
                f"{prefix}config: checkpoint holds learned prompts with (n_tokens, dim) = "
                f"{tuple(cfg.tolist())}, this encoder has ({self.n_tokens}, {self.dim})"
            )
            return
        loaded: dict[int, str] = {}
        for key, value in state_dict.items():
            if key.startswith(prefix) and key[len(prefix) :].startswith("text_"):
                idx = key[len(prefix) + 5 :]
                if idx.isdigit() and isinstance(value, Tensor):
                    loaded[int(idx)] = decode_prompt_bytes(value)
        # Same prompts at the same indices: keep the Parameter objects (an optimizer built
        # before loading keeps pointing at them) and let nn.Module copy the values in place.
        if loaded and loaded != {i: p for p, i in self._index.items()}:
            ref = self.config
            for i in list(self._index.values()):
                delattr(self, f"ctx_{i}")
                delattr(self, f"text_{i}")
            self._index = {}
            for i in sorted(loaded):
                ctx = state_dict.get(f"{prefix}ctx_{i}")
                shape = (self.n_tokens, self.dim)
                if not isinstance(ctx, Tensor) or tuple(ctx.shape) != shape:
                    got = tuple(ctx.shape) if isinstance(ctx, Tensor) else None
                    error_msgs.append(
                        f"{prefix}ctx_{i}: expected a tensor of shape {shape} for prompt "
                        f"{loaded[i]!r}, got {got}"
                    )
                    continue
                self.register_parameter(
                    f"ctx_{i}", nn.Parameter(torch.empty(shape, device=ref.device))
                )
                self.register_buffer(f"text_{i}", encode_prompt_bytes(loaded[i]).to(ref.device))
                self._index[loaded[i]] = i
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )
