"""``openclip:<arch>``: the text tower of an open_clip CLIP model (the paper's encoder).

``open_clip`` is imported only when an encoder is built (``pip install open_clip_torch``
or ``pip install textrestore[clip]``).
"""

from __future__ import annotations

import os
import socket
import threading
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .base import TextEncoder
from .embedding import TextEmbedding
from .registry import register_text_encoder

__all__ = ["OpenCLIPTextEncoder", "hub_offline", "network_reachable"]

_WEIGHT_SUFFIXES = (".bin", ".safetensors", ".pt", ".pth", ".npz")
_TRUE = {"1", "on", "yes", "true"}


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) is set to a true value."""
    return any(
        os.environ.get(v, "").strip().lower() in _TRUE
        for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def network_reachable(host: str = "huggingface.co", port: int = 443, timeout: float = 2.0) -> bool:
    """Whether a TCP connection to ``host:port`` opens within ``timeout`` seconds.

    Name resolution runs in a daemon thread, so a hanging DNS lookup cannot hold the
    caller longer than ``timeout``.
    """
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    t = threading.Thread(target=probe, daemon=True)
    t.start()
    t.join(timeout + 0.2)
    return bool(result and result[0])


def _import_open_clip() -> Any:
    try:
        import open_clip
    except ImportError as err:
        raise ImportError(
            "the 'openclip' text encoder needs open_clip: pip install open_clip_torch "
            "(or pip install 'textrestore[clip]')"
        ) from err
    return open_clip


def _resolve_tag(open_clip: Any, arch: str, tag: str, cache_dir: str | None) -> tuple[str, bool]:
    """Map an open_clip pretrained tag to a local weights file, downloading only if online.

    Returns the path and the tag's ``quick_gelu`` flag.
    """
    cfg = open_clip.get_pretrained_cfg(arch, tag)
    if not cfg:
        tags = open_clip.list_pretrained_tags_by_model(arch)
        raise ValueError(
            f"openclip:{arch}: pretrained={tag!r} is neither a known tag nor an existing file; "
            f"tags for {arch}: {', '.join(tags) or 'none'}; or pass a local "
            f"{'/'.join(_WEIGHT_SUFFIXES)} file or 'local-dir:/path'"
        )
    quick_gelu = bool(cfg.get("quick_gelu", False))
    if cfg.get("file"):
        return str(cfg["file"]), quick_gelu
    hub = str(cfg.get("hf_hub", ""))
    url = str(cfg.get("url", ""))
    wanted: list[str] = []  # human-readable "file at place" hints for the error
    if hub:
        from huggingface_hub import try_to_load_from_cache

        repo, filename = os.path.split(hub)
        names = [filename] if filename else []
        names += ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
        for name in dict.fromkeys(names):
            hit = try_to_load_from_cache(repo, name, cache_dir=cache_dir)
            if isinstance(hit, str) and os.path.isfile(hit):
                return hit, quick_gelu
        main = filename or "open_clip_pytorch_model.bin"
        wanted.append(f"https://huggingface.co/{repo}/resolve/main/{main}")
    if url:
        cached = Path(cache_dir or os.path.expanduser("~/.cache/clip")) / os.path.basename(url)
        if cached.is_file():
            return str(cached), quick_gelu
        wanted.append(f"{url} (open_clip's cache: {cached})")
    offline = hub_offline()
    if offline or not network_reachable():
        why = "HF_HUB_OFFLINE is set" if offline else "huggingface.co is not reachable"
        raise FileNotFoundError(
            f"openclip:{arch}: weights for pretrained={tag!r} are not on this machine and {why}. "
            f"Download one of: {'; '.join(wanted)} on a machine with network access, then pass "
            f"pretrained='/path/to/{os.path.basename(wanted[0].split(' ')[0])}' (or put it in "
            f"the Hugging Face cache of {hub.rstrip('/') or 'the repo'}). "
            f"pretrained=None builds random weights."
        )
    return str(open_clip.pretrained.download_pretrained(cfg, cache_dir=cache_dir)), quick_gelu


def _load_text_weights(open_clip: Any, model: nn.Module, path: str, name: str) -> None:
    """Load a full CLIP or a text-only checkpoint; every text-tower key must be present."""
    incompatible = open_clip.load_checkpoint(model, path, strict=False, weights_only=True)
    missing = [k for k in getattr(incompatible, "missing_keys", []) if not k.startswith("visual.")]
    if missing:
        raise ValueError(
            f"{name}: {path} does not hold this architecture's text tower; missing "
            f"{len(missing)} keys, e.g. {', '.join(missing[:4])}"
        )


@register_text_encoder("openclip")
class OpenCLIPTextEncoder(TextEncoder):
    """The text tower of an open_clip model with its own tokenizer; the vision tower is dropped.

    Token states are ``ln_final(transformer(token_embedding(t) + positional_embedding,
    attn_mask))``; the pooled vector is exactly open_clip's ``encode_text`` (the
    end-of-text state times ``text_projection``). When the transformer width differs
    from the projection width (e.g. RN50: 512 vs 1024), token states are projected too,
    so that tokens and pooled share one width ``dim``; otherwise tokens are unprojected.

    Args:
        arch: an open_clip architecture (``open_clip.list_models()``), e.g. ``"ViT-B-32"``,
            passed as the variant: ``create_text_encoder("openclip:ViT-B-32", ...)``.
        pretrained: an open_clip tag (``"openai"``, ``"laion2b_s34b_b79k"``, ...), a local
            ``.bin`` / ``.safetensors`` / ``.pt`` file (a full CLIP or a text-only state_dict),
            ``"local-dir:/path"`` (a folder with ``open_clip_config.json`` and weights), or
            ``None`` for random weights (with a warning). A tag whose weights are not cached
            fails at once when ``HF_HUB_OFFLINE=1`` or no network is reachable, naming
            the file to download.
        cache_dir: download / cache folder for tags.
        project_tokens: project token states with ``text_projection``; ``None`` projects
            only when needed to match the pooled width.
        precision: open_clip precision (``"fp32"``, ``"bf16"``, ...).

    Shape:
        - encode(B prompts).tokens: (B, context_length, dim) (77 for CLIP);
          mask: (B, 77), True up to and including the end-of-text token; pooled: (B, dim)

    Example:
        >>> from textrestore.text import list_text_encoders
        >>> "openclip" in list_text_encoders()
        True
        >>> # enc = create_text_encoder("openclip:ViT-B-32", pretrained="/models/clip.bin")
    """

    def __init__(
        self,
        arch: str = "ViT-B-32",
        pretrained: str | os.PathLike[str] | None = "openai",
        cache_dir: str | None = None,
        project_tokens: bool | None = None,
        precision: str = "fp32",
    ) -> None:
        if not isinstance(arch, str) or not arch:
            raise TypeError(f"openclip: expected an architecture name, got {arch!r}")
        open_clip = _import_open_clip()
        name = f"openclip:{arch}"
        if pretrained is not None:
            pretrained = os.fspath(pretrained)
        model_name, weights, quick_gelu = arch, None, False
        local_dir = pretrained is not None and pretrained.startswith("local-dir:")
        if not local_dir and open_clip.get_model_config(arch) is None:
            raise ValueError(
                f"openclip: unknown architecture {arch!r}; available: "
                f"{', '.join(open_clip.list_models())}"
            )
        if pretrained is None:
            warnings.warn(
                f"{name}: pretrained=None, building the text encoder with RANDOM weights; its "
                f"embeddings carry no meaning. Pass pretrained='openai' or a local weights file.",
                UserWarning,
                stacklevel=2,
            )
        elif pretrained.startswith("local-dir:"):
            folder = Path(pretrained[len("local-dir:") :])
            if not (folder / "open_clip_config.json").is_file():
                raise FileNotFoundError(
                    f"{name}: pretrained={pretrained!r} needs a folder holding "
                    f"open_clip_config.json and open_clip_model.safetensors (or "
                    f"open_clip_pytorch_model.bin); {folder / 'open_clip_config.json'} not found"
                )
            model_name = f"local-dir:{folder}"
        elif pretrained.lower().endswith(_WEIGHT_SUFFIXES) or os.sep in pretrained:
            if not os.path.isfile(pretrained):
                raise FileNotFoundError(
                    f"{name}: weights file {pretrained!r} not found; put the open_clip "
                    f"{arch} checkpoint there (a full CLIP or a text-only state_dict, "
                    f"{'/'.join(_WEIGHT_SUFFIXES)}), or pass an open_clip tag"
                )
            weights = pretrained
        else:
            weights, quick_gelu = _resolve_tag(open_clip, arch, pretrained, cache_dir)
        model = open_clip.create_model(
            model_name,
            pretrained=None,
            precision=precision,
            force_quick_gelu=quick_gelu,
            pretrained_text=False,
            pretrained_image=False,
        )
        if weights is not None:
            _load_text_weights(open_clip, model, weights, name)
        tokenizer = open_clip.get_tokenizer(model_name)
        self._init_from(model, tokenizer, name, project_tokens)

    @classmethod
    def from_model(
        cls,
        model: nn.Module,
        tokenizer: Any,
        name: str = "openclip:custom",
        project_tokens: bool | None = None,
    ) -> OpenCLIPTextEncoder:
        """Wrap an open_clip model already in memory (its vision tower is removed in place).

        Args:
            model: an ``open_clip.CLIP`` (or ``CustomTextCLIP`` with a built-in text tower).
            tokenizer: its tokenizer, ``open_clip.get_tokenizer(arch)``.
            name: the encoder's name.
            project_tokens: see the class docstring.
        """
        self = cls.__new__(cls)
        self._init_from(model, tokenizer, name, project_tokens)
        return self

    def _init_from(
        self, model: nn.Module, tokenizer: Any, name: str, project_tokens: bool | None
    ) -> None:
        tower: Any = getattr(model, "text", None)
        if tower is None:
            tower = model  # open_clip.CLIP keeps its text tower's modules on the model
        for attr in ("token_embedding", "positional_embedding", "transformer", "ln_final"):
            if not hasattr(tower, attr):
                raise TypeError(
                    f"{name}: {type(tower).__name__} is not a CLIP-style text transformer "
                    f"(no {attr}); Hugging Face text towers are not supported by 'openclip'"
                )
        if getattr(tower, "cls_emb", None) is not None:
            raise TypeError(f"{name}: text towers with a CLS embedding (CoCa) are not supported")
        if hasattr(model, "visual"):
            model.visual = nn.Identity()  # drop the vision tower to save memory
        width = int(tower.transformer.width)
        proj = tower.text_projection
        out_dim = width
        if proj is not None:
            out_dim = int(proj.out_features if isinstance(proj, nn.Linear) else proj.shape[1])
        if project_tokens is None:
            project_tokens = out_dim != width
        if not project_tokens and out_dim != width:
            raise ValueError(
                f"{name}: token width {width} differs from the pooled width {out_dim}; "
                f"use project_tokens=True (or None)"
            )
        context_length = int(getattr(tower, "context_length", tower.positional_embedding.shape[0]))
        TextEncoder.__init__(self, name=name, dim=out_dim, max_length=context_length)
        self.model = model
        self.tokenizer = tokenizer
        self.project_tokens = bool(project_tokens)
        self.pool_type = str(
            getattr(tower, "text_pool_type", getattr(tower, "pool_type", "argmax"))
        )
        self.eos_id = getattr(tower, "text_eos_id", getattr(tower, "eos_id", None))
        self.pad_id = int(getattr(tower, "pad_id", 0) or 0)
        self._tower = [tower]  # not a second registered reference
        self.freeze()

    def _project(self, x: Tensor) -> Tensor:
        proj: Any = self._tower[0].text_projection
        if proj is None:
            return x
        return proj(x) if isinstance(proj, nn.Linear) else x @ proj

    def real_token_mask(self, ids: Tensor) -> Tensor:
        """True for every token up to and including the end-of-text token."""
        pos = torch.arange(ids.shape[1], device=ids.device)
        if self.pool_type == "argmax":
            end = ids.argmax(dim=-1)
        elif self.pool_type == "eos" and self.eos_id is not None:
            end = (ids == self.eos_id).int().argmax(dim=-1)
        else:
            return ids != self.pad_id
        return pos[None, :] <= end[:, None]

    def forward(self, prompts: list[str]) -> TextEmbedding:
        from open_clip.transformer import text_global_pool

        tower: Any = self._tower[0]
        ids = self.tokenizer(prompts).to(self.device)
        if hasattr(tower, "_embeds"):  # open_clip.TextTransformer
            x, attn_mask = tower._embeds(ids)
        else:  # open_clip.CLIP
            cast = tower.transformer.get_cast_dtype()
            x = tower.token_embedding(ids).to(cast) + tower.positional_embedding.to(cast)
            attn_mask = tower.attn_mask
        x = tower.ln_final(tower.transformer(x, attn_mask=attn_mask))
        pooled = self._project(text_global_pool(x, ids, self.pool_type, eos_token_id=self.eos_id))
        tokens = self._project(x) if self.project_tokens else x
        return TextEmbedding(tokens.float(), self.real_token_mask(ids), pooled.float())
