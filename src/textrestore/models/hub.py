"""Hugging Face Hub conventions: ``save_pretrained`` / ``from_pretrained`` / ``push_to_hub``.

The text-guided models inherit :class:`huggingface_hub.PyTorchModelHubMixin` through
:class:`~textrestore.models.TextGuidedModel`; this module holds the glue around it:

- a folder written by ``model.save_pretrained(folder)`` holds ``model.safetensors`` (the
  ``state_dict``, prompt-bank embeddings included), ``config.json`` (every constructor
  argument, plus ``architecture``, ``preset``, ``prompts`` and ``textrestore_version``)
  and a generated model card ``README.md`` (metrics, prompt vocabulary, configuration);
- :func:`from_pretrained` loads such a folder or a Hub repo id, picking the class that
  ``config.json`` names;
- :func:`convert_checkpoint` turns a trainer checkpoint (``.pt``) into such a folder.

Repo ids are resolved with ``huggingface_hub``; when the Hub cannot be reached
(``HF_HUB_OFFLINE=1``, no network) a repo id that is not in the local cache fails at once
with :class:`HubUnavailableError` instead of retrying.

Example:
    >>> import tempfile, torch
    >>> from textrestore import create_model, from_pretrained
    >>> model = create_model("nalsuper_t", dim=8, depth=1, text_dim=8)
    >>> folder = tempfile.mkdtemp()
    >>> model.save_pretrained(folder)
    >>> loaded = from_pretrained(folder)
    >>> x, text = torch.rand(1, 3, 8, 8), torch.randn(2, 8)
    >>> torch.equal(model.eval()(x, text), loaded(x, text))
    True
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

__all__ = [
    "from_pretrained",
    "convert_checkpoint",
    "resolve_pretrained",
    "HubUnavailableError",
    "HUB_TIMEOUT",
]

#: Seconds the Hub may take to answer the reachability check (a bound on the wall-clock
#: wait) before a repo id is treated as offline (then only the local cache is used).
HUB_TIMEOUT = 3.0

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
PAPER_URL = "https://arxiv.org/abs/2501.06546"
# Activation modules a config may name, resolved without importing arbitrary modules.
_CLASS_MODULES = ("torch.nn", "timm.layers")


class HubUnavailableError(ConnectionError):
    """A Hub repo id was given, the Hub is not reachable and the files are not cached."""


# -- constructor arguments that are classes (act_layer) ----------------------------------
def encode_class(cls: type) -> str:
    """``nn.ReLU`` -> ``"torch.nn.ReLU"``: how a class argument is written to config.json."""
    module = cls.__module__
    for public in _CLASS_MODULES:
        if module == public or module.startswith(public + "."):
            mod = importlib.import_module(public)
            if getattr(mod, cls.__qualname__, None) is cls:
                return f"{public}.{cls.__qualname__}"
    return f"{module}.{cls.__qualname__}"


def decode_class(name: str, what: str = "act_layer") -> type[nn.Module]:
    """``"torch.nn.ReLU"`` -> ``nn.ReLU``; only ``torch.nn`` / ``timm.layers`` classes."""
    module, _, attr = name.rpartition(".")
    if not any(module == m or module.startswith(m + ".") for m in _CLASS_MODULES):
        raise ValueError(
            f"config.json: {what}={name!r} is not a class of {' or '.join(_CLASS_MODULES)}; "
            f"pass {what}=<the class> to from_pretrained"
        )
    try:
        obj = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError):
        raise ValueError(
            f"config.json: {what}={name!r} does not exist here; pass {what}=<the class> to "
            f"from_pretrained"
        ) from None
    if not (inspect.isclass(obj) and issubclass(obj, nn.Module)):
        raise ValueError(f"config.json: {what}={name!r} is not an nn.Module class")
    return obj


#: Coders handed to every subclass of the mixin (huggingface_hub's ``coders=``).
CLASS_CODERS: dict[Any, tuple[Any, Any]] = {type: (encode_class, decode_class)}


# -- resolving a folder or a repo id -------------------------------------------------------
def resolve_pretrained(
    name_or_path: str | os.PathLike[str],
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    force_download: bool = False,
    token: str | bool | None = None,
    local_files_only: bool = False,
) -> Path:
    """The local folder holding ``config.json`` and ``model.safetensors`` of a model.

    Args:
        name_or_path: a folder written by ``save_pretrained`` or a Hub repo id
            (``"user/model"``).
        revision: Hub branch, tag or commit.
        cache_dir: Hub cache folder (default: huggingface_hub's, ``HF_HOME``).
        force_download: download again even if cached.
        token: Hub token (private repos).
        local_files_only: use the local cache only.

    Returns:
        The folder (for a repo id: its snapshot in the Hub cache).

    Raises:
        FileNotFoundError: a path that does not exist, or a folder without ``config.json``.
        ValueError: a file (e.g. a trainer checkpoint) or a string that is neither.
        HubUnavailableError: a repo id while the Hub is unreachable or ``HF_HUB_OFFLINE=1``
            and the files are not in the cache. Raised within :data:`HUB_TIMEOUT` seconds.
    """
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise TypeError(
            f"from_pretrained: expected a folder or a Hub repo id (str), got "
            f"{type(name_or_path).__name__}"
        )
    text = os.fspath(name_or_path)
    path = Path(text).expanduser()
    if path.is_dir():
        if not (path / CONFIG_NAME).is_file() or not (path / WEIGHTS_NAME).is_file():
            raise FileNotFoundError(
                f"from_pretrained: {path} holds no {CONFIG_NAME} and {WEIGHTS_NAME}; it must be "
                f"a folder written by model.save_pretrained()"
            )
        return path
    if path.is_file():
        raise ValueError(
            f"from_pretrained: {path} is a file, expected a folder written by save_pretrained() "
            f"or a Hub repo id; convert a trainer checkpoint with "
            f"textrestore.models.convert_checkpoint({str(path)!r}, out_dir)"
        )
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    looks_like_path = isinstance(name_or_path, Path) or text.startswith(("/", ".", "~"))
    try:
        validate_repo_id(text)
    except HFValidationError:
        looks_like_path = True
    if looks_like_path or text.count("/") > 1:
        raise FileNotFoundError(
            f"from_pretrained: no folder {text!r} (and it is not a Hub repo id 'user/model')"
        )
    return _resolve_repo(text, revision, cache_dir, force_download, token, local_files_only)


def _resolve_repo(
    repo_id: str,
    revision: str | None,
    cache_dir: str | os.PathLike[str] | None,
    force_download: bool,
    token: str | bool | None,
    local_files_only: bool,
) -> Path:
    from huggingface_hub import HfApi, constants, hf_hub_download, try_to_load_from_cache
    from huggingface_hub.errors import (
        GatedRepoError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    cache = os.fspath(cache_dir) if cache_dir is not None else None
    reason = None
    if local_files_only:
        reason = "local_files_only=True"
    elif getattr(constants, "is_offline_mode", lambda: constants.HF_HUB_OFFLINE)():
        reason = "HF_HUB_OFFLINE=1"
    else:
        # hf_hub_download retries a failing connection for ~20 s before it looks in the
        # cache; one short request says first whether the Hub answers at all. It runs in a
        # thread so that the wait is bounded whatever the HTTP client retries.
        outcome: list[Exception | None] = []

        def probe() -> None:
            try:
                HfApi().model_info(repo_id, revision=revision, token=token, timeout=HUB_TIMEOUT)
                outcome.append(None)
            except Exception as err:  # handed to the caller's thread below
                outcome.append(err)

        thread = threading.Thread(target=probe, name="textrestore-hub-probe", daemon=True)
        thread.start()
        thread.join(HUB_TIMEOUT)
        error = outcome[0] if outcome else None
        if not outcome:
            reason = f"the Hub did not answer within {HUB_TIMEOUT:g} s"
        elif isinstance(error, (RepositoryNotFoundError, RevisionNotFoundError, GatedRepoError)):
            raise error
        elif error is not None:  # DNS, refused, timeout, proxy, server error
            reason = f"the Hub did not answer ({type(error).__name__}: {error})"
    if reason is None:
        files = [
            hf_hub_download(
                repo_id,
                name,
                revision=revision,
                cache_dir=cache,
                force_download=force_download,
                token=token,
            )  # fmt: skip
            for name in (CONFIG_NAME, WEIGHTS_NAME)
        ]
        return Path(files[0]).parent
    # try_to_load_from_cache reads the cache only (hf_hub_download(local_files_only=True)
    # would still build HTTP headers, which may contact the Hub).
    found = [
        try_to_load_from_cache(repo_id, name, cache_dir=cache, revision=revision)
        for name in (CONFIG_NAME, WEIGHTS_NAME)
    ]
    files = [f for f in found if isinstance(f, str)]
    if force_download or len(files) != 2:
        raise HubUnavailableError(
            f"from_pretrained({repo_id!r}): cannot download, {reason}, and {repo_id!r} is not "
            f"in the local Hub cache ({cache or constants.HF_HUB_CACHE}). Pass a local folder written by "
            f"model.save_pretrained(folder) instead, or pre-populate the cache on a machine "
            f"with network (`hf download {repo_id}` or huggingface_hub.snapshot_download) "
            f"and point HF_HOME / cache_dir at it."
        )
    return Path(files[0]).parent


def read_config(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``config.json`` of a saved model folder, as a dict."""
    path = Path(folder) / CONFIG_NAME
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(config).__name__}")
    return config


