"""A small model registry: ``register_model``, ``create_model``, ``list_models``.

Modelled on timm's: a preset is a function that builds a model from keyword
overrides; names are unique and an unknown name lists what exists.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

__all__ = ["register_model", "create_model", "list_models", "is_model"]

ModelFn = TypeVar("ModelFn", bound=Callable[..., nn.Module])

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: ModelFn | None = None, *, name: str | None = None) -> Any:
    """Register a preset function under its ``__name__`` (or ``name``).

    Usable as ``@register_model`` or ``@register_model(name="my_net")``. A name that is
    already registered raises ``ValueError``.
    """

    def wrap(f: ModelFn) -> ModelFn:
        key = name or f.__name__
        if key in _MODELS:
            raise ValueError(f"register_model: a model named {key!r} is already registered")
        _MODELS[key] = f
        return f

    return wrap(fn) if fn is not None else wrap


def is_model(name: str) -> bool:
    """Whether ``name`` is a registered preset."""
    return name in _MODELS


def list_models(pattern: str = "*") -> list[str]:
    """Sorted names of the registered presets matching a shell-style ``pattern``.

    Example:
        >>> list_models("nalsuper*")
        ['nalsuper', 'nalsuper_ms', 'nalsuper_s', 'nalsuper_t']
    """
    return sorted(n for n in _MODELS if fnmatch.fnmatchcase(n, pattern))


def create_model(name: str, pretrained: bool = False, **overrides: Any) -> nn.Module:
    """Build the preset ``name``, with constructor arguments overridden by ``overrides``.

    Args:
        name: a registered preset (see :func:`list_models`).
        pretrained: load the weights shipped for this preset.
        **overrides: constructor arguments replacing the preset's.

    Example:
        >>> model = create_model("nalsuper_t")
        >>> type(model).__name__
        'NaLSuper'
    """
    if not isinstance(name, str):
        raise TypeError(f"create_model: expected a model name (str), got {type(name).__name__}")
    if name not in _MODELS:
        raise ValueError(
            f"create_model: unknown model {name!r}; registered models: {', '.join(list_models())}"
        )
    return _MODELS[name](pretrained=pretrained, **overrides)
