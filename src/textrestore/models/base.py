"""The text side shared by the text-guided models: a prompt bank, an attached encoder, embed_text."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn

from ..text import PromptBank, TextEmbedding, as_text_embedding

__all__ = ["TextGuidedModel", "TextInput"]

TextInput = str | Sequence[str] | Tensor | TextEmbedding | None


class TextGuidedModel(nn.Module):
    """Base of models whose forward takes ``(image, text)``.

    Subclasses set ``self.text_dim`` and ``self.prompt_bank`` (a :class:`PromptBank`) in
    their constructor; this class resolves ``text`` (None, a prompt, a list of prompts, a
    tensor or a :class:`TextEmbedding`) to a batch of embeddings.
    """

    text_dim: int
    prompt_bank: PromptBank

    # -- text ---------------------------------------------------------------------------
    def set_text_encoder(self, encoder: Any) -> TextGuidedModel:
        """Attach a text encoder used to embed prompts not yet in the prompt bank."""
        if encoder is not None and getattr(encoder, "dim", self.text_dim) != self.text_dim:
            raise ValueError(
                f"set_text_encoder: the encoder's width {encoder.dim} does not match "
                f"the model's text_dim={self.text_dim}; build the model with "
                f"text_dim={encoder.dim}"
            )
        self.prompt_bank.attach_encoder(encoder)
        return self

    def embed_text(self, text: TextInput, batch: int) -> TextEmbedding:
        """Resolve ``text`` (see the class docstring) to a TextEmbedding of ``batch`` rows."""
        if text is None:
            text = self.prompt_bank.default_prompt
        if isinstance(text, str):
            emb = self.prompt_bank([text])
        elif isinstance(text, (Tensor, TextEmbedding)):
            emb = as_text_embedding(text)
        elif isinstance(text, Sequence):
            prompts = list(text)
            if not prompts:
                raise ValueError(f"{type(self).__name__}: text is an empty list; give one prompt per image")
            if not all(isinstance(p, str) for p in prompts):
                raise TypeError(f"{type(self).__name__}: a text list must hold only str prompts")
            if len(prompts) not in (1, batch):
                raise ValueError(
                    f"{type(self).__name__}: got {len(prompts)} prompts for {batch} images; give 1 or {batch}"
                )
            emb = self.prompt_bank(prompts)
        else:
            raise TypeError(
                f"{type(self).__name__}: text must be None, a str, a list of str, a tensor or a TextEmbedding, "
                f"got {type(text).__name__}"
            )
        if emb.dim != self.text_dim:
            raise ValueError(
                f"{type(self).__name__}: expected text of width D={self.text_dim} in (B, L, {self.text_dim}), "
                f"got shape {tuple(emb.tokens.shape)}"
            )
        if emb.batch_size not in (1, batch):
            raise ValueError(
                f"{type(self).__name__}: batch of {emb.batch_size} text entries does not match {batch} images"
            )
        return emb.expand(batch)