def model_classes() -> dict[str, type[Any]]:
    """Every loaded subclass of TextGuidedModel, by class name."""
    from .base import TextGuidedModel

    out: dict[str, type[Any]] = {}
    todo = list(TextGuidedModel.__subclasses__())
    while todo:
        cls = todo.pop()
        out.setdefault(cls.__name__, cls)
        todo.extend(cls.__subclasses__())
    return out


def class_for(config: Mapping[str, Any], where: str) -> type[Any]:
    """The class named by a config's ``architecture`` key."""
    name = config.get("architecture")
    classes = model_classes()
    if not isinstance(name, str) or name not in classes:
        raise ValueError(
            f"{where}: config.json names architecture={name!r}; known: {', '.join(sorted(classes))}"
        )
    return classes[name]


def from_pretrained(
    name_or_path: str | os.PathLike[str],
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    force_download: bool = False,
    token: str | bool | None = None,
    local_files_only: bool = False,
    **model_kwargs: Any,
) -> nn.Module:
    """Load a model saved with ``save_pretrained`` from a folder or a Hugging Face Hub repo.

    The class (``NaLSuper``, ``MultiScaleNaLSuper``, ...) is the one ``config.json`` names.
    The model comes back in eval mode on the CPU (``map_location=`` changes the device),
    its prompt bank filled, so it runs without a text encoder.

    Args:
        name_or_path: a local folder or a Hub repo id (``"user/model"``).
        revision: Hub branch, tag or commit.
        cache_dir: Hub cache folder.
        force_download: download again even if cached.
        token: Hub token.
        local_files_only: never contact the Hub.
        **model_kwargs: constructor arguments overriding the config (e.g. ``channels_last``),
            ``map_location`` or ``strict`` (default True).

    Returns:
        The model, in eval mode.

    Raises:
        HubUnavailableError: a repo id that is not cached while offline (fails fast).

    Example:
        >>> import tempfile
        >>> from textrestore import create_model
        >>> folder = tempfile.mkdtemp()
        >>> create_model("nalsuper_ms", widths=(8, 16), enc_depths=(1,), dec_depths=(1,),
        ...              mid_depth=1, num_heads=2, text_dim=8).save_pretrained(folder)
        >>> type(from_pretrained(folder)).__name__
        'MultiScaleNaLSuper'
    """
    folder = resolve_pretrained(
        name_or_path, revision=revision, cache_dir=cache_dir, force_download=force_download,
        token=token, local_files_only=local_files_only,
    )  # fmt: skip
    cls = class_for(read_config(folder), f"from_pretrained({os.fspath(name_or_path)!r})")
    return cls.from_pretrained(folder, **model_kwargs)


