"""PromptBank: the prompt embeddings a model has seen, kept as buffers in its state_dict."""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .base import TextEncoder, check_prompts
from .embedding import TextEmbedding
from .learned import LearnedTextEncoder, decode_prompt_bytes, encode_prompt_bytes

__all__ = ["PromptBank", "UnknownPromptError"]

_KEY = re.compile(r"^prompt_(\d+)_(tokens|mask|pooled|text)$")
_PARTS = ("tokens", "mask", "pooled", "text")
_CACHE_SIZE = 32

#: Default bound on the prompts a bank in eval mode encodes on the fly and keeps.
DEFAULT_MAX_NEW_PROMPTS = 256


class UnknownPromptError(KeyError, ValueError):
    """A prompt is not in the bank and no text encoder is attached to encode it."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class PromptBank(nn.Module):
    """Embeddings of the prompts a model has seen, stored as buffers in its ``state_dict``.

    Each distinct prompt is encoded once by the attached frozen encoder (unknown prompts
    of one call go to the encoder in one batch); later calls reuse the stored embedding,
    so a saved model runs with no text encoder installed. Only the real tokens are
    stored (mask True), so a CLIP prompt takes a few rows rather than 77. The padded
    batch assembled for a list of prompts is cached, so repeated calls are cheap.

    Storage: prompt ``i`` is four buffers, ``prompt_{i}_tokens`` (L_i, D),
    ``prompt_{i}_mask`` (L_i,) bool, ``prompt_{i}_pooled`` (D,) and ``prompt_{i}_text``
    (its UTF-8 bytes, uint8). ``load_state_dict`` into a fresh bank re-creates them and
    replaces whatever prompts the bank held.

    Encoders: a frozen encoder is *not* a submodule; its weights never enter the
    ``state_dict`` and ``.to()`` on the bank does not move it (results are moved to the
    bank's device and dtype). The trainable ``learned:<n>`` encoder is different: its
    context vectors *are* the model's learned prompts, so it is registered as the
    submodule ``encoder``, optimised with the model, saved in its ``state_dict`` and
    re-created on load; every call runs it (no caching) so gradients reach it.

    Bounded memory: the prompts the checkpoint shipped (loaded with ``load_state_dict``),
    those given to :meth:`add` and those encoded in training mode are kept for good. A
    prompt that an attached encoder encodes on the fly in eval mode (inference: a user's
    new prompt) joins a least-recently-used set of at most ``max_new_prompts``; the
    least recently used one is dropped when it is full (and encoded again if asked for
    again), so a long-running process that sees many different prompts keeps a bounded
    bank. Switching the bank to training mode keeps every prompt it holds.

    Args:
        text_dim: width D of the embeddings; an attached encoder must have ``dim == text_dim``.
        default_prompt: the prompt a model uses when given no text.
        max_new_prompts: size of the LRU set of prompts encoded on the fly in eval mode
            (``None``: unbounded). Also settable later as an attribute.

    Shape:
        - forward(B prompts): tokens (B, Lmax, text_dim), mask (B, Lmax), pooled (B, text_dim)

    Example:
        >>> from textrestore.text import LearnedTextEncoder
        >>> enc = LearnedTextEncoder(n_tokens=3, dim=8).freeze()  # a frozen stand-in encoder
        >>> bank = PromptBank(text_dim=8)
        >>> bank.attach_encoder(enc)
        >>> bank(["normal light image", "bright"]).tokens.shape
        torch.Size([2, 3, 8])
        >>> fresh = PromptBank(text_dim=8)
        >>> _ = fresh.load_state_dict(bank.state_dict())
        >>> fresh.prompts
        ['normal light image', 'bright']
        >>> torch.equal(fresh(["bright"]).tokens, bank(["bright"]).tokens)
        True
    """

    _anchor: Tensor
    encoder: TextEncoder | None
    _frozen: TextEncoder | None

    def __init__(
        self,
        text_dim: int,
        default_prompt: str = "normal light image",
        *,
        max_new_prompts: int | None = DEFAULT_MAX_NEW_PROMPTS,
    ) -> None:
        super().__init__()
        if not isinstance(text_dim, int) or isinstance(text_dim, bool) or text_dim < 1:
            raise ValueError(f"PromptBank.text_dim: expected a positive int, got {text_dim!r}")
        if not isinstance(default_prompt, str):
            raise TypeError(
                f"PromptBank.default_prompt: expected a str, got {type(default_prompt).__name__}"
            )
        self.text_dim = text_dim
        self.default_prompt = default_prompt
        self.max_new_prompts = max_new_prompts
        # Prompts encoded on the fly in eval mode, least recently used first.
        self._lru: OrderedDict[str, None] = OrderedDict()
        self._free: set[int] = set()  # buffer indices freed by evictions
        self._next = 0  # the next never-used buffer index
        # Tracks the bank's device and dtype through .to()/.half(); not saved.
        self.register_buffer("_anchor", torch.zeros(0), persistent=False)
        self._index: dict[str, int] = {}
        # A frozen encoder is kept in __dict__ so that nn.Module does not register it.
        self.__dict__["_frozen"] = None
        self.register_module("encoder", None)  # only a trainable encoder lives here
        self._cache: OrderedDict[tuple[Any, ...], TextEmbedding] = OrderedDict()

    # -- encoders -------------------------------------------------------------------
    @property
    def text_encoder(self) -> TextEncoder | None:
        """The attached encoder (frozen or trainable), or None."""
        return self.encoder if self.encoder is not None else self._frozen

    def attach_encoder(self, encoder: TextEncoder | None) -> None:
        """Attach the encoder used for prompts not yet in the bank (``None`` detaches).

        Args:
            encoder: a :class:`TextEncoder` with ``dim == text_dim``. A frozen one is kept
                outside the module tree; a trainable one (``learned:``) becomes the
                submodule ``encoder`` and replaces any learned encoder held before.
        """
        if encoder is not None:
            if not isinstance(encoder, TextEncoder):
                raise TypeError(
                    f"PromptBank.attach_encoder: expected a textrestore.text.TextEncoder or "
                    f"None, got {type(encoder).__name__}"
                )
            if encoder.dim != self.text_dim:
                raise ValueError(
                    f"PromptBank.attach_encoder: encoder {encoder.name!r} has dim={encoder.dim} "
                    f"but the bank (the model's text_dim) has text_dim={self.text_dim}; build "
                    f"the model with text_dim={encoder.dim} or pick an encoder of width "
                    f"{self.text_dim}"
                )
        if encoder is not None and encoder.trainable:
            self.encoder = encoder
            self.__dict__["_frozen"] = None
        else:
            self.__dict__["_frozen"] = encoder
            if encoder is None:
                self.encoder = None
        self._cache.clear()

    # -- prompts --------------------------------------------------------------------
    @property
    def prompts(self) -> list[str]:
        """The known prompts: stored ones, then those of an attached learned encoder."""
        out = list(self._index)
        if isinstance(self.encoder, LearnedTextEncoder):
            out += [p for p in self.encoder.prompts if p not in self._index]
        return out

    def __contains__(self, prompt: object) -> bool:
        return isinstance(prompt, str) and prompt in self.prompts

    def __len__(self) -> int:
        return len(self.prompts)

    def add(self, prompts: Sequence[str] | str, embedding: TextEmbedding) -> None:
        """Store (or overwrite) the embeddings of ``prompts``; one row of ``embedding`` each."""
        items = check_prompts(prompts)
        if not isinstance(embedding, TextEmbedding):
            raise TypeError(
                f"PromptBank.add: expected a TextEmbedding, got {type(embedding).__name__}"
            )
        if embedding.batch_size != len(items) or embedding.dim != self.text_dim:
            raise ValueError(
                f"PromptBank.add: expected an embedding of shape ({len(items)}, L, "
                f"{self.text_dim}), got {tuple(embedding.tokens.shape)}"
            )
        anchor = self._anchor
        for row, prompt in enumerate(items):
            keep = embedding.mask[row]
            if not bool(keep.any()):
                keep = torch.zeros_like(keep)
                keep[0] = True  # an all-padding prompt keeps one masked row
                mask = torch.zeros(1, dtype=torch.bool)
            else:
                mask = torch.ones(int(keep.sum()), dtype=torch.bool)
            tokens = embedding.tokens[row][keep].detach()
            i = self._index.get(prompt)
            if i is None:
                i = self._alloc()
            self._set(i, prompt, tokens.to(anchor), mask, embedding.pooled[row].detach().to(anchor))
            self._lru.pop(prompt, None)  # an explicit add keeps the prompt for good
        self._cache.clear()

    # -- bounded memory -------------------------------------------------------------
    @property
    def max_new_prompts(self) -> int | None:
        """Bound on the prompts encoded on the fly in eval mode (``None``: unbounded)."""
        return self._max_new

    @max_new_prompts.setter
    def max_new_prompts(self, value: int | None) -> None:
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or value < 0
        ):
            raise ValueError(
                f"PromptBank.max_new_prompts: expected an int >= 0 or None, got {value!r}"
            )
        self._max_new = value
        if "_lru" in self.__dict__:
            self._evict(keep=())

    @property
    def new_prompts(self) -> list[str]:
        """The prompts of the LRU set (encoded on the fly in eval mode), oldest first."""
        return list(self._lru)

    def _alloc(self) -> int:
        if self._free:
            i = min(self._free)
            self._free.discard(i)
            return i
        return self._next

    def _remove(self, prompt: str) -> None:
        i = self._index.pop(prompt)
        for part in _PARTS:
            delattr(self, f"prompt_{i}_{part}")
        self._free.add(i)
        self._lru.pop(prompt, None)

    def _evict(self, keep: Sequence[str]) -> None:
        """Drop the least recently used on-the-fly prompts beyond ``max_new_prompts``."""
        limit = self._max_new
        if limit is None or len(self._lru) <= limit:
            return
        keep_set = set(keep)
        for prompt in list(self._lru):
            if len(self._lru) <= limit:
                break
            if prompt not in keep_set:
                self._remove(prompt)
        self._cache.clear()

    def train(self, mode: bool = True) -> PromptBank:
        """Set training mode; entering it keeps every prompt the bank holds for good."""
        if mode:
            self._lru.clear()
        return super().train(mode)

    def _set(self, i: int, prompt: str, tokens: Tensor, mask: Tensor, pooled: Tensor) -> None:
        dev = self._anchor.device
        self.register_buffer(f"prompt_{i}_tokens", tokens.clone())
        self.register_buffer(f"prompt_{i}_mask", mask.to(device=dev, dtype=torch.bool))
        self.register_buffer(f"prompt_{i}_pooled", pooled.clone())
        self.register_buffer(f"prompt_{i}_text", encode_prompt_bytes(prompt).to(dev))
        self._index[prompt] = i
        self._free.discard(i)
        self._next = max(self._next, i + 1)

    def _unknown(self, missing: list[str]) -> UnknownPromptError:
        known = ", ".join(repr(p) for p in self.prompts) or "none"
        return UnknownPromptError(
            f"PromptBank: prompt(s) {', '.join(repr(p) for p in missing)} not in the bank and "
            f"no text encoder is attached; known prompts: {known}. Attach one with "
            f"attach_encoder(create_text_encoder(...)) (NaLSuper: model.set_text_encoder)"
        )

    # -- lookup ---------------------------------------------------------------------
    def forward(self, prompts: Sequence[str] | str) -> TextEmbedding:
        """Embeddings of ``prompts``, encoding the ones not yet in the bank.

        Args:
            prompts: one prompt or a sequence of B prompts (repeats allowed).

        Returns:
            A :class:`TextEmbedding` padded to the longest prompt, on the bank's device
            and dtype.
        """
        items = check_prompts(prompts)
        anchor = self._anchor
        if self.encoder is not None:  # trainable: run every time, no cache
            return self.encoder.encode(items).to(device=anchor.device, dtype=anchor.dtype)
        key = (tuple(items), anchor.device, anchor.dtype)
        for p in items:
            if p in self._lru:
                self._lru.move_to_end(p)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        missing = list(dict.fromkeys(p for p in items if p not in self._index))
        if missing:
            if self._frozen is None:
                raise self._unknown(missing)
            self.add(missing, self._frozen.encode(missing))
            if not self.training:  # inference: a bounded set of new prompts
                self._lru.update(dict.fromkeys(missing))
                self._evict(keep=items)
        emb = self._assemble(items)
        self._cache[key] = emb
        if len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return emb

    def _assemble(self, items: list[str]) -> TextEmbedding:
        idx = [self._index[p] for p in items]
        toks = [getattr(self, f"prompt_{i}_tokens") for i in idx]
        masks = [getattr(self, f"prompt_{i}_mask") for i in idx]
        length = max(t.shape[0] for t in toks)
        tokens = toks[0].new_zeros(len(items), length, self.text_dim)
        mask = torch.zeros(len(items), length, dtype=torch.bool, device=tokens.device)
        for row, (t, m) in enumerate(zip(toks, masks)):
            tokens[row, : t.shape[0]] = t
            mask[row, : m.shape[0]] = m
        pooled = torch.stack([getattr(self, f"prompt_{i}_pooled") for i in idx])
        return TextEmbedding(tokens, mask, pooled)

    # -- nn.Module plumbing ---------------------------------------------------------
    def _apply(self, fn: Callable[[Tensor], Tensor], *args: Any, **kwargs: Any) -> PromptBank:
        self._cache.clear()
        return super()._apply(fn, *args, **kwargs)

    def clear(self) -> None:
        """Forget every stored prompt."""
        for i in self._index.values():
            for part in _PARTS:
                delattr(self, f"prompt_{i}_{part}")
        self._index = {}
        self._lru.clear()
        self._free = set()
        self._next = 0
        self._cache.clear()

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
        # The checkpoint's prompts replace the bank's: re-create their buffers with the
        # stored shapes, then let nn.Module copy (and check) the values.
        found: dict[int, dict[str, Tensor]] = {}
        for key, value in state_dict.items():
            if not key.startswith(prefix):
                continue
            m = _KEY.match(key[len(prefix) :])
            if m and isinstance(value, Tensor):
                found.setdefault(int(m.group(1)), {})[m.group(2)] = value
        self.clear()
        for i in sorted(found):
            parts = found[i]
            if set(parts) != set(_PARTS):
                lacking = ", ".join(f"{prefix}prompt_{i}_{p}" for p in _PARTS if p not in parts)
                error_msgs.append(f"PromptBank: incomplete prompt entry, missing {lacking}")
                continue
            prompt = decode_prompt_bytes(parts["text"])
            tokens, pooled = parts["tokens"], parts["pooled"]
            if (
                tokens.ndim != 2
                or tokens.shape[1] != self.text_dim
                or pooled.shape != (self.text_dim,)
            ):
                error_msgs.append(
                    f"PromptBank: prompt {prompt!r} in the checkpoint has tokens "
                    f"{tuple(tokens.shape)} and pooled {tuple(pooled.shape)}, expected "
                    f"(L, {self.text_dim}) and ({self.text_dim},): text_dim differs"
                )
                continue
            anchor = self._anchor
            self._set(
                i,
                prompt,
                torch.empty(tokens.shape, device=anchor.device, dtype=anchor.dtype),
                torch.zeros(parts["mask"].shape, dtype=torch.bool),
                torch.empty(pooled.shape, device=anchor.device, dtype=anchor.dtype),
            )
        enc_prefix = prefix + "encoder."
        cfg = state_dict.get(enc_prefix + "config")
        if self.encoder is None and isinstance(cfg, Tensor):
            n_tokens, dim = (int(v) for v in cfg.tolist())
            if dim != self.text_dim:
                error_msgs.append(
                    f"PromptBank: the checkpoint's learned prompts have dim={dim}, the bank "
                    f"has text_dim={self.text_dim}"
                )
                return
            self.encoder = LearnedTextEncoder(n_tokens=n_tokens, dim=dim).to(self._anchor.device)
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def extra_repr(self) -> str:
        enc = self.text_encoder
        return (
            f"text_dim={self.text_dim}, default_prompt={self.default_prompt!r}, "
            f"prompts={len(self.prompts)}, encoder={enc.name if enc is not None else None!r}, "
            f"max_new_prompts={self.max_new_prompts}"
        )
