"""Weights shipped inside the wheel (``textrestore/weights/<preset>.safetensors``)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from torch import nn

__all__ = ["pretrained_path", "list_pretrained", "load_pretrained", "load_weights"]


def _weights_dir() -> Path:
    return Path(str(resources.files("textrestore"))) / "weights"


def list_pretrained() -> list[str]:
    """Names of the presets whose weights ship with the package."""
    folder = _weights_dir()
    return sorted(p.stem for p in folder.glob("*.safetensors")) if folder.is_dir() else []


def pretrained_path(name: str) -> Path:
    """Path of the shipped weights of preset ``name``; ``ValueError`` if none ship."""
    path = _weights_dir() / f"{name}.safetensors"
    if not path.is_file():
        shipped = ", ".join(list_pretrained()) or "none"
        raise ValueError(f"no pretrained weights ship for {name!r}; shipped: {shipped}")
    return path


def load_weights(model: nn.Module, path: str | Path, strict: bool = True) -> nn.Module:
    """Load a ``.safetensors`` file (or a ``torch.save``d state dict, read with
    ``weights_only=True``) into ``model``; a leading ``module.`` (DDP) is stripped."""
    import torch
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        state = load_file(str(path))
    else:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
        state = loaded.get("model", loaded) if isinstance(loaded, dict) else loaded
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state dict, got {type(state).__name__}")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    model.load_state_dict(state, strict=strict)
    return model


def load_pretrained(model: nn.Module, name: str) -> nn.Module:
    """Load the weights shipped for preset ``name`` into ``model``."""
    return load_weights(model, pretrained_path(name))