def match_preset(model: nn.Module) -> str | None:
    """The registered preset whose constructor arguments equal the model's, or None."""
    import torch

    from .registry import _MODELS

    config = _jsonable(getattr(model, "config", None))
    if not isinstance(config, dict):
        return None
    for name, fn in sorted(_MODELS.items()):
        try:
            with torch.device("meta"):
                other = fn(pretrained=False)
        except Exception:  # a third-party preset that cannot build on meta
            continue
        if (
            type(other) is type(model)
            and _jsonable(getattr(other, "config", None)) == config
            and _act_layer(other) == _act_layer(model)
        ):
            return name
    return None


def _act_layer(model: nn.Module) -> Any:
    config = getattr(model, "_hub_mixin_config", None) or {}
    return config.get("act_layer") if isinstance(config, dict) else None


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str)) if obj is not None else None


# -- model card -------------------------------------------------------------------------------
MODEL_CARD_TEMPLATE = """---
# Model card metadata: https://huggingface.co/docs/hub/model-cards
{{ card_data }}
---

# {{ model_name }}

A text-guided low-light image enhancer ({{ architecture }}) of the `textrestore` library
(`pip install textrestore`), after NaLSuper, *Natural Language Supervision for Low-light
Image Enhancement* ([arXiv 2501.06546]({{ paper_url }})). The image features attend to the
words of a prompt; the embeddings of the prompts below are stored in the weights, so the model
runs without a text encoder.

## Usage

```python
import textrestore

model = textrestore.from_pretrained("{{ repo_id }}")
enhanced = model(image, "{{ default_prompt }}")  # image: (B, 3, H, W) float in [0, 1]
```

## Metrics

{% if metrics_rows %}| {{ metrics_header | join(" | ") }} |
|{% for _ in metrics_header %} --- |{% endfor %}
{% for row in metrics_rows %}| {{ row | join(" | ") }} |
{% endfor %}{% else %}No metrics were recorded with these weights.
{% endif %}
## Prompt vocabulary

Default prompt: `{{ default_prompt }}`. Prompts stored with the weights ({{ prompts | length }}):

{% for p in prompts %}- `{{ p }}`
{% endfor %}{% if text_encoder %}
Other prompts need the text encoder `{{ text_encoder }}`
(`model.set_text_encoder(textrestore.text.create_text_encoder("{{ text_encoder }}"))`).
{% endif %}
## Configuration

{% if preset %}Preset `{{ preset }}`; constructor arguments:{% else %}Constructor arguments:{% endif %}

```json
{{ config_json }}
```
"""


