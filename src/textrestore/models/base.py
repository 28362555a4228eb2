"""The text side shared by the text-guided models: a prompt bank, an attached encoder, embed_text.

The base class also carries huggingface_hub's :class:`~huggingface_hub.PyTorchModelHubMixin`
(``save_pretrained``, ``from_pretrained``, ``push_to_hub``); the glue is in
:mod:`textrestore.models.hub`.
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard, ModelCardData, PyTorchModelHubMixin
from torch import Tensor, nn

from .._atomic import atomic_path
from ..text import PromptBank, TextEmbedding, as_text_embedding
from . import hub

__all__ = ["TextGuidedModel", "TextInput"]

TextInput = str | Sequence[str] | Tensor | TextEmbedding | None


class TextGuidedModel(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="textrestore",
    paper_url=hub.PAPER_URL,
    license="apache-2.0",
    pipeline_tag="image-to-image",
    tags=["low-light-image-enhancement", "image-restoration", "text-guided"],
    model_card_template=hub.MODEL_CARD_TEMPLATE,
):
    """Base of models whose forward takes ``(image, text)``.

    Subclasses set ``self.text_dim``, ``self.prompt_bank`` (a :class:`PromptBank`) and
    ``self.config`` (their constructor arguments) in their constructor; this class resolves
    ``text`` (None, a prompt, a list of prompts, a tensor or a :class:`TextEmbedding`) to a
    batch of embeddings.

    Hugging Face Hub conventions come from :class:`huggingface_hub.PyTorchModelHubMixin`:
    ``model.save_pretrained(folder)`` writes ``model.safetensors`` (prompt-bank embeddings
    included), ``config.json`` (every constructor argument, the architecture, the prompts)
    and a model card ``README.md`` (``model_card_kwargs={"metrics": {...}}`` fills its
    metrics table; an existing ``README.md`` is kept, as the mixin does);
    ``Cls.from_pretrained(folder_or_repo_id)`` loads it in eval mode (strictly: every
    weight must match); ``model.push_to_hub(repo_id)`` uploads it. A repo id that is not
    cached fails fast with :class:`~textrestore.models.hub.HubUnavailableError` when the
    Hub is unreachable or ``HF_HUB_OFFLINE=1``.

    Example:
        >>> import tempfile, torch
        >>> from textrestore import NaLSuper
        >>> model = NaLSuper(dim=8, depth=1, num_heads=2, text_dim=4, act_layer=torch.nn.GELU)
        >>> folder = tempfile.mkdtemp()
        >>> model.save_pretrained(folder)
        >>> loaded = NaLSuper.from_pretrained(folder)
        >>> any(isinstance(m, torch.nn.GELU) for m in loaded.modules()), loaded.training
        (True, False)
    """

    text_dim: int
    prompt_bank: PromptBank
    config: dict[str, Any]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Class-valued constructor arguments (act_layer) are written to config.json by name.
        kwargs.setdefault("coders", hub.CLASS_CODERS)
        super().__init_subclass__(**kwargs)

    # -- Hugging Face Hub -----------------------------------------------------------------
    def hub_config(self) -> dict[str, Any]:
        """What ``config.json`` holds: every constructor argument (JSON), plus
        ``architecture``, ``preset`` (the matching preset or None), ``prompts`` (the prompt
        bank's vocabulary) and ``textrestore_version``."""
        from .._version import __version__

        own = getattr(self, "config", None) or {}
        captured = self._hub_mixin_config if isinstance(self._hub_mixin_config, dict) else {}
        config: dict[str, Any] = {}
        for name, param in list(self._hub_mixin_init_parameters.items())[1:]:
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            if name in own:
                value = own[name]
            elif name in captured:
                value = captured[name]
            else:
                raise RuntimeError(
                    f"{type(self).__name__}.hub_config: constructor argument {name!r} is not "
                    f"recorded in self.config; save_pretrained would lose it"
                )
            config[name] = self._encode_arg(value)
        config = json.loads(json.dumps(config))  # tuples -> lists, fails on non-JSON values
        config.update(
            architecture=type(self).__name__,
            preset=hub.match_preset(self),
            prompts=list(self.prompt_bank.prompts),
            textrestore_version=__version__,
        )
        return config

    def save_pretrained(
        self,
        save_directory: str | Path,
        *,
        config: dict[str, Any] | Any | None = None,
        repo_id: str | None = None,
        push_to_hub: bool = False,
        model_card_kwargs: dict[str, Any] | None = None,
        **push_to_hub_kwargs: Any,
    ) -> str | None:
        """Write ``model.safetensors``, ``config.json`` and ``README.md`` to ``save_directory``.

        Args:
            save_directory: the folder (created).
            config: extra entries for ``config.json`` (merged over :meth:`hub_config`).
            repo_id: Hub repo when ``push_to_hub`` (default: the folder's name).
            push_to_hub: also upload the folder.
            model_card_kwargs: model card values, e.g. ``{"metrics": {"psnr": 25.6}}``,
                ``model_name``, ``repo_id``.
            **push_to_hub_kwargs: passed to :meth:`push_to_hub`.

        Returns:
            The commit URL when pushing, else None.
        """
        merged = self.hub_config()
        if config is not None:
            merged.update(asdict(config) if is_dataclass(config) else dict(config))  # type: ignore[arg-type]
        return super().save_pretrained(
            save_directory, config=merged, repo_id=repo_id, push_to_hub=push_to_hub,
            model_card_kwargs=model_card_kwargs, **push_to_hub_kwargs,
        )  # fmt: skip

    def push_to_hub(  # type: ignore[override]
        self, repo_id: str, *, model_card_kwargs: dict[str, Any] | None = None, **kwargs: Any
    ) -> str:
        """Upload the model (``save_pretrained`` into a temporary folder) to Hub ``repo_id``.

        Keyword arguments are those of :meth:`huggingface_hub.ModelHubMixin.push_to_hub`
        (``private``, ``token``, ``commit_message``, ...).
        """
        card = {"repo_id": repo_id, **(model_card_kwargs or {})}
        return super().push_to_hub(repo_id, model_card_kwargs=card, **kwargs)

    def _save_pretrained(self, save_directory: Path) -> None:
        from safetensors.torch import save_model

        metadata = {"format": "pt", "architecture": type(self).__name__}
        preset = hub.match_preset(self)
        if preset is not None:  # textrestore enhance --weights model.safetensors works too
            metadata["preset"] = preset
        with atomic_path(Path(save_directory) / hub.WEIGHTS_NAME) as tmp:
            save_model(self, str(tmp), metadata=metadata)

    def generate_model_card(self, *args: Any, **kwargs: Any) -> ModelCard:
        """The model card: metrics (``metrics=`` mapping), prompt vocabulary, configuration."""
        config = self.hub_config()
        args_only = {
            k: v for k, v in config.items()
            if k not in ("architecture", "preset", "prompts", "textrestore_version")
        }  # fmt: skip
        header, rows = hub.metrics_table(kwargs.pop("metrics", None))
        values: dict[str, Any] = {
            "model_name": config["preset"] or config["architecture"],
            "architecture": config["architecture"],
            "preset": config["preset"],
            "repo_id": "path/to/saved_folder",
            "default_prompt": self.prompt_bank.default_prompt,
            "prompts": config["prompts"],
            "text_encoder": getattr(self, "text_encoder_name", None),
            "metrics_header": header,
            "metrics_rows": rows,
            "config_json": json.dumps(args_only, indent=2),
            "paper_url": self._hub_mixin_info.paper_url,
            **kwargs,
        }
        card_data = ModelCardData(**self._hub_mixin_info.model_card_data.to_dict())
        return ModelCard.from_template(
            card_data=card_data, template_str=self._hub_mixin_info.model_card_template, **values
        )

    @classmethod
    def from_pretrained(  # type: ignore[override]
        cls,
        pretrained_model_name_or_path: str | Path,
        *,
        force_download: bool = False,
        token: str | bool | None = None,
        cache_dir: str | Path | None = None,
        local_files_only: bool = False,
        revision: str | None = None,
        **model_kwargs: Any,
    ) -> Any:
        """Load a folder written by :meth:`save_pretrained`, or a Hub repo id.

        Args:
            pretrained_model_name_or_path: a local folder or ``"user/model"``.
            force_download: download again even if cached.
            token: Hub token.
            cache_dir: Hub cache folder.
            local_files_only: never contact the Hub.
            revision: Hub branch, tag or commit.
            **model_kwargs: constructor arguments overriding ``config.json``;
                ``map_location`` (default ``"cpu"``), ``strict`` (default True).

        Returns:
            The model in eval mode. On the base class, the class ``config.json`` names.
        """
        folder = hub.resolve_pretrained(
            pretrained_model_name_or_path, revision=revision, cache_dir=cache_dir,
            force_download=force_download, token=token, local_files_only=local_files_only,
        )  # fmt: skip
        config = hub.read_config(folder)
        where = f"{cls.__name__}.from_pretrained({os.fspath(pretrained_model_name_or_path)!r})"
        if cls is TextGuidedModel:
            return hub.class_for(config, where).from_pretrained(folder, **model_kwargs)
        arch = config.get("architecture")
        if arch is not None and arch != cls.__name__:
            raise ValueError(
                f"{where}: the folder holds a {arch}, not a {cls.__name__}; load it with "
                f"textrestore.from_pretrained(...) or {arch}.from_pretrained(...)"
            )
        return super().from_pretrained(os.fspath(folder), **model_kwargs)

    @classmethod
    def _from_pretrained(  # type: ignore[override]
        cls,
        *,
        model_id: str,
        revision: str | None,
        cache_dir: str | Path | None,
        force_download: bool,
        local_files_only: bool,
        token: str | bool | None,
        map_location: str = "cpu",
        strict: bool = True,
        **model_kwargs: Any,
    ) -> Any:
        # model_id is the local folder resolved by from_pretrained.
        for name, value in list(model_kwargs.items()):
            param = cls._hub_mixin_init_parameters.get(name)
            if isinstance(value, str) and param is not None and inspect.isclass(param.default):
                model_kwargs[name] = hub.decode_class(value, name)
        model = cls(**model_kwargs)
        weights = os.path.join(model_id, hub.WEIGHTS_NAME)
        return cls._load_as_safetensor(model, weights, map_location, strict)

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
                raise ValueError(
                    f"{type(self).__name__}: text is an empty list; give one prompt per image"
                )
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
