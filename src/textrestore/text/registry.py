"""Registry of text encoders: ``register_text_encoder``, ``create_text_encoder``.

Names have the form ``"backend"`` or ``"backend:variant"``. A registered object (an
encoder class or a factory function) is called as ``obj(variant, **kwargs)`` when a
variant is given and as ``obj(**kwargs)`` otherwise. Third-party packages plug in
through the entry-point group ``textrestore.text_encoders``: the entry point's name is
the backend name, its object the class or factory. Nothing is imported from an
entry point until it is asked for.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from importlib import metadata
from typing import Any, TypeVar

from .base import TextEncoder

__all__ = [
    "ENTRY_POINT_GROUP",
    "register_text_encoder",
    "create_text_encoder",
    "list_text_encoders",
]

ENTRY_POINT_GROUP = "textrestore.text_encoders"

F = TypeVar("F", bound=Callable[..., Any])

_REGISTRY: dict[str, Callable[..., TextEncoder]] = {}


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip():
        raise TypeError(f"text encoder name: expected a non-empty str, got {name!r}")
    return name.strip()


def register_text_encoder(name: str) -> Callable[[F], F]:
    """Decorator that registers an encoder class or factory under ``name``.

    Args:
        name: backend name, e.g. ``"mybackend"``; ``create_text_encoder("mybackend:x")``
            then calls ``obj("x", **kwargs)``. A name may itself contain a colon to
            register one exact variant.

    Returns:
        The decorator; it returns the object unchanged.

    Raises:
        ValueError: if ``name`` is already registered.

    Example:
        >>> from textrestore.text import LearnedTextEncoder
        >>> @register_text_encoder("doctest-learned")
        ... def make(variant=None, **kwargs):
        ...     return LearnedTextEncoder(n_tokens=int(variant or 2), **kwargs)
        >>> create_text_encoder("doctest-learned:3", dim=8).encode(["hi"]).tokens.shape
        torch.Size([1, 3, 8])
        >>> register_text_encoder("doctest-learned")(make)
        Traceback (most recent call last):
        ...
        ValueError: text encoder 'doctest-learned' is already registered ...
    """
    key = _check_name(name)

    def deco(obj: F) -> F:
        if not callable(obj):
            raise TypeError(
                f"register_text_encoder({key!r}): expected a TextEncoder class or a factory "
                f"function, got {type(obj).__name__}"
            )
        if key in _REGISTRY:
            raise ValueError(
                f"text encoder {key!r} is already registered (by {_describe(_REGISTRY[key])}); "
                f"choose another name"
            )
        _REGISTRY[key] = obj
        return obj

    return deco


def _describe(obj: object) -> str:
    module = getattr(obj, "__module__", "?")
    qual = getattr(obj, "__qualname__", type(obj).__name__)
    return f"{module}.{qual}"


def _entry_points() -> dict[str, metadata.EntryPoint]:
    try:
        eps = metadata.entry_points(group=ENTRY_POINT_GROUP)
    except Exception as err:  # a broken installed distribution must not break the registry
        warnings.warn(f"could not read entry points {ENTRY_POINT_GROUP!r}: {err}", stacklevel=3)
        return {}
    return {ep.name: ep for ep in eps}


def _load_entry_point(name: str, ep: metadata.EntryPoint) -> None:
    try:
        obj = ep.load()
    except Exception as err:
        raise ImportError(
            f"text encoder {name!r} comes from the entry point {ep.value!r} "
            f"(group {ENTRY_POINT_GROUP!r}), which failed to import: {err}"
        ) from err
    # The plugin module may have registered itself while being imported.
    if name not in _REGISTRY:
        register_text_encoder(name)(obj)


def list_text_encoders() -> list[str]:
    """Names of the registered encoders and of the installed entry-point plugins.

    Returns:
        Sorted names; variants such as ``openclip:<arch>`` are listed as the backend.

    Example:
        >>> {"openclip", "minilm", "sentence", "learned"} <= set(list_text_encoders())
        True
    """
    return sorted(set(_REGISTRY) | set(_entry_points()))


def _resolve(name: str) -> tuple[Callable[..., TextEncoder], str | None]:
    if name in _REGISTRY:
        return _REGISTRY[name], None
    backend, sep, variant = name.partition(":")
    if sep and backend in _REGISTRY:
        return _REGISTRY[backend], variant
    eps = _entry_points()
    for key in (name, backend):
        if key in eps and key not in _REGISTRY:
            _load_entry_point(key, eps[key])
    if name in _REGISTRY:
        return _REGISTRY[name], None
    if sep and backend in _REGISTRY:
        return _REGISTRY[backend], variant
    raise ValueError(
        f"unknown text encoder {name!r}; available: {', '.join(list_text_encoders())} "
        f"(use 'backend' or 'backend:variant', e.g. 'openclip:ViT-B-32'; plugins register "
        f"through the entry-point group {ENTRY_POINT_GROUP!r})"
    )


def create_text_encoder(name: str, **kwargs: Any) -> TextEncoder:
    """Build a text encoder from its registry name.

    Args:
        name: ``"backend"`` or ``"backend:variant"``, e.g. ``"openclip:ViT-B-32"``,
            ``"minilm"``, ``"learned:8"``.
        **kwargs: passed to the backend, e.g. ``pretrained=`` for ``openclip``.

    Returns:
        The encoder (frozen unless the backend is trainable).

    Raises:
        ValueError: for an unknown name (the message lists what exists).

    Example:
        >>> enc = create_text_encoder("learned:4", dim=16)
        >>> enc.name, enc.dim, enc.trainable
        ('learned:4', 16, True)
    """
    key = _check_name(name)
    factory, variant = _resolve(key)
    enc = factory(variant, **kwargs) if variant is not None else factory(**kwargs)
    if not isinstance(enc, TextEncoder):
        raise TypeError(
            f"text encoder {key!r}: {_describe(factory)} returned {type(enc).__name__}, "
            f"expected a textrestore.text.TextEncoder"
        )
    return enc