def metrics_table(metrics: Mapping[str, Any] | None) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the card's metrics table.

    ``{"psnr": 25.5}`` gives one row; ``{"model": {"psnr": 25.5}, "input": {...}}`` one row
    per entry.
    """
    if not metrics:
        return [], []
    if not isinstance(metrics, Mapping):
        raise TypeError(f"model card metrics: expected a mapping, got {type(metrics).__name__}")
    nested = {k: v for k, v in metrics.items() if isinstance(v, Mapping)}
    flat = {k: v for k, v in metrics.items() if not isinstance(v, Mapping)}
    if nested and not flat:
        columns = list(dict.fromkeys(c for v in nested.values() for c in v))
        rows = [[str(k), *(_fmt(v.get(c)) for c in columns)] for k, v in nested.items()]
        return ["", *columns], rows
    return ["metric", "value"], [[str(k), _fmt(v)] for k, v in {**flat, **nested}.items()]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "" if value is None else str(value)


# -- trainer checkpoints ----------------------------------------------------------------------
def convert_checkpoint(
    checkpoint: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    use_ema: bool = True,
    metrics: Mapping[str, Any] | None = None,
) -> Path:
    """Write a trainer checkpoint (``.pt`` with ``config`` and ``model``) as a
    ``save_pretrained`` folder.

    Args:
        checkpoint: ``last.pt`` / ``best.pt`` of :class:`textrestore.train.Trainer`.
        out_dir: the folder to write (created).
        use_ema: take the EMA weights when the checkpoint has them.
        metrics: metrics for the model card (default: the checkpoint's best validation
            PSNR and, when ``summary.json`` lies beside it, the last validation).

    Returns:
        ``out_dir``, loadable with :func:`from_pretrained`.
    """
    import torch

    from .pretrained import model_from_checkpoint

    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"convert_checkpoint: no such file: {path}")
    raw = torch.load(path, map_location="cpu", weights_only=True)
    if not (isinstance(raw, dict) and isinstance(raw.get("config"), dict)):
        raise ValueError(
            f"convert_checkpoint: {path} is not a trainer checkpoint (a dict with 'config' and "
            f"'model'); for a bare weights file use model_from_checkpoint(path, preset=...)"
        )
    model = model_from_checkpoint(path, use_ema=use_ema)
    if metrics is None:
        metrics = _checkpoint_metrics(raw, path)
    card = {"metrics": metrics, "model_name": f"{raw['config'].get('model')} ({path.name})"}
    model.save_pretrained(out_dir, model_card_kwargs=card)  # type: ignore[operator]
    return Path(out_dir)


def _checkpoint_metrics(raw: Mapping[str, Any], path: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"steps": raw.get("step")}
    if raw.get("best_psnr") is not None:
        out["best validation PSNR (dB)"] = float(raw["best_psnr"])
        out["best step"] = raw.get("best_step")
    summary = path.with_name("summary.json")
    if summary.is_file():
        try:
            last = json.loads(summary.read_text()).get("last_val") or {}
        except (ValueError, AttributeError):
            last = {}
        for key, value in last.items():
            out[f"last validation {key}"] = value
    return {k: v for k, v in out.items() if v is not None}
